"""Seq2seq datasets: Multi30k from the mirror (tokenizers, batches, artifacts) and copy / reverse / sort."""
from __future__ import annotations

import numpy as np
import pytest

from npdl.data import download
from npdl.data.tokenizers import BOS_ID, EOS_ID
from npdl.families.seq2seq.data import CopyTask, Multi30k, ReverseTask, SortTask
from tests.conftest import mirrored_root


@pytest.fixture(scope="module")
def m30k_root(tmp_path_factory):
    return mirrored_root(tmp_path_factory, "multi30k")


@pytest.fixture(scope="module")
def m30k(m30k_root):
    # a 3,000-pair training prefix keeps the BPE training quick; val/test are complete
    return Multi30k(vocab_size=2000, train_limit=3000, batch_tokens=1500).prepare(m30k_root)


def test_multi30k_splits_and_direction(m30k, m30k_root):
    assert [len(m30k.raw[s][0]) for s in ("train", "val", "test")] == [3000, 1014, 1000]
    src, tgt = m30k.raw["test"]
    assert src[0].startswith("Ein Mann mit einem orangefarbenen Hut")  # de -> en by default
    assert tgt[0].startswith("A man in an orange hat")
    assert m30k.references("test")[0] == tgt[0]
    en_de = Multi30k(direction="en-de", vocab_size=300, train_limit=200).prepare(m30k_root)
    assert en_de.raw["test"][0][0] == tgt[0]


def test_multi30k_tokenizer_round_trips_real_lines(m30k):
    for split in ("train", "val", "test"):
        src, tgt = m30k.raw[split]
        for s, t in list(zip(src, tgt))[:200]:
            assert m30k.src_tok.decode(m30k.src_tok.encode(s)) == s
            assert m30k.decode_target(m30k.tgt_tok.encode(t) + [EOS_ID, 7]) == t.strip()
    info = m30k.info()
    assert info["src_vocab_size"] == info["tgt_vocab_size"] == len(m30k.src_tok) <= 2000
    assert info["share_vocab"] is True


def test_multi30k_batches_are_bucketed_with_bos_eos(m30k):
    loader = m30k.loader("train")
    assert loader.padding_fraction < 0.1
    b = next(iter(loader.batches(0)))
    assert b.src.shape[0] * max(b.src.shape[1], b.tgt_in.shape[1]) <= 1500
    assert (b.tgt_in[:, 0] == BOS_ID).all()
    lengths = b.tgt_mask.sum(1)
    assert (b.tgt_out[np.arange(len(b.index)), lengths - 1] == EOS_ID).all()
    np.testing.assert_array_equal(b.tgt_in[:, 1:][b.tgt_mask[:, 1:]], b.tgt_out[:, :-1][b.tgt_mask[:, 1:]])
    assert (b.src[np.arange(len(b.index)), b.src_mask.sum(1) - 1] == EOS_ID).all()
    assert (b.src[~b.src_mask] == 0).all() and (b.tgt_out[~b.tgt_mask] == 0).all()
    # same epoch, same order; every example exactly once
    again = [x.index.tolist() for x in loader.batches(0)]
    assert again == [x.index.tolist() for x in loader.batches(0)]
    assert sorted(i for x in again for i in x) == list(range(3000))


def test_multi30k_artifacts_restore_the_same_ids(m30k, m30k_root, tmp_path):
    m30k.save_artifacts(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    other = Multi30k(vocab_size=2000, train_limit=10)
    other.load_artifacts(tmp_path)
    assert other.info() == m30k.info()       # sizes known before prepare (npdl translate needs no data)
    line = m30k.raw["val"][0][5]
    np.testing.assert_array_equal(other.encode_source(line)[0], m30k.encode_source(line)[0])
    sep = Multi30k(vocab_size=400, shared_vocab=False, train_limit=300).prepare(m30k_root)
    sep.save_artifacts(tmp_path)
    assert (tmp_path / "src_tokenizer.json").is_file() and (tmp_path / "tgt_tokenizer.json").is_file()


def test_multi30k_truncation_is_counted(m30k_root):
    d = Multi30k(vocab_size=300, train_limit=100, max_len=8).prepare(m30k_root)
    assert d.truncated["test"] > 0
    assert max(len(s) for s in d.src["test"]) == 8 and max(len(t) for t in d.tgt["test"]) == 7
    ids, cut = d.encode_source("Ein Mann " * 10)
    assert cut and len(ids) == 8 and ids[-1] == EOS_ID


def test_multi30k_unprepared_works_for_check():
    d = Multi30k(vocab_size=8000)
    assert d.info()["src_vocab_size"] == 8000
    b = d.example_batch()
    assert b.src.shape == (2, 3) and b.src_mask.dtype == bool
    with pytest.raises(ValueError, match="vocab_size"):
        Multi30k(vocab_size=100)


def test_multi30k_missing_data_names_the_command(tmp_path):
    with pytest.raises(download.DatasetNotFoundError, match="npdl download multi30k"):
        Multi30k().prepare(tmp_path)


# ---- synthetic tasks ----------------------------------------------------------------------
@pytest.mark.parametrize("cls,fn", [(CopyTask, lambda x: x), (ReverseTask, lambda x: x[::-1]),
                                    (SortTask, sorted)])
def test_synthetic_tasks(cls, fn):
    d = cls(n_train=300, n_val=50, n_test=50, min_length=2, max_length=6, data_seed=3).prepare()
    for s, t in zip(d.src["train"], d.tgt["train"]):
        assert s[-1] == EOS_ID and 2 <= len(t) <= 6
        assert list(t) == list(fn(list(s[:-1])))
    again = cls(n_train=300, n_val=50, n_test=50, min_length=2, max_length=6, data_seed=3).prepare()
    assert all(np.array_equal(a, b) for a, b in zip(d.src["val"], again.src["val"]))
    assert not all(np.array_equal(a, b) for a, b in zip(d.src["val"], d.src["test"]))
    text = " ".join(str(int(i) - 6) for i in d.src["test"][0][:-1])
    np.testing.assert_array_equal(d.encode_source(text)[0], d.src["test"][0])
    assert d.references("test")[0] == d.decode_target(np.concatenate([d.tgt["test"][0], [EOS_ID, 8]]))
    assert d.info() == {"src_vocab_size": 16, "tgt_vocab_size": 16, "max_len": 8, "share_vocab": True}
    with pytest.raises(ValueError, match="symbols"):
        d.encode_source("1 12")


# ---- end to end on real data (a tiny model, 2,000 pairs, one epoch: ~10 s on 2 cores) ----------
def test_multi30k_smoke_train_eval_translate(m30k_root, tmp_path):
    import json

    from typer.testing import CliRunner

    from npdl.cli.main import app
    from tests.conftest import ROOT

    runner = CliRunner()
    sets = ["data.train_limit=2000", "data.vocab_size=1000", "model.num_encoder_layers=1",
            "model.num_decoder_layers=1", "model.d_model=64", "model.dim_feedforward=128", "train.epochs=1",
            "schedule.warmup_steps=5", "eval.bleu_subset=100"]
    res = runner.invoke(app, ["train", str(ROOT / "configs" / "transformer_multi30k.yaml"), "--data-root",
                              str(m30k_root), "--runs-dir", str(tmp_path / "runs")]
                        + [a for s in sets for a in ("--set", s)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "runs").iterdir())
    test = json.loads((run / "summary.json").read_text())["test"]
    assert {"loss", "ppl", "bleu", "bleu_beam"} <= set(test) and 0 <= test["bleu"] <= 100
    assert (run / "artifacts" / "tokenizer.json").is_file()
    res = runner.invoke(app, ["eval", str(run), "--task", "beam", "--data-root", str(m30k_root)],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "bleu" in res.output
    res = runner.invoke(app, ["translate", str(run), "Ein Mann fährt Fahrrad.", "--beam", "2", "--max-len", "20"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.strip()
