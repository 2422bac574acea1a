"""Checkpoints: one ``.npz`` file, written atomically, loaded without pickle.

Layout: every array is a member named by a path (``model/encoder.layers.0.linear1.weight``,
``optim/state/<param>/exp_avg``, ``task/h``, ...); everything else (optimizer scalars,
schedule state, RNG state, data position, step, metrics) is JSON stored as the uint8 member
``meta.json``. ``np.load(..., allow_pickle=False)`` reads it, so loading never runs code.
Writing goes to a temporary file in the same folder, is flushed to disk, then renamed over
the target: a crash leaves either the old checkpoint or the new one, never half of one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from npdl.atomic import atomic_open

META = "meta.json"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated or not an npdl checkpoint."""


def _flatten(prefix: str, obj, arrays: dict, path: str = ""):
    """Split a nested dict into arrays (stored as npz members) and a JSON-able skeleton."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}/{path}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {str(k): _flatten(prefix, v, arrays, f"{path}/{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_flatten(prefix, v, arrays, f"{path}/{i}" if path else str(i)) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _unflatten(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def save(path: str | Path, **parts) -> Path:
    """Write ``parts`` (name -> nested dict/list of arrays and JSON scalars) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    skeleton = {name: _flatten(name, value, arrays) for name, value in parts.items()}
    arrays[META] = np.frombuffer(json.dumps(skeleton).encode("utf-8"), dtype=np.uint8)
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load(path: str | Path) -> dict:
    """Read a checkpoint written by ``save``; returns the parts by name.

    Raises:
        CheckpointError: missing file, not an npz, truncated, or not written by npdl.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip/format errors all mean "unreadable"
        raise CheckpointError(f"{path} is not a readable npdl checkpoint ({type(exc).__name__}: {exc})") from None
    if META not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not an npdl checkpoint (no {META})")
    skeleton = json.loads(arrays.pop(META).tobytes().decode("utf-8"))
    return {name: _unflatten(value, arrays) for name, value in skeleton.items()}
