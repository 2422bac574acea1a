"""The word2vec task: training steps, the analogy evaluation, neighbours, analogy queries, export.

Evaluation follows word2vec's compute-accuracy: questions-words.txt restricted to the
``analogy_vocab`` (30,000) most frequent words (a question with any word outside is not
covered), vectors normalised once, answer = argmax over the restricted vocabulary of
cos(x, b - a + c) excluding a, b and c (3CosAdd; Mikolov et al. 2013a, sec. 4.1). One GEMM per
block of questions.

Export writes word2vec's text format (a header "V D", then "word v1 ... vD" per line) or its
binary format (the same header, then per word "word " + D little-endian float32 + "\\n"), the
files word2vec.c's -binary 0/1 writes and gensim's ``KeyedVectors.load_word2vec_format`` reads.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
from pathlib import Path

import numpy as np

import npdl
from npdl.atomic import atomic_open
from npdl.core.backend import to_host
from npdl.data import download, parsers
from npdl.data.sources import DataError
from npdl.data.vocab import VocabError
from npdl.schema import PositiveInt
from npdl.train.tasks import Task, register_task


class UnknownWordError(VocabError):
    """A query word is not in the vocabulary; the message suggests close words."""


@dataclasses.dataclass
class AnalogyOptions:
    """The ``eval:`` section of a word2vec config."""

    analogy_vocab: PositiveInt = 30000      # restrict to the most frequent words (compute-accuracy's threshold)
    analogy_file: str | None = None         # default: questions-words.txt of `npdl download analogy`


_BLAS = None


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread while the fused loss runs. Its GEMMs are small (a 1,500 x 64 x 100
    product), and a 2-thread GEMM stalls for a whole scheduler slice whenever one of its threads
    is preempted: 10x slower steps measured on a busy 2-core machine. The loss uses its own
    threads instead (``model.threads``), which degrade gracefully."""
    global _BLAS
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        limiter = _BLAS.limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 - threadpoolctl missing or unusable: run as configured
        limiter = contextlib.nullcontext()
    with limiter:
        yield


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(vectors.dtype).tiny)


def is_semantic(section: str) -> bool:
    """questions-words.txt: the five first sections are semantic, the 'gram*' ones syntactic."""
    return not section.startswith("gram")


def analogy_accuracy(vectors: np.ndarray, words, questions, restrict: int = 30000, block: int = 512) -> dict:
    """3CosAdd accuracy of ``vectors`` (V, D), ids sorted by frequency, on ``questions``
    [(section, (a, b, c, d))]: overall, semantic, syntactic, per section, and coverage."""
    vocab = {w: i for i, w in enumerate(words[:restrict])}
    emb = _normalized(np.asarray(to_host(vectors[:len(vocab)]), np.float32))
    covered = [(s, [vocab[w] for w in q]) for s, q in questions if all(w in vocab for w in q)]
    sections = list(dict.fromkeys(s for s, _ in questions))
    right = {s: 0 for s in sections}
    asked = {s: 0 for s in sections}
    for s, _ in covered:
        asked[s] += 1
    if covered:
        ids = np.array([q for _, q in covered])
        names = [s for s, _ in covered]
        for lo in range(0, len(ids), block):
            a, b, c, d = ids[lo:lo + block].T
            sims = (emb[b] - emb[a] + emb[c]) @ emb.T                     # (q, V)
            rows = np.arange(len(a))
            sims[rows, a] = sims[rows, b] = sims[rows, c] = -np.inf       # compute-accuracy skips a, b, c
            hit = sims.argmax(1) == d
            for i in np.flatnonzero(hit):
                right[names[lo + i]] += 1

    def acc(keys) -> float:
        n = sum(asked[k] for k in keys)
        return sum(right[k] for k in keys) / n if n else 0.0

    sem = [s for s in sections if is_semantic(s)]
    syn = [s for s in sections if not is_semantic(s)]
    return {"accuracy": acc(sections), "semantic": acc(sem), "syntactic": acc(syn),
            "questions": len(covered), "total_questions": len(questions),
            "sections": {s: acc([s]) for s in sections}, "section_questions": dict(asked)}


@register_task
class Word2VecTask(Task):
    """``model.batch_loss(batch, ...)`` -> summed loss; no val/test split (evaluate with
    ``npdl eval RUN --task analogy``)."""

    name = "word2vec"
    default_loss = None
    default_schedule = {"type": "linear"}  # word2vec's linearly decaying learning rate (Mikolov et al. 2013)
    monitor = ("train.loss", "min")
    eval_options = AnalogyOptions

    def __init__(self, model, data, loss_fn=None, options=None):
        super().__init__(model, data, loss_fn, options)
        self._noise = self._ids = None

    @property
    def noise(self):
        if self._noise is None:
            if self.data.vocab is not None:
                self._noise = self.data.noise()
            else:  # `npdl check` before a download: a uniform stand-in over the declared vocabulary
                from npdl.families.word2vec.data import NoiseSampler
                self._noise = NoiseSampler(np.ones(self.model.vocab_size))
        return self._noise

    def train_step(self, batch):
        rng = np.random.default_rng(batch.seed)
        with one_blas_thread():
            loss = self.model.batch_loss(batch, self.noise, self.data.window, rng)
        return loss, batch.raw_words

    def dry_run(self, batch):
        """The reference (explicit pairs) path on a small batch: shows the embeddings in `npdl check`."""
        return self.model.pairs_loss(batch, self.noise, self.data.window, np.random.default_rng(0))

    def evaluate(self, split: str) -> dict[str, float]:
        raise DataError("word2vec runs have no evaluation split; use: npdl eval RUN --task analogy")

    # ---- queries -------------------------------------------------------------------------
    @property
    def words(self) -> tuple[str, ...]:
        if self.data.vocab is None:
            raise VocabError("this run's vocabulary is not loaded (its w2v_vocab.json artifact)")
        return self.data.vocab.tokens

    def word_id(self, word: str) -> int:
        """Id of ``word``. Raises: UnknownWordError naming close words."""
        words = self.words
        if self._ids is None:
            self._ids = {w: i for i, w in enumerate(words)}
        for w in (word, word.lower()):       # text8 and PTB are lowercase; let 'France' find 'france'
            if w in self._ids:
                return self._ids[w]
        close = difflib.get_close_matches(word, words[:50000], n=5, cutoff=0.7)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise UnknownWordError(f"word '{word}' is not in the vocabulary ({len(words):,} words){hint}")

    def _unit(self) -> np.ndarray:
        return _normalized(np.asarray(to_host(self.model.vectors()), np.float32))

    def neighbors(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine similarity to ``word`` (itself excluded)."""
        i = self.word_id(word)
        unit = self._unit()
        return self._top(unit @ unit[i], k, exclude=[i])

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the ``k`` best answers by 3CosAdd (a, b, c excluded)."""
        ids = [self.word_id(w) for w in (a, b, c)]
        unit = self._unit()
        query = unit[ids[1]] - unit[ids[0]] + unit[ids[2]]
        return self._top(unit @ (query / max(np.linalg.norm(query), 1e-12)), k, exclude=ids)

    def _top(self, sims: np.ndarray, k: int, exclude) -> list[tuple[str, float]]:
        sims = sims.copy()
        sims[exclude] = -np.inf
        k = min(k, len(sims) - len(set(exclude)))
        best = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.zeros(0, np.int64)
        best = best[np.argsort(-sims[best])]
        return [(self.words[i], float(sims[i])) for i in best]

    @npdl.no_grad()
    def evaluate_analogy(self) -> dict:
        """compute-accuracy on questions-words.txt (see the module docstring)."""
        path = self.options.analogy_file or download.require("analogy", self.data.root)
        if not Path(path).exists():
            raise DataError(f"eval.analogy_file: {path} does not exist")
        questions = parsers.load_analogy(path)
        return analogy_accuracy(self.model.vectors(), self.words, questions, self.options.analogy_vocab)

    def export(self, path, binary: bool = False) -> Path:
        """Write the word vectors in word2vec's text or binary format; returns the path."""
        return save_word2vec(path, self.words, self.model.vectors(), binary)


def save_word2vec(path, words, vectors: np.ndarray, binary: bool = False) -> Path:
    """Write (V, D) ``vectors`` for ``words`` in word2vec's text or binary format."""
    path = Path(path)
    vectors = np.asarray(to_host(vectors), np.float32)
    with atomic_open(path, "wb") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        if binary:
            little = vectors.astype("<f4")
            for w, v in zip(words, little):
                f.write(w.encode() + b" " + v.tobytes() + b"\n")
        else:
            for w, v in zip(words, vectors):
                f.write((w + " " + " ".join(f"{x:.9g}" for x in v) + "\n").encode())
    return path


def load_word2vec(path, binary: bool = False) -> tuple[list[str], np.ndarray]:
    """Read a word2vec text or binary file: (words, (V, D) float32 vectors).

    Raises: parsers.CorruptDataError on a malformed header, line or truncated record.
    """
    path = Path(path)
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    try:
        n, dim = (int(x) for x in head.split())
    except ValueError:
        raise parsers.CorruptDataError(f"{path}: header must be 'VOCAB_SIZE DIM', got {head[:60]!r}") from None
    words, out = [], np.zeros((n, dim), np.float32)
    pos = 0
    for i in range(n):
        if binary:
            space = body.find(b" ", pos)
            end = space + 1 + 4 * dim
            if space < 0 or end > len(body):
                raise parsers.CorruptDataError(f"{path}: truncated at word {i + 1} of {n}")
            words.append(body[pos:space].decode().strip())
            out[i] = np.frombuffer(body, "<f4", dim, space + 1)
            pos = end + (1 if body[end:end + 1] == b"\n" else 0)
        else:
            nl = body.find(b"\n", pos)
            # split(): word2vec.c writes a space after every value, so lines end in ' \n'
            parts = body[pos:nl if nl >= 0 else len(body)].decode().split()
            if len(parts) != dim + 1:
                raise parsers.CorruptDataError(f"{path}:{i + 2}: expected a word and {dim} numbers")
            words.append(parts[0])
            out[i] = np.array(parts[1:], np.float32)
            pos = nl + 1
    return words, out
