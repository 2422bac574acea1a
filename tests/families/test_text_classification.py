"""QQP data: pair encoding and truncation, the fixed sample split, tokenizers saved in the run,
bad input, and ``npdl train`` + ``npdl predict`` end to end on the local 10k-row sample."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import npdl
from npdl.cli.main import app
from npdl.data.sources import DataError
from npdl.data.tokenizers import CLS_ID, SEP_ID
from npdl.families.text_classification.data import (InputTextError, MissingTokenizerError, QQPSample, encode_pair,
                                                    fixed_split, truncated_lengths)
from tests.conftest import mirrored_root, write_config

runner = CliRunner()


def bert_truncate(la: int, lb: int, budget: int) -> tuple[int, int]:
    """BERT's truncate_seq_pair, literally: pop from the longer list (ties: b) until it fits."""
    while la + lb > budget:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


@pytest.fixture(scope="module")
def qqp_root(tmp_path_factory):
    return mirrored_root(tmp_path_factory, "qqp_sample")


@pytest.fixture(scope="module")
def sample(qqp_root):
    return QQPSample(vocab_size=3000, max_len=32, batch_tokens=1024).prepare(qqp_root)


# ---- pair encoding ----------------------------------------------------------------------------------
def test_truncation_matches_bert_rule():
    for la in range(0, 30, 3):
        for lb in range(0, 30, 2):
            for budget in (2, 7, 12, 29, 61):
                assert truncated_lengths(la, lb, budget) == bert_truncate(la, lb, budget), (la, lb, budget)


def test_encode_pair_keeps_markers_and_segments():
    ids, start, cut = encode_pair([10, 11], [20, 21, 22], 16)
    assert ids == [CLS_ID, 10, 11, SEP_ID, 20, 21, 22, SEP_ID] and start == 4 and not cut
    ids, start, cut = encode_pair(list(range(100, 140)), [20, 21], 10)       # 7 slots: the long one gives way
    assert ids == [CLS_ID, 100, 101, 102, 103, 104, SEP_ID, 20, 21, SEP_ID] and start == 7 and cut
    assert len(encode_pair(list(range(50)), list(range(60)), 9)[0]) == 9
    with pytest.raises(ValueError, match="max_len must be >= 5"):
        encode_pair([1], [2], 4)


# ---- the sample and its fixed split -----------------------------------------------------------------
def test_fixed_split_is_seeded_and_independent_of_the_run_seed():
    rows = list(range(1000))
    npdl.manual_seed(123)
    a = fixed_split(rows)
    npdl.manual_seed(7)
    b = fixed_split(rows)
    assert a == b and [len(a[k]) for k in ("train", "val", "test")] == [800, 100, 100]
    assert sorted(a["train"] + a["val"] + a["test"]) == rows


def test_sample_split_sizes_and_batches(sample, qqp_root):
    seqs, _, labels = sample.encoded["train"]
    assert {k: len(v[2]) for k, v in sample.encoded.items()} == {"train": 8000, "val": 1000, "test": 1000}
    assert sample.majority_class == 0 and 0.3 < labels.mean() < 0.45          # ~37% duplicates
    again = QQPSample(vocab_size=3000, max_len=32).prepare(qqp_root)
    for split in ("train", "test"):
        np.testing.assert_array_equal(again.encoded[split][0].flat, sample.encoded[split][0].flat)
    loader = sample.loader("train")
    assert loader.padding_fraction < 0.05
    for batch in list(loader.batches(0, seed=0))[:20]:
        b, t = batch.ids.shape
        assert b * t <= 1024 and t <= 32
        assert np.all(batch.ids[:, 0] == CLS_ID)
        np.testing.assert_array_equal(batch.mask, batch.ids != 0)
        for row, seg, m in zip(batch.ids, batch.segments, batch.mask):
            seps = np.flatnonzero(row == SEP_ID)
            assert len(seps) == 2 and seps[1] == m.sum() - 1                 # [SEP] ... [SEP] at the end
            assert np.all(seg[:seps[0] + 1] == 0) and np.all(seg[seps[0] + 1:m.sum()] == 1)
            assert np.all(seg[~m] == 0)
    assert sample.info() == {"vocab_size": len(sample.tokenizer), "num_classes": 2, "max_len": 32,
                             "num_segments": 2}


def test_predict_inputs_errors_and_literal_specials(sample):
    with pytest.raises(InputTextError, match="second question is empty"):
        sample.encode_texts(["How do I cook rice?", "   "])
    with pytest.raises(InputTextError, match="two texts"):
        sample.encode_texts(["just one"])
    batch, cut = sample.encode_texts(["what is <sep> and <cls>?", "is <pad> a token?"])
    assert not cut and (batch.ids == SEP_ID).sum() == 2 and (batch.ids == CLS_ID).sum() == 1
    batch, cut = sample.encode_texts(["why " * 100, "how?"])
    assert cut and batch.ids.shape == (1, 32) and batch.ids[0, -1] == SEP_ID


def test_tokenizer_saved_with_the_run_reproduces_ids(sample, tmp_path):
    sample.save_artifacts(tmp_path)
    restored = QQPSample(vocab_size=3000, max_len=32)
    restored.load_artifacts(tmp_path)                                         # no data needed for predict
    texts = ["How can I learn Python quickly?", "What's the best way to learn python?"]
    np.testing.assert_array_equal(restored.encode_texts(texts)[0].ids, sample.encode_texts(texts)[0].ids)
    assert restored.info()["vocab_size"] == len(sample.tokenizer)
    with pytest.raises(MissingTokenizerError, match="tokenizer.json is missing"):
        QQPSample().load_artifacts(tmp_path / "nowhere")


def test_bpe_tokenizer_option(qqp_root):
    data = QQPSample(tokenizer="bpe", vocab_size=600, max_len=24)
    data.prepare(qqp_root)
    text = "Which is the best laptop under 500$?"
    assert data.tokenizer.decode(data.tokenizer.encode(text)) == text.lower()
    with pytest.raises(Exception, match="vocab_size must be an int >= 262"):
        QQPSample(tokenizer="bpe", vocab_size=100)


def _write_glue_tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
    lines += [f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_glue_qqp_splits(tmp_path):
    """GLUE layout (qqp/QQP/{train,dev}.tsv): val is a fixed held-out slice of train, test is dev."""
    from npdl.families.text_classification.data import QQP

    train = [(f"how do i learn topic {i}?", f"what is topic {i}?", i % 3 == 0) for i in range(60)]
    dev = [(f"why is {i} odd?", f"is {i} odd?", 1) for i in range(7)]
    _write_glue_tsv(tmp_path / "qqp" / "QQP" / "train.tsv", [(a, b, int(y)) for a, b, y in train])
    _write_glue_tsv(tmp_path / "qqp" / "QQP" / "dev.tsv", dev)
    data = QQP(val_size=10, vocab_size=100, max_len=16).prepare(tmp_path)
    sizes = {k: len(v[2]) for k, v in data.encoded.items()}
    assert sizes == {"train": 50, "val": 10, "test": 7}
    again = QQP(val_size=10, vocab_size=100, max_len=16).prepare(tmp_path)
    np.testing.assert_array_equal(again.encoded["val"][0].flat, data.encoded["val"][0].flat)
    assert data.tokenizer.encode("topic") != [1] and data.tokenizer.encode("odd") == [1]  # fit on train only
    with pytest.raises(DataError, match="leaves no training pairs"):
        QQP(val_size=60).prepare(tmp_path)


# ---- end to end: train, eval, predict ---------------------------------------------------------------
def test_train_then_predict_a_pair(qqp_root, workdir):
    cfg = {"name": "qqp_tiny", "seed": 0,
           "data": {"type": "qqp_sample", "vocab_size": 2000, "max_len": 24, "batch_tokens": 768},
           "model": {"type": "transformer_classifier", "d_model": 16, "nhead": 2, "num_layers": 1,
                     "dim_feedforward": 32},
           "optimizer": {"type": "adamw", "lr": 1e-3}, "train": {"max_steps": 4, "log_every": 2, "checkpoint_every": 4}}
    path = write_config(workdir / "qqp.yaml", cfg)
    res = runner.invoke(app, ["train", str(path), "--runs-dir", "runs", "--data-root", str(qqp_root)])
    assert res.exit_code == 0, res.output
    run = next((workdir / "runs").iterdir())
    assert (run / "artifacts" / "tokenizer.json").is_file()
    test = json.loads((run / "summary.json").read_text())["test"]
    assert {"accuracy", "f1", "majority_accuracy", "majority_f1", "loss"} <= set(test)
    res = runner.invoke(app, ["predict", str(run), "--pair", "How do I learn Python?",
                              "What is the best way to learn Python?"])
    assert res.exit_code == 0, res.output
    p = float(res.output.split("duplicate probability:")[1].split()[0])
    assert 0.0 <= p <= 1.0
    res = runner.invoke(app, ["predict", str(run), "--pair", "why " * 40, "how?"])
    assert res.exit_code == 0 and "truncated" in res.output
    res = runner.invoke(app, ["predict", str(run), "--pair", "", "What is love?"])
    assert res.exit_code == 2 and "first question is empty" in res.output
    res = runner.invoke(app, ["predict", str(run)])
    assert res.exit_code == 2 and "nothing to classify" in res.output
