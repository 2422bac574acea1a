"""Run directories: ``runs/<name>-<YYYYmmdd-HHMMSS>/``.

::

    config.yaml      the resolved config (base merged, overrides applied)
    manifest.json    command line, versions, BLAS and threads, seed, dataset checksums,
                     start/end times, status (running | completed | interrupted | failed | stopped_nan)
    metrics.jsonl    one JSON object per log or eval event
    checkpoints/     last.npz, best.npz, step-XXXXXXXX.npz (the newest ``keep_last``)
    summary.json     final figures: best/last metrics, steps, wall time
    artifacts/       what eval/predict need beside the weights (tokenizers, vocabularies)

This module reads and writes these files; it knows nothing of models or YAML parsing.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from npdl.atomic import atomic_write as _atomic_write



class RunError(ValueError):
    """A run directory that does not exist or lacks the files a command needs."""


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def blas_info() -> dict:
    """Which BLAS NumPy uses and how many threads it runs (via threadpoolctl if present)."""
    info: dict = {}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info = {"name": blas.get("name"), "version": blas.get("version")}
    except Exception:  # noqa: BLE001 - older numpy: best effort only
        pass
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["threads"] = pools[0].get("num_threads")
    except ImportError:
        info["threads_env"] = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS")
    info["cpu_count"] = os.cpu_count()
    return info


class Run:
    """One run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # ---- creation ----------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> "Run":
        """A new, empty run folder named ``<name>-<timestamp>`` (``-2``, ``-3``... if taken)."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{name}-{stamp}"
        for i in range(1, 1000):
            path = runs_dir / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                (path / "checkpoints").mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise RunError(f"could not create a run folder under {runs_dir}")

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """An existing run; ``RunError`` when ``path`` is not a run folder."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"run not found: {path}")
        if not (run.path / "config.yaml").is_file():
            raise RunError(f"{path} is not an npdl run (no config.yaml)")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def artifacts(self) -> Path:
        p = self.path / "artifacts"
        p.mkdir(exist_ok=True)
        return p

    # ---- files -------------------------------------------------------------------------
    def write_config(self, yaml_text: str) -> None:
        _atomic_write(self.path / "config.yaml", yaml_text)

    def config_text(self) -> str:
        return (self.path / "config.yaml").read_text(encoding="utf-8")

    def manifest(self) -> dict:
        p = self.path / "manifest.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def update_manifest(self, **fields) -> dict:
        m = self.manifest()
        m.update(fields)
        _atomic_write(self.path / "manifest.json", json.dumps(m, indent=2, default=str))
        return m

    def start_manifest(self, seed: int, datasets: dict, argv: list[str] | None = None) -> dict:
        import npdl

        return self.update_manifest(
            command=" ".join(argv if argv is not None else sys.argv), npdl_version=npdl.__version__,
            numpy_version=np.__version__, python=platform.python_version(), platform=platform.platform(),
            blas=blas_info(), seed=seed, datasets=datasets, started=_now(), status="running",
            pid=os.getpid())

    def set_status(self, status: str, **extra) -> None:
        self.update_manifest(status=status, ended=_now(), **extra)

    def log(self, event: dict) -> None:
        """Append one event to metrics.jsonl (flushed: a killed run keeps what it logged)."""
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(event, default=_json_default) + "\n")
            f.flush()

    def metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a kill: everything before it is good
        return out

    def truncate_metrics(self, after_step: int) -> None:
        """Drop events logged after ``after_step`` (a resumed run re-logs them)."""
        kept = [e for e in self.metrics() if e.get("step", 0) <= after_step]
        _atomic_write(self.path / "metrics.jsonl", "".join(json.dumps(e) + "\n" for e in kept))

    def write_summary(self, summary: dict) -> None:
        _atomic_write(self.path / "summary.json", json.dumps(summary, indent=2, default=_json_default))

    def summary(self) -> dict:
        p = self.path / "summary.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def checkpoint_path(self, which: str = "last") -> Path:
        """``last`` | ``best`` | ``step-N`` | a file path."""
        if which in ("last", "best"):
            return self.checkpoints / f"{which}.npz"
        if which.startswith("step-"):
            if not which[5:].isdigit():
                raise RunError(f"checkpoint '{which}': expected best, last, step-N (N a number) or a file path")
            return self.checkpoints / f"step-{int(which[5:]):08d}.npz"
        return Path(which)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def find_runs(runs_dir: str | Path) -> list[Run]:
    """Every run folder directly under ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [Run(p) for p in runs_dir.iterdir() if (p / "config.yaml").is_file()]
    return sorted(runs, key=lambda r: (r.manifest().get("started", ""), r.name))


def resolve(spec: str | Path, runs_dir: str | Path = "runs") -> Run:
    """A run from a path, or from a name (or unique name prefix) under ``runs_dir``."""
    p = Path(spec)
    if p.is_dir():
        return Run.open(p)
    matches = [r for r in find_runs(runs_dir) if r.name.startswith(str(spec))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"run not found: {spec} (not a folder, and no run under {runs_dir} starts with it)")
    raise RunError(f"'{spec}' matches {len(matches)} runs: {', '.join(r.name for r in matches[:8])}")
