"""The Python API (npdl.fit, npdl.Run): the CLI's path without the printing."""
from __future__ import annotations

import json

import pytest
import yaml

import npdl
from npdl.config import ConfigError
from tests.conftest import tiny_config, write_config


def test_train_from_a_dict_evaluate_and_metrics(workdir):
    run = npdl.fit(tiny_config(), **{"train.epochs": 1}, runs_dir="runs")
    assert isinstance(run, npdl.Run) and run.path.parent.name == "runs" and run.name.startswith("tiny-")
    assert run.summary["steps"] > 0 and run.summary["test"]["accuracy"] >= 0
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "summary.json", "checkpoints/best.npz"):
        assert (run.path / name).is_file(), name      # the same run folder as npdl train
    assert run.config["train"]["epochs"] == 1 and run.config["optimizer"]["eps"] == 1e-8   # resolved
    metrics = run.evaluate("test")
    assert metrics == pytest.approx(run.summary["test"])   # the best checkpoint, as the trainer tested it
    assert (run.path / "eval-test-best.json").is_file()
    assert [e["split"] for e in run.metrics("eval")][-1] == "test"
    assert any(e["event"] == "eval_cli" for e in run.metrics())
    assert npdl.Run(run.path).summary == run.summary      # any run folder opens


def test_train_from_a_file_with_overrides_matches_the_cli(workdir):
    from typer.testing import CliRunner
    from npdl.cli.main import app

    path = write_config(workdir / "t.yaml", tiny_config())
    a = npdl.fit(path, overrides={"optimizer.lr": 0.05}, runs_dir="api")
    b = npdl.fit(str(path), overrides=["optimizer.lr=0.05"], runs_dir="api2")
    res = CliRunner().invoke(app, ["train", str(path), "--set", "optimizer.lr=0.05", "--runs-dir", "cli"])
    assert res.exit_code == 0, res.output
    cli = next((workdir / "cli").iterdir())

    def evals(p):
        return [(e["step"], e["loss"]) for e in map(json.loads, (p / "metrics.jsonl").read_text().splitlines())
                if e["event"] == "eval"]
    assert evals(a.path) == evals(b.path) == evals(cli)  # same seed, same numbers
    assert yaml.safe_load((a.path / "config.yaml").read_text()) == yaml.safe_load((cli / "config.yaml").read_text())


def test_callbacks_functions_and_objects_receive_events(workdir):
    events = []

    class Hooks:
        def __init__(self):
            self.evals = []

        def on_eval(self, trainer, split, metrics):
            self.evals.append((split, metrics["accuracy"]))

    hooks = Hooks()
    npdl.fit(tiny_config(), callbacks=[events.append, hooks], runs_dir="runs")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "train_start" and kinds[-1] == "train_end" and "step" in kinds
    assert [e["split"] for e in events if e["event"] == "eval"] == ["val", "val", "test"]
    step = next(e for e in events if e["event"] == "step")
    assert step["step"] == 1 and step["loss"] > 0 and step["items"] == 32
    assert [s for s, _ in hooks.evals] == ["val", "val", "test"]
    with pytest.raises(TypeError, match="callbacks"):
        npdl.fit(tiny_config(), callbacks=[42], runs_dir="runs")


def test_a_bad_config_raises_config_error_with_every_problem(workdir):
    cfg = tiny_config(**{"model.type": "mlpp", "optimizer.lr": -1})
    with pytest.raises(ConfigError) as err:
        npdl.fit(cfg, **{"train.epochs": "x"}, runs_dir="runs")
    text = str(err.value)
    assert len(err.value.problems) == 3
    assert "model.type: unknown model 'mlpp' — did you mean 'mlp'?" in text
    assert "optimizer.lr: expected a positive number" in text and "overrides: train.epochs" in text
    assert not (workdir / "runs").exists()             # nothing written before validation passes
    path = write_config(workdir / "bad.yaml", cfg)
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: model.type"):
        npdl.fit(path, runs_dir="runs")
    with pytest.raises(ConfigError, match="expected a config"):
        npdl.fit(42)


def test_import_npdl_does_not_load_the_api():
    import subprocess
    import sys

    code = "import sys, npdl; assert 'npdl.api' not in sys.modules and 'npdl.train' not in sys.modules; " \
           "assert callable(npdl.fit) and npdl.Run.__name__ == 'Run'; import npdl.train.trainer as t; " \
           "assert callable(npdl.fit) and t.Trainer"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
