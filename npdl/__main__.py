"""``python -m npdl ...`` is the same as the ``npdl`` command."""
from npdl.cli.main import main

main()
