"""Weights in and out of npdl: ``.safetensors`` files for PyTorch, and ``model.init_from``.

* ``save_safetensors(model, path, metadata)`` writes the model's weights under PyTorch's names and
  layouts (``npdl.nn.pytorch_names``) through the ``safetensors`` library (an optional extra:
  ``pip install safetensors``): contiguous host arrays in the model's dtype, and string metadata.
* ``init_model(model, spec, strict)`` copies saved weights into a freshly built model (fine-tuning):
  from a ``.safetensors`` file (PyTorch names mapped back), an npdl ``.npz`` checkpoint, or a run
  folder (its best checkpoint, else its last). Every missing, unexpected, misshaped or lossy key is
  reported at once and nothing is loaded unless all of them fit.

Reading a ``.safetensors`` file is bounded whatever the file holds: the 8-byte header length is
checked against ``MAX_HEADER_BYTES`` and the file size, then the JSON header (each tensor's
dtype, shape and byte range) is checked against the model, and only then are exactly the bytes of
the expected tensors read. The format is small enough (length, JSON, raw little-endian bytes) that
npdl reads it itself, so fine-tuning from a file needs no extra package and every check happens
before a tensor byte is read; writing goes through the library, the format's reference.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from npdl.atomic import atomic_write
from npdl.jsontext import parse_object
from npdl.nn.module import Module
from npdl.nn.pytorch_names import from_torch, to_torch
from npdl.train import checkpoint
from npdl.train.checkpoint import CheckpointError

MAX_HEADER_BYTES = 16 * 2 ** 20   # a header lists names, dtypes and shapes: ~100 bytes per tensor
INSTALL_HINT = 'pip install safetensors  (or, in an npdl checkout: pip install -e ".[export]")'
# safetensors dtype tag -> little-endian NumPy dtype (BF16 is widened to float32 on reading)
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


class WeightsError(CheckpointError):
    """A weights file that cannot be read, or whose tensors do not fit the model (every problem listed)."""


# ---- writing ---------------------------------------------------------------------------
def require_safetensors():
    """The ``safetensors.numpy`` module; ``WeightsError`` naming the install line when it is missing."""
    try:
        import safetensors.numpy as stnp
    except ImportError:
        raise WeightsError(f"writing .safetensors files needs the safetensors package: {INSTALL_HINT}") from None
    return stnp


def save_safetensors(model: Module, path: str | Path, metadata: dict[str, str]) -> Path:
    """Write ``model``'s weights with PyTorch's names and layouts to ``path`` (atomically).

    Returns the path. Raises ``WeightsError`` when the safetensors package is not installed.
    """
    stnp = require_safetensors()
    tensors = dict(to_torch(model))
    return atomic_write(path, stnp.save(tensors, metadata={k: str(v) for k, v in metadata.items()}))


# ---- reading ---------------------------------------------------------------------------
def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def read_header(path: str | Path) -> tuple[dict, dict[str, str], int]:
    """(tensor entries by name, metadata, offset of the data section) of a ``.safetensors`` file.

    Each entry is ``{"dtype": tag, "shape": [...], "data_offsets": [begin, end]}``, checked:
    a known dtype, a shape of non-negative integers, and a byte range inside the file whose length
    is the shape's size times the dtype's width. Reads the header only.

    Raises:
        WeightsError: a missing or truncated file, an oversized or malformed header, a bad entry.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a folder, FIFO or device: opening a FIFO would block for good
            raise WeightsError(f"{path} is not a regular file (a .safetensors weights file was expected)")
        raise WeightsError(f"weights file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path} is not a .safetensors file (shorter than its 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n > size and n > MAX_HEADER_BYTES:  # text or other data read as a length: say so
            raise WeightsError(f"{path} is not a .safetensors file: its first 8 bytes give a header of "
                               f"{n:,} bytes (refused), the whole file has {size:,}")
        if n > MAX_HEADER_BYTES:
            raise WeightsError(f"{path}: header of {n:,} bytes refused (at most {MAX_HEADER_BYTES:,})")
        if 8 + n > size:
            raise WeightsError(f"{path} is truncated: its header claims {n:,} bytes, the file has {size - 8:,}")
        raw = f.read(n)
    try:
        header = parse_object(raw, object_pairs_hook=_no_duplicates)
    except ValueError as why:
        raise WeightsError(f"{path}: the .safetensors header {why}") from None
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"{path}: __metadata__ must map names to strings")
    data_len = size - 8 - n
    problems = [p for name, entry in header.items() for p in _entry_problems(name, entry, data_len)]
    if problems:
        raise WeightsError(f"{path}: malformed .safetensors header:\n  " + "\n  ".join(problems[:20]))
    return header, metadata, 8 + n


def _entry_problems(name: str, entry, data_len: int) -> list[str]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return [f"{name}: expected dtype, shape and data_offsets"]
    dtype, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        return [f"{name}: dtype {dtype!r} is not supported (supported: {', '.join(DTYPES)})"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return [f"{name}: shape must be a list of non-negative integers, got {shape!r}"]
    if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)
            and 0 <= offs[0] <= offs[1] <= data_len):
        return [f"{name}: data_offsets {offs!r} fall outside the {data_len:,} data bytes"]
    if offs[1] - offs[0] != math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize:
        return [f"{name}: data_offsets cover {offs[1] - offs[0]} bytes, shape {shape} of {dtype} needs "
                f"{math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize}"]
    return []


def _lossless(tag_or_dtype, target: np.dtype) -> bool:
    """Whether values of the stored dtype fit ``target`` exactly (float -> float, int -> int, bool -> bool)."""
    target = np.dtype(target)
    if tag_or_dtype == "BF16":
        return target.kind == "f" and target.itemsize >= 4
    src = np.dtype(DTYPES.get(tag_or_dtype, tag_or_dtype))
    if src.kind == "b" or target.kind == "b":
        return src.kind == target.kind
    if (src.kind == "f") != (target.kind == "f"):
        return False
    return np.can_cast(src, target, "safe")


def match(expected: dict[str, np.ndarray], found: dict[str, tuple[tuple[int, ...], object]], strict: bool,
          source: str) -> None:
    """Raise one ``WeightsError`` listing every key of ``found`` ((shape, dtype) by name) that does not fit.

    ``expected``: the model's arrays by name. Shape mismatches and lossy dtypes are always errors;
    missing and unexpected keys only with ``strict``.
    """
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    lines = []
    if strict and missing:
        lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
    if strict and unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    for key, want in expected.items():
        if key not in found:
            continue
        shape, dtype = found[key]
        if tuple(shape) != tuple(want.shape):
            lines.append(f"  shape mismatch for {key}: model has {tuple(want.shape)}, file has {tuple(shape)}")
        elif not _lossless(dtype, want.dtype):
            shown = dtype if isinstance(dtype, str) else np.dtype(dtype).name
            lines.append(f"  dtype of {key}: file has {shown}, the model holds {want.dtype.name} "
                         f"(converting would lose data)")
    if lines:
        raise WeightsError(f"{source} does not fit the model (nothing was loaded):\n" + "\n".join(lines))


def load_safetensors(path: str | Path, expected: dict[str, np.ndarray], strict: bool = True) -> dict:
    """The tensors of a ``.safetensors`` file that fit ``expected`` (arrays by name), in its dtypes.

    Everything is checked (``read_header``, then ``match``) before a tensor byte is read; only the
    expected tensors are read. Raises ``WeightsError``.
    """
    header, _, start = read_header(path)
    match(expected, {k: (e["shape"], e["dtype"]) for k, e in header.items()}, strict, str(path))
    out = {}
    with open(path, "rb") as f:
        for name in expected:
            if name not in header:
                continue
            e = header[name]
            begin, end = e["data_offsets"]
            f.seek(start + begin)
            arr = np.frombuffer(f.read(end - begin), DTYPES[e["dtype"]]).reshape(e["shape"])
            if e["dtype"] == "BF16":  # bfloat16 is the top half of a float32
                arr = (arr.astype("<u4") << 16).view("<f4")
            out[name] = arr.astype(expected[name].dtype)
    return out


# ---- init_from -----------------------------------------------------------------------------
def parse_init_from(value) -> tuple[str, bool]:
    """``model.init_from`` as (path or run, strict): a string, or ``{path: ..., strict: bool}``.

    Raises:
        ValueError: any other form (the message says what is accepted).
    """
    if isinstance(value, str) and value:
        return value, True
    if (isinstance(value, dict) and set(value) <= {"path", "strict"} and isinstance(value.get("path"), str)
            and value["path"] and isinstance(value.get("strict", True), bool)):
        return value["path"], value.get("strict", True)
    raise ValueError(f"expected a .safetensors file, an .npz checkpoint or a run folder (or "
                     f"{{path: ..., strict: false}}), got {value!r}")


def init_model(model: Module, spec: str, strict: bool = True, runs_dir: str | Path = "runs") -> Path:
    """Load saved weights into ``model`` (built and materialised); returns the file read.

    ``spec``: a ``.safetensors`` file (PyTorch names, as ``npdl export`` writes), an npdl ``.npz``
    checkpoint, or a run (folder, or unique name prefix under ``runs_dir``: its best checkpoint,
    else its last). ``strict=False`` tolerates missing keys (they keep their fresh values) and
    unexpected ones (ignored); shapes and dtypes must fit either way.

    Raises:
        WeightsError, CheckpointError, npdl.runs.RunError: the file or run cannot be read, or does not fit.
    """
    from npdl.runs import RunError, resolve

    path = Path(spec)
    if path.suffix == ".safetensors":
        expected = to_torch(model)
        state = from_torch(model, load_safetensors(path, expected, strict))
    else:
        try:
            if path.suffix != ".npz" and not path.is_file():
                run = resolve(spec, runs_dir)
                path = run.checkpoint_path("best")
                if not path.is_file():
                    path = run.checkpoint_path("last")
            state = checkpoint.load(path).get("model")
        except (RunError, CheckpointError) as exc:
            raise WeightsError(str(exc)) from None
        if not isinstance(state, dict):
            raise WeightsError(f"{path} holds no model weights")
        expected = model.state_dict()
        match(expected, {k: (np.shape(v), np.asarray(v).dtype) for k, v in state.items()}, strict, str(path))
        state = {k: v for k, v in state.items() if k in expected}
    # NaN/inf weights would only surface as a non-finite loss at step 1 (exit 1, "training
    # diverged"); they are a fault of the file, so it is refused here with the keys named
    bad = [k for k, v in state.items() if np.issubdtype(np.asarray(v).dtype, np.inexact)
           and not np.isfinite(np.asarray(v)).all()]
    if bad:
        raise WeightsError(f"{path} holds NaN or infinite values in {len(bad)} tensor(s): "
                           f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} (nothing was loaded)")
    model.load_state_dict(state, strict=strict)
    return path


def without_init(model_spec):
    """The model spec as its registry entry takes it: ``init_from`` is not a constructor argument."""
    if isinstance(model_spec, dict) and "init_from" in model_spec:
        return {k: v for k, v in model_spec.items() if k != "init_from"}
    return model_spec


def init_from_spec(model: Module, model_spec: dict, runs_dir: str | Path = "runs") -> Path | None:
    """Apply a (validated) model spec's ``init_from`` to ``model``; the file read, or None without one."""
    if "init_from" not in model_spec:
        return None
    return init_model(model, *parse_init_from(model_spec["init_from"]), runs_dir=runs_dir)
