"""Word2vec corpora: vocabulary, frequent-word subsampling, the negative-sampling distribution
and the loader that cuts an epoch into batches (Mikolov et al. 2013, arXiv:1301.3781 and
arXiv:1310.4546; the released word2vec.c fixes the details the papers leave open).

* Vocabulary: words seen at least ``min_count`` times, at most ``max_vocab`` of them, ids by
  descending count (ties: first appearance). Other words are dropped before windowing, as in
  word2vec.c, so a window reaches over them. Saved as JSON in the run (``w2v_vocab.json``).
* Subsampling (paper sec. 2.3, threshold t = ``sample``, f = count / total): word2vec.c and
  gensim keep a word with probability ``sqrt(t/f) + t/f`` (``subsample: word2vec``, the default,
  so that ``sample`` means what it means there); ``subsample: paper`` keeps ``sqrt(t/f)``, i.e.
  discards with the paper's ``1 - sqrt(t/f)``. Both are capped at 1.
* Negatives: unigram counts to the power 3/4, normalised (paper sec. 2.2). A CDF and
  ``searchsorted`` draw exactly from it (word2vec.c uses a 10^8-entry table instead).
* Batches: an epoch is a pure function of (seed, epoch): one subsampling pass over the corpus,
  then ``streams`` far-apart stripes of it are advanced together, one piece of each per batch.
  This is what word2vec.c's threads do (each starts at its own file offset): a batch then never
  holds one article's burst of the same rare word, whose summed update overshoots where
  sequential SGD would not. Measured on the text8 prefix (CBOW, 2,000-word batches, 5 epochs):
  contiguous batches diverge; 64 streams reach 7.4% analogy accuracy (gensim: 8.2-8.7%; with
  a 128-word negative pool, 8.6%). Windows never cross a piece or a sentence (with ~23 kept
  words per piece that drops ~10% of the pairs, at the pieces' ends);
  the reduced window b ~ U{1..window} is drawn per centre word (word2vec.c's ``rand % window``).

``batch_size`` counts corpus words (in-vocabulary, before subsampling) per optimizer step, so
the number of steps per epoch is known before the epoch is drawn and the linear learning-rate
decay follows the words processed, as word2vec's alpha does. A word's updates within a step are
summed: with a tiny vocabulary (every word many times per batch) lower ``batch_size`` or the lr
(the tests' 20-word corpus uses 100-word batches and lr 0.01).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from npdl.data import download, parsers
from npdl.data.datasets import Dataset
from npdl.data.loader import epoch_rng
from npdl.data.sources import DataError
from npdl.data.vocab import Vocab
from npdl.registry import DATASETS
from npdl.schema import NonNegativeFloat, PositiveFloat, PositiveInt

VOCAB_FILE = "w2v_vocab.json"
_CHUNK_WORDS = 1 << 20  # words per chunk while counting/encoding (keeps ~50 MB of str objects alive)


class W2VBatch(NamedTuple):
    """One step of word2vec training.

    words: (N,) int64 ids of the kept words, pieces of every stream one after another.
    window: (N,) int64 reduced window b_t in 1..window of each centre word.
    segment: (N,) int64 nondecreasing; a window never reaches a word of another segment.
    seed: seeds the negatives of this batch (``np.random.default_rng(seed)``), so a resumed
        run draws what an uninterrupted one drew.
    raw_words: corpus words this batch stands for (before subsampling), for throughput.
    """

    words: np.ndarray
    window: np.ndarray
    segment: np.ndarray
    seed: tuple[int, ...]
    raw_words: int


def keep_probability(counts: np.ndarray, sample: float, formula: str = "word2vec") -> np.ndarray:
    """(V,) probability of keeping each word when subsampling with threshold ``sample`` (0: keep all).

    word2vec: min(1, sqrt(t/f) + t/f) (word2vec.c, gensim); paper: min(1, sqrt(t/f)), f = count/total.
    """
    counts = np.asarray(counts, np.float64)
    if sample <= 0 or counts.sum() == 0:
        return np.ones(len(counts))
    ratio = sample / np.maximum(counts / counts.sum(), 1e-300)
    keep = np.sqrt(ratio) + (ratio if formula == "word2vec" else 0.0)
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """(V,) P_n(w) = count^power / sum (Mikolov et al. 2013b, sec. 2.2)."""
    p = np.asarray(counts, np.float64) ** power
    return p / p.sum()


class NoiseSampler:
    """Draws negative word ids from P_n by inverse-CDF lookup."""

    def __init__(self, counts: np.ndarray, power: float = 0.75):
        self.cdf = np.cumsum(noise_distribution(counts, power))
        self.cdf[-1] = 1.0

    def draw(self, shape, rng: np.random.Generator) -> np.ndarray:
        """int64 ids of the given shape."""
        return np.searchsorted(self.cdf, rng.random(shape), side="right").astype(np.int64)


class CorpusLoader:
    """The batches of one epoch (see the module docstring); order is a pure function of (seed, epoch).

    corpus: returns (ids (n,) int32, sentence index (n,) or None); called on the first epoch, so
    a loader made for ``len()`` alone (evaluation of a saved run) never reads the corpus.
    """

    def __init__(self, corpus, n_words: int, keep: np.ndarray, batch_size: int, streams: int, window: int):
        self.corpus, self.n_words, self.keep = corpus, n_words, keep.astype(np.float32)
        self.streams, self.window = streams, window
        self.n_batches = max(1, -(-n_words // batch_size))
        self._epoch = None

    def __len__(self) -> int:
        return self.n_batches

    def draw_epoch(self, seed: int, epoch: int) -> None:
        """Subsample the whole corpus once per epoch and split what is kept into stripes."""
        if self._epoch == (seed, epoch):
            return
        ids, sentence = self.corpus()
        rng = epoch_rng(seed, epoch)
        mask = rng.random(len(ids), dtype=np.float32) < self.keep[ids]
        self.kept = ids[mask].astype(np.int64)
        self.kept_sentence = None if sentence is None else sentence[mask]
        n = len(self.kept)
        stripes = min(self.streams, max(n, 1))
        self.bounds = (np.arange(stripes + 1) * n) // stripes
        self._epoch = (seed, epoch)

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0):
        """Batches ``start, start+1, ...`` of epoch ``epoch`` (``W2VBatch`` each)."""
        self.draw_epoch(seed, epoch)
        lo_b, hi_b, nb = self.bounds[:-1], self.bounds[1:], self.n_batches
        total = max(len(self.kept), 1)
        for b in range(start, nb):
            lo = lo_b + ((hi_b - lo_b) * b) // nb
            lens = lo_b + ((hi_b - lo_b) * (b + 1)) // nb - lo
            lens_all = int(lens.sum())
            first = np.cumsum(lens) - lens                        # where each piece starts in the batch
            idx = np.arange(lens_all) - np.repeat(first - lo, lens)
            new = np.zeros(lens_all, bool)
            new[first[lens > 0]] = True                           # a piece starts a segment ...
            if self.kept_sentence is not None and lens_all:       # ... and so does a sentence
                s = self.kept_sentence[idx]
                new[1:] |= s[1:] != s[:-1]
            rng = np.random.default_rng([seed, epoch, b])
            words = self.kept[idx]
            yield W2VBatch(words, rng.integers(1, self.window + 1, lens_all), np.cumsum(new) - 1,
                           (seed, epoch, b), int(round(self.n_words * lens_all / total)))


class Word2VecCorpus(Dataset):
    """Base of the word2vec corpora: subclasses implement ``read(root) -> list of token lists``.

    Args:
        min_count: drop words seen fewer times. max_vocab: keep at most this many (most frequent).
        sample: subsampling threshold t (0: off). subsample: which keep formula (module docstring).
        window: maximum window radius (word2vec's ``-window``). batch_size: corpus words per step.
        streams: corpus stripes advanced together (module docstring). max_words: use only the
        first words of the corpus (quick runs). ns_exponent: power of the noise distribution.
    """

    task: ClassVar[str] = "word2vec"
    provides: ClassVar[tuple[str, ...]] = ("vocab_size",)
    declared_vocab: ClassVar[int] = 10_000   # vocabulary size at the default min_count, for `npdl check`
    unit: ClassVar[str] = "words"

    def __init__(self, min_count: PositiveInt = 5, max_vocab: PositiveInt | None = None,
                 sample: NonNegativeFloat = 1e-3, subsample: Literal["word2vec", "paper"] = "word2vec",
                 window: PositiveInt = 5, batch_size: PositiveInt = 2000, streams: PositiveInt = 64,
                 max_words: PositiveInt | None = None, ns_exponent: PositiveFloat = 0.75):
        super().__init__(batch_size)
        self.min_count, self.max_vocab, self.sample, self.subsample = min_count, max_vocab, sample, subsample
        self.window, self.streams, self.max_words, self.ns_exponent = window, streams, max_words, ns_exponent
        self.vocab: Vocab | None = None
        self.n_words: int | None = None      # in-vocabulary corpus words
        self.corpus_words: int | None = None  # all corpus words (read, before min_count)
        self._ids = self._sentence = None

    # ---- to implement ------------------------------------------------------------------
    def read(self, root) -> list[list[str]]:
        """The corpus as sentences of tokens (one sentence for a running text like text8)."""
        raise NotImplementedError

    # ---- Dataset -----------------------------------------------------------------------
    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def info(self) -> dict:
        if self.vocab is not None:
            return {"vocab_size": len(self.vocab)}
        return {"vocab_size": min(self.declared_vocab, self.max_vocab or self.declared_vocab)}

    def load(self, root) -> None:
        """Build the vocabulary from the corpus; with a run's restored vocabulary, reading the
        corpus waits until a loader first needs it (evaluating a run does not)."""
        if self.vocab is None or self.n_words is None:
            self._encode(root)

    def _encode(self, root):
        if self._ids is None:
            sentences = self.read(root)
            if self.max_words is not None:
                sentences = _truncate(sentences, self.max_words)
            self.corpus_words = sum(len(s) for s in sentences)
            if self.vocab is None:
                chunks = (s[i:i + _CHUNK_WORDS] for s in sentences for i in range(0, len(s), _CHUNK_WORDS))
                self.vocab = Vocab.build(chunks, min_count=self.min_count, max_size=self.max_vocab, specials=())
            if len(self.vocab) == 0:
                raise DataError(f"no word occurs min_count={self.min_count} times in the corpus; "
                                "lower data.min_count")
            ids, sentence = encode(sentences, self.vocab)
            if len(ids) == 0:
                raise DataError("the corpus has no in-vocabulary words")
            self._ids, self._sentence = ids, (sentence if len(sentences) > 1 else None)
            self.n_words = len(ids)
        return self._ids, self._sentence

    def loader(self, split: str) -> CorpusLoader:
        self._check_split(split)
        if self.vocab is None or self.n_words is None:
            raise DataError("the corpus is not loaded: call prepare() first")
        keep = keep_probability(self.vocab.counts, self.sample, self.subsample)
        return CorpusLoader(lambda: self._encode(self.root), self.n_words, keep, self.batch_size, self.streams,
                            self.window)

    def example_batch(self) -> W2VBatch:
        v = self.info()["vocab_size"]
        words = np.arange(6, dtype=np.int64) % v
        return W2VBatch(words, np.full(6, min(2, self.window), np.int64), np.zeros(6, np.int64), (0, 0, 0), 6)

    def noise(self) -> NoiseSampler:
        return NoiseSampler(self.vocab.counts, self.ns_exponent)

    def save_artifacts(self, run_dir) -> None:
        self.write_json_artifact(run_dir, VOCAB_FILE, {"vocab": self.vocab.to_dict(), "n_words": self.n_words})

    def load_artifacts(self, run_dir) -> None:
        path = Path(run_dir) / VOCAB_FILE
        saved = self.read_json_artifact(run_dir, VOCAB_FILE)
        if saved is None:
            raise DataError(f"{path} is missing: this run has no saved word2vec vocabulary")
        try:
            self.vocab, self.n_words = Vocab.from_dict(saved["vocab"]), saved.get("n_words")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not a word2vec vocabulary ({exc})") from None


def encode(sentences: list[list[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """(ids (n,) int32 of the in-vocabulary tokens, sentence index (n,) int32 of each)."""
    get = {w: i for i, w in enumerate(vocab.tokens)}.get
    ids, sent = [], []
    for k, s in enumerate(sentences):
        for i in range(0, len(s), _CHUNK_WORDS):
            a = np.fromiter((get(w, -1) for w in s[i:i + _CHUNK_WORDS]), np.int32)
            a = a[a >= 0]
            ids.append(a)
            sent.append(np.full(len(a), k, np.int32))
    if not ids:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(ids), np.concatenate(sent)


def _truncate(sentences: list[list[str]], n: int) -> list[list[str]]:
    out = []
    for s in sentences:
        if n <= 0:
            break
        out.append(s[:n])
        n -= len(out[-1])
    return out


@DATASETS.register("text8")
class Text8(Word2VecCorpus):
    """text8: the first 10^8 bytes of cleaned English Wikipedia (17,005,207 words), one running text."""

    source = "text8"
    declared_vocab = 71_290

    def read(self, root):
        return [parsers.load_text8(download.dataset_dir(self.source, root)).split()]


@DATASETS.register("text8_prefix")
class Text8Prefix(Text8):
    """The first 12.5 MB of text8 (2,139,748 words): the corpus the word2vec benchmark runs on."""

    source = "text8_prefix"
    declared_vocab = 22_541


@DATASETS.register("ptb_words")
class PTBWords(Word2VecCorpus):
    """Penn Treebank (Mikolov's version, train split) as a word2vec corpus: one sentence per line."""

    source = "ptb"
    declared_vocab = 9_858

    def read(self, root):
        return [s for s in parsers.load_ptb(download.dataset_dir(self.source, root))["train"] if s]


@DATASETS.register("text_file")
class TextFile(Word2VecCorpus):
    """Your own corpus: a UTF-8 text file (``.gz`` too), one sentence per line, tokens split on whitespace."""

    declared_vocab = 1_000

    def __init__(self, path: str, min_count: PositiveInt = 5, max_vocab: PositiveInt | None = None,
                 sample: NonNegativeFloat = 1e-3, subsample: Literal["word2vec", "paper"] = "word2vec",
                 window: PositiveInt = 5, batch_size: PositiveInt = 2000, streams: PositiveInt = 64,
                 max_words: PositiveInt | None = None, ns_exponent: PositiveFloat = 0.75):
        super().__init__(min_count, max_vocab, sample, subsample, window, batch_size, streams, max_words,
                         ns_exponent)
        self.path = path

    def read(self, root):
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise DataError(f"data.path: corpus file {path} does not exist")
        raw = path.read_bytes()
        try:
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a UTF-8 text file ({exc})") from None
        return [line.split() for line in text.splitlines() if line.strip()]
