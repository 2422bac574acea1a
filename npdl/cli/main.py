"""The assembled ``npdl`` command: every command module imported (each registers its commands
on ``app`` when imported), and the console-script entry point ``main``.

Imports run one way: this module -> command modules -> ``npdl.cli.app``; nothing imports this
module but the entry points (``npdl`` and ``python -m npdl``) and tests.
"""
import sys

from npdl.cli.app import PipeSafeStream, app  # noqa: F401  (app: what tests invoke)
from npdl.cli import bench, data, init, listing, runs, train  # noqa: F401,E402  (general commands)
from npdl.cli import compare, plot, sweep  # noqa: F401,E402  (runs side by side, curves, sweeps)

from npdl.cli import export, graph, health  # noqa: F401,E402  (weights, the graph of a step, training health)

# ---- model-family commands ------------------------------------------------------------------
from npdl.families.word2vec import commands as _word2vec  # noqa: F401,E402  neighbors, analogy
from npdl.families.language_model import commands as _language_model  # noqa: F401,E402  sample
from npdl.families.seq2seq import commands as _seq2seq  # noqa: F401,E402  translate
from npdl.families.text_classification import commands as _text_classification  # noqa: F401,E402  predict
# ---- end of model-family commands -----------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    from npdl.runtime import flush_denormals, keep_freed_memory

    sys.stdout, sys.stderr = PipeSafeStream(sys.stdout), PipeSafeStream(sys.stderr)
    keep_freed_memory()  # see npdl/runtime.py: fewer page faults per training step
    flush_denormals()    # see npdl/runtime.py: no 100x-slow subnormal arithmetic (Adam's decaying moments)
    app(prog_name="npdl")
