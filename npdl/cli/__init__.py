"""The ``npdl`` command line (Typer). The only part of npdl that prints for humans.

One module per command group registers its commands on ``app`` when imported; they are all
imported here, explicitly, once.
"""
from npdl.cli.app import app, main  # noqa: F401
from npdl.cli import bench, data, listing, runs, train  # noqa: F401,E402  (general commands)

# ---- model-family commands ------------------------------------------------------------------
from npdl.cli import embeddings  # noqa: F401,E402  word2vec: neighbors, analogy, export
from npdl.cli import generate  # noqa: F401,E402  language models: sample
from npdl.cli import translate  # noqa: F401,E402  seq2seq: translate
from npdl.cli import predict  # noqa: F401,E402  classifiers: predict
# ---- end of model-family commands -----------------------------------------------------------
