"""word2vec from the command line: train a tiny corpus, then neighbors, analogy, export and
eval --task analogy on the run; user errors exit with 2 and a clear message."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from npdl import config, experiment
from npdl.cli.main import app
from npdl.families.word2vec.task import load_word2vec
from npdl.train import checkpoint
from tests.families.test_word2vec import planted_corpus, tiny_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def trained(workdir):
    corpus = planted_corpus(workdir / "planted.txt")
    questions = workdir / "questions.txt"
    questions.write_text(": capital-common-countries\n" + "\n".join(
        f"country{i} capital{i} country{j} capital{j}" for i in range(6) for j in range(6) if i != j)
        + "\n: gram1-made-up\ncountry0 nation country1 nowhere\n")
    cfg = tiny_config(corpus)
    cfg["eval"] = {"analogy_file": str(questions)}
    (workdir / "w2v.yaml").write_text(yaml.safe_dump(cfg))
    res = invoke("train", workdir / "w2v.yaml", "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    (run,) = (workdir / "runs").iterdir()
    return run


def test_train_then_query_export_and_evaluate(trained, workdir):
    run = trained
    assert json.loads((run / "artifacts" / "w2v_vocab.json").read_text())["vocab"]["tokens"][:1]
    res = invoke("neighbors", run, "country0", "-k", "3")
    assert res.exit_code == 0, res.output
    assert "country" in res.output and res.output.count("0.") >= 3
    res = invoke("analogy", run, "country0", "capital0", "country1")
    assert res.exit_code == 0 and "capital1" in res.output, res.output
    weights = checkpoint.load(run / "checkpoints" / "last.npz")["model"]["in_embed.weight"]
    for binary in (False, True):
        out = workdir / f"vectors{int(binary)}"
        res = invoke("export", run, "--format", "word2vec", "-o", out, *(["--binary"] if binary else []))
        assert res.exit_code == 0, res.output
        words, vectors = load_word2vec(out, binary=binary)
        assert len(words) == len(weights) and np.array_equal(vectors, weights)
    res = invoke("eval", run, "--task", "analogy")
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "semantic" in res.output and "questions" in res.output
    (written,) = run.glob("eval-analogy-*.json")
    metrics = json.loads(written.read_text())["metrics"]
    assert metrics["questions"] == 30 and metrics["total_questions"] == 31
    assert metrics["sections"]["capital-common-countries"] >= 0.9


def test_first_answer_of_analogy_is_the_capital(trained):
    res = invoke("analogy", trained, "country2", "capital2", "country4", "-k", "1")
    assert res.exit_code == 0 and "capital4" in res.output, res.output


def test_user_errors_exit_2_with_a_message(trained, workdir):
    res = invoke("neighbors", trained, "contry0")
    assert res.exit_code == 2
    assert "word 'contry0' is not in the vocabulary" in res.output and "closest: country0" in res.output
    res = invoke("export", trained, "--format", "glove")
    assert res.exit_code == 2 and "unknown export format" in res.output
    (workdir / "questions.txt").write_text(": capital\ncountry0 capital0 country1\n")
    res = invoke("eval", trained, "--task", "analogy")
    assert res.exit_code == 2 and "questions.txt:2: expected 4 words" in res.output


def test_resume_mid_epoch_is_exact(tmp_path):
    corpus = planted_corpus(tmp_path / "planted.txt", n_sentences=400)
    cfg = tiny_config(corpus)
    cfg["train"]["epochs"] = 3

    def build():
        return experiment.build(config.from_dict(cfg))

    ref = build()
    ref.trainer().fit()
    first = build()
    cut = first.trainer()
    cut.settings.max_steps = 7                                           # stop inside epoch 1
    cut.fit()
    state = cut.state()
    resumed = build()
    trainer = resumed.trainer()
    trainer.restore(state)
    trainer.fit()
    for name, value in ref.model.state_dict().items():
        assert np.array_equal(value, resumed.model.state_dict()[name]), name


def test_ptb_as_a_corpus(mirror, tmp_path):
    from npdl.data import download

    download.download("ptb", tmp_path, mirror=str(mirror), progress=False)
    cfg = tiny_config("unused")
    cfg["data"] = {"type": "ptb_words", "batch_size": 5000}
    exp = experiment.build(config.from_dict(cfg), tmp_path)
    assert exp.data.vocab.tokens[0] == "the" and len(exp.data.vocab) == exp.model.vocab_size
    assert exp.data.corpus_words == 887_521
    batch = next(exp.data.loader("train").batches())
    assert batch.segment[-1] > 64                                        # sentences start segments


def test_bench_skips_without_the_corpus(tmp_path):
    from npdl.families.word2vec import bench as word2vec

    (row,) = word2vec.run(root=tmp_path)
    assert row.name == "word2vec" and "npdl download text8_prefix" in row.note
