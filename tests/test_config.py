"""The config layer's positive behaviours: exponent numbers, short runs, resumable final lr,
one home for ConfigError, registries without hidden wiring."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from npdl import config, experiment, registry
from npdl.cli.main import app
from npdl.config import yamlsafe
from npdl.data.tokenizers import WordTokenizer, tokenizer_from_dict
from npdl.optim import optimizers as O
from npdl.schema import ArgumentError
from npdl.train.trainer import TrainSettings

runner = CliRunner()

SPIRALS = """\
name: short
seed: 0
data: {type: spirals, n_per_class: 200, batch_size: 32}
model: {type: mlp, hidden: [16]}
optimizer: {type: adam, lr: 1e-3}
schedule: {type: cosine, warmup_steps: 200}
train: {epochs: 30, log_every: 50}
"""


@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("1E+5", 1e5), ("-2.5e-4", -2.5e-4), ("3e4", 3e4),
                                        ("1.0e-3", 1e-3), ("2.5", 2.5), (".5", 0.5), ("1_000.5", 1000.5)])
def test_exponent_numbers_are_numbers_in_files_and_set(text, value):
    data, _ = yamlsafe.parse(f"lr: {text}\n", "x.yaml")
    assert data == {"lr": value} and isinstance(data["lr"], float)
    assert config.parse_override(f"optimizer.lr={text}") == ("optimizer.lr", value)


@pytest.mark.parametrize("text,value", [("1e", "1e"), ("e5", "e5"), ("12", 12), ("0x10", 16), ("abc", "abc"),
                                        ("1.2.3", "1.2.3"), ("'1e-3'", "1e-3")])
def test_other_scalars_keep_their_yaml_meaning(text, value):
    assert yamlsafe.parse(f"v: {text}\n", "x.yaml")[0] == {"v": value}


def test_lr_in_exponent_form_in_a_yaml_file_is_accepted(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(SPIRALS)
    cfg = config.load(path)
    assert cfg.data["optimizer"]["lr"] == 1e-3
    res = runner.invoke(app, ["check", str(path)])
    assert res.exit_code == 0, res.output


def test_a_run_shorter_than_its_warmup_just_works_with_a_warning(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text(SPIRALS)
    res = runner.invoke(app, ["train", str(path), "--set", "train.max_steps=100", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "short.yaml:6: schedule.warmup_steps: 200 is not shorter than this run (100 steps)" in flat
    assert "warming up for 10 steps instead" in flat
    exp = experiment.build(config.load(path, ["train.max_steps=100"]))
    assert exp.total_steps == 100 and exp.scheduler.schedule.warmup_steps == 10
    assert exp.warnings and "schedule.warmup_steps" in exp.warnings[0]
    # runs long enough keep their schedule untouched, and say nothing
    long = experiment.build(config.load(path, ["train.max_steps=1000"]))
    assert long.scheduler.schedule.warmup_steps == 200 and long.warnings == []


def test_short_run_with_an_explicit_total_is_an_error_at_the_users_line(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(SPIRALS.replace("warmup_steps: 200}", "warmup_steps: 200, total_steps: 100}"))
    with pytest.raises(config.ConfigError) as err:
        experiment.build(config.load(path))
    assert str(err.value) == (f"{path}:6: schedule.warmup_steps: must be below schedule.total_steps (100) "
                              "to leave room for the decay, got 200")


def test_a_run_whose_final_lr_is_zero_can_be_restored(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(SPIRALS.replace("warmup_steps: 200", "warmup_steps: 2").replace("epochs: 30", "max_steps: 12"))
    exp = experiment.build(config.load(path))
    trainer = exp.trainer()
    trainer.fit()
    assert exp.optimizer.param_groups[0]["lr"] == 0.0  # cosine to min_factor 0 at its last step
    state = trainer.state()
    again = experiment.build(config.load(path))
    again_trainer = again.trainer()
    again_trainer.restore(state)
    assert again.optimizer.param_groups[0]["lr"] == 0.0 and again_trainer.step == 12
    # the rule that stays: a configured lr must be positive, and initial_lr in a state dict too
    bad = state["optim"]
    bad["param_groups"][0]["initial_lr"] = 0.0
    from npdl.optim.optimizer import OptimizerStateError
    with pytest.raises(OptimizerStateError, match="initial_lr: expected a positive number"):
        again.optimizer.load_state_dict(bad)


def test_library_code_raises_value_errors_not_config_errors():
    from npdl.nn.module import Parameter
    p = [("w", Parameter(np.zeros(2)))]
    with pytest.raises(ValueError) as err:
        O.Adam(p, lr=-1.0)
    assert isinstance(err.value, ArgumentError) and not isinstance(err.value, config.ConfigError)
    assert str(err.value) == "param_groups[0].lr: expected a positive number, got -1.0"
    with pytest.raises(ValueError, match="lr: expected a positive number, got nan"):
        O.SGD(p, lr=float("nan"))
    assert config.ConfigError.__module__ == "npdl.config.errors"
    assert not hasattr(registry, "ConfigError")


def test_config_error_lists_every_problem_located(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(SPIRALS.replace("type: mlp", "type: mpl").replace("epochs: 30", "epochz: 30"))
    with pytest.raises(config.ConfigError) as err:
        config.validate(config.load(path))
    lines = str(err.value).splitlines()
    assert f"{path}:4: model.type: unknown model 'mpl' — did you mean 'mlp'?" in lines[0]
    assert any(line.startswith(f"{path}:7: train.epochz: unknown key — did you mean 'epochs'?") for line in lines)


def test_base_inheritance_locates_keys_in_the_file_that_wrote_them(tmp_path):
    (tmp_path / "base.yaml").write_text(SPIRALS)
    (tmp_path / "top.yaml").write_text("base: base.yaml\nmodel: {type: mlp, hidden: [0]}\n")
    cfg = config.load(tmp_path / "top.yaml")
    assert cfg.data["optimizer"]["lr"] == 1e-3 and cfg.where("optimizer.lr") == f"{tmp_path / 'base.yaml'}:5"
    with pytest.raises(config.ConfigError, match=r"top.yaml:2: model.hidden: expected a list of positive"):
        config.validate(cfg)


def test_registries_hold_tasks_and_tokenizers_and_no_unused_kinds():
    assert isinstance(registry.TASKS, registry.Registry) and "classification" in registry.TASKS
    assert {"language_model", "seq2seq", "word2vec", "qa", "text_classification"} <= set(registry.TASKS.names())
    assert registry.TOKENIZERS.names() == ["bpe", "word"]
    tok = WordTokenizer()
    assert type(tokenizer_from_dict(tok.to_dict())) is WordTokenizer
    assert "metrics" not in registry.ALL and not hasattr(registry, "METRICS")
    assert not hasattr(registry, "import_optional")


def test_every_task_declares_the_metrics_its_evaluation_returns(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(SPIRALS.replace("epochs: 30", "max_steps: 3"))
    exp = experiment.build(config.load(path))
    metrics = exp.task.evaluate("val")
    assert set(metrics) == set(exp.task.metric_names())


def test_train_settings_dataclass_is_checked_with_finite_numbers():
    problems = config.check_dataclass(TrainSettings, {"grad_clip": float("inf"), "epochs": 2, "log_every": 10 ** 20},
                                      "train")
    assert [p.path for p in problems] == ["train.grad_clip", "train.log_every"]
