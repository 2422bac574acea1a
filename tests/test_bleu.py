"""BLEU: hand-computed values, 13a tokenization, and equality with sacrebleu (if installed)."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdl.train.bleu import BleuError, BleuScore, corpus_bleu, sentence_bleu, tokenize_13a

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multi30k"


# ------------------------------------------------------------------ by hand
def test_hand_computed_corpus_bleu():
    # p1 = 5/6 (the x2, cat, on, mat), p2 = 3/5, p3 = 1/4, p4 = 0/3 -> exp smoothing 1/(2*3)
    # BLEU = (5/6 * 3/5 * 1/4 * 1/6) ** (1/4) = 48 ** -0.25, BP = 1.
    b = corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"])
    assert b.counts == [5, 3, 1, 0] and b.totals == [6, 5, 4, 3]
    assert b.precisions == pytest.approx([500 / 6, 60.0, 25.0, 100 / 6], abs=1e-12)
    assert b.score == pytest.approx(100 * 48 ** -0.25, abs=1e-9)
    assert (b.bp, b.sys_len, b.ref_len) == (1.0, 6, 6)


def test_hand_computed_brevity_penalty_and_clipping():
    # Clipping: "the" appears 3x in the hypothesis but at most 2x in a reference.
    b = corpus_bleu(["the the the"], ["the cat the dog"])
    assert b.counts[0] == 2 and b.totals[0] == 3
    assert b.bp == pytest.approx(math.exp(1 - 4 / 3))
    # A 2-token hypothesis has no trigrams: corpus BLEU is 0, sentence BLEU (effective
    # order) averages orders 1-2 only: BP * sqrt(100 * 100).
    assert corpus_bleu(["the cat"], ["the cat sat"]).score == 0.0
    assert sentence_bleu("the cat", "the cat sat").score == pytest.approx(100 * math.exp(1 - 3 / 2))


def test_multiple_references_closest_length_and_clipping():
    # Streams: refs[k][i]. Lengths 3 and 5 are both 1 away from 4: the shorter one is used.
    b = corpus_bleu(["a b c d"], [["a b c"], ["a b c d e"]])
    assert b.ref_len == 3 and b.bp == 1.0 and b.score == pytest.approx(100.0)
    b = corpus_bleu(["x y z", "a b c d"], [["x y z", "a b"], [None, "a b c d"]])
    assert b.ref_len == 3 + 4 and b.score == pytest.approx(100.0)


def test_empty_hypothesis_and_no_matches():
    b = corpus_bleu([""], ["a b c"])
    assert b.score == 0.0 and b.bp == 0.0 and b.sys_len == 0
    b = corpus_bleu(["x y z w"], ["a b c d"])
    assert b.score == 0.0 and b.precisions == [0.0] * 4


def test_str_format():
    b = BleuScore(34.2123, [65.08, 41.23, 28.0, 19.94], 0.98093, 12345, 12584)
    assert str(b) == ("BLEU = 34.21 65.1/41.2/28.0/19.9 (BP = 0.981 ratio = 0.981 "
                      "hyp_len = 12345 ref_len = 12584)")


def test_13a_tokenization_rules():
    assert tokenize_13a("Hello, world! It's 3.5-4 km.") == "Hello , world ! It's 3.5 - 4 km ."
    assert tokenize_13a("&quot;A&quot; &amp; B&lt;C") == '" A " & B < C'
    assert tokenize_13a("end-\nof line\n<skipped>x") == "endof line x"
    assert tokenize_13a("1,000.50 e.g. U.S.") == "1,000.50 e . g . U . S ."


def test_bad_arguments():
    with pytest.raises(BleuError, match="streams"):
        corpus_bleu(["a", "b"], [["a", "b", "c"]])
    with pytest.raises(BleuError, match="at least one hypothesis"):
        corpus_bleu([], [])
    with pytest.raises(BleuError, match="tokenize"):
        corpus_bleu(["a"], ["a"], tokenize="intl")
    with pytest.raises(BleuError, match="smooth"):
        corpus_bleu(["a"], ["a"], smooth="magic")
    with pytest.raises(BleuError, match="sentence_bleu"):
        corpus_bleu("a b", ["a b"])
    with pytest.raises(BleuError, match="at least one reference"):
        corpus_bleu(["a"], [[None]])


# ------------------------------------------------------------------ vs sacrebleu
@pytest.fixture(scope="module")
def sacrebleu():
    return pytest.importorskip("sacrebleu")


def _same(ours: BleuScore, theirs, check_counts: bool = True) -> None:
    assert ours.score == pytest.approx(theirs.score, abs=1e-9, rel=0)
    assert ours.precisions == pytest.approx(list(theirs.precisions), abs=1e-9, rel=0)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    if check_counts:
        assert (ours.counts, ours.totals) == (list(theirs.counts), list(theirs.totals))
        assert str(ours) == str(theirs)


FIXED = [
    (["The cat sat on the mat.", "It is raining!"], [["The cat is on the mat.", "It rains."]]),
    (["A man, in a (red) hat; eats: 3.5 apples -- or 1,000?!", "\"Quoted\" &amp; 'single' text..."],
     [["A man in a red hat eats 3.5 apples, or 1,000!", "\"Quoted\" & 'single' text."]]),
    (["Ein Mädchen läuft über die Straße.", "Zwei Hunde spielen."],
     [["Ein Mädchen geht über die Straße.", "Zwei Hunde spielen im Schnee."],
      ["Ein junges Mädchen läuft über eine Straße.", None]]),
    (["", "short"], [["a reference that is long", "short"]]),
    (["THE Cat", "über ALLES"], [["the cat sat", "Über alles"]]),
    (["a b c d e f g h", "x"], [["a b c d", "x y z"], ["a b c d e f g h i", "x y"], ["b c", "z"]]),
]


@pytest.mark.parametrize("hyps,refs", FIXED)
@pytest.mark.parametrize("options", [{}, {"lowercase": True}, {"tokenize": "none"},
                                     {"smooth": "none"}, {"smooth": "floor", "smooth_value": 0.2},
                                     {"effective_order": True}])
def test_corpus_bleu_matches_sacrebleu_on_fixed_examples(sacrebleu, hyps, refs, options):
    theirs_opts = dict(options)
    if "smooth" in theirs_opts:
        theirs_opts["smooth_method"] = theirs_opts.pop("smooth")
    if "effective_order" in theirs_opts:
        theirs_opts["use_effective_order"] = theirs_opts.pop("effective_order")
    _same(corpus_bleu(hyps, refs, **options), sacrebleu.corpus_bleu(hyps, refs, **theirs_opts))


def test_add_k_matches_sacrebleu_score(sacrebleu):
    hyps, refs = FIXED[0]
    # sacrebleu reports add-k counts with k added in; ours are the raw counts
    _same(corpus_bleu(hyps, refs, smooth="add-k"),
          sacrebleu.corpus_bleu(hyps, refs, smooth_method="add-k"), check_counts=False)


def test_single_list_of_references_is_one_stream(sacrebleu):
    hyps, refs = FIXED[1]
    _same(corpus_bleu(hyps, refs[0]), sacrebleu.corpus_bleu(hyps, refs))


def _perturb(line: str, rng: random.Random) -> str:
    words = line.split()
    words = [w for w in words if rng.random() > 0.15]  # drop ~15% of the words
    for _ in range(rng.randint(0, 2)):  # and swap a couple of neighbours
        if len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def test_matches_sacrebleu_on_multi30k_val(sacrebleu):
    path = DATA / "val.en"
    if not path.exists():
        pytest.skip(f"Multi30k not found at {DATA} (run the data download first)")
    refs = path.read_text(encoding="utf-8").splitlines()[:400]
    rng = random.Random(1234)
    hyps = [_perturb(line, rng) for line in refs]
    second = [_perturb(line, rng) for line in refs]  # a second, noisier reference stream
    _same(corpus_bleu(hyps, refs), sacrebleu.corpus_bleu(hyps, [refs]))
    _same(corpus_bleu(hyps, [refs, second], lowercase=True),
          sacrebleu.corpus_bleu(hyps, [refs, second], lowercase=True))
    for hyp, ref, ref2 in list(zip(hyps, refs, second))[:150]:
        _same(sentence_bleu(hyp, [ref, ref2]), sacrebleu.sentence_bleu(hyp, [ref, ref2]))


PUNCT_TEXT = st.text(alphabet="ab1 9.,-'\"&;:<>/()$%!?{}[]~`^_@#=+*|\\\näü", max_size=25)


@settings(max_examples=150, deadline=None)
@given(PUNCT_TEXT, PUNCT_TEXT)
def test_punctuation_heavy_text_matches_sacrebleu(hyp, ref):
    sacrebleu = pytest.importorskip("sacrebleu")
    _same(corpus_bleu([hyp], [ref]), sacrebleu.corpus_bleu([hyp], [[ref]]))
    _same(sentence_bleu(hyp, ref), sacrebleu.sentence_bleu(hyp, [ref]))
