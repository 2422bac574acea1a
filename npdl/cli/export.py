"""``npdl export RUN --format safetensors``: a run's weights for the PyTorch world.

The ``export`` command itself is registered with the word2vec commands (its default format,
``--format word2vec``, writes word vectors); it hands ``--format safetensors`` to ``export_safetensors``
here, which works for every model family. Names and layouts are PyTorch's
(``npdl.nn.pytorch_names``), so ``torch_module.load_state_dict(safetensors.torch.load_file(f))``
with ``strict=True`` loads them into the equivalent torch module (README: "Weights for PyTorch").
"""
from __future__ import annotations

import json
from pathlib import Path

from npdl.cli.app import console


def export_safetensors(run: str, output: Path | None, runs_dir: Path, checkpoint_: str) -> Path:
    """Write the run's checkpoint as ``.safetensors`` (default: ``weights-<checkpoint>.safetensors``
    in the run folder); returns the file written.

    Metadata (all strings, as the format wants): ``format`` = ``pt`` (what torch loaders expect),
    ``npdl_version``, ``model_type``, ``config`` (the run's resolved config as JSON),
    ``checkpoint`` and ``step``.
    """
    import npdl
    from npdl import experiment
    from npdl.nn.pytorch_names import to_torch
    from npdl.train import weights

    weights.require_safetensors()  # before any work: say how to install it
    r, exp, path, state = experiment.from_run(run, runs_dir, checkpoint_)
    cfg = exp.cfg.data
    metadata = {"format": "pt", "npdl_version": npdl.__version__, "model_type": str(cfg["model"]["type"]),
                "config": json.dumps(cfg, default=str), "checkpoint": path.name,
                "step": str(state.get("meta", {}).get("step", ""))}
    out = output or r.path / f"weights-{path.stem}.safetensors"
    weights.save_safetensors(exp.model, out, metadata)
    tensors = to_torch(exp.model)
    n = sum(a.size for a in tensors.values())
    console.print(f"wrote {len(tensors)} tensors ({n:,} values) of {r.name} ({path.name}) to {out}", soft_wrap=True)
    return out
