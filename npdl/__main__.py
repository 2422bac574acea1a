"""``python -m npdl ...`` is the same as the ``npdl`` command."""
from npdl.cli.app import main

main()
