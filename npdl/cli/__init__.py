"""The ``npdl`` command line (Typer). The only part of npdl that prints for humans.

One module per command group registers its commands on ``app`` when imported; they are all
imported here, explicitly, once.
"""
from npdl.cli.app import app, main  # noqa: F401
from npdl.cli import bench, data, init, listing, runs, train  # noqa: F401,E402  (general commands)
from npdl.cli import compare, plot, sweep  # noqa: F401,E402  (runs side by side, curves, sweeps)

from npdl.cli import export, graph, health  # noqa: F401,E402  (weights, the graph of a step, training health)

# ---- model-family commands ------------------------------------------------------------------
from npdl.families.word2vec import commands as _word2vec  # noqa: F401,E402  neighbors, analogy
from npdl.families.language_model import commands as _language_model  # noqa: F401,E402  sample
from npdl.families.seq2seq import commands as _seq2seq  # noqa: F401,E402  translate
from npdl.families.text_classification import commands as _text_classification  # noqa: F401,E402  predict
# ---- end of model-family commands -----------------------------------------------------------
