"""Sweeps: one config trained over a grid of values and seeds, grouped in one folder.

::

    runs/<sweep-name>-<YYYYmmdd-HHMMSS>/
      sweep.json     the grid, the seeds, the member runs (name, overrides, run folder)
      base.yaml      the resolved config every member starts from (CONFIG with --set applied),
                     so that a sweep continues from its folder alone, even if CONFIG changed
      .logs/         each member's console output (hidden: ``find_runs`` skips it)
      <member>-<YYYYmmdd-HHMMSS>/   an ordinary run folder per member

A member is one point of the grid times one seed; its run name says which
(``lr=1e-3_dropout=0_seed=1``). The run folders are the truth about what is done: a member is
finished when its newest folder says ``completed`` (or ``stopped_nan``: rerunning a diverged
run diverges again), resumable when it holds a checkpoint, and started afresh otherwise.

This module knows nothing of processes or screens (``npdl.cli.sweep`` runs the members).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import re
from pathlib import Path

from npdl.atomic import atomic_write
from npdl.runs import Run, RunError, check_name, find_runs, read_json

SWEEP_FILE = "sweep.json"
BASE_FILE = "base.yaml"
LOGS = ".logs"
MAX_MEMBERS = 10_000
_STAMP = r"-\d{8}-\d{6}(?:-\d+)?"
FINISHED = ("completed", "stopped_nan")


class SweepError(RunError):
    """A grid, a seed list or a sweep folder npdl cannot use (a user error: exit 2)."""


# ---- the grid ------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """'1e-3,3e-4' -> ['1e-3', '3e-4']; commas inside [] or {} belong to the value ('[64,64],[32]')."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [s.strip() for s in items]


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """``['optimizer.lr=1e-3,3e-4', ...]`` -> ``{'optimizer.lr': ['1e-3', '3e-4']}`` (values as written;
    they are parsed as YAML, like ``--set`` values, when each member's config is loaded).

    Raises:
        SweepError: no '=', an empty key or value, a key given twice, a value repeated.
    """
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, eq, raw = spec.partition("=")
        key = key.strip()
        if not eq or not key or any(not p.strip() for p in key.split(".")):
            raise SweepError(f"--grid {spec[:80]!r}: expected KEY=V1,V2,... e.g. --grid optimizer.lr=1e-3,3e-4")
        if key == "seed":
            raise SweepError("--grid seed=...: give the seeds with --seeds 0,1,2")
        if key in grid:
            raise SweepError(f"--grid {key}: given twice (put all its values in one --grid {key}=V1,V2)")
        values = split_values(raw)
        if not raw.strip() or any(not v for v in values):
            raise SweepError(f"--grid {key}: empty value in {raw[:80]!r} (expected {key}=V1,V2,...)")
        if len(set(values)) != len(values):
            raise SweepError(f"--grid {key}: a value is repeated in {raw[:80]!r}")
        grid[key] = values
    return grid


def parse_seeds(text: str | None) -> list[int] | None:
    """'0,1,2' -> [0, 1, 2]; None when not given. Raises SweepError on anything else."""
    if text is None:
        return None
    seeds = []
    for item in split_values(text):
        if not re.fullmatch(r"\d{1,18}", item):
            raise SweepError(f"--seeds {text[:80]!r}: expected non-negative integers separated by commas, e.g. 0,1,2")
        seeds.append(int(item))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text[:80]!r}: a seed is repeated")
    return seeds


def _short_keys(keys: list[str]) -> dict[str, str]:
    """The last part of each dotted key ('optimizer.lr' -> 'lr'), the full key where that is ambiguous."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 and s != "seed" else k) for k, s in zip(keys, last)}


def _name_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", text).strip("-") or "x"


@dataclasses.dataclass
class Member:
    """One grid point times one seed: its run name and the ``--set`` overrides that make it."""

    name: str
    sets: list[str]             # ['optimizer.lr=1e-3', 'seed=0']
    point: dict[str, str]       # the grid values as written, seed included: {'optimizer.lr': '1e-3', 'seed': '0'}


def expand(grid: dict[str, list[str]], seeds: list[int] | None) -> list[Member]:
    """Every combination, the first grid key varying slowest and the seed fastest.

    Raises:
        SweepError: nothing to sweep, or more than MAX_MEMBERS members.
    """
    if not grid and not seeds:
        raise SweepError("nothing to sweep: give at least one --grid KEY=V1,V2 or --seeds 0,1,2")
    count = len(seeds or [None])
    for values in grid.values():
        count *= len(values)
    if count > MAX_MEMBERS:
        raise SweepError(f"the grid has {count:,} members; at most {MAX_MEMBERS:,}, please")
    short = _short_keys(list(grid))
    members, taken = [], set()
    for values in itertools.product(*grid.values()):
        for seed in (seeds if seeds else [None]):
            point = dict(zip(grid, values))
            if seed is not None:
                point["seed"] = str(seed)
            name = "_".join(f"{short.get(k, k)}={_name_part(v)}" for k, v in point.items())[:120]
            base, i = name, 2
            while name in taken:  # two values that read the same once made file-name safe
                name, i = f"{base}-{i}", i + 1
            taken.add(name)
            members.append(Member(name, [f"{k}={v}" for k, v in point.items()], point))
    return members


def identity(base_yaml: str, grid: dict[str, list[str]], seeds: list[int] | None) -> str:
    """What makes two sweep commands 'the same': the resolved base config, the grid and the seeds."""
    text = json.dumps({"base": base_yaml, "grid": grid, "seeds": seeds}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---- the folder ----------------------------------------------------------------------------
def is_sweep(path: Path) -> bool:
    try:
        return (Path(path) / SWEEP_FILE).is_file()
    except (OSError, ValueError):
        return False


class Sweep:
    """One sweep folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path, name: str, spec: dict, base_yaml: str) -> "Sweep":
        """A new sweep folder ``<name>-<time>`` holding sweep.json and base.yaml."""
        check_name(name, runs_dir)
        run = Run.create(runs_dir, name)  # the same naming and collision rules as a run folder
        try:
            run.checkpoints.rmdir()
            atomic_write(run.path / BASE_FILE, base_yaml)
            sweep = cls(run.path)
            sweep.write({**spec, "name": name, "created": _dt.datetime.now().isoformat(timespec="seconds")})
        except OSError as exc:
            raise SweepError(f"cannot write the sweep folder {run.path}: {exc.strerror}") from None
        return sweep

    @classmethod
    def open(cls, path: str | Path) -> "Sweep":
        """Raises SweepError when ``path`` is not a sweep folder or its sweep.json is damaged."""
        sweep = cls(path)
        if not is_sweep(sweep.path):
            raise SweepError(f"{path} is not a sweep folder (no {SWEEP_FILE})")
        sweep.spec()  # damaged -> an error now, not halfway through
        return sweep

    def spec(self) -> dict:
        data = read_json(self.path / SWEEP_FILE)
        grid, seeds, members = data.get("grid"), data.get("seeds"), data.get("members")
        ok = (isinstance(grid, dict) and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                             for v in grid.values())
              and (seeds is None or (isinstance(seeds, list) and all(type(s) is int for s in seeds)))
              and isinstance(members, list) and all(isinstance(m, dict) and isinstance(m.get("name"), str)
                                                     for m in members))
        if not ok:
            raise SweepError(f"{self.path / SWEEP_FILE}: not a sweep file npdl wrote (grid, seeds or members "
                             "missing or of the wrong kind)")
        return data

    def write(self, spec: dict) -> None:
        atomic_write(self.path / SWEEP_FILE, json.dumps(spec, indent=2))

    @property
    def base_config(self) -> Path:
        return self.path / BASE_FILE

    @property
    def grid_keys(self) -> list[str]:
        return list(self.spec()["grid"])

    def members(self) -> list[Member]:
        s = self.spec()
        return expand(s["grid"], s["seeds"])

    def log_path(self, member: str) -> Path:
        (self.path / LOGS).mkdir(exist_ok=True)
        return self.path / LOGS / f"{member}.log"

    def run_of(self, member: str) -> Run | None:
        """The member's newest run folder, or None before it started."""
        pattern = re.compile(re.escape(member) + _STAMP + "$")
        found = [r for r in find_runs(self.path, complete=False) if pattern.fullmatch(r.name)]
        if not found:
            return None
        return max(found, key=lambda r: _stamp_key(r.name[len(member):]))

    def runs(self) -> list[Run]:
        """The newest run folder of every member that has one, in grid order."""
        return [r for m in self.members() if (r := self.run_of(m.name)) is not None]

    def state(self, member: str) -> tuple[str, Run | None]:
        """('pending' | 'finished' | 'running' | 'resume' | 'restart', run): what a sweep does next with it."""
        run = self.run_of(member)
        if run is None:
            return "pending", None
        status, _ = run.status()
        if status in FINISHED:
            return "finished", run
        if status == "running":
            return "running", run
        if status != "corrupt" and run.checkpoint_path("last").is_file():
            return "resume", run
        return "restart", run


def _stamp_key(stamp: str) -> tuple:
    parts = stamp.strip("-").split("-")
    return (parts[0], parts[1], int(parts[2]) if len(parts) > 2 else 1)


def find_sweep(runs_dir: Path, name: str, ident: str) -> Sweep | None:
    """The newest sweep under ``runs_dir`` called ``name`` that was started by the same command."""
    pattern = re.compile(re.escape(name) + _STAMP + "$")
    candidates = []
    for r in find_runs(runs_dir, complete=False):
        if pattern.fullmatch(r.name) and is_sweep(r.path):
            try:
                if Sweep(r.path).spec().get("identity") == ident:
                    candidates.append(r.name)
            except RunError:
                continue  # a damaged sweep.json is not the one to continue
    if not candidates:
        return None
    return Sweep(runs_dir / max(candidates, key=lambda n: _stamp_key(n[len(name):])))


def resolve_sweep(spec: str | Path, runs_dir: str | Path = "runs") -> Sweep | None:
    """A sweep from a folder path or a unique name prefix under ``runs_dir``; None when ``spec``
    names no sweep (it may name a run). Raises SweepError when a prefix matches several sweeps."""
    p = Path(spec)
    if is_sweep(p):
        return Sweep.open(p)
    spec = str(spec)
    if not spec or "\0" in spec or "/" in spec:
        return None
    try:
        folders = [r for r in find_runs(runs_dir, complete=False) if is_sweep(r.path)]
    except RunError:
        return None
    matches = [r for r in folders if r.name == spec] or [r for r in folders if r.name.startswith(spec)]
    if len(matches) > 1:
        raise SweepError(f"'{spec}' matches {len(matches)} sweeps: {', '.join(r.name for r in matches[:20])}; "
                         "give more of the name")
    return Sweep.open(matches[0].path) if matches else None
