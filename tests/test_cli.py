"""The CLI end to end: Typer's CliRunner for most, real ``npdl`` subprocesses for signals."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.train import checkpoint
from tests.conftest import ROOT, env_without_data, tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def only_run(runs_dir: Path) -> Path:
    runs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def strip_timing(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("throughput", "time")} for e in events]


def test_train_writes_every_run_file(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config(**{"train.checkpoint_every": 10, "train.keep_last": 2}))
    res = invoke("train", cfg, "--runs-dir", workdir / "runs", "--set", "train.epochs=3")
    assert res.exit_code == 0, res.output
    run = only_run(workdir / "runs")
    assert run.name.startswith("tiny-")
    assert "epochs: 3" in (run / "config.yaml").read_text()            # overrides applied
    manifest = json.loads((run / "manifest.json").read_text())
    for key in ("command", "npdl_version", "numpy_version", "blas", "seed", "datasets", "started", "ended", "status"):
        assert key in manifest, key
    assert manifest["status"] == "completed" and manifest["blas"]["threads"] >= 1
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events} == {"train", "eval"}
    train_events = [e for e in events if e["event"] == "train"]
    assert all({"step", "epoch", "loss", "lr", "throughput"} <= set(e) for e in train_events)
    assert any(e.get("split") == "test" for e in events)
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.npz" in ckpts and "best.npz" in ckpts
    assert len([c for c in ckpts if c.startswith("step-")]) == 2    # keep_last
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 * 10 and summary["test"]["accuracy"] > 0.5
    state = checkpoint.load(run / "checkpoints" / "last.npz")
    assert {"model", "optim", "sched", "task", "meta"} <= set(state)
    assert state["meta"]["step"] == 30 and "rng" in state["meta"]


def test_same_config_and_seed_give_identical_metrics(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config(**{"model.dropout": 0.2}))
    for _ in range(2):
        assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    a, b = sorted((workdir / "runs").iterdir())
    load = lambda r: strip_timing([json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()])  # noqa: E731
    assert load(a) == load(b)


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_check_every_shipped_config(config, workdir):
    res = invoke("check", config)
    assert res.exit_code == 0, res.output
    assert "ok" in res.output and "parameters" in res.output


def test_runs_compare_plot_list_datasets(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    invoke("train", cfg, "--runs-dir", workdir / "runs")
    invoke("train", cfg, "--runs-dir", workdir / "runs", "--set", "optimizer.lr=0.05", "--name", "fast")
    res = invoke("runs", workdir / "runs")
    assert res.exit_code == 0 and "tiny-" in res.output and "fast-" in res.output and "completed" in res.output
    names = [p.name for p in sorted((workdir / "runs").iterdir())]
    res = invoke("compare", *[workdir / "runs" / n for n in names], "--only-changed", "--format", "csv")
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split(",")
    assert header[:4] == ["run", "status", "steps", "wall_seconds"] and "optimizer.lr" in header
    assert "seed" not in header and "val.loss" in header      # constant columns (seed) pruned
    res = invoke("compare", *[workdir / "runs" / n for n in names], "--sort", "val.loss", "--format", "json")
    assert sorted(json.loads(res.output)) == sorted(names) and res.exit_code == 0
    res = invoke("plot", workdir / "runs" / names[0], "--metric", "val.accuracy")
    assert res.exit_code == 0 and "val.accuracy" in res.output and "  a  " in res.output
    assert invoke("list", "layers").exit_code == 0
    res = invoke("list", "optimizers")
    assert "adamw" in res.output
    assert "mnist" in invoke("datasets").output


def test_eval_writes_into_the_run(workdir):
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    invoke("train", cfg, "--runs-dir", workdir / "runs")
    run = only_run(workdir / "runs")
    res = invoke("eval", run, "--split", "val", "--checkpoint", "last")
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and (run / "eval-val-last.json").is_file()


# ---- bad input: message, exit code 2, nothing lost ------------------------------------------


def assert_usage_error(res, *fragments):
    assert res.exit_code == 2, res.output
    for f in fragments:
        assert f in res.output, (f, res.output)
    assert "Traceback" not in res.output


def test_typo_in_key_and_unknown_type_reported_with_lines(workdir):
    text = "name: t\nseed: 0\ndata: {type: spirals}\nmodel:\n  type: mpl\n  hiden: [4]\noptimzer: {type: adam}\ntrain: {epochs: 1}\n"
    cfg = workdir / "bad.yaml"
    cfg.write_text(text)
    (workdir / "runs").mkdir()
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert_usage_error(res, f"{cfg}:5: model.type: unknown model 'mpl' — did you mean 'mlp'?",
                       f"{cfg}:7: optimzer: unknown section — did you mean 'optimizer'?")
    assert list((workdir / "runs").iterdir()) == []           # no run folder for a bad config


def test_wrong_value_type(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config())
    res = invoke("train", cfg, "--set", "train.epochs=5x")
    assert_usage_error(res, "train.epochs: expected a positive integer, got '5x'")
    res = invoke("check", cfg, "--set", "model.dropout=1.5", "--set", "optimizer.lr=-1")
    assert_usage_error(res, "model.dropout: expected a number in range >= 0 and < 1, got 1.5",
                       "optimizer.lr: expected a positive number, got -1")


def test_missing_dataset_names_the_download_command(workdir):
    cfg = write_config(workdir / "m.yaml", tiny_config(**{"data": {"type": "mnist"}}))
    res = invoke("train", cfg)
    assert_usage_error(res, "dataset 'mnist' is not in", "run: npdl download mnist")


def test_corrupt_download_keeps_good_copy(workdir, mirror):
    good = workdir / "datasets"
    assert invoke("download", "analogy", "--mirror", mirror, "--data-root", good).exit_code == 0
    target = good / "analogy" / "questions-words.txt"
    before = target.read_bytes()
    bad_mirror = workdir / "bad_mirror"
    bad_mirror.mkdir()
    (bad_mirror / "questions-words.txt").write_bytes(before[:1000] + b"corrupted")
    res = invoke("download", "analogy", "--mirror", bad_mirror, "--data-root", good, "--force")
    assert res.exit_code == 2, res.output
    assert "checksum" in res.output.lower() or "sha256" in res.output.lower()
    assert target.read_bytes() == before
    assert not list((good / "analogy").glob("*.part"))


def test_unknown_dataset_name(workdir):
    assert_usage_error(invoke("download", "mnsit"), "mnist")


def test_mismatched_checkpoint_lists_keys_and_changes_nothing(workdir):
    a = write_config(workdir / "a.yaml", tiny_config())
    b = write_config(workdir / "b.yaml", tiny_config(**{"model.hidden": [8, 8], "name": "other"}))
    invoke("train", a, "--runs-dir", workdir / "runs")
    invoke("train", b, "--runs-dir", workdir / "runs")
    run_a = next(p for p in (workdir / "runs").iterdir() if p.name.startswith("tiny"))
    run_b = next(p for p in (workdir / "runs").iterdir() if p.name.startswith("other"))
    before = {p.name: p.read_bytes() for p in (run_a / "checkpoints").iterdir()}
    res = invoke("eval", run_a, "--checkpoint", run_b / "checkpoints" / "last.npz")
    assert_usage_error(res, "state dict does not match the model", "shape mismatch for layers.1.weight",
                       "unexpected keys (2): layers.5.weight, layers.5.bias")
    assert {p.name: p.read_bytes() for p in (run_a / "checkpoints").iterdir()} == before


def test_truncated_checkpoint_is_a_clear_error(workdir):
    cfg = write_config(workdir / "a.yaml", tiny_config())
    invoke("train", cfg, "--runs-dir", workdir / "runs")
    run = only_run(workdir / "runs")
    bad = workdir / "broken.npz"
    bad.write_bytes((run / "checkpoints" / "last.npz").read_bytes()[:200])
    assert_usage_error(invoke("eval", run, "--checkpoint", bad), "not a readable npdl checkpoint")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(workdir):
    cfg = write_config(workdir / "nan.yaml", tiny_config(**{"optimizer.lr": 1e30, "train.checkpoint_every": 1,
                                                            "optimizer.type": "sgd"}))
    res = invoke("train", cfg, "--runs-dir", workdir / "runs")
    assert res.exit_code == 1, res.output
    assert "non-finite value at step" in res.output and "first non-finite" in res.output
    run = only_run(workdir / "runs")
    assert json.loads((run / "manifest.json").read_text())["status"] == "stopped_nan"
    state = checkpoint.load(run / "checkpoints" / "last.npz")
    assert all(np.isfinite(v).all() for v in state["model"].values())


# ---- real processes: SIGKILL / Ctrl-C and resume --------------------------------------------


def slow_config(tmp: Path, **over) -> Path:
    cfg = tiny_config(**{"data.n_per_class": 4000, "data.batch_size": 256, "model.hidden": [256, 256],
                         "model.dropout": 0.1, "train.epochs": 6, "train.checkpoint_every": 20,
                         "train.log_every": 10, **over})
    return write_config(tmp / "slow.yaml", cfg)


def npdl_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "npdl", *[str(a) for a in args]]


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, f"timed out waiting for {path}"
        time.sleep(0.02)


def final_weights(run: Path) -> dict:
    return checkpoint.load(run / "checkpoints" / "last.npz")["model"]


def test_sigkill_then_resume_equals_uninterrupted_run(workdir):
    cfg = slow_config(workdir)
    env = env_without_data()
    subprocess.run(npdl_cmd("train", cfg, "--runs-dir", workdir / "ref", "--name", "ref"), env=env, check=True,
                   capture_output=True)
    proc = subprocess.Popen(npdl_cmd("train", cfg, "--runs-dir", workdir / "killed", "--name", "k"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(workdir / "killed", proc)
    run = only_run_eventually(workdir / "killed", proc)
    wait_for(run / "checkpoints" / "step-00000040.npz", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = subprocess.run(npdl_cmd("resume", run), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ref = final_weights(only_run(workdir / "ref"))
    got = final_weights(run)
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_array_equal(ref[k], got[k])
    ref_events = strip_timing([json.loads(x) for x in (only_run(workdir / "ref") / "metrics.jsonl").read_text().splitlines()])
    got_events = strip_timing([json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()])
    assert got_events == ref_events


def only_run_eventually(runs_dir: Path, proc) -> Path:
    end = time.time() + 60
    while True:
        runs = [p for p in runs_dir.iterdir() if p.is_dir()]
        if runs:
            return runs[0]
        assert proc.poll() is None and time.time() < end
        time.sleep(0.02)


def test_ctrl_c_writes_checkpoint_and_resume_completes(workdir):
    cfg = slow_config(workdir)
    env = env_without_data()
    proc = subprocess.Popen(npdl_cmd("train", cfg, "--runs-dir", workdir / "runs"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(workdir / "runs", proc)
    run = only_run_eventually(workdir / "runs", proc)
    wait_for(run / "checkpoints" / "step-00000020.npz", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "npdl resume" in err and "Traceback" not in err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    step = checkpoint.load(run / "checkpoints" / "last.npz")["meta"]["step"]
    assert step >= 20
    res = subprocess.run(npdl_cmd("resume", run), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    res = subprocess.run(npdl_cmd("resume", run), env=env, capture_output=True, text=True)
    assert res.returncode == 2 and "already completed" in res.stderr


def test_console_script_runs_quickstart(workdir):
    """The installed `npdl` entry point trains the README's quickstart config."""
    exe = Path(sys.executable).with_name("npdl")
    cmd = [str(exe)] if exe.exists() else npdl_cmd()
    res = subprocess.run(cmd + ["train", str(ROOT / "configs" / "quickstart.yaml"), "--runs-dir", str(workdir / "runs")],
                         capture_output=True, text=True, env=env_without_data(), timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads((only_run(workdir / "runs") / "summary.json").read_text())
    assert summary["test"]["accuracy"] > 0.9


def test_max_steps_mid_epoch_still_writes_last_checkpoint(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train": {"max_steps": 7}}))
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    run = only_run(workdir / "runs")
    assert checkpoint.load(run / "checkpoints" / "last.npz")["meta"]["step"] == 7
    assert invoke("eval", run, "--checkpoint", "last").exit_code == 0


def test_max_steps_mid_epoch_evaluates_the_final_weights(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train": {"epochs": 5, "max_steps": 13}}))
    invoke("train", cfg, "--runs-dir", workdir / "runs")
    events = [json.loads(x) for x in (only_run(workdir / "runs") / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("split") == "val"] == [10, 13]


def test_monitor_typo_layer_mismatch_and_bad_checkpoint_name_are_usage_errors(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config())
    assert_usage_error(invoke("train", cfg, "--runs-dir", workdir / "runs", "--set", "train.monitor=val.acuracy"),
                       "did you mean 'val.accuracy'?")
    assert not (workdir / "runs").exists()  # caught by validation, before a run folder exists
    assert invoke("train", cfg, "--runs-dir", workdir / "runs").exit_code == 0
    conv = write_config(workdir / "c.yaml", tiny_config(model={"type": "sequential", "layers": [
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3}]}))
    assert_usage_error(invoke("check", conv), "model: does not fit the data: conv2d expects (N, C, H, W)")
    run = next((workdir / "runs").iterdir())
    assert_usage_error(invoke("eval", run, "--checkpoint", "step-x"), "expected best, last, step-N")
    assert_usage_error(invoke("train", "--resume", run, "--set", "train.epochs=3"), "give no CONFIG, --set or --name")
