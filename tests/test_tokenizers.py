"""WordTokenizer and byte-level BPETokenizer: rules, hand-checked merges, round trips, JSON."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdl.data import bpe
from npdl.data.tokenizers import (BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, BPETokenizer,
                                  NotFittedError, ReservedTokenError, SequenceTooLongError,
                                  TokenizerError, TokenizerFormatError, WordTokenizer, load_tokenizer,
                                  tokenizer_from_dict)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multi30k"
GERMAN = ["Ein Mädchen in einem rosa Kleid klettert in ein Spielhaus.",
          "Zwei Männer stehen vor einem Geschäft und trinken Kaffee.",
          "Ein Hund läuft über die Straße, ohne zu schauen!"]
ENGLISH = ["A man in a blue shirt is standing on a ladder.",
           "Two young, White males are outside near many bushes.",
           "A girl's T-shirt says \"don't worry\" (in red)."]
WORD = st.text(alphabet="abcdeäöüßxyzABCÄÖÜ", min_size=1, max_size=8)
MESSY = st.text(alphabet="aäbB zZ1 2.,!?;:'\"-()$„“”é\u0301\n\t", max_size=40)


def test_special_ids_are_fixed():
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>", "<cls>", "<sep>")
    for tok in (WordTokenizer().fit(ENGLISH), BPETokenizer(300).fit(ENGLISH)):
        assert tok.vocab.tokens[:6] == SPECIAL_TOKENS
        assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.cls_id, tok.sep_id) == (0, 1, 2, 3, 4, 5)


# ------------------------------------------------------------------ WordTokenizer
def test_word_tokenize_rules():
    tok = WordTokenizer()
    assert tok.tokenize("Don't stop, it's a T-shirt!") == ["don't", "stop", ",", "it's", "a", "t-shirt", "!"]
    assert tok.tokenize("It costs $3.50 (approx.) at 10:30.") == [
        "it", "costs", "$", "3.50", "(", "approx", ".", ")", "at", "10:30", "."]
    assert WordTokenizer(lowercase=False).tokenize("Ein Mädchen") == ["Ein", "Mädchen"]
    assert WordTokenizer(split_punct=False).tokenize("Hello,  world !") == ["hello,", "world", "!"]
    # NFC: a decomposed umlaut is the same word as the composed one
    assert tok.tokenize("Ma\u0308dchen") == tok.tokenize("Mädchen") == ["mädchen"]


@pytest.mark.parametrize("text", ENGLISH + GERMAN + [
    "Ein Mädchen sagt: „Schön!“", "He said 'hi' to me... and left?", "50% of [the] $5 {bills}."])
def test_word_decode_reproduces_normalised_text(text):
    tok = WordTokenizer().fit([text])
    assert tok.decode(tok.encode(text)) == text.lower()


def test_word_vocab_size_min_count_and_unknowns():
    tok = WordTokenizer(vocab_size=8, min_count=1).fit(["a a a b b c", "a b"])
    assert tok.vocab.tokens[6:] == ("a", "b")
    assert tok.encode("a c zz") == [6, UNK_ID, UNK_ID]
    assert tok.decode(tok.encode("a c.")) == "a <unk> <unk>"  # '.' was never seen either
    assert WordTokenizer(min_count=2).fit(["a a b"]).vocab.tokens[6:] == ("a",)
    with pytest.raises(TokenizerError, match="vocab_size"):
        WordTokenizer(vocab_size=6)


def test_encode_markers_and_truncation():
    tok = WordTokenizer().fit(["a b c d"])
    a, b, c, d = tok.encode("a b c d")
    assert tok.encode("a b c d", add_bos=True, add_eos=True) == [BOS_ID, a, b, c, d, EOS_ID]
    assert tok.encode("a b c d", add_bos=True, add_eos=True, max_len=4) == [BOS_ID, a, b, EOS_ID]
    assert tok.encode("a b c d", add_eos=True, max_len=3, truncate="left") == [c, d, EOS_ID]
    assert tok.encode("a b", add_bos=True, add_eos=True, max_len=2) == [BOS_ID, EOS_ID]
    with pytest.raises(SequenceTooLongError, match="max_len=3"):
        tok.encode("a b c d", max_len=3, truncate="error")
    with pytest.raises(TokenizerError, match="max_len"):
        tok.encode("a", add_bos=True, add_eos=True, max_len=1)
    with pytest.raises(TokenizerError, match="truncate"):
        tok.encode("a", truncate="middle")
    ids = [BOS_ID, a, PAD_ID, b, EOS_ID, PAD_ID]
    assert tok.decode(ids) == "a b"
    assert tok.decode(ids, skip_special=False) == "<bos> a <pad> b <eos> <pad>"
    assert tok.decode(np.array(ids)) == "a b"


def test_word_reserved_tokens():
    tok = WordTokenizer().fit(["a <pad> b"])  # split_punct: '<', 'pad', '>' are plain text
    assert tok.tokenize("<pad>") == ["<", "pad", ">"]
    assert tok.decode(tok.encode("<pad>"), skip_special=False) == "< pad >"
    assert tok.encode("<pad> <eos>") == tok.vocab.encode(["<", "pad", ">", "<", "eos", ">"]).tolist()
    ws = WordTokenizer(split_punct=False)
    with pytest.raises(ReservedTokenError, match="<pad>"):
        ws.fit(["a <pad> b"])
    ws.fit(["pierre <unk> is here", "<unk> again"])  # PTB style: a literal <unk> means unk
    assert ws.vocab.counts[UNK_ID] == 2
    assert ws.encode("<unk> is") == [UNK_ID, ws.vocab.token_to_id("is")]
    with pytest.raises(ReservedTokenError, match="<bos>"):
        ws.encode("x <BOS> y")


def test_not_fitted_and_bad_input():
    with pytest.raises(NotFittedError, match="fit"):
        WordTokenizer().encode("a")
    with pytest.raises(NotFittedError):
        BPETokenizer(300).decode([7])
    with pytest.raises(TokenizerError, match="single str"):
        WordTokenizer().fit("abc")
    with pytest.raises(TokenizerError, match="str"):
        WordTokenizer().fit(["a"]).encode(["a"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(WORD, st.sampled_from(["", "", ".", ",", "!", "?", ":", ";"])), min_size=1,
                max_size=12))
def test_word_round_trip_property(words):
    """Words separated by single spaces with trailing punctuation decode exactly (lowercased)."""
    text = " ".join(w + p for w, p in words)
    tok = WordTokenizer().fit([text])
    assert tok.decode(tok.encode(text)) == text.lower()


@settings(max_examples=80, deadline=None)
@given(MESSY)
def test_word_decode_is_stable_under_retokenization(text):
    """For arbitrary text, decoding and re-tokenizing reproduces the same tokens."""
    tok = WordTokenizer().fit([text])
    assert tok.tokenize(tok.decode(tok.encode(text))) == tok.tokenize(text)


# ------------------------------------------------------------------ BPE
def test_pretokenize_marks_words_with_leading_space():
    assert bpe.pretokenize("A man's  hat, 42!\n") == ["A", " man's", " ", " hat", ",", " 42", "!", "\n"]
    assert bpe.bytes_to_token(b" \xc3\xa4a") == "\u0120\u01c3\u01a4a"


def test_bpe_hand_computed_merges():
    # Sennrich et al.'s toy corpus as single words (no spaces, so no markers). Pair counts:
    # es=st=9 (tie -> 'e' < 's'), est=9, lo=ow=7 (tie -> 'l'), low=7, ew=ne=(w,est)=6
    # ('e' < 'n' < 'w'), ewest=6, newest=6, then widest (d,est)=(i,d)=(w,i)=3, then er=2, lower=2.
    texts = ["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3
    tok = BPETokenizer(vocab_size=1000, min_frequency=2).fit(texts)
    assert tok.merges == [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w"), ("e", "w"), ("ew", "est"),
                          ("n", "ewest"), ("d", "est"), ("i", "dest"), ("w", "idest"), ("e", "r"),
                          ("low", "er")]
    assert len(tok) == 6 + 256 + 12
    assert tok.tokenize("lowest") == ["low", "est"]
    assert tok.tokenize("newer") == ["n", "ew", "er"]
    # min_frequency=3 stops before er (2) and lower (2)
    assert len(BPETokenizer(vocab_size=1000, min_frequency=3).fit(texts).merges) == 10
    # vocab_size caps the number of merges
    assert BPETokenizer(vocab_size=6 + 256 + 2).fit(texts).merges == [("e", "s"), ("es", "t")]


def test_bpe_leading_space_marker_and_tie_break():
    tok = BPETokenizer(vocab_size=400, min_frequency=2).fit(["ab ab ab", "abc"])
    assert tok.merges == [("a", "b"), ("\u0120", "ab")]
    assert tok.tokenize("ab abc") == ["ab", "\u0120ab", "c"]
    # all pairs seen once: ties broken by byte order, and b' ' (0x20) sorts before letters
    tok = BPETokenizer(vocab_size=6 + 256 + 3, min_frequency=1).fit(["ab cd"])
    assert tok.merges == [("\u0120", "c"), ("\u0120c", "d"), ("a", "b")]


def test_bpe_training_is_independent_of_corpus_order():
    texts = ENGLISH + GERMAN
    assert BPETokenizer(400, min_frequency=1).fit(texts).merges == \
        BPETokenizer(400, min_frequency=1).fit(texts[::-1]).merges


def test_bpe_counts_match_encoding_of_the_training_corpus():
    texts = ENGLISH * 3 + GERMAN * 2
    tok = BPETokenizer(420, min_frequency=2).fit(texts)
    ids = np.concatenate([tok.encode(t) for t in texts])
    assert np.bincount(ids, minlength=len(tok)).tolist() == tok.vocab.counts.tolist()


def test_bpe_reserved_and_unseen_characters_are_plain_text():
    tok = BPETokenizer(300).fit(ENGLISH)
    text = "<pad> über 日本 🙂 <unk><eos>"
    ids = tok.encode(text)
    assert min(ids) >= len(SPECIAL_TOKENS)
    assert tok.decode(ids) == text
    assert tok.decode([BOS_ID] + ids + [EOS_ID, PAD_ID]) == text
    assert tok.decode([BOS_ID, UNK_ID] + tok.encode("a"), skip_special=False) == "<bos><unk>a"
    assert tok.decode([6 + 0xC3]) == "\ufffd"  # a lone UTF-8 lead byte
    with pytest.raises(TokenizerError, match="vocab_size"):
        BPETokenizer(261)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60), st.booleans())
def test_bpe_round_trip_property(text, lowercase):
    tok = BPETokenizer(330, lowercase=lowercase, min_frequency=1).fit(GERMAN + [text])
    assert "".join(bpe.pretokenize(text)) == text
    expected = text.lower() if lowercase else text
    assert tok.decode(tok.encode(text)) == expected
    assert tok.decode(tok.encode(text + " " + GERMAN[0])) == (expected + " " + GERMAN[0].lower()
                                                              if lowercase else text + " " + GERMAN[0])


# ------------------------------------------------------------------ serialisation
@pytest.mark.parametrize("make", [lambda: WordTokenizer(vocab_size=50).fit(ENGLISH + GERMAN),
                                  lambda: WordTokenizer(split_punct=False, lowercase=False).fit(GERMAN),
                                  lambda: BPETokenizer(350, lowercase=True).fit(ENGLISH + GERMAN)])
def test_save_load_round_trip(tmp_path, make):
    tok = make()
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == tok.type_name and data == tok.to_dict()
    for back in (load_tokenizer(path), type(tok).load(path), tokenizer_from_dict(json.loads(json.dumps(data)))):
        assert type(back) is type(tok) and back.vocab == tok.vocab
        for text in ENGLISH + GERMAN + ["Völlig neue Wörter <pad>!"]:
            assert back.encode(text) == tok.encode(text)
            assert back.decode(back.encode(text)) == tok.decode(tok.encode(text))


def test_load_rejects_bad_files(tmp_path):
    word = WordTokenizer().fit(ENGLISH).to_dict()
    with pytest.raises(TokenizerFormatError, match="unknown tokenizer type"):
        tokenizer_from_dict({**word, "type": "pickle"})
    with pytest.raises(TokenizerFormatError, match="expected a 'bpe'"):
        BPETokenizer.from_dict(word)
    with pytest.raises(TokenizerFormatError, match="format_version"):
        tokenizer_from_dict({**word, "format_version": 99})
    with pytest.raises(TokenizerFormatError, match="config"):
        tokenizer_from_dict({**word, "config": {"bogus": 1}})
    bpe_dict = BPETokenizer(300).fit(ENGLISH).to_dict()
    with pytest.raises(TokenizerFormatError, match="merge"):
        tokenizer_from_dict({**bpe_dict, "merges": [["x", "nonsense"]]})
    path = tmp_path / "bad.json"
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(TokenizerFormatError, match="JSON"):
        load_tokenizer(path)
    unfitted = tokenizer_from_dict(BPETokenizer(300).to_dict())
    assert unfitted.vocab is None


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def multi30k_train():
    path = DATA / "train.en"
    if not path.exists():
        pytest.skip(f"Multi30k not found at {DATA} (run the data download first)")
    return path.read_text(encoding="utf-8").splitlines()


def test_bpe_trains_on_multi30k_and_round_trips(multi30k_train):
    start = time.perf_counter()
    tok = BPETokenizer(8000).fit(multi30k_train)
    print(f"BPE training on {len(multi30k_train)} sentences: {time.perf_counter() - start:.2f}s")
    assert len(tok) == 8000
    val = (DATA / "val.en").read_text(encoding="utf-8").splitlines()
    for line in val + (DATA / "val.de").read_text(encoding="utf-8").splitlines()[:200]:
        assert tok.decode(tok.encode(line)) == line
    ids = np.concatenate([tok.encode(t) for t in multi30k_train])
    assert np.bincount(ids, minlength=len(tok)).tolist() == tok.vocab.counts.tolist()


def test_word_tokenizer_on_multi30k(multi30k_train):
    tok = WordTokenizer(vocab_size=5000).fit(multi30k_train)
    assert len(tok) == 5000
    exact = 0
    for line in multi30k_train[:3000]:
        ids = tok.encode(line)
        if UNK_ID not in ids:
            assert tok.tokenize(tok.decode(ids)) == tok.tokenize(line)
            exact += tok.decode(ids) == line.lower()
    assert exact > 2500  # the rest are e.g. "&amp;" -> "& amp;" or "#19" -> "# 19"
