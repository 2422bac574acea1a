"""Checkpoints: one ``.npz`` file, written atomically, loaded without pickle and within bounds.

Layout: every array is a member named by a path (``model/encoder.layers.0.linear1.weight``,
``optim/state/<param>/exp_avg``, ``task/h``, ...); everything else (optimizer scalars,
schedule state, RNG state, data position, step, metrics) is JSON stored as the uint8 member
``meta.json``. Writing goes to a temporary file in the same folder, is flushed to disk, then
renamed over the target: a crash leaves either the old checkpoint or the new one.

Loading treats the file as hostile (safetensors' rule: know every tensor's size before
reading any). The zip directory and each ``.npy`` header are read first (``numpy.lib.format``);
every member's dtype must be a real number type (no objects -- pickle -- no strings, no
complex), its declared size must match the zip entry, and with a ``model``/``optimizer``
given, its shape must be the one they need. Only then are arrays decompressed, each
exactly as large as declared, so a 4 MB file cannot inflate to 1 GB. Members npdl cannot
size in advance (task state) may not be compressed past ``FREE_BYTES``.
"""
from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from npdl.atomic import atomic_open
from npdl.core.backend import is_device_array, to_host
from npdl.jsontext import parse_object

META = "meta.json"
MAX_META = 64 << 20       # bytes of meta.json
MAX_MEMBERS = 100_000
FREE_BYTES = 64 << 20     # a compressed member no model/optimizer shape vouches for
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, hostile or not an npdl checkpoint."""


def _flatten(prefix: str, obj, arrays: dict, path: str = ""):
    """Split a nested dict into arrays (stored as npz members) and a JSON-able skeleton.

    Arrays on a device are copied to the host: a checkpoint always holds NumPy arrays, so a
    run trained on a GPU resumes or evaluates on a CPU (and back: loading puts each array on
    its parameter's device)."""
    if is_device_array(obj):
        obj = to_host(obj)
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


# ---- loading --------------------------------------------------------------------------------
def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        is_file, exists = path.is_file(), path.exists()
        magic = b""
        if is_file:
            with open(path, "rb") as f:
                magic = f.read(4)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {str(path)[:300]}: {getattr(exc, 'strerror', None) or exc}") from None
    if not is_file:
        raise CheckpointError(f"checkpoint not found: {path}" if not exists else f"checkpoint {path} is not a file")
    if not magic.startswith(b"PK"):
        raise CheckpointError(f"{path} is not an npdl checkpoint (not a zip/npz file)")
    try:
        return zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise CheckpointError(f"{path} is not a readable npdl checkpoint (a damaged or truncated zip: {exc})") from None


class _Member:
    """One ``.npy`` member, sized from its header (nothing decompressed yet)."""

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str):
        self.info, self.where = info, where
        try:
            with zf.open(info) as f:
                version = npformat.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npformat.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = npformat.read_array_header_2_0(f)
                else:
                    raise CheckpointError(f"{where}: .npy format version {version} is not one npdl writes")
                self.offset = f.tell()
        except _READ_ERRORS as exc:
            raise CheckpointError(f"{where}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise CheckpointError(f"{where}: invalid shape {shape}")
        self.shape, self.fortran, self.dtype = tuple(shape), fortran, dtype
        if dtype.hasobject:
            raise CheckpointError(f"{where}: holds Python objects (dtype {dtype}); loading them would mean "
                                  "unpickling, which can run code: refused")
        if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
            raise CheckpointError(f"{where}: dtype {dtype} is not a real number type; npdl state holds only "
                                  "floats, integers and booleans (converting would lose data)")
        self.nbytes = math.prod(self.shape) * dtype.itemsize
        if info.file_size != self.offset + self.nbytes:
            raise CheckpointError(f"{where}: its header declares shape {self.shape} of {dtype} ({self.nbytes:,} "
                                  f"bytes) but the zip entry holds {info.file_size - self.offset:,} bytes: damaged")

    @property
    def compressed(self) -> bool:
        return self.info.compress_type != zipfile.ZIP_STORED

    def read(self, zf: zipfile.ZipFile) -> np.ndarray:
        flat = np.empty(math.prod(self.shape), dtype=self.dtype)
        buf = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
        with zf.open(self.info) as f:
            f.read(self.offset)
            pos = 0
            while pos < self.nbytes:
                chunk = f.read(min(16 << 20, self.nbytes - pos))
                if not chunk:
                    raise CheckpointError(f"{self.where}: truncated ({pos:,} of {self.nbytes:,} bytes)")
                buf[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
            if f.read(1):  # also makes zipfile check the CRC
                raise CheckpointError(f"{self.where}: more bytes than its header declares")
        arr = flat.reshape(self.shape, order="F" if self.fortran else "C")
        return arr if self.dtype.isnative else arr.astype(self.dtype.newbyteorder("="))


def _expected(model, optimizer) -> dict[tuple, tuple[tuple, np.dtype | None]]:
    """skeleton position -> (shape, dtype) the model / optimizer need there."""
    out = {}
    if model is not None:
        for k, v in model.state_dict().items():
            if v is not None:
                arr = v if isinstance(v, np.ndarray) or is_device_array(v) or not hasattr(v, "data") else v.data
                out[("model", k)] = (tuple(getattr(arr, "shape", None) or np.shape(arr)), getattr(arr, "dtype", None))
    if optimizer is not None:
        for g in optimizer.param_groups:
            for name, p in zip(g["param_names"], g["params"]):
                if p.data is not None:
                    out[("optim", "state", name)] = (tuple(p.data.shape), p.data.dtype)
    return out


def _refs(obj, pos: tuple, out: list) -> None:
    """Collect (skeleton position, member key) of every array reference."""
    if isinstance(obj, dict):
        if "__array__" in obj:
            out.append((pos, obj["__array__"] if len(obj) == 1 else None))
            return
        for k, v in obj.items():
            _refs(v, pos + (k,), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _refs(v, pos + (i,), out)


def _unflatten(obj, arrays):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def _dotted(pos: tuple) -> str:
    return ".".join(str(p) for p in pos)


def _compatible(have: np.dtype, want: np.dtype | None) -> bool:
    """Whether casting ``have`` to ``want`` keeps every value (float -> int would not)."""
    if want is None or want.kind == "f":
        return True
    if want.kind in "iu":
        return have.kind in "iub"
    return have.kind == want.kind


def _read_meta(zf: zipfile.ZipFile, infos: dict, path: Path) -> dict:
    if META not in infos:
        raise CheckpointError(f"{path} is an .npz file but not an npdl checkpoint (no {META})")
    m = _Member(zf, infos[META], f"{path}: {META}")
    if m.dtype != np.uint8 or len(m.shape) != 1 or m.nbytes > MAX_META:
        raise CheckpointError(f"{path}: {META} must be at most {MAX_META >> 20} MiB of uint8, "
                              f"got {m.dtype} of shape {m.shape}")
    try:
        skeleton = parse_object(m.read(zf).tobytes())
    except ValueError as why:
        raise CheckpointError(f"{path}: {META} {why}") from None
    if not all(isinstance(v, (dict, list)) for v in skeleton.values()):
        raise CheckpointError(f"{path}: {META} must map part names to objects")
    return skeleton


def load(path: str | Path, model=None, optimizer=None, require: tuple[str, ...] = ("model", "meta")) -> dict:
    """Read a checkpoint written by ``save``; returns the parts by name.

    ``model`` / ``optimizer``: what the arrays will be loaded into; every array of the ``model``
    and ``optim`` parts is checked against their shapes and dtypes before any is read.

    Raises:
        CheckpointError: missing, not an npz, truncated, hostile (objects, strings, complex,
            sizes that disagree), meta.json invalid or naming arrays the file lacks, a field of
            ``meta`` out of range. Each message names the file and the member or field.
        StateDictError: the model's keys or shapes differ (every one listed).
    """
    path = Path(path)
    zf = _open_zip(path)
    try:
        with zf:
            return _load(zf, path, model, optimizer, require)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path}: {META} is nested too deeply") from None
    except _READ_ERRORS as exc:
        raise CheckpointError(f"{path} is not a readable npdl checkpoint ({type(exc).__name__}: {exc})") from None


def _load(zf: zipfile.ZipFile, path: Path, model, optimizer, require) -> dict:
    listing = zf.infolist()
    if len(listing) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: {len(listing):,} zip members; an npdl checkpoint has far fewer")
    infos = {i.filename[:-4]: i for i in listing if i.filename.endswith(".npy")}
    skeleton = _read_meta(zf, infos, path)
    missing = [p for p in require if p not in skeleton]
    if missing:
        raise CheckpointError(f"{path}: {META} has no '{missing[0]}' part; not a checkpoint npdl can use here")
    problems = check_meta(skeleton.get("meta")) if "meta" in skeleton else []
    if problems:
        raise CheckpointError(f"{path}: {META}: " + "; ".join(problems))
    refs: list = []
    _refs(skeleton, (), refs)
    expected = _expected(model, optimizer)
    members: dict[str, _Member] = {}
    free = 0
    for pos, key in refs:
        where = f"{path}: {_dotted(pos)}"
        if not isinstance(key, str) or key == META or key not in infos:
            raise CheckpointError(f"{where}: refers to array {key!r}, which the file does not contain")
        m = members.get(key) or _Member(zf, infos[key], f"{path}: member {key!r}")
        members[key] = m
        want = expected.get(pos[:2]) if pos[:1] == ("model",) else expected.get(pos[:3])
        if want is not None:  # model shapes are compared (all at once) before anything is read
            if pos[:1] == ("optim",) and (len(pos) != 4 or m.shape != want[0]):
                raise CheckpointError(f"{where}: shape {m.shape}, but parameter '{pos[2]}' has {want[0]}")
            if not _compatible(m.dtype, want[1]):
                raise CheckpointError(f"{where}: dtype {m.dtype} cannot become {want[1]} without losing data")
        elif m.compressed:
            free += m.nbytes
            if free > FREE_BYTES:
                raise CheckpointError(f"{where}: compressed arrays that no model shape accounts for inflate to "
                                      f"over {FREE_BYTES >> 20} MiB: refused")
    if model is not None:
        _check_model_keys(skeleton["model"], members, expected, path)
    arrays = {}
    for key, m in members.items():
        arrays[key] = m.read(zf)
    return {name: _unflatten(value, arrays) for name, value in skeleton.items()}


def _check_model_keys(part, members: dict, expected: dict, path: Path) -> None:
    from npdl.nn.module import StateDictError

    if not isinstance(part, dict):
        raise CheckpointError(f"{path}: {META}: 'model' must map parameter names to arrays")
    for k, v in part.items():
        if not (isinstance(v, dict) and "__array__" in v):
            raise CheckpointError(f"{path}: model.{k}: expected an array, got {type(v).__name__}")
    want = {k[1]: v for k, v in expected.items() if k[0] == "model"}
    missing = [k for k in want if k not in part]
    unexpected = [k for k in part if k not in want]
    misshaped = [(k, want[k][0], members[part[k]["__array__"]].shape) for k in want
                 if k in part and members[part[k]["__array__"]].shape != want[k][0]]
    if missing or unexpected or misshaped:
        raise StateDictError(missing, unexpected, misshaped)


def _nonneg_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_meta(meta) -> list[str]:
    """Problems with the trainer's ``meta`` part (step, data position, wall time, extension states;
    best and early are those of checkpoints written before extensions kept their own state)."""
    if not isinstance(meta, dict):
        return [f"'meta' must be an object, got {type(meta).__name__}"]
    out = []
    for k in ("step", "epoch", "batch_in_epoch"):
        if k not in meta:
            out.append(f"meta.{k} is missing")
        elif not _nonneg_int(meta[k]):
            out.append(f"meta.{k}: expected a non-negative integer, got {meta[k]!r:.40}")
    wall = meta.get("wall", 0.0)
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not math.isfinite(wall) or wall < 0:
        out.append(f"meta.wall: expected a non-negative number of seconds, got {wall!r:.40}")
    if "rng" in meta and not isinstance(meta["rng"], dict):
        out.append(f"meta.rng: expected an object, got {type(meta['rng']).__name__}")
    best = meta.get("best")
    if best is not None:
        if not isinstance(best, dict) or set(best) != {"metric", "mode", "value", "step"}:
            out.append("meta.best: expected {metric, mode, value, step}")
        elif not (isinstance(best["metric"], str) and best["mode"] in ("min", "max")
                  and (best["value"] is None or (isinstance(best["value"], (int, float))
                                                 and not isinstance(best["value"], bool)))
                  and (best["step"] is None or _nonneg_int(best["step"]))):
            out.append(f"meta.best: invalid values {best!r:.80}")
    early = meta.get("early")
    if early is not None and not (isinstance(early, dict) and _nonneg_int(early.get("bad_evals", 0))
                                  and (early.get("best") is None or (isinstance(early.get("best"), (int, float))
                                                                     and not isinstance(early.get("best"), bool)))):
        out.append(f"meta.early: expected {{best: number, bad_evals: integer >= 0}}, got {early!r:.80}")
    extensions = meta.get("extensions")  # each extension checks its own state when it loads it
    if extensions is not None and not (isinstance(extensions, dict)
                                       and all(isinstance(v, dict) for v in extensions.values())):
        out.append(f"meta.extensions: expected an object of objects (one per extension), got {extensions!r:.80}")
    return out


def read_step(path: str | Path) -> int | None:
    """The step a checkpoint was written at (reads meta.json only); None when unreadable."""
    try:
        zf = _open_zip(Path(path))
        with zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            step = _read_meta(zf, infos, Path(path)).get("meta", {}).get("step")
    except (CheckpointError, *_READ_ERRORS, AttributeError, RecursionError):
        return None
    return step if _nonneg_int(step) else None
