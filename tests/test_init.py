"""`npdl init` (a complete config for every model), resolved run configs, `npdl list` train/eval."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from npdl import experiment  # noqa: F401  (registers every model and dataset)
from npdl.cli.main import app
from npdl.config.starter import USUAL, fitting_datasets, usual_dataset
from npdl.registry import MODELS
from tests.conftest import env_without_data, tiny_config, write_config

runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kw)


@pytest.mark.parametrize("model", MODELS.names())
def test_init_output_passes_check_for_every_model(model, workdir, monkeypatch):
    monkeypatch.setenv("NPDL_DATA", str(workdir / "no-data"))   # check works before any download
    res = invoke("init", model, "-o", "c.yaml")
    assert res.exit_code == 0, res.output
    text = (workdir / "c.yaml").read_text()
    cfg = yaml.safe_load(text)
    assert list(cfg) == ["name", "seed", "data", "model", "loss", "optimizer", "schedule", "train", "eval"]
    assert cfg["model"]["type"] == model and cfg["data"]["type"] == usual_dataset(model)
    # every argument of the model is written, or named in a comment as provided by the data
    for arg in MODELS.parameters(model):
        assert arg in cfg["model"] or re.search(rf"# {arg}: .*provided by the data", text), arg
    res = invoke("check", "c.yaml")
    assert res.exit_code == 0, res.output
    assert "ok c.yaml" in res.output


def test_every_line_is_commented_and_defaults_are_written(workdir):
    text = invoke("init", "transformer_seq2seq").output
    cfg = yaml.safe_load(text)
    assert cfg["data"]["type"] == "reverse" and cfg["model"]["d_model"] == 256     # the class default
    assert cfg["optimizer"]["betas"] == [0.9, 0.999] and cfg["eval"]["decode"] == "greedy"
    assert cfg["train"]["grad_accum"] == 1 and cfg["loss"]["ignore_index"] == 0   # the task's default loss
    for line in text.splitlines():
        if re.match(r"^\s*\w+: \S", line) and not line.lstrip().startswith("#"):
            assert " # " in line, line
    # the one-line comments come from the docstrings and field comments
    assert re.search(r"tie_embeddings: true .*# bool — the output projection is the target embedding", text)
    assert re.search(r"length_penalty: 0.6 .*GNMT alpha", text)
    assert re.search(r"grad_clip: null .*global L2 norm", text)


def test_init_trains_a_few_steps_for_built_in_data(workdir):
    for model in ("mlp", "transformer_lm", "transformer_seq2seq"):
        assert invoke("init", model, "-o", f"{model}.yaml").exit_code == 0
        res = invoke("train", f"{model}.yaml", "--set", "train.max_steps=2", "--runs-dir", "runs")
        assert res.exit_code == 0, res.output


def test_init_with_data_and_file_rules(workdir):
    res = invoke("init", "mlp", "--data", "mnist")
    assert res.exit_code == 0 and "type: mnist" in res.output and "npdl download mnist" in res.output
    assert invoke("init", "mlp", "-o", "a.yaml").exit_code == 0
    before = (workdir / "a.yaml").read_text()
    res = invoke("init", "cnn", "-o", "a.yaml")
    assert res.exit_code == 2 and "--force" in res.output and (workdir / "a.yaml").read_text() == before
    assert invoke("init", "cnn", "-o", "a.yaml", "--force").exit_code == 0
    assert "type: cnn" in (workdir / "a.yaml").read_text()
    res = invoke("init", "lstm_qa", "--data", "spirals")
    assert res.exit_code == 2 and "vocab_size" in res.output and "babi" in res.output
    res = invoke("init", "mlpp")
    assert res.exit_code == 2 and "did you mean 'mlp'" in res.output
    res = invoke("init", "mlp", "--data", "mnistt")
    assert res.exit_code == 2 and "did you mean 'mnist'" in res.output


def test_usual_datasets_are_among_the_fitting_ones():
    for model, dataset in USUAL.items():
        assert model in MODELS.names() and dataset in fitting_datasets(model), model
    assert usual_dataset("mlp") == "spirals"            # derived: the built-in fit
    assert usual_dataset("lstm_qa") == "babi"           # derived: the only fit
    assert usual_dataset("transformer_lm") == "alternating"


def test_run_config_is_resolved_and_resumes(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config(**{"train.checkpoint_every": 5}))
    assert invoke("train", cfg, "--runs-dir", "runs").exit_code == 0
    run = next((workdir / "runs").iterdir())
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["noise"] == 0.2 and resolved["model"]["activation"] == "relu"   # defaults written
    assert resolved["optimizer"]["eps"] == 1e-8 and resolved["train"]["keep_last"] == 2
    assert resolved["loss"] == {"type": "cross_entropy", "ignore_index": None, "label_smoothing": 0.0,
                                "reduction": "mean"}
    assert "num_classes" not in resolved["model"]          # provided by the data: a comment only
    # a resolved config trains to the same numbers as the short one (same seed)
    assert invoke("train", run / "config.yaml", "--runs-dir", "runs2").exit_code == 0
    again = next((workdir / "runs2").iterdir())

    def evals(path):
        return [(e["step"], e.get("loss"), e.get("accuracy")) for e in map(yaml.safe_load, (path / "metrics.jsonl")
                .read_text().splitlines()) if e["event"] == "eval"]
    assert evals(run) == evals(again)
    assert invoke("eval", run, "--split", "val").exit_code == 0


def test_old_short_run_configs_still_evaluate(workdir):
    cfg = write_config(workdir / "t.yaml", tiny_config())
    assert invoke("train", cfg, "--runs-dir", "runs").exit_code == 0
    run = next((workdir / "runs").iterdir())
    write_config(run / "config.yaml", tiny_config())      # as runs wrote it before: no defaults
    res = invoke("eval", run)
    assert res.exit_code == 0 and "accuracy" in res.output


def test_list_train_and_eval_keys(workdir):
    out = invoke("list", "train").output
    for key in ("epochs", "max_steps", "grad_clip", "eval_split", "early_stopping", "patience"):
        assert re.search(rf"^\s+{key}: ", out, re.M), key
    assert "global L2 norm" in out
    out = invoke("list", "eval").output
    assert "seq2seq" in out and "beam_size: int>0 = 4" in out and "analogy_vocab" in out
    assert invoke("list", "nope").exit_code == 2


@pytest.mark.parametrize("kind", ["models", "datasets", "layers", "optimizers", "schedules", "train", "eval"])
def test_list_never_cuts_choices_on_a_narrow_terminal(kind):
    res = invoke("list", kind, env={"COLUMNS": "40"}, terminal_width=40)
    assert res.exit_code == 0
    assert "…" not in res.output                       # rich's ellipsis
    assert not any(line.rstrip().endswith("...") for line in res.output.splitlines())
    assert max(len(line.rstrip()) for line in res.output.splitlines()) <= 40
    words = res.output.split()
    if kind == "models":   # every choice whole on one line, wrapped between choices
        for choice in ("'negative_sampling'", "'gelu_tanh'", "'leaky_relu'", "'sinusoidal'"):
            assert choice in words, choice


def test_init_as_a_real_process(tmp_path):
    out = subprocess.run([sys.executable, "-m", "npdl", "init", "mlp"], capture_output=True, text=True,
                         cwd=tmp_path, env=env_without_data(), timeout=120)
    assert out.returncode == 0 and yaml.safe_load(out.stdout)["model"]["hidden"] == [64, 64]
