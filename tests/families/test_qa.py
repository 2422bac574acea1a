"""bAbI question answering: the dataset, the lstm_qa model's gradients, the qa task, and real training."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
from npdl.cli.main import app
from npdl.families.qa.data import Babi
from npdl.families.qa.model import LSTMQA
from npdl.config import check_spec
from tests.conftest import ROOT, mirrored_root

runner = CliRunner()


@pytest.fixture(scope="module")
def babi_root(tmp_path_factory):
    return mirrored_root(tmp_path_factory, "babi")


def test_declared_sizes_before_download():
    data = Babi(task=3)
    assert data.info() == {"vocab_size": 200, "num_answers": 50}
    story, smask, question, qmask, answer = data.example_batch()
    assert story.shape == smask.shape and question.shape == qmask.shape and answer.shape == (2,)


def test_task_number_is_validated():
    from npdl.registry import DATASETS

    problems = check_spec(DATASETS, {"type": "babi", "task": 21}, "data")
    assert problems and "task" in str(problems[0])


def test_babi_splits_batches_and_artifacts(babi_root, tmp_path):
    data = Babi(task=1, batch_size=32, val_fraction=0.1).prepare(babi_root)
    sizes = {k: len(v[2]) for k, v in data.examples.items()}
    assert sizes == {"train": 900, "val": 100, "test": 1000}
    assert data.answers[0] == "<unk>" and len(data.answers) == 7          # 6 rooms
    assert data.info()["num_answers"] == 7
    loader = data.loader("train")
    assert len(loader) == 29
    story, smask, question, qmask, answer = next(loader.batches(epoch=0, seed=0))
    assert story.shape[0] == 32 and story.shape == smask.shape and (story[~smask] == 0).all()
    assert smask[:, 0].all() and qmask.all(axis=1).any() and answer.min() >= 1
    words = data.vocab.decode(question[0][qmask[0]])
    assert words[0] == "where" and data.answers[answer[0]] in {"bathroom", "bedroom", "garden", "hallway",
                                                               "kitchen", "office"}
    again = list(loader.batches(epoch=0, seed=0))[0][0]
    np.testing.assert_array_equal(again, story)                          # order is a function of (seed, epoch)
    data.save_artifacts(tmp_path)
    restored = Babi(task=1)
    restored.load_artifacts(tmp_path)
    assert restored.info() == data.info()


def test_supporting_story_is_flattened_with_separators(babi_root):
    data = Babi(task=2, max_sentences=3).prepare(babi_root)
    story = data.vocab.decode(data.examples["test"][0][5])
    assert story.count("<sep>") <= 3 and story[-1] == "<sep>"


@pytest.mark.parametrize("reader", ["input", "init", "separate"])
def test_lstm_qa_gradcheck_with_masks(reader):
    m = LSTMQA(9, 4, embed_dim=3, hidden_size=2, dropout=0.0, reader=reader, init_range=0.5,
               rng=np.random.default_rng(0)).double()
    rng = np.random.default_rng(1)
    story, question = rng.integers(1, 9, (3, 5)), rng.integers(1, 9, (3, 3))
    smask = np.arange(5)[None, :] < np.array([5, 3, 1])[:, None]
    qmask = np.arange(3)[None, :] < np.array([3, 2, 3])[:, None]
    story[~smask], question[~qmask] = 0, 0
    npdl.gradcheck(lambda *ps: m(story, smask, question, qmask), *m.parameters())


def test_padding_does_not_change_the_answer():
    m = LSTMQA(9, 4, embed_dim=3, hidden_size=5, rng=np.random.default_rng(0)).eval()
    story, question = np.array([[1, 2, 3]]), np.array([[4, 5]])
    base = m(story, np.ones((1, 3), bool), question, np.ones((1, 2), bool)).data
    padded = m(np.array([[1, 2, 3, 0, 0]]), np.array([[1, 1, 1, 0, 0]], bool),
               np.array([[4, 5, 0]]), np.array([[1, 1, 0]], bool)).data
    np.testing.assert_allclose(base, padded, atol=1e-6)


@pytest.mark.slow
def test_qa1_reaches_the_lstm_baseline(babi_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["train", str(ROOT / "configs" / "lstm_babi_qa1.yaml"), "--runs-dir", "runs",
                              "--data-root", str(babi_root)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] >= 0.5
