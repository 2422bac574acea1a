"""The trainer as a step plus extensions: triggers, user extensions (``trainer.extend``), their
state in checkpoints, the windowed train loss, and checkpoints from before extensions."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from npdl import config, experiment
from npdl.cli.main import app
from npdl.runs import Run
from npdl.train import checkpoint
from npdl.train.extensions import Extension, IntervalTrigger, make_trigger
from tests.conftest import tiny_config, write_config


class Recorder(Extension):
    """Remembers the steps (and moments) it was called at; its count is checkpointed state."""

    name = "recorder"

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.count = 0

    def __call__(self, trainer):
        self.calls.append((trainer.moment, trainer.step))
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class Crash(Extension):
    """Stands in for a kill: raises after step ``at`` (after the checkpoint of that round)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self, trainer):
        if trainer.step == self.at:
            raise SystemExit("killed")


def build(tmp_path, name="run", **over):
    cfg = config.load(write_config(tmp_path / f"{name}.yaml", tiny_config(**over)))
    exp = experiment.build(cfg)
    run = Run.create(tmp_path / "runs", name)
    run.write_config(cfg.to_yaml())
    return exp, run


def events(run) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "throughput"} for e in run.metrics()]


def test_user_extension_fires_on_its_trigger_after_the_builtins():
    trig = make_trigger([(3, "step"), (1, "epoch"), "end"])
    assert repr(trig) == "[(3, 'step'), (1, 'epoch'), 'end']"
    with pytest.raises(ValueError, match="trigger"):
        make_trigger(("3", "steps"))
    with pytest.raises(ValueError, match="unit"):
        IntervalTrigger(2, "minute")


def test_extend_runs_at_the_steps_epochs_and_end_it_asks_for(tmp_path):
    exp, run = build(tmp_path, **{"train.epochs": 2})
    assert len(exp.data.loader("train")) == 10             # steps an epoch
    trainer = exp.trainer(run)
    rec = Recorder()
    trainer.extend(rec, trigger=[(5, "step"), (1, "epoch"), "end"])
    ev = Recorder()
    trainer.extend(ev, trigger="eval")                      # same class: a unique name is made
    plain = []
    trainer.extend(lambda t: plain.append(t.step), trigger=(7, "step"), name="plain")  # any callable
    names = [e.name for e in trainer.extensions]             # by priority: before the checkpoints
    assert names[-5:] == ["recorder", "recorder_1", "plain", "last_checkpoint", "final_test"]
    trainer.fit()
    assert rec.calls == [("step", 5), ("step", 10), ("epoch", 10), ("step", 15), ("step", 20), ("epoch", 20),
                         ("end", 20)]
    assert ev.calls == [("eval", 10), ("eval", 20)]          # after each periodic evaluation
    assert plain == [7, 14]
    meta = checkpoint.load(run.checkpoint_path("last"))["meta"]
    assert meta["extensions"]["recorder"] == {"count": 6} and meta["extensions"]["recorder_1"] == {"count": 2}
    assert meta["extensions"]["log_report"]["steps"] == 0    # step 20 was reported (log_every 5)


def test_train_loss_is_the_mean_over_the_log_window_with_grad_norm_and_lr(tmp_path):
    exp, run = build(tmp_path, **{"train.epochs": 2, "train.log_every": 4, "train.grad_clip": 0.5})
    trainer = exp.trainer(run)
    seen = []

    class Steps(Extension):
        def __call__(self, t):
            seen.append((t.last_step.loss, t.last_step.grad_norm))

    trainer.extend(Steps())
    trainer.fit()
    train = [e for e in run.metrics() if e["event"] == "train"]
    assert [e["step"] for e in train] == [1, 4, 8, 12, 16, 20]
    for e, lo in zip(train, [0, 1, 4, 8, 12, 16]):
        window = seen[lo:e["step"]]
        assert e["loss"] == pytest.approx(np.mean([x for x, _ in window]), rel=1e-12)
        assert e["grad_norm"] == pytest.approx(np.mean([g for _, g in window]), rel=1e-12)
    assert any(g > 0.5 for _, g in seen)                     # the norm before clipping is logged
    assert all(e["lr"] == pytest.approx(0.01) for e in train)


def test_resume_mid_window_restores_every_extension_and_logs_the_same(tmp_path):
    over = {"train.epochs": 2, "train.log_every": 7, "train.checkpoint_every": 5, "train.loggers": ["csv"],
            "train.health_every": 4, "train.early_stopping": {"metric": "loss", "mode": "min", "patience": 5}}
    exp, ref = build(tmp_path, "ref", **over)
    t = exp.trainer(ref)
    t.extend(Recorder(), trigger=(2, "step"))
    t.fit()

    exp, run = build(tmp_path, "cut", **over)
    t = exp.trainer(run)
    t.extend(Recorder(), trigger=(2, "step"))
    t.extend(Crash(at=17))                                   # checkpoint at 15: mid log window (14..21)
    with pytest.raises(SystemExit):
        t.fit()
    exp = experiment.build(config.load(run.path / "config.yaml"))
    again = exp.trainer(run)
    again.restore(checkpoint.load(run.checkpoint_path("last"), model=exp.model), source="last")
    run.truncate_metrics(again.step, again.logged_after_checkpoint)
    rec = Recorder()
    again.extend(rec, trigger=(2, "step"))                   # added after restore: gets its state then
    assert again.step == 15 and rec.count == 7
    assert again.get_extension("log_report").steps == 1      # step 15 of the window 15..21
    again.fit()
    assert rec.count == 10                                   # steps 2, 4, ..., 20
    assert events(run) == events(ref)
    for name in ("last", "best"):
        a, b = checkpoint.load(ref.checkpoint_path(name)), checkpoint.load(run.checkpoint_path(name))
        for k in a["model"]:
            np.testing.assert_array_equal(a["model"][k], b["model"][k])
        assert {k: v for k, v in a["meta"].items() if k != "wall"} == {k: v for k, v in b["meta"].items() if k != "wall"}
    strip = lambda p: [line.split(",")[:4] for line in p.read_text().splitlines()]  # noqa: E731 (before throughput)
    assert strip(run.path / "metrics.csv") == strip(ref.path / "metrics.csv")


def _members(path):
    import zipfile

    with zipfile.ZipFile(path) as zf:
        arrays = {n[:-4]: zf.read(n) for n in zf.namelist()}
    meta = json.loads(np.load(path)["meta.json"].tobytes())
    return arrays, meta


def _rewrite_meta(path, edit):
    """Rewrite ``meta.json`` of a checkpoint in place (the other members untouched)."""
    import io
    import zipfile

    arrays, meta = _members(path)
    edit(meta)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in arrays.items():
            zf.writestr(name + ".npy", buf.getvalue() if name == "meta.json" else data)


def test_checkpoint_from_before_extensions_resumes(tmp_path):
    """meta.best / meta.early / meta.last_eval (no meta.extensions) load into the extensions."""
    over = {"train.epochs": 3, "train.early_stopping": {"metric": "accuracy", "patience": 4}}
    exp, run = build(tmp_path, **over)
    t = exp.trainer(run)
    t.extend(Crash(at=13))                                   # 'last': epoch 1's end (step 10)
    with pytest.raises(SystemExit):
        t.fit()
    last = run.checkpoint_path("last")
    ext = checkpoint.load(last)["meta"]["extensions"]

    def legacy(meta):
        states = meta["meta"].pop("extensions")
        meta["meta"].update(best=states["best_checkpoint"], early=states["early_stopping"],
                            last_eval=states["evaluate"]["last_eval"])

    _rewrite_meta(last, legacy)
    exp = experiment.build(config.load(run.path / "config.yaml"))
    again = exp.trainer(run)
    again.restore(checkpoint.load(last, model=exp.model), source=last)
    assert again.step == 10 and again.epoch == 1
    assert again.best.value == ext["best_checkpoint"]["value"] and again.best.step == 10
    assert again.get_extension("early_stopping").state_dict() == ext["early_stopping"]
    assert again.get_extension("evaluate").last_eval == 10
    run.truncate_metrics(again.step, again.logged_after_checkpoint)
    assert again.fit()["steps"] == 30


def test_damaged_extension_state_is_a_user_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "t.yaml", tiny_config(**{"train.epochs": 1}))
    assert CliRunner().invoke(app, ["train", str(cfg)]).exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    last = run / "checkpoints" / "last.npz"
    (run / "manifest.json").write_text((run / "manifest.json").read_text().replace('"completed"', '"interrupted"'))
    _rewrite_meta(last, lambda m: m["meta"]["extensions"]["log_report"].__setitem__("steps", "x"))
    res = CliRunner().invoke(app, ["resume", str(run)])
    assert res.exit_code == 2 and "internal error" not in res.output, res.output
    assert "meta.extensions.log_report" in " ".join(res.output.split())
    _rewrite_meta(last, lambda m: m["meta"].__setitem__("extensions", [1]))
    res = CliRunner().invoke(app, ["resume", str(run)])
    assert res.exit_code == 2 and "meta.extensions" in " ".join(res.output.split()), res.output
