"""BLEU (Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of Machine Translation").

Scores agree with sacrebleu's defaults (Post 2018, "A Call for Clarity in Reporting BLEU
Scores", arXiv:1804.08771): mteval-v13a tokenization, n-grams up to 4, "exp" smoothing,
corpus-level statistics, closest reference length for the brevity penalty.

BLEU = BP * exp(mean_n log p_n), p_n = clipped n-gram matches / hypothesis n-grams (summed
over the corpus), BP = min(1, exp(1 - r/c)) with c = hypothesis length and r = the sum of
the reference lengths closest to each hypothesis length (shorter one on ties).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_ORDER = 4


class BleuError(ValueError):
    """Invalid arguments to a BLEU function."""


# --------------------------------------------------------------- tokenization
# Rules of the NIST mteval-v13a.pl script, "language-dependent part" of tokenization():
# punctuation/symbols become tokens; '.' and ',' are split off unless they sit between digits;
# '-' is split off after a digit. Apostrophes and other hyphens are left inside words.
_13A_RULES = (
    # ASCII symbols: { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma not preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma not followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),       # dash preceded by a digit
)
# SGML entities the script decodes first, in this order (so "&amp;lt;" ends up as "<").
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenization of one segment; tokens joined by single spaces."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in _ENTITIES:
            line = line.replace(entity, char)
    line = f" {line} "  # the script pads, which matters for a leading ".5" -> ". 5"
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def tokenize_none(line: str) -> str:
    """No tokenization: split on whitespace only."""
    return " ".join(line.split())


TOKENIZERS = {"13a": tokenize_13a, "none": tokenize_none}
SMOOTH_DEFAULTS = {"none": None, "exp": None, "floor": 0.1, "add-k": 1.0}


# --------------------------------------------------------------- statistics
def _ngrams(tokens: Sequence[str], max_order: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, max_order + 1)
                   for i in range(len(tokens) - n + 1))


def _closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    # Closest reference length; on a tie the shorter reference (as mteval / sacrebleu).
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def _segment_stats(hyp: list[str], refs: list[list[str]], max_order: int
                   ) -> tuple[int, int, list[int], list[int]]:
    """(hyp_len, ref_len, matches per order, hypothesis n-grams per order) of one segment."""
    max_ref_counts: Counter = Counter()
    for ref in refs:
        max_ref_counts |= _ngrams(ref, max_order)  # union = element-wise max (clipping)
    correct, total = [0] * max_order, [0] * max_order
    for ngram, count in _ngrams(hyp, max_order).items():
        n = len(ngram)
        total[n - 1] += count
        correct[n - 1] += min(count, max_ref_counts.get(ngram, 0))
    return len(hyp), _closest_ref_len(len(hyp), [len(r) for r in refs]), correct, total


@dataclass
class BleuScore:
    """A BLEU result; ``score`` and ``precisions`` are percentages (0-100).

    Attributes:
        score: BLEU in [0, 100].
        precisions: the (smoothed) n-gram precisions p_1..p_4, in percent.
        bp: brevity penalty.
        sys_len / ref_len: hypothesis tokens and effective reference tokens.
        counts / totals: clipped matches and hypothesis n-grams per order.
    """

    score: float
    precisions: list[float]
    bp: float
    sys_len: int
    ref_len: int
    counts: list[int] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Hypothesis / reference length (0 when the references are empty)."""
        return self.sys_len / self.ref_len if self.ref_len else 0.0

    def __str__(self) -> str:
        precs = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precs} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
                f"hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})")


def _score_from_stats(correct: list[int], total: list[int], sys_len: int, ref_len: int,
                      smooth: str, smooth_value: float | None, effective_order: bool) -> BleuScore:
    order = len(correct)
    counts, totals = list(correct), list(total)
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    else:
        bp = 1.0
    precisions = [0.0] * order
    if correct[0] == 0:  # no unigram matches: BLEU is 0 whatever the smoothing
        return BleuScore(0.0, precisions, bp, sys_len, ref_len, counts, totals)
    correct, total = [float(c) for c in correct], [float(t) for t in total]
    eff_order, exp_denominator = order, 1.0
    for n in range(order):
        if smooth == "add-k" and n > 0:  # Lin & Och 2004: add k to both, for n > 1
            correct[n] += smooth_value
            total[n] += smooth_value
        if total[n] == 0:
            break  # the hypotheses are too short for this order (and all higher ones)
        if effective_order:  # average only over the orders the hypotheses can have
            eff_order = n + 1
        if correct[n] == 0:
            if smooth == "exp":  # NIST mteval: 1 / 2^k for the k-th order with no match
                exp_denominator *= 2
                precisions[n] = 100.0 / (exp_denominator * total[n])
            elif smooth == "floor":  # replace a zero match count by smooth_value
                precisions[n] = 100.0 * smooth_value / total[n]
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    # log(0) would be -inf; a huge negative gives the same exp(...) == 0 without warnings
    logs = [math.log(p) if p > 0 else -9999999999.0 for p in precisions[:eff_order]]
    score = bp * math.exp(sum(logs) / eff_order)
    return BleuScore(score, precisions, bp, sys_len, ref_len, counts, totals)


def _check_options(tokenize: str, smooth: str, smooth_value: float | None) -> float | None:
    if tokenize not in TOKENIZERS:
        raise BleuError(f"unknown tokenize={tokenize!r}; choose from {sorted(TOKENIZERS)}")
    if smooth not in SMOOTH_DEFAULTS:
        raise BleuError(f"unknown smooth={smooth!r}; choose from {sorted(SMOOTH_DEFAULTS)}")
    return SMOOTH_DEFAULTS[smooth] if smooth_value is None else smooth_value


def _reference_sets(n_hyps: int, references) -> list[list[str]]:
    """Per-hypothesis lists of references from a single list or from reference streams."""
    if isinstance(references, str) or not isinstance(references, (list, tuple)):
        raise BleuError("references must be a list of str (one per hypothesis) or a list of "
                        "reference streams (lists of str, each as long as hypotheses)")
    if all(isinstance(r, str) for r in references):
        streams = [references]
    else:
        streams = list(references)
    for k, stream in enumerate(streams):
        if isinstance(stream, str) or not isinstance(stream, (list, tuple)) or len(stream) != n_hyps:
            got = len(stream) if isinstance(stream, (list, tuple)) else type(stream).__name__
            raise BleuError(f"reference stream {k} has {got} entries but there are {n_hyps} "
                            f"hypotheses; multiple references are given as streams "
                            f"(references[k][i] is the k-th reference of hypothesis i), as in sacrebleu")
    sets = []
    for i, refs in enumerate(zip(*streams)):
        refs = [r for r in refs if r is not None]  # None = no k-th reference for this segment
        if not refs or not all(isinstance(r, str) for r in refs):
            raise BleuError(f"hypothesis {i} needs at least one reference, and references must be str")
        sets.append(refs)
    return sets


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str | None]],
                tokenize: str = "13a", lowercase: bool = False, smooth: str = "exp",
                smooth_value: float | None = None, effective_order: bool = False) -> BleuScore:
    """Corpus-level BLEU, equal to ``sacrebleu.corpus_bleu`` with the same options.

    Args:
        hypotheses: one detokenized system output per segment.
        references: either one reference per segment (a list of str as long as
            ``hypotheses``), or several reference *streams* as in sacrebleu:
            ``references[k][i]`` is the k-th reference of segment ``i``; a ``None`` entry
            means segment ``i`` has no k-th reference.
        tokenize: "13a" (mteval-v13a, the WMT standard) or "none" (whitespace only).
        lowercase: lowercase hypotheses and references first (case-insensitive BLEU).
        smooth: "exp" (default), "none", "floor" or "add-k" (Chen & Cherry 2014).
        smooth_value: the floor / k for "floor" (default 0.1) and "add-k" (default 1).
        effective_order: average only over n-gram orders that the hypotheses have.

    Returns:
        A :class:`BleuScore`.

    Raises:
        BleuError: empty corpus, mismatched lengths, non-str items or unknown options.
    """
    smooth_value = _check_options(tokenize, smooth, smooth_value)
    if isinstance(hypotheses, str) or not isinstance(hypotheses, (list, tuple)):
        raise BleuError("hypotheses must be a list of str (use sentence_bleu for one segment)")
    if not hypotheses:
        raise BleuError("corpus_bleu needs at least one hypothesis")
    if not all(isinstance(h, str) for h in hypotheses):
        raise BleuError("hypotheses must all be str")
    ref_sets = _reference_sets(len(hypotheses), references)
    tok = TOKENIZERS[tokenize]

    def prepare(text: str) -> list[str]:
        # sacrebleu strips trailing whitespace before tokenizing (it matters for "-\n")
        return tok((text.lower() if lowercase else text).rstrip()).split()

    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    sys_len = ref_len = 0
    for hyp, refs in zip(hypotheses, ref_sets):
        h_len, r_len, c, t = _segment_stats(prepare(hyp), [prepare(r) for r in refs], MAX_ORDER)
        sys_len, ref_len = sys_len + h_len, ref_len + r_len
        correct = [a + b for a, b in zip(correct, c)]
        total = [a + b for a, b in zip(total, t)]
    return _score_from_stats(correct, total, sys_len, ref_len, smooth, smooth_value, effective_order)


def sentence_bleu(hypothesis: str, references: str | Sequence[str], tokenize: str = "13a",
                  lowercase: bool = False, smooth: str = "exp",
                  smooth_value: float | None = None) -> BleuScore:
    """BLEU of one segment, equal to ``sacrebleu.sentence_bleu`` (effective order on).

    Args:
        hypothesis: the system output.
        references: one reference or a list of references for it.

    Raises:
        BleuError: as :func:`corpus_bleu`.
    """
    refs = [references] if isinstance(references, str) else list(references)
    return corpus_bleu([hypothesis], [[r] for r in refs], tokenize=tokenize, lowercase=lowercase,
                       smooth=smooth, smooth_value=smooth_value, effective_order=True)
