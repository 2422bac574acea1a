"""Language-modelling corpora: ``ptb`` and ``text`` (any text file, word or character level).

A language-model dataset is one long stream of token ids per split. Training consumes it as
Zaremba et al. (2014, arXiv:1409.2329; their ``ptb_iterator``) do: the stream is cut into
``batch_size`` equal rows, laid side by side as a (B, N) array, and read left to right in
windows of ``bptt`` steps. Window i of row b continues exactly where window i-1 of row b
stopped, so the recurrent state a model ends one batch with is the right state to begin the
next one with (truncated BPTT). Nothing is shuffled: the order of batches is the order of the
text, the same every epoch, and ``batches(epoch, start)`` resumes at any window exactly.

Word level: one ``<eos>`` ends every line (Zaremba's reader), tokens are whitespace-separated.
Char level: every character is a token, line breaks included. Vocabularies come from the
training split only (PTB's own is already closed: 10,000 words with ``<unk>`` and ``<eos>``),
are written to the run's artifacts as JSON and restored from there by ``eval``/``sample``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from npdl.data import download, parsers
from npdl.data.datasets import Dataset
from npdl.data.sources import DataError
from npdl.data.vocab import EOS, UNK, Vocab
from npdl.registry import DATASETS
from npdl.schema import PositiveInt, UnitInterval

VOCAB_FILE = "lm_vocab.json"


class LMStreamLoader:
    """Windows of a token stream for truncated BPTT: batches ``(x, y)``, each (B, T) int64, y = x shifted by one.

    ids (N,) -> (B, N // B) rows; window i covers columns [i*T, (i+1)*T) of x and one further of y.
    ``tail=True`` (evaluation) adds a last, shorter window so every token but each row's first is predicted.

    Raises:
        ValueError: a stream too short for one window of ``batch_size`` rows.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, tail: bool = False):
        cols = len(ids) // batch_size
        if cols < 2:
            raise ValueError(f"a stream of {len(ids)} tokens is too short for {batch_size} rows "
                             f"(each row needs at least 2 tokens)")
        self.data = np.ascontiguousarray(np.asarray(ids[: cols * batch_size], np.int64).reshape(batch_size, cols))
        self.bptt, self.tail = bptt, tail
        full, rest = divmod(cols - 1, bptt)
        self._len = full + (1 if tail and rest else 0)
        if self._len == 0:
            raise ValueError(f"a stream of {len(ids)} tokens gives rows of {cols} tokens, too short for one "
                             f"window of bptt={bptt} (lower batch_size or bptt)")

    def __len__(self) -> int:
        return self._len

    @property
    def tokens(self) -> int:
        """Number of predicted tokens in one pass."""
        return self.data.shape[0] * min(len(self) * self.bptt, self.data.shape[1] - 1)

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0):
        """Windows ``start, start+1, ...`` (the same every epoch: the stream is never shuffled)."""
        last = self.data.shape[1] - 1
        for i in range(start, len(self)):
            s = i * self.bptt
            e = min(s + self.bptt, last)
            yield np.ascontiguousarray(self.data[:, s:e]), np.ascontiguousarray(self.data[:, s + 1:e + 1])


class LMDataset(Dataset):
    """Base of the LM corpora: ``self.vocab`` and ``self.streams[split]`` (1-D int64 ids) after ``load``."""

    task: ClassVar[str] = "language_model"
    unit: ClassVar[str] = "tokens"
    provides: ClassVar[tuple[str, ...]] = ("vocab_size",)
    kind: ClassVar[str] = "lm"      # the registered name, for messages
    level: str = "word"
    lowercase: bool = False
    declared_vocab: int = 10_000

    def __init__(self, batch_size: int, bptt: int, eval_batch_size: int | None):
        super().__init__(batch_size, eval_batch_size or 10)
        self.bptt = bptt
        self.vocab: Vocab | None = None
        self.streams: dict[str, np.ndarray] = {}

    # ---- the Dataset protocol ------------------------------------------------------------
    def info(self) -> dict:
        return {"vocab_size": len(self.vocab) if self.vocab is not None else self.declared_vocab}

    def splits(self) -> tuple[str, ...]:
        return tuple(self.streams) if self.streams else ("train", "val", "test")

    def loader(self, split: str) -> LMStreamLoader:
        self._check_split(split)
        train = split == "train"
        try:
            return LMStreamLoader(self.streams[split], self.batch_size if train else self.eval_batch_size,
                                  self.bptt, tail=not train)
        except ValueError as exc:
            raise DataError(f"{self.kind}: the {split} split: {exc}") from None

    def example_batch(self):
        x = np.zeros((2, self.bptt), np.int64)
        return x, x.copy()

    def save_artifacts(self, run_dir) -> None:
        data = {"level": self.level, "lowercase": self.lowercase, "vocab": self.vocab.to_dict()}
        self.write_json_artifact(run_dir, VOCAB_FILE, data)

    def load_artifacts(self, run_dir) -> None:
        saved = self.read_json_artifact(run_dir, VOCAB_FILE)
        if saved is not None:
            self.vocab = Vocab.from_dict(saved["vocab"])

    # ---- text <-> ids (for sampling) -----------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """A prompt as tokens of this corpus: characters, or whitespace-separated words."""
        text = text.lower() if self.lowercase else text
        return list(text) if self.level == "char" else text.split()

    def encode_prompt(self, text: str) -> tuple[np.ndarray, list[str]]:
        """(ids (n,), the prompt's tokens that are not in the vocabulary and became ``<unk>``)."""
        tokens = self.tokenize(text)
        unknown = [t for t in tokens if t not in self.vocab]
        return self.vocab.encode(tokens), unknown

    def decode(self, ids) -> str:
        """Text of ``ids``: characters joined, or words joined by spaces with ``<eos>`` as a line break."""
        tokens = self.vocab.decode(np.asarray(ids, np.int64))
        if self.level == "char":
            return "".join(tokens)
        lines = " ".join(tokens).split(EOS)
        return "\n".join(line.strip() for line in lines)

    def start_id(self) -> int:
        """The id a generation without a prompt starts from: ``<eos>`` (a sentence start), or a line break."""
        for tok in (EOS, "\n", " "):
            if tok in self.vocab:
                return self.vocab.token_to_id(tok)
        return 0


def _word_tokens(lines: list[str] | list[list[str]]) -> list[str]:
    """Zaremba's reader: every line's words, then ``<eos>``."""
    out: list[str] = []
    for line in lines:
        out.extend(line.split() if isinstance(line, str) else line)
        out.append(EOS)
    return out


@DATASETS.register("ptb")
class PTB(LMDataset):
    """Penn Treebank, Mikolov's word-level LM version: 10k vocabulary, ``<eos>`` per line (929k/74k/82k tokens)."""

    source = "ptb"
    kind = "ptb"
    lowercase = True    # the corpus is lowercase, so prompts are too

    def __init__(self, batch_size: PositiveInt = 20, bptt: PositiveInt = 35, eval_batch_size: PositiveInt | None = 10):
        super().__init__(batch_size, bptt, eval_batch_size)

    def load(self, root) -> None:
        raw = parsers.load_ptb(download.dataset_dir(self.source, root))
        tokens = {split: _word_tokens(raw[name]) for split, name in (("train", "train"), ("val", "valid"),
                                                                      ("test", "test"))}
        if self.vocab is None:
            # PTB's literal <unk> counts towards the special; the result is exactly 10,000 tokens
            self.vocab = Vocab.build([tokens["train"]], specials=(UNK, EOS))
        self.streams = {split: self.vocab.encode(toks) for split, toks in tokens.items()}


@DATASETS.register("text")
class TextCorpus(LMDataset):
    """Any UTF-8 text file as a word- or character-level LM corpus, split by fraction into train/val/test.

    ``path`` (relative to the working directory; ``~`` expands) defaults to the PTB training text
    of the ``ptb`` download (``npdl download ptb``). The split is contiguous: the first
    1 - val_fraction - test_fraction of the token stream trains, the next part validates, the end tests.
    """

    kind = "text"

    def __init__(self, path: str | None = None, level: Literal["word", "char"] = "word", batch_size: PositiveInt = 20,
                 bptt: PositiveInt = 35, eval_batch_size: PositiveInt | None = 10, val_fraction: UnitInterval = 0.05,
                 test_fraction: UnitInterval = 0.05, min_count: PositiveInt = 1, max_vocab: PositiveInt | None = None,
                 lowercase: bool = False):
        super().__init__(batch_size, bptt, eval_batch_size)
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(f"text: val_fraction + test_fraction must leave text to train on, got "
                             f"{val_fraction} + {test_fraction}")
        self.path = None if path is None else Path(path).expanduser()
        self.source = "ptb" if path is None else None   # only the default path needs a download
        self.level, self.lowercase = level, lowercase
        self.fractions = (val_fraction, test_fraction)
        self.min_count, self.max_vocab = min_count, max_vocab
        self.declared_vocab = max_vocab or (10_000 if level == "word" else 256)

    def file(self, root=None) -> Path:
        return self.path if self.path is not None else download.dataset_dir("ptb", root) / "ptb.train.txt"

    def checksums(self) -> dict:
        if self.path is None:
            return super().checksums()
        return {str(self.path): hashlib.sha256(self.path.read_bytes()).hexdigest()}

    def load(self, root) -> None:
        path = self.file(root)
        if not path.is_file():
            raise download.DatasetNotFoundError(f"text corpus not found: {path} (data.path in the config; relative "
                                                f"paths start at the working directory {Path.cwd()})")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise parsers.CorruptDataError(f"{path}: not UTF-8 text ({exc})") from None
        if self.lowercase:
            text = text.lower()
        n_val_f, n_test_f = self.fractions
        if self.level == "char":
            self._load_chars(text, n_val_f, n_test_f)
        else:
            tokens = _word_tokens(text.splitlines())
            a, b = _cuts(len(tokens), n_val_f, n_test_f)
            if self.vocab is None:
                self.vocab = Vocab.build([tokens[:a]], min_count=self.min_count, max_size=self.max_vocab,
                                         specials=(UNK, EOS))
            ids = self.vocab.encode(tokens)
            self._set_streams(ids, a, b)

    def _load_chars(self, text: str, val_f: float, test_f: float) -> None:
        """Characters as tokens, vectorised over code points (a 5 MB text takes well under a second)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        a, b = _cuts(len(codes), val_f, test_f)
        if self.vocab is None:
            chars, counts = np.unique(codes[:a], return_counts=True)
            keep = counts >= self.min_count
            chars, counts = chars[keep], counts[keep]
            order = np.argsort(-counts, kind="stable")[: (self.max_vocab - 1) if self.max_vocab else None]
            self.vocab = Vocab([UNK] + [chr(c) for c in chars[order]], [0] + counts[order].tolist(), specials=(UNK,))
        known = np.array([ord(t) for t in self.vocab.tokens[1:]], np.uint32)
        order = np.argsort(known)
        pos = np.searchsorted(known[order], codes).clip(0, max(len(known) - 1, 0))
        hit = known[order][pos] == codes if len(known) else np.zeros(len(codes), bool)
        ids = np.where(hit, order[pos] + 1, self.vocab.unk_id).astype(np.int64)
        self._set_streams(ids, a, b)

    def _set_streams(self, ids: np.ndarray, a: int, b: int) -> None:
        self.streams = {"train": ids[:a]}
        if b > a:
            self.streams["val"] = ids[a:b]
        if len(ids) > b:
            self.streams["test"] = ids[b:]


def _cuts(n: int, val_f: float, test_f: float) -> tuple[int, int]:
    """End of train and end of val in a stream of n tokens."""
    n_val, n_test = int(round(n * val_f)), int(round(n * test_f))
    return n - n_val - n_test, n - n_test

