"""The ``npdl`` command line (Typer). The only part of npdl that prints for humans."""
from npdl.cli.app import app, main  # noqa: F401
