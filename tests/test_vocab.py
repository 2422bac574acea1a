"""Vocab: ordering, min_count / max_size, specials, encode/decode and JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from npdl.data.vocab import DEFAULT_SPECIALS, PAD, UNK, UnknownTokenError, Vocab, VocabError

CORPUS = [["b", "a", "c", "a"], ["c", "d", "a", "e"], ["d", "b"]]
# counts: a=3, b=2, c=2, d=2, e=1; first appearance order: b, a, c, d, e


def test_build_orders_by_count_then_first_appearance():
    v = Vocab.build(CORPUS, specials=(PAD, UNK))
    assert v.tokens == (PAD, UNK, "a", "b", "c", "d", "e")
    assert v.counts.tolist() == [0, 0, 3, 2, 2, 2, 1]
    assert v.counts.dtype == np.int64


def test_build_is_deterministic_and_order_sensitive_only_in_ties():
    again = Vocab.build(CORPUS, specials=(PAD, UNK))
    assert again == Vocab.build(CORPUS, specials=(PAD, UNK))
    swapped = Vocab.build([["d", "c", "b"]] + CORPUS, specials=())
    assert swapped.tokens == ("d", "c", "b", "a", "e")  # all four have count 3: first sight wins


def test_min_count_and_max_size():
    v = Vocab.build(CORPUS, min_count=2, specials=(PAD, UNK))
    assert v.tokens == (PAD, UNK, "a", "b", "c", "d")
    v = Vocab.build(CORPUS, max_size=4, specials=(PAD, UNK))
    assert v.tokens == (PAD, UNK, "a", "b")  # max_size counts the specials
    assert len(Vocab.build(CORPUS, max_size=2, specials=(PAD, UNK))) == 2
    with pytest.raises(VocabError, match="max_size"):
        Vocab.build(CORPUS, max_size=1, specials=(PAD, UNK))
    with pytest.raises(VocabError, match="min_count"):
        Vocab.build(CORPUS, min_count=0)


def test_default_specials_and_ids():
    v = Vocab.build(CORPUS)
    assert v.tokens[:6] == DEFAULT_SPECIALS
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id, v.cls_id, v.sep_id) == (0, 1, 2, 3, 4, 5)
    bare = Vocab.build(CORPUS, specials=())
    assert bare.pad_id is None and bare.unk_id is None and bare.sep_id is None


def test_literal_special_in_corpus_counts_towards_the_special():
    v = Vocab.build([["x", UNK, "x", UNK, UNK]], specials=(PAD, UNK))
    assert v.tokens == (PAD, UNK, "x")
    assert v.counts.tolist() == [0, 3, 2]


def test_encode_decode_and_unknowns():
    v = Vocab.build(CORPUS, specials=(PAD, UNK))
    ids = v.encode(["a", "zzz", "e"])
    assert ids.dtype == np.int64 and ids.tolist() == [2, 1, 6]
    assert v.decode(ids) == ["a", UNK, "e"]
    assert v.decode([]) == [] and v.encode([]).shape == (0,)
    assert "a" in v and "zzz" not in v and len(v) == 7
    assert v.token_to_id("c") == 4 and v.id_to_token(4) == "c"


def test_errors_are_actionable():
    no_unk = Vocab.build(CORPUS, specials=(PAD,))
    with pytest.raises(UnknownTokenError, match="not in the vocabulary"):
        no_unk.encode(["a", "zzz"])
    assert isinstance(UnknownTokenError("x"), (ValueError, KeyError))
    v = Vocab.build(CORPUS)
    with pytest.raises(VocabError, match="out of range"):
        v.decode([0, len(v)])
    with pytest.raises(VocabError, match="out of range"):
        v.decode([-1])
    with pytest.raises(VocabError, match="integers"):
        v.decode([0.5])
    with pytest.raises(VocabError, match="not a str"):
        v.encode("abc")
    with pytest.raises(VocabError, match="tokenize"):
        Vocab.build(["abc", "def"])
    with pytest.raises(VocabError, match="unique"):
        Vocab(["a", "a"])
    with pytest.raises(VocabError, match="not among the tokens"):
        Vocab(["a"], specials=[PAD])


def test_counts_are_read_only():
    v = Vocab.build(CORPUS)
    with pytest.raises(ValueError):
        v.counts[0] = 5


def test_json_round_trip():
    v = Vocab.build(CORPUS + [["Mädchen", "über"]])
    text = json.dumps(v.to_dict(), ensure_ascii=False)
    back = Vocab.from_dict(json.loads(text))
    assert back == v and back.unk_id == v.unk_id
    assert back.counts.tolist() == v.counts.tolist()
    with pytest.raises(VocabError, match="tokens"):
        Vocab.from_dict({"counts": []})
    with pytest.raises(VocabError, match="counts"):
        Vocab.from_dict({"tokens": ["a"], "counts": ["1"]})
