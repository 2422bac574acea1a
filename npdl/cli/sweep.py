"""``npdl sweep``: train one config over a grid of values and seeds, N processes at a time.

Each member is an ordinary ``python -m npdl train`` (or ``resume``) subprocess: a crash, a NaN or
a Ctrl-C in one never takes the others down, and every member is a run folder like any other
(``npdl eval``, ``resume``, ``compare`` work on it). The cores are shared out: with ``--jobs N``
each member's BLAS gets ``cores // N`` threads (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS), so N processes do not fight over the same cores.

Every combination's config is validated (and its model built without data) before the first
process starts: a typo in a grid key fails at once, not after an hour of the members before it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

from npdl.cli.app import command, console, fail, stage, warn
from npdl.cli.arguments import regular_file
from npdl.cli.columns import duration
from npdl.cli.train import ROOT_HELP, RUNS_HELP, SET_HELP, SET_METAVAR

POLL_S = 0.2


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _validate(config: Path, sets: list[str], members, data_root) -> None:
    """Load and build every grid point's config (one seed each: a seed never makes a config
    invalid); the first problem is an error naming the combination and the key."""
    from npdl import config as cfgmod
    from npdl import experiment
    from npdl.data import download

    seen = set()
    for m in members:
        point = tuple((k, v) for k, v in m.point.items() if k != "seed")
        if point in seen:
            continue
        seen.add(point)
        where = ", ".join(f"{k}={v}" for k, v in point) or "the base config"
        try:
            cfg = cfgmod.load(config, sets + m.sets)
            for key in m.point:
                cfg.locations[key] = "--seeds" if key == "seed" else "--grid"
            with stage(f"building the model of the sweep member {where}"):
                exp = experiment.build(cfg, data_root, prepare=False)
            if exp.data.source is not None:
                download.require(exp.data.source, data_root)
        except cfgmod.ConfigError as exc:
            raise fail(f"sweep member {where}: {exc}\nnothing was started") from None


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _command(sweep, member, state: str, run, data_root) -> list[str]:
    cmd = [sys.executable, "-m", "npdl"]
    if state == "resume":
        cmd += ["resume", str(run.path)]
    else:
        cmd += ["train", str(sweep.base_config), "--name", member.name, "--runs-dir", str(sweep.path)]
        for s in member.sets:
            cmd += ["--set", s]
    if data_root is not None:
        cmd += ["--data-root", str(data_root)]
    return cmd


def _outcome(sweep, member) -> str:
    """'completed, val.accuracy 0.9734, 12.3s' from the member's newest run folder."""
    from npdl.cli.run_table import run_info
    from npdl.runs import RunError

    run = sweep.run_of(member.name)
    if run is None:
        return "no run folder"
    try:
        info = run_info(run)
    except RunError as exc:
        return f"{run.status()[0]} ({exc})"
    parts = [info.status]
    best = next((m for m in ("val.accuracy", "val.loss") if m in info.metrics), None)
    if best:
        parts.append(f"{best} {info.value(best):.4f}")
    if info.wall is not None:
        parts.append(duration(info.wall))
    return ", ".join(parts)


def _run_all(sweep, todo: list, jobs: int, data_root, total: int) -> tuple[list, bool]:
    """Start the members of ``todo`` (member, state, run), ``jobs`` at a time. Returns the members
    that failed, each with its exit status, and whether the sweep was interrupted."""
    threads = max(1, cores() // jobs)
    env = _env(threads)
    active: dict = {}   # Popen -> (member, log file)
    failed, queue, done = [], list(todo), total - len(todo)
    interrupted, received = False, [signal.SIGINT]

    def stop(signum, frame):  # Ctrl-C, or a scheduler's SIGTERM: passed on to every member below
        received[0] = signum
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while queue or active:
            while queue and len(active) < jobs and not interrupted:
                member, state, run = queue.pop(0)
                log = open(sweep.log_path(member.name), "a", encoding="utf-8")  # noqa: SIM115 - closed below
                # a session of its own: the terminal's Ctrl-C reaches the members once, from here (a
                # second SIGINT would make them abort without their checkpoint)
                proc = subprocess.Popen(_command(sweep, member, state, run, data_root), stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                active[proc] = (member, log)
                console.print(f"{'resumed' if state == 'resume' else 'started'} {member.name}", soft_wrap=True)
            for proc in [p for p in active if p.poll() is not None]:
                member, log = active.pop(proc)
                log.close()
                done += 1
                outcome = _outcome(sweep, member)
                console.print(f"[{done}/{total}] {member.name}: {outcome}", soft_wrap=True)
                if proc.returncode != 0 and not outcome.startswith(("completed", "stopped_nan")):
                    failed.append((member, proc.returncode))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        interrupted = True
        # each member finishes its step, writes its checkpoint and marks itself interrupted
        for proc in active:
            if proc.poll() is None:
                proc.send_signal(received[0])
        try:
            for proc in active:
                proc.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: stop now
            for proc in active:
                proc.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc, (_, log) in active.items():
            proc.wait()
            log.close()
    return failed, interrupted


@command(short_help="Train a config over a grid of values and seeds; resumable.")
def sweep(config: Path = typer.Argument(None, help="YAML experiment config."),
          grid: list[str] = typer.Option(None, "--grid", metavar="KEY=V1,V2",
                                         help="Values of one config key, e.g. optimizer.lr=1e-3,3e-4. Repeatable."),
          seeds: str = typer.Option(None, "--seeds", metavar="S1,S2", help="Train every grid point with each seed."),
          jobs: int = typer.Option(1, "--jobs", "-j", help="How many runs train at once (BLAS threads are shared)."),
          name: str = typer.Option(None, "--name", help="Sweep name (default: the config's name + '-sweep')."),
          set_: list[str] = typer.Option(None, "--set", help=SET_HELP, metavar=SET_METAVAR),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_HELP),
          resume: str = typer.Option(None, "--resume", metavar="SWEEP",
                                     help="Continue this sweep folder: skip finished runs, resume interrupted ones."),
          data_root: Path = typer.Option(None, "--data-root", help=ROOT_HELP)):
    """Train every combination of --grid values and --seeds, --jobs at a time, in one sweep folder.
    The same command again (or --resume SWEEP) skips finished runs and resumes interrupted ones."""
    from npdl import config as cfgmod
    from npdl.runs import RunError, check_name
    from npdl.sweeps import Sweep, expand, find_sweep, identity, parse_grid, parse_seeds, resolve_sweep

    if jobs < 1:
        raise fail(f"--jobs: expected at least 1, got {jobs}")
    if resume:
        if config is not None or grid or seeds or name or set_:
            raise fail("--resume continues a sweep exactly as it was started: give no CONFIG, --grid, --seeds, "
                       "--set or --name")
        sw = resolve_sweep(resume, runs_dir)
        if sw is None:
            raise fail(f"--resume {resume}: no sweep folder of that name under {runs_dir}")
        members = sw.members()
    else:
        if config is None:
            raise fail("give a CONFIG and at least one --grid KEY=V1,V2 or --seeds (or --resume SWEEP)")
        grid_, seeds_ = parse_grid(grid or []), parse_seeds(seeds)
        members = expand(grid_, seeds_)
        regular_file(config, "config")
        sets = list(set_ or [])
        base = cfgmod.load(config, sets)
        base_yaml, name = base.to_yaml(), name or f"{base.data['name']}-sweep"
        check_name(name, runs_dir)
        _validate(config, sets, members, data_root)
        ident = identity(base_yaml, grid_, seeds_)
        sw = find_sweep(runs_dir, name, ident)
        if sw is None:
            sw = Sweep.create(runs_dir, name, {"version": 1, "identity": ident, "config": str(config), "sets": sets,
                                               "grid": grid_, "seeds": seeds_,
                                               "members": [{"name": m.name, "set": m.sets} for m in members]},
                              base_yaml)
    try:
        lock = sw_lock(sw)
    except RunError as exc:
        raise fail(str(exc).replace(f"run {sw.name}", f"sweep {sw.name}")) from None
    with lock:
        plan = [(m, *sw.state(m.name)) for m in members]
        todo = [(m, st, run) for m, st, run in plan if st in ("pending", "resume", "restart")]
        running = [m.name for m, st, _ in plan if st == "running"]
        finished = len(plan) - len(todo) - len(running)
        jobs = min(jobs, max(len(todo), 1))
        what = (f"{sum(st == 'resume' for _, st, _ in todo)} to resume, {sum(st != 'resume' for _, st, _ in todo)} "
                f"to start; {jobs} at a time, {max(1, cores() // jobs)} BLAS thread(s) each" if todo else "nothing to do")
        console.print(f"sweep {sw.name}: {len(members)} runs; {finished} finished, {what}", soft_wrap=True)
        for n in running:
            warn(f"{n} is being trained by another process: left alone")
        failed, interrupted = _run_all(sw, todo, jobs, data_root, len(members))
        _record_runs(sw)
    if interrupted:
        warn(f"sweep interrupted; continue it with the same command or: npdl sweep --resume {sw.path}")
        raise typer.Exit(130)
    from npdl.cli.sweep_table import show_groups

    if any(sw.run_of(m.name) is not None for m in members):
        show_groups([sw], False, _headline(sw), None, "table")
    console.print(f"sweep folder: {sw.path}", soft_wrap=True)
    if failed:
        logs = ", ".join(str(sw.log_path(m.name)) for m, _ in failed[:5])
        names = ", ".join(m.name for m, _ in failed[:10])
        if all(code == 2 for _, code in failed):   # each run stopped on a user error (a missing dataset, ...)
            raise fail(f"{len(failed)} of {len(members)} runs stopped on an error in what they were given: {names} "
                       f"(their output: {logs}); fix it and rerun the same command to retry them")
        raise fail(f"{len(failed)} of {len(members)} runs failed: {names} "
                   f"(their output: {logs}); rerun the same command to retry them", code=1)


def _headline(sw) -> list[str] | None:
    """The metric that picks the best checkpoint and its test counterpart (val.accuracy, test.accuracy):
    what a sweep's closing table shows; ``npdl compare SWEEP`` shows every metric."""
    from npdl.cli.run_table import run_info
    from npdl.runs import RunError

    for run in sw.runs():
        try:
            info, best = run_info(run), run.summary().get("best")
        except RunError:
            continue
        metric = best.get("metric") if isinstance(best, dict) else None
        if isinstance(metric, str) and metric in info.metrics:
            test = "test." + metric.split(".", 1)[-1]
            return [metric] + ([test] if test in info.metrics else [])
    return None


def sw_lock(sw):
    """One process drives a sweep at a time (the runs lock themselves too)."""
    from npdl import run_lock
    from npdl.runs import RunError

    try:
        return run_lock.RunLock(sw.path).acquire()
    except run_lock.LockedError as exc:
        raise RunError(str(exc)) from None


def _record_runs(sw) -> None:
    """Write each member's run folder into sweep.json (the folders stay the truth; this is for readers)."""
    spec = sw.spec()
    for entry in spec["members"]:
        run = sw.run_of(entry["name"])
        entry["run"] = run.name if run is not None else None
    try:
        sw.write(spec)
    except OSError as exc:
        warn(f"could not update {sw.path / 'sweep.json'}: {exc.strerror}")
