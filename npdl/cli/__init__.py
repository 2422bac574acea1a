"""The ``npdl`` command line (Typer). The only part of npdl that prints for humans.

One module per command group registers its commands on ``app`` when imported.
"""
from npdl.cli.app import app, main  # noqa: F401


OPTIONAL_COMMANDS = ("npdl.families.word2vec.commands", "npdl.families.language_model.commands",
                     "npdl.families.seq2seq.commands", "npdl.families.text_classification.commands")


def register_all() -> None:
    """Import every command module (each registers its commands on ``app``)."""
    from npdl.cli import bench, data, graph, health, listing, runs, train  # noqa: F401
    from npdl.registry import import_optional

    import_optional(OPTIONAL_COMMANDS)  # model-family commands, each in its own module when present


register_all()
