"""The ``npdl`` command line (Typer). The only part of npdl that prints for humans.

This package file imports nothing, so a command module (a family's ``commands.py`` too) can use
``npdl.cli.app`` and the other helpers without an import loop. ``npdl.cli.main`` imports every
command module, explicitly and once, and is the entry point (``npdl.cli.main:main``).
"""
