"""Run folders attacked: names, locks, statuses, metrics.jsonl, disk full, umask.

Every case must end with exit 0 or 2 and one clear message (never ``internal error``), lose no
valid event, and write nothing outside the run folder. Checkpoint files are attacked in
tests/test_checkpoint_hostile.py.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from typer.testing import CliRunner

from npdl import run_events
from npdl.cli.main import app
from npdl.runs import Run, resolve
from npdl.train import checkpoint
from tests.conftest import env_without_data, tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(res, *fragments):
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output, res.output
    flat = " ".join(res.output.split())
    for f in fragments:
        assert f in flat, (f, res.output)


def events_of(run: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "throughput"} for e in run_events.read(run / "metrics.jsonl")]


def set_manifest(run: Path, **fields) -> None:
    m = json.loads((run / "manifest.json").read_text())
    m.update(fields)
    (run / "manifest.json").write_text(json.dumps(m))


@pytest.fixture
def trained(workdir) -> Path:
    """A completed tiny run (20 steps; checkpoints at 10 and 20; cosine schedule ending at lr 0)."""
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train.checkpoint_every": 10, "train.keep_last": 5,
                                                          "train.log_every": 2}, schedule={"type": "cosine"}))
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    return next((workdir / "runs").iterdir())


def rewind_to_step_10(run: Path) -> None:
    """The folder a run killed between its checkpoints at steps 10 and 20 would leave."""
    shutil.copy(run / "checkpoints" / "step-00000010.npz", run / "checkpoints" / "last.npz")
    set_manifest(run, status="interrupted")


# ---- names and paths -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "", ".", "..", "a\x00b", "x" * 201, "é" * 120, "a\nb", "-x",
                                  "--help"])
def test_run_names_cannot_leave_runs_dir(workdir, name):
    cfg = write_config(workdir / "t.yaml", tiny_config())
    before = sorted(p.name for p in workdir.iterdir())
    res = invoke("train", cfg, "--runs-dir", workdir / "runs", "--name", name)
    assert_user_error(res, "a run name becomes one folder under --runs-dir")
    assert sorted(p.name for p in workdir.iterdir()) == before  # no runs/ and nothing beside it
    (workdir / "n.yaml").write_text(yaml_dump(tiny_config(name=name)))
    assert_user_error(invoke("train", workdir / "n.yaml", "--runs-dir", workdir / "runs"), "run name")
    assert sorted(p.name for p in workdir.iterdir()) == sorted(before + ["n.yaml"])


def yaml_dump(cfg) -> str:
    return json.dumps(cfg)  # JSON is YAML, and keeps NUL and newlines escaped


def test_exact_name_wins_over_prefix_and_ambiguity_lists_candidates(workdir):
    runs = workdir / "runs"
    for name in ("a", "a-2", "b-1", "b-2"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.yaml").write_text("name: x\n")
    assert resolve("a", runs).name == "a"
    assert resolve("a-", runs).name == "a-2"
    assert_user_error(invoke("compare", "b", "--runs-dir", runs), "'b' matches 2 runs: b-1, b-2")
    assert_user_error(invoke("compare", "x" * 5000, "--runs-dir", runs), "run not found")
    assert_user_error(invoke("resume", "a\x00", "--runs-dir", runs), "run not found")


def test_files_follow_the_umask(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train.epochs": 1}))
    code = f"import os, runpy, sys; os.umask(0o002); sys.argv = {['npdl', 'train', str(cfg), '--runs-dir', str(workdir / 'runs')]!r}; runpy.run_module('npdl', run_name='__main__')"
    res = subprocess.run([sys.executable, "-c", code], env=env_without_data(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    run = next((workdir / "runs").iterdir())
    for p in [run / "config.yaml", run / "manifest.json", run / "metrics.jsonl", run / "summary.json",
              run / "checkpoints" / "last.npz"]:
        assert p.stat().st_mode & 0o777 == 0o664, p
    assert run.stat().st_mode & 0o777 == 0o775


# ---- one writer ------------------------------------------------------------------------------


def test_second_writer_is_refused_and_a_stale_lock_is_taken_over(trained):
    rewind_to_step_10(trained)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": sleeper.pid, "host": socket.gethostname(), "since": "now"}
        (trained / "lock").write_text(json.dumps(lock))
        metrics = (trained / "metrics.jsonl").read_bytes()
        for args in (("resume", trained), ("train", "--resume", trained)):
            assert_user_error(invoke(*args), f"in use by process {sleeper.pid} on host {socket.gethostname()}")
        assert (trained / "metrics.jsonl").read_bytes() == metrics          # nothing touched
        assert json.loads((trained / "manifest.json").read_text())["status"] == "interrupted"
    finally:
        sleeper.kill()
        sleeper.wait()
    res = invoke("resume", trained)  # the holder is gone: its lock is stale
    assert res.exit_code == 0, res.output
    assert not (trained / "lock").exists()


def test_lock_on_another_host_is_not_taken(trained):
    rewind_to_step_10(trained)
    (trained / "lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    assert_user_error(invoke("resume", trained), "process 1 on host elsewhere.example", "delete")


# ---- statuses --------------------------------------------------------------------------------


def test_failed_resume_keeps_the_status_it_found(trained):
    rewind_to_step_10(trained)
    (trained / "checkpoints" / "last.npz").write_text("not a checkpoint")
    assert_user_error(invoke("resume", trained), "not an npdl checkpoint (not a zip/npz file)")
    assert json.loads((trained / "manifest.json").read_text())["status"] == "interrupted"
    assert not (trained / "lock").exists()


def test_killed_run_shows_dead_and_resumes(trained):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    rewind_to_step_10(trained)
    set_manifest(trained, status="running", pid=gone.pid, host=socket.gethostname())
    res = invoke("runs", trained.parent)
    assert res.exit_code == 0 and "dead" in res.output and f"process {gone.pid} is gone" in res.output
    assert invoke("resume", trained).exit_code == 0
    assert json.loads((trained / "manifest.json").read_text())["status"] == "completed"


def test_run_killed_after_its_last_step_resumes(trained):
    """The cosine schedule ends at lr 0: the optimizer state in 'last' must still load."""
    assert checkpoint.load(trained / "checkpoints" / "last.npz")["optim"]["param_groups"][0]["lr"] == 0.0
    set_manifest(trained, status="running", pid=2 ** 22 + 12345)
    before = events_of(trained)
    res = invoke("resume", trained)
    assert res.exit_code == 0, res.output
    assert events_of(trained) == before  # nothing logged twice, nothing lost
    assert json.loads((trained / "manifest.json").read_text())["status"] == "completed"


def test_runs_lists_every_run_even_corrupt_ones(trained):
    runs = trained.parent
    for name, files in {"bad-manifest": {"config.yaml": "name: x\n", "manifest.json": "{not json"},
                        "bad-summary": {"config.yaml": "name: x\n", "manifest.json": '{"status": "completed"}',
                                        "summary.json": '{"best": 5, "steps": "many", "wall_seconds": "x"}'},
                        "list-manifest": {"config.yaml": "name: x\n", "manifest.json": "[1, 2]"},
                        "no-config": {"manifest.json": '{"status": "completed"}'},
                        "no-manifest": {"config.yaml": "name: x\n"},
                        "binary": {"config.yaml": "name: x\n", "manifest.json": "\x00\xff"}}.items():
        (runs / name).mkdir()
        for f, text in files.items():
            (runs / name / f).write_text(text, errors="surrogateescape")
    res = invoke("runs", runs)
    assert res.exit_code == 0, res.output
    for name in ("bad-manifest", "bad-summary", "list-manifest", "no-config", "no-manifest", "binary",
                 trained.name):
        assert name in res.output
    flat = " ".join(res.output.split())
    assert "bad-manifest: corrupt:" in flat and "not valid JSON" in flat
    assert "no-config: corrupt:" in flat and "no config.yaml" in flat


# ---- metrics.jsonl ---------------------------------------------------------------------------


def test_torn_line_hides_nothing_and_resume_keeps_every_valid_event(trained):
    reference = events_of(trained)
    rewind_to_step_10(trained)
    lines = (trained / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    torn = lines[:3] + [b'{"event": "train", "st\n', b"[1, 2]\n", b"\x00\xff\xfe junk\n"] + lines[3:]
    (trained / "metrics.jsonl").write_bytes(b"".join(torn) + b'{"event": "train", "step": 19, "lo')
    res = invoke("compare", trained, "--format", "json")
    assert res.exit_code == 0
    assert "metrics.jsonl:4: line skipped" in " ".join(res.output.split())
    (shown,) = json.loads(res.stdout[res.stdout.index("{"):]).values()
    assert shown["metrics"]["val.accuracy"]["best_step"] == max((e for e in reference if e.get("split") == "val"),
                                                                key=lambda e: e["accuracy"])["step"]
    assert invoke("resume", trained).exit_code == 0
    assert events_of(trained) == reference   # every valid event before and after the torn lines


def test_log_after_a_torn_last_line_starts_a_new_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(b'{"step": 1}\n{"step": 2, "lo')
    run_events.append(p, json.dumps({"step": 3}) + "\n")
    assert [e["step"] for e in run_events.read(p)] == [1, 3]


def test_overlong_line_is_skipped_with_bounded_memory(tmp_path):
    p = tmp_path / "metrics.jsonl"
    with open(p, "wb") as f:
        f.write(b'{"step": 1}\n' + b"x" * (5 * run_events.MAX_LINE) + b'\n{"step": 2}\n')
    skipped = []
    assert [e["step"] for e in run_events.read(p, skipped)] == [1, 2]
    assert skipped == [(2, "longer than 1 MiB")]
    assert run_events.drop_after(p, 1) == 1
    assert p.stat().st_size == len(b'{"step": 1}\n') + 5 * run_events.MAX_LINE + 1  # the junk is kept, byte for byte


_event = st.fixed_dictionaries({"event": st.sampled_from(["train", "eval"]), "step": st.integers(0, 50),
                                "loss": st.floats(allow_nan=False, allow_infinity=False, width=32)})
_junk = st.one_of(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
                  st.sampled_from([b'{"step": 3', b"[]", b"null", b"42", b'"s"', b"[" * 3000, b"\xff\xfe"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_event.map(lambda e: ("ok", e)), _junk.map(lambda b: ("junk", b))), max_size=30),
       st.integers(0, 50))
def test_fuzz_metrics_no_valid_event_lost(tmp_path, lines, step):
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(b"".join((json.dumps(x).encode() if kind == "ok" else x) + b"\n" for kind, x in lines))
    valid = [x for kind, x in lines if kind == "ok"]
    assert list(run_events.read(p, [])) == valid
    run_events.drop_after(p, step)
    assert list(run_events.read(p, [])) == [e for e in valid if e["step"] <= step]


_garbage = st.one_of(st.binary(max_size=60), st.sampled_from([b"{", b"[]", b"null", b'{"status": 5}',
                                                             b'{"status": "running", "pid": -1}',
                                                             b'{"best": {"value": "x"}, "steps": 1e9}',
                                                             b'{"wall_seconds": NaN, "steps": true}']))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["manifest.json", "summary.json", "config.yaml", "metrics.jsonl",
                                           "lock"]), _garbage), min_size=1, max_size=4))
def test_fuzz_run_files_runs_lists_every_run(tmp_path_factory, damage):
    runs = tmp_path_factory.mktemp("runs")
    for i in range(2):
        (runs / f"r{i}").mkdir()
        (runs / f"r{i}" / "config.yaml").write_text("name: r\n")
        (runs / f"r{i}" / "manifest.json").write_text('{"status": "completed"}')
    for f, data in damage:
        (runs / "r1" / f).write_bytes(data)
    res = invoke("runs", runs)
    assert res.exit_code == 0, res.output
    assert "r0" in res.output and "r1" in res.output and "internal error" not in res.output


# ---- disk full -------------------------------------------------------------------------------


def _enospc_on(monkeypatch, module, attr, after: int):
    real = getattr(module, attr)
    calls = {"n": 0}

    def writer(*a, **k):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(module, attr, writer)


def test_disk_full_during_a_checkpoint_names_what_survived(workdir, monkeypatch):
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train.checkpoint_every": 10, "train.epochs": 3}))
    _enospc_on(monkeypatch, checkpoint.np, "savez", after=2)   # step 10 (step-N + last) ... then full
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    run = next((workdir / "runs").iterdir())
    last = run / "checkpoints" / "last.npz"
    assert_user_error(res, "disk full", "No space left on device", "step 10", str(last), f"npdl resume {run}")
    assert checkpoint.load(last)["meta"]["step"] == 10                   # the previous checkpoint is intact
    assert not [p for p in run.rglob(".tmp-*")]
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"


def test_disk_full_in_metrics_before_any_checkpoint(workdir, monkeypatch):
    cfg = write_config(workdir / "t.yaml", tiny_config())
    import npdl.runs

    def full(path, line):
        raise OSError(errno.EDQUOT, "Disk quota exceeded", str(path))

    monkeypatch.setattr(npdl.runs.run_events, "append", full)
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert_user_error(res, "disk full", "metrics.jsonl", "no checkpoint was written yet")


def test_nan_before_the_first_checkpoint_does_not_claim_one(workdir):
    cfg = write_config(workdir / "nan.yaml", tiny_config(**{"optimizer.lr": 1e30, "optimizer.type": "sgd"}))
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert "non-finite value at step" in res.output and "internal error" not in res.output
    assert "no checkpoint was written yet" in " ".join(res.output.split())
    assert "is kept" not in res.output


# ---- SIGTERM and SIGHUP act as Ctrl-C (real processes) ------------------------------------------


def test_sigterm_and_sighup_checkpoint_then_resume_is_bit_exact(workdir):
    import signal

    from tests.test_cli import final_weights, npdl_cmd, only_run, only_run_eventually, slow_config, wait_for

    cfg = slow_config(workdir, **{"train.epochs": 2})
    env = env_without_data()
    subprocess.run(npdl_cmd("train", cfg, "--runs-dir", workdir / "ref"), env=env, check=True, capture_output=True)
    ref = final_weights(only_run(workdir / "ref"))
    for sig in (signal.SIGTERM, signal.SIGHUP):
        runs = workdir / sig.name
        proc = subprocess.Popen(npdl_cmd("train", cfg, "--runs-dir", runs), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(runs, proc)
        run = only_run_eventually(runs, proc)
        wait_for(run / "checkpoints" / "step-00000020.npz", proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, (out, err)
        assert "npdl resume" in err and "Traceback" not in err
        assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
        assert not (run / "lock").exists()
        res = subprocess.run(npdl_cmd("resume", run), env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        got = final_weights(run)
        for k in ref:
            np.testing.assert_array_equal(ref[k], got[k])


def test_fifo_in_place_of_metrics_never_blocks(trained):
    """A FIFO as metrics.jsonl (nobody writing to it) is refused at once, exit 2, naming the file:
    readers and the appender open it without blocking (a real process, so a hang fails the test)."""
    (trained / "metrics.jsonl").unlink()
    os.mkfifo(trained / "metrics.jsonl")
    for command in (["compare", trained], ["plot", trained], ["health", trained], ["eval", trained]):
        res = subprocess.run([sys.executable, "-m", "npdl", *map(str, command)], capture_output=True, text=True,
                             timeout=60, env=env_without_data(), stdin=subprocess.DEVNULL)
        out = res.stdout + res.stderr
        assert res.returncode == 2, (command, out)
        assert "metrics.jsonl" in out and "not a regular file" in out and "Traceback" not in out, out


@pytest.mark.parametrize("name", ["summary.json", "manifest.json"])
def test_fifo_in_place_of_a_json_file_never_blocks(trained, name):
    """A FIFO as summary.json or manifest.json: `npdl runs` flags the run, compare still answers
    (real processes with a timeout: a blocking open would hang them)."""
    (trained / name).unlink()
    os.mkfifo(trained / name)
    for command in (["runs", trained.parent], ["compare", trained]):
        res = subprocess.run([sys.executable, "-m", "npdl", *map(str, command)], capture_output=True, text=True,
                             timeout=60, env=env_without_data(), stdin=subprocess.DEVNULL)
        out = res.stdout + res.stderr
        assert res.returncode == 0 and "Traceback" not in out and "internal error" not in out, out
        assert "tiny" in out, out   # the run (config name tiny) is still listed / compared


_value = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | st.lists(st.integers(), max_size=2)


@pytest.fixture(scope="module")
def health_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("health")
    cfg = write_config(tmp / "h.yaml", tiny_config(**{"train.epochs": 1, "train.health_every": 2}))
    assert invoke("train", cfg, "--runs-dir", tmp / "runs").exit_code == 0
    return next((tmp / "runs").iterdir())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["step", "lr", "grad_norm/layers.1.weight", "weight_norm/layers.1.weight",
                                               "update_ratio/layers.1.weight", "act/layers.1", "dead/layers.1",
                                               "grad_norm/[/]", "x"]), _value, max_size=6))
@example(fields={"step": "x", "grad_norm/layers.1.weight": "z", "weight_norm/layers.1.weight": [1]})
def test_fuzz_damaged_health_records_exit_0_or_2(health_run, fields):
    """`npdl health` on hand-edited health events (text, lists, NaN where numbers belong): a report
    or one message, never an internal error."""
    original = (health_run / "metrics.jsonl").read_bytes()
    try:
        run_events.append(health_run / "metrics.jsonl", json.dumps({"event": "health", **fields}) + "\n")
        res = invoke("health", health_run)
        assert res.exit_code in (0, 2), res.output
        assert "internal error" not in res.output
    finally:
        (health_run / "metrics.jsonl").write_bytes(original)
