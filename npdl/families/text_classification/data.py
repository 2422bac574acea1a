"""Datasets for the Transformer text classifier: QQP question pairs (``qqp``, ``qqp_sample``, ``qqp_csv``).

QQP (Quora Question Pairs, GLUE; Wang et al. 2019): is question 2 a duplicate of question 1?

* ``qqp`` — GLUE's QQP-clean.zip. GLUE's test labels are not public, so: **test = GLUE dev**
  (40,430 pairs, the figure papers report as "QQP dev"); **val = a fixed held-out slice of
  GLUE train** (``val_size`` pairs, chosen with seed 0, identical in every run); train = the
  rest. Model selection therefore never sees the reported set.
* ``qqp_sample`` — the 10,000-row Kaggle ``train.csv`` sample in the data mirror, and
  ``qqp_csv`` — any Kaggle-format CSV (``path:``), e.g. the full Kaggle ``train.csv``. Both use
  a **fixed 80/10/10 split**: a permutation with seed 0 (never the run's seed), the first 10%
  test, the next 10% val, the rest train (sample: 8,000 / 1,000 / 1,000).

A pair is encoded ``[CLS] q1 [SEP] q2 [SEP]`` with segment 0 up to and including the first
``[SEP]`` and 1 after it. **Truncation** to ``max_len`` tokens (markers included) shortens the
longer question first, one token at a time from its end (ties: question 2 first), as BERT's
``truncate_seq_pair``; the three markers are always kept.

The tokenizer (``word`` or byte-level ``bpe``, ``vocab_size``, ``lowercase``) is trained on the
training split's questions at ``prepare()`` and saved into the run (``artifacts/tokenizer.json``)
so eval and ``npdl predict`` reproduce the ids exactly. Literal special strings typed in a
question (``"<sep>"``) are plain text, never control tokens (see ``npdl.data.tokenizers``).
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from npdl.data import download, parsers
from npdl.data.datasets import Dataset
from npdl.data.download import DatasetNotFoundError
from npdl.data.loader import SPLIT_SEED, held_out
from npdl.data.sources import DataError
from npdl.data.text_batching import BucketLoader
from npdl.data.tokenizers import CLS_ID, SEP_ID, BPETokenizer, Tokenizer, WordTokenizer, load_tokenizer
from npdl.registry import DATASETS
from npdl.schema import PositiveInt

TOKENIZER_FILE = "tokenizer.json"


class PairBatch(NamedTuple):
    """ids (B, T) int64; segments (B, T) int64 (0/1); mask (B, T) bool, True = token; labels (B,) int64."""

    ids: np.ndarray
    segments: np.ndarray
    mask: np.ndarray
    labels: np.ndarray


class InputTextError(DataError, ValueError):
    """A text given for prediction that cannot be classified (e.g. an empty question)."""


class MissingTokenizerError(DataError):
    """A run folder without the tokenizer its data was encoded with."""


# ---- pair encoding ------------------------------------------------------------------------------
def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after BERT-style pair truncation: drop from the longer side (ties: b) until a + b <= budget."""
    if len_a + len_b <= budget:
        return len_a, len_b
    half_b = budget // 2
    half_a = budget - half_b  # ties leave a the extra token, since b is shortened first
    if len_a <= half_a:
        return len_a, budget - len_a
    if len_b <= half_b:
        return budget - len_b, len_b
    return half_a, half_b


def encode_pair(a, b, max_len: int) -> tuple[list[int], int, bool]:
    """``[CLS] a [SEP] b [SEP]`` within ``max_len``: (ids, index where segment 1 starts, truncated?).

    Raises: ValueError: max_len < 5 (three markers plus a token of each question).
    """
    if max_len < 5:
        raise ValueError(f"max_len must be >= 5 for a pair ([CLS] q1 [SEP] q2 [SEP]), got {max_len}")
    la, lb = truncated_lengths(len(a), len(b), max_len - 3)
    ids = [CLS_ID, *a[:la], SEP_ID, *b[:lb], SEP_ID]
    return ids, la + 2, (la, lb) != (len(a), len(b))


def make_tokenizer(kind: str, vocab_size: int, lowercase: bool, min_count: int) -> Tokenizer:
    """An unfitted word or byte-level BPE tokenizer. Raises: TokenizerError: sizes too small."""
    if kind == "word":
        return WordTokenizer(lowercase=lowercase, vocab_size=vocab_size, min_count=min_count)
    return BPETokenizer(vocab_size, lowercase=lowercase, min_frequency=max(min_count, 2))


class Ragged:
    """Variable-length int sequences stored flat (int32) with offsets: ``r[i]`` is sequence i."""

    def __init__(self, seqs):
        lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.flat = np.fromiter(itertools.chain.from_iterable(seqs), np.int32, int(self.offsets[-1]))
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    def pad(self, idx: np.ndarray, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Sequences ``idx`` as (B, T) int64 ids padded with ``pad_id`` and a bool mask (True =
        token): ``pad_batch([r[i] for i in idx])`` gathered in one go from the flat storage."""
        n = self.lengths[idx]
        cols = np.arange(int(n.max(initial=0)))
        mask = cols < n[:, None]
        pos = np.where(mask, self.offsets[idx][:, None] + cols, 0)
        ids = np.where(mask, self.flat[pos], pad_id).astype(np.int64) if self.flat.size else \
            np.full(mask.shape, pad_id, np.int64)
        return ids, mask


# ---- QQP ----------------------------------------------------------------------------------------
class _QuestionPairs(Dataset):
    """Shared machinery of the QQP datasets: tokenizer, pair encoding, bucketed loaders.

    Args (config ``data:`` keys):
        tokenizer: ``word`` (punctuation split off) or byte-level ``bpe``, fitted on the train questions.
        vocab_size: at most this many tokens, the 6 specials included (BPE: >= 262).
        lowercase, min_count: tokenizer options (BPE merges need ``max(min_count, 2)`` occurrences).
        max_len: tokens per pair, markers included (longer pairs are truncated, see the module doc).
        batch_tokens: padded size of a training batch, pairs x longest <= batch_tokens (pairs of
            similar length are bucketed together, so little of it is padding).
        eval_batch_tokens: the same for val/test (default 4 x batch_tokens).
        batch_size: an optional cap on the pairs per training batch.
    Raises: ValueError: max_len < 5 or batch_tokens < max_len. TokenizerError: vocab_size too small.
    """

    task: ClassVar[str] = "text_classification"
    provides = ("vocab_size", "num_classes", "max_len", "num_segments")
    unit: ClassVar[str] = "pairs"
    class_names: ClassVar[tuple[str, ...]] = ("not duplicate", "duplicate")
    pairs: ClassVar[bool] = True

    def __init__(self, tokenizer: Literal["word", "bpe"] = "word", vocab_size: PositiveInt = 20000,
                 lowercase: bool = True, min_count: PositiveInt = 1, max_len: PositiveInt = 64,
                 batch_tokens: PositiveInt = 4096, eval_batch_tokens: PositiveInt | None = None,
                 batch_size: PositiveInt | None = None):
        super().__init__(batch_size or 64, None)
        if max_len < 5:
            raise ValueError(f"max_len must be >= 5 for a pair ([CLS] q1 [SEP] q2 [SEP]), got {max_len}")
        if batch_tokens < max_len:
            raise ValueError(f"batch_tokens ({batch_tokens}) must hold at least one sequence of max_len {max_len}")
        self.tokenizer_kind, self.vocab_size, self.lowercase = tokenizer, vocab_size, lowercase
        self.min_count, self.max_len = min_count, max_len
        self.batch_tokens, self.eval_batch_tokens = batch_tokens, eval_batch_tokens or 4 * batch_tokens
        self.max_batch = batch_size
        make_tokenizer(tokenizer, vocab_size, lowercase, min_count)  # size errors now, not after reading
        self.tokenizer: Tokenizer | None = None
        self.encoded: dict[str, tuple[Ragged, np.ndarray, np.ndarray]] = {}
        self.majority_class = 0
        self._loaders: dict[str, BucketLoader] = {}

    def read(self, root) -> dict[str, list[parsers.QqpPair]]:
        """``{"train", "val", "test"}`` -> (q1, q2, label) rows."""
        raise NotImplementedError

    def load(self, root) -> None:
        rows = self.read(root)
        if self.tokenizer is None:  # not restored from a run: train it on the training questions
            texts = [q for q1, q2, _ in rows["train"] for q in (q1, q2)]
            self.tokenizer = make_tokenizer(self.tokenizer_kind, self.vocab_size, self.lowercase,
                                            self.min_count).fit(texts)
        for split, pairs in rows.items():
            seqs, starts = [], np.empty(len(pairs), np.int64)
            for i, (q1, q2, _) in enumerate(pairs):
                ids, starts[i], _ = encode_pair(self.tokenizer.encode(q1), self.tokenizer.encode(q2), self.max_len)
                seqs.append(ids)
            self.encoded[split] = (Ragged(seqs), starts, np.array([p[2] for p in pairs], np.int64))
        self.majority_class = int(np.bincount(self.encoded["train"][2], minlength=2).argmax())

    def info(self) -> dict:
        vocab = len(self.tokenizer) if self.tokenizer is not None else self.vocab_size
        return {"vocab_size": vocab, "num_classes": 2, "max_len": self.max_len, "num_segments": 2}

    def loader(self, split: str) -> BucketLoader:
        self._check_split(split)
        if split not in self._loaders:
            seqs, starts, labels = self.encoded[split]
            train = split == "train"

            def make_batch(idx: np.ndarray) -> PairBatch:
                ids, mask = seqs.pad(idx)
                segments = (np.arange(ids.shape[1]) >= starts[idx][:, None]) & mask
                return PairBatch(ids, segments.astype(np.int64), mask, labels[idx])

            self._loaders[split] = BucketLoader(seqs.lengths, make_batch,
                                                self.batch_tokens if train else self.eval_batch_tokens,
                                                self.max_batch if train else None, shuffle=train)
        return self._loaders[split]

    def example_batch(self) -> PairBatch:
        ids = np.array([[CLS_ID, 6, SEP_ID, 7, 8, SEP_ID], [CLS_ID, 6, 7, SEP_ID, 8, SEP_ID]], np.int64)
        segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]], np.int64)
        return PairBatch(ids, segments, np.ones(ids.shape, bool), np.array([0, 1], np.int64))

    def encode_texts(self, texts: list[str]) -> tuple[PairBatch, bool]:
        """One pair (two texts) as a batch of one for prediction: (batch, truncated?).

        Raises:
            InputTextError: not exactly two texts, or an empty (or whitespace-only) question.
            MissingTokenizerError: no tokenizer (neither prepared nor restored from a run).
        """
        if len(texts) != 2:
            raise InputTextError(f"this model classifies question pairs: give two texts (--pair Q1 Q2), "
                                 f"got {len(texts)}")
        for which, q in zip(("first", "second"), texts):
            if not q.strip():
                raise InputTextError(f"the {which} question is empty; give two non-empty questions")
        if self.tokenizer is None:
            raise MissingTokenizerError("no tokenizer yet: prepare the data or restore a run's artifacts first")
        tok = self.tokenizer
        ids, start, truncated = encode_pair(tok.encode(texts[0]), tok.encode(texts[1]), self.max_len)
        ids_arr = np.array([ids], np.int64)
        segments = (np.arange(len(ids)) >= start).astype(np.int64)[None]
        return PairBatch(ids_arr, segments, np.ones(ids_arr.shape, bool), np.zeros(1, np.int64)), truncated

    def save_artifacts(self, run_dir) -> None:
        if self.tokenizer is not None:
            self.tokenizer.save(Path(run_dir) / TOKENIZER_FILE)

    def load_artifacts(self, run_dir) -> None:
        path = Path(run_dir) / TOKENIZER_FILE
        if not path.is_file():
            raise MissingTokenizerError(f"{path} is missing: this run's tokenizer was not saved, so its token ids "
                                        "cannot be reproduced; train the run again")
        self.tokenizer = load_tokenizer(path)


def fixed_split(rows: list, test_fraction: float = 0.1, val_fraction: float = 0.1) -> dict[str, list]:
    """Rows split 80/10/10 by a permutation with seed ``SPLIT_SEED`` (each split keeps file order)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(rows))
    n_test, n_val = int(len(rows) * test_fraction), int(len(rows) * val_fraction)
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {k: [rows[i] for i in np.sort(v)] for k, v in parts.items()}


@DATASETS.register("qqp")
class QQP(_QuestionPairs):
    """GLUE QQP: train minus a fixed held-out val slice / val / test = GLUE dev (40,430 pairs)."""

    source = "qqp"

    # the signature is the config schema, so the shared arguments are spelled out again
    def __init__(self, val_size: PositiveInt = 10000, tokenizer: Literal["word", "bpe"] = "word",
                 vocab_size: PositiveInt = 20000, lowercase: bool = True, min_count: PositiveInt = 1,
                 max_len: PositiveInt = 64, batch_tokens: PositiveInt = 4096,
                 eval_batch_tokens: PositiveInt | None = None, batch_size: PositiveInt | None = None):
        super().__init__(tokenizer, vocab_size, lowercase, min_count, max_len, batch_tokens, eval_batch_tokens,
                         batch_size)
        self.val_size = val_size

    def read(self, root):
        glue = parsers.load_qqp_glue(download.dataset_dir(self.source, root))
        train = glue["train"]
        if self.val_size >= len(train):
            raise DataError(f"qqp: data.val_size {self.val_size} leaves no training pairs ({len(train)} in "
                            "train.tsv); lower it")
        rest, val = held_out(len(train), self.val_size)
        return {"train": [train[i] for i in rest], "val": [train[i] for i in val], "test": glue["dev"]}


@DATASETS.register("qqp_sample")
class QQPSample(_QuestionPairs):
    """The 10,000-row Kaggle QQP sample (smoke runs, not a benchmark): fixed 80/10/10 split, seed 0."""

    source = "qqp_sample"

    def read(self, root):
        return fixed_split(parsers.load_qqp_csv(download.dataset_dir(self.source, root)))


@DATASETS.register("qqp_csv")
class QQPCsv(_QuestionPairs):
    """Any Kaggle-format QQP CSV (``path``, e.g. the full train.csv): fixed 80/10/10 split, seed 0."""

    def __init__(self, path: str, tokenizer: Literal["word", "bpe"] = "word", vocab_size: PositiveInt = 20000,
                 lowercase: bool = True, min_count: PositiveInt = 1, max_len: PositiveInt = 64,
                 batch_tokens: PositiveInt = 4096, eval_batch_tokens: PositiveInt | None = None,
                 batch_size: PositiveInt | None = None):
        super().__init__(tokenizer, vocab_size, lowercase, min_count, max_len, batch_tokens, eval_batch_tokens,
                         batch_size)
        self.path = path

    def read(self, root):
        path = Path(self.path).expanduser()
        if not path.exists():
            raise DatasetNotFoundError(f"qqp_csv: {path} does not exist (give data.path: a Kaggle QQP "
                                       "train.csv with question1, question2, is_duplicate columns)")
        return fixed_split(parsers.load_qqp_csv(path))
