"""``alternating``: a synthetic dataset for the decoder-only language model (``transformer_lm``).

Sequences ``1 0 1 0 ...`` / ``0 1 0 1 ...`` of random length: inputs ``s[:-1]``, targets
``s[1:]``; every target is determined by the previous symbol, so a working model reaches 100%
sequence accuracy. Batches are ``LMBatch``es of padded sequences, trained by the
``sequence_lm`` task (``npdl.families.language_model.task``).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from npdl.data import synthetic
from npdl.data.datasets import Dataset
from npdl.data.text_batching import BucketLoader, pad_batch
from npdl.data.tokenizers import WordTokenizer
from npdl.registry import DATASETS
from npdl.schema import NonNegativeInt, PositiveInt

TOKENIZER_FILE = "tokenizer.json"


class LMBatch(NamedTuple):
    """inputs (B, T) int64; targets (B, T) int64 (next tokens); mask (B, T) bool, True = a real target."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


@DATASETS.register("alternating")
class Alternating(Dataset):
    """Synthetic ``1 0 1 0 ...`` (or ``0 1 0 ...``) sequences of ``min_len..max_len`` symbols for an LM.

    Each split is drawn once from ``data_seed`` (train, then val, then test). A batch is
    (inputs s[:-1], targets s[1:], mask); every target follows from the previous symbol.
    """

    task = "sequence_lm"
    provides = ("vocab_size", "max_len")
    unit = "tokens"

    def __init__(self, n_train: PositiveInt = 2000, n_val: PositiveInt = 200, n_test: PositiveInt = 200,
                 min_len: PositiveInt = 2, max_len: PositiveInt = 32, batch_tokens: PositiveInt = 2048,
                 data_seed: NonNegativeInt = 0):
        super().__init__(32, None)
        if not 2 <= min_len <= max_len:
            raise ValueError(f"alternating: need 2 <= min_len <= max_len, got {min_len} and {max_len}")
        if batch_tokens < max_len:
            raise ValueError(f"alternating: batch_tokens ({batch_tokens}) < max_len ({max_len})")
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        synthetic.check_fits("alternating", (n_train + n_val + n_test) * (112 + 8 * max_len))  # one array each
        self.min_len, self.max_len, self.batch_tokens, self.data_seed = min_len, max_len, batch_tokens, data_seed
        self.tokenizer = WordTokenizer(lowercase=False, split_punct=False).fit(["0 1"])
        self.symbols = np.array([self.tokenizer.encode("0")[0], self.tokenizer.encode("1")[0]], np.int64)
        self.seqs: dict[str, list[np.ndarray]] = {}
        self._loaders: dict[str, BucketLoader] = {}

    def load(self, root) -> None:
        rng = np.random.default_rng(self.data_seed)
        for split, n in self.sizes.items():
            lengths = rng.integers(self.min_len, self.max_len + 1, n)
            starts = rng.integers(0, 2, n)
            self.seqs[split] = [self.symbols[(s + np.arange(L)) % 2] for L, s in zip(lengths, starts)]

    def info(self) -> dict:
        return {"vocab_size": len(self.tokenizer), "max_len": self.max_len}

    def loader(self, split: str) -> BucketLoader:
        self._check_split(split)
        if split not in self._loaders:
            seqs = self.seqs[split]

            def make_batch(idx: np.ndarray) -> LMBatch:
                full, full_mask = pad_batch([seqs[i] for i in idx])    # padded once: inputs and
                mask = full_mask[:, 1:]                                # targets are its two shifts
                return LMBatch(np.where(mask, full[:, :-1], 0), full[:, 1:], mask)

            train = split == "train"
            self._loaders[split] = BucketLoader([len(s) - 1 for s in seqs], make_batch,
                                                self.batch_tokens if train else 4 * self.batch_tokens, shuffle=train)
        return self._loaders[split]

    def example_batch(self) -> LMBatch:
        a, b = (int(s) for s in self.symbols)
        return LMBatch(np.array([[a, b, a], [b, a, 0]]), np.array([[b, a, b], [a, b, 0]]),
                       np.array([[True] * 3, [True, True, False]]))

    def save_artifacts(self, run_dir) -> None:
        self.tokenizer.save(Path(run_dir) / TOKENIZER_FILE)
