"""``train.loggers``: metrics.csv (read back with the csv module) and TensorBoard event files
(read back with TensorBoard's own EventAccumulator; skipped without the extra)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npdl.cli.main import app
from tests.conftest import tiny_config, write_config


def train(workdir, **over) -> tuple[Path, str]:
    cfg = write_config(workdir / "t.yaml", tiny_config(**over))
    res = CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(workdir / "runs")])
    assert res.exit_code == 0, res.output
    return next((workdir / "runs").iterdir()), res.output


def events(run) -> list[dict]:
    from npdl.runs import Run

    return Run(run).metrics()


def test_csv_has_one_row_per_logged_step_and_one_column_per_metric(workdir):
    run, out = train(workdir, **{"train.loggers": ["jsonl", "csv"], "train.health_every": 6, "train.epochs": 2})
    assert f"metrics table: {run / 'metrics.csv'}" in " ".join(out.split())
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:2] == ["step", "epoch"]
    assert {"train.loss", "train.grad_norm", "train.lr", "val.accuracy", "test.accuracy",
            "health.grad_norm/layers.1.weight", "health.dead_relu/layers.2"} <= set(header)
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps))                      # one row per step, in order
    # every value of metrics.jsonl is in its step's row, exactly (floats written in full)
    by_step = {int(r["step"]): r for r in rows}
    logged = events(run)
    assert {e["step"] for e in logged} == set(steps)
    for e in logged:
        kind = e["split"] if e["event"] == "eval" else e["event"]
        row = by_step[e["step"]]
        for k, v in e.items():
            if k in ("event", "split", "step", "epoch"):
                continue
            cell = row[f"{kind}.{k}"]
            assert (cell == "" if v is None else float(cell) == v), (e["step"], k, cell, v)
    # a step with only a health record leaves the train columns empty (not zero)
    assert by_step[6]["train.loss"] == "" and by_step[6]["health.lr"] != ""


def test_csv_header_grows_without_losing_rows(tmp_path):
    from npdl.runs import Run
    from npdl.train.extensions import CsvLogger

    run = Run.create(tmp_path, "r")
    log = CsvLogger(run)
    log.initialize(None)
    for e in [{"event": "train", "step": 1, "epoch": 0, "loss": 2.0},
              {"event": "train", "step": 2, "epoch": 0, "loss": 1.5},
              {"event": "eval", "split": "val", "step": 2, "epoch": 0, "accuracy": 0.5},
              {"event": "train", "step": 3, "epoch": 0, "loss": 1.0, "note": "a,b \"quoted\""},
              {"event": "custom", "step": 3, "epoch": 0, "x": float("nan"), "skip": {"nested": 1}}]:
        run.log(e)
        log.write(None, e)
    log.finalize(None)
    with open(run.path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "epoch", "train.loss", "val.accuracy", "train.note", "custom.x"]
    assert [(r["step"], r["train.loss"], r["val.accuracy"]) for r in rows] == [
        ("1", "2.0", ""), ("2", "1.5", "0.5"), ("3", "1.0", "")]
    assert rows[2]["train.note"] == 'a,b "quoted"' and math.isnan(float(rows[2]["custom.x"]))
    # rebuilt from metrics.jsonl on the next start (what a resumed run does): the same table
    before = (run.path / "metrics.csv").read_text()
    CsvLogger(run).initialize(None)
    assert (run.path / "metrics.csv").read_text() == before


def test_tensorboard_scalars_and_histograms_read_back_by_tensorboard(workdir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, out = train(workdir, **{"train.loggers": ["tensorboard"], "train.health_every": 5, "train.epochs": 2})
    assert f"tensorboard --logdir {run / 'tensorboard'}" in " ".join(out.split())
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/grad_norm", "train/lr", "val/accuracy", "test/accuracy",
            "health/update_ratio/layers.1.weight"} <= set(tags["scalars"])
    logged = [e for e in events(run) if e["event"] == "train"]
    got = acc.Scalars("train/loss")
    assert [s.step for s in got] == [e["step"] for e in logged]
    assert [s.value for s in got] == pytest.approx([e["loss"] for e in logged], rel=1e-6)  # float32 in events
    for kind in ("weights", "gradients"):
        histos = acc.Histograms(f"{kind}/layers.1.weight")
        assert [h.step for h in histos] == [5, 10, 15, 20]
        assert histos[0].histogram_value.num == 2 * 16      # every entry of the (2, 16) weight counted


def test_tensorboard_resumed_run_drops_what_the_interrupted_process_logged_past_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from npdl import config, experiment
    from npdl.runs import Run
    from npdl.train import checkpoint
    from npdl.train.extensions import Extension

    class Crash(Extension):
        def __call__(self, trainer):
            if trainer.step == 13:
                raise SystemExit("killed")

    cfg = config.load(write_config(tmp_path / "t.yaml", tiny_config(**{"train.loggers": ["tensorboard"],
                                                                       "train.log_every": 1})))
    run = Run.create(tmp_path / "runs", "r")
    run.write_config(cfg.to_yaml())
    trainer = experiment.build(cfg).trainer(run)
    trainer.extend(Crash())
    with pytest.raises(SystemExit):
        trainer.fit()
    exp = experiment.build(cfg)
    again = exp.trainer(run)
    again.restore(checkpoint.load(run.checkpoint_path("last"), model=exp.model))
    run.truncate_metrics(again.step, again.logged_after_checkpoint)
    again.fit()
    acc = EventAccumulator(str(run.path / "tensorboard"))
    acc.Reload()
    losses = acc.Scalars("train/loss")
    assert [s.step for s in losses] == list(range(1, 21))     # steps 11-13 once, from the resumed process
    assert [s.value for s in losses] == pytest.approx([e["loss"] for e in run.metrics() if e["event"] == "train"])


def test_tensorboard_without_its_package_is_a_config_error(workdir, monkeypatch):
    from npdl.train.extensions import tensorboard

    monkeypatch.setattr(tensorboard, "available", lambda: False)
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train.loggers": ["csv", "tensorboard"]}))
    for command in ("check", "train"):
        res = CliRunner().invoke(app, [command, str(cfg)])
        assert res.exit_code == 2, res.output
        flat = " ".join(res.output.split())
        assert "train.loggers" in flat and "pip install tensorboard" in flat and 'pip install -e ".[tensorboard]"' in flat
        assert "Traceback" not in res.output
    assert not (workdir / "runs").exists()                   # refused before a run folder was made
    res = CliRunner().invoke(app, ["check", str(write_config(workdir / "u.yaml",
                                                             tiny_config(**{"train.loggers": ["wandb"]})))])
    assert res.exit_code == 2 and "train.loggers" in res.output
