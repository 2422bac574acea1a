"""Sequence-to-sequence datasets: Multi30k translation and the synthetic copy / reverse / sort tasks.

Every dataset here hands out ``Seq2SeqBatch`` batches (ids int64, masks bool with True = real
token, pad id 0)::

    src      (B, S)  source ids + <eos>
    tgt_in   (B, T)  <bos> + target ids        (decoder input, teacher forcing)
    tgt_out  (B, T)  target ids + <eos>        (what the decoder must predict)

built by ``npdl.data.text_batching.BucketLoader``: examples are bucketed by max(len(src),
len(tgt_out)) so a batch holds at most ``batch_tokens`` padded positions per side.

Truncation (documented, counted in ``truncated[split]``): a source longer than ``max_len``
tokens keeps its first ``max_len - 1`` tokens and its <eos>; a target keeps its first
``max_len - 1`` tokens. ``max_len`` is also the model's positional-table size (provided to it).

Tokenizers (Multi30k) are trained at ``prepare()`` from the training split only, saved as JSON
with ``save_artifacts(run_dir)`` and restored by ``load_artifacts`` so that eval / translate on a
run reproduce the ids exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from npdl.data import download, parsers, synthetic
from npdl.data.datasets import Dataset
from npdl.data.text_batching import BucketLoader, pad_batch
from npdl.data.tokenizers import BOS_ID, EOS_ID, BPETokenizer, Tokenizer, WordTokenizer, load_tokenizer
from npdl.registry import DATASETS
from npdl.schema import NonNegativeInt, PositiveInt

N_SPECIAL = 6  # ids 0..5 are <pad> <unk> <bos> <eos> <cls> <sep> (npdl.data.tokenizers)


class Seq2SeqBatch(NamedTuple):
    """One batch; masks are True at real tokens. ``index``: the examples' positions in their split."""

    src: np.ndarray
    src_mask: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    tgt_mask: np.ndarray
    index: np.ndarray


class Seq2SeqData(Dataset):
    """Base: ``self.src[split]`` / ``self.tgt[split]`` hold int64 id arrays (src with <eos>, tgt without).

    Subclasses implement ``load``, ``encode_source(text)``, ``decode_target(ids)``,
    ``references(split)`` and the vocabulary sizes.
    """

    task: ClassVar[str] = "seq2seq"
    unit: ClassVar[str] = "tokens"
    provides: ClassVar[tuple[str, ...]] = ("src_vocab_size", "tgt_vocab_size", "max_len", "share_vocab")
    metric: ClassVar[str] = "bleu"  # the decoding metric: "bleu" (text) or "sequence_accuracy"

    def __init__(self, max_len: int, batch_tokens: int, eval_batch_tokens: int | None):
        super().__init__()
        self.max_len, self.batch_tokens = max_len, batch_tokens
        self.eval_batch_tokens = eval_batch_tokens or 2 * batch_tokens
        self.src: dict[str, list[np.ndarray]] = {}
        self.tgt: dict[str, list[np.ndarray]] = {}
        self.truncated: dict[str, int] = {}
        self._loaders: dict[str, BucketLoader] = {}

    # ---- ids --------------------------------------------------------------------------
    def _target_ids(self, ids) -> tuple[np.ndarray, bool]:
        """Token ids (no markers) -> their first max_len - 1 (room for <bos>/<eos>), truncated flag."""
        ids = list(ids)
        return np.asarray(ids[: self.max_len - 1], np.int64), len(ids) > self.max_len - 1

    def _source_ids(self, ids) -> tuple[np.ndarray, bool]:
        """Token ids (no markers) -> source array with <eos>, truncated to max_len (flag)."""
        kept, cut = self._target_ids(ids)
        return np.append(kept, EOS_ID), cut

    @staticmethod
    def _until_eos(ids) -> list[int]:
        """Generated ids as ints, cut before the first <eos>."""
        ids = [int(i) for i in np.asarray(ids).ravel()]
        return ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids

    def _store(self, split: str, src_tokens, tgt_tokens) -> None:
        srcs, tgts, cut = [], [], 0
        for s, t in zip(src_tokens, tgt_tokens):
            (a, ca), (b, cb) = self._source_ids(s), self._target_ids(t)
            srcs.append(a)
            tgts.append(b)
            cut += ca or cb
        self.src[split], self.tgt[split], self.truncated[split] = srcs, tgts, cut

    def encode_source(self, text: str) -> tuple[np.ndarray, bool]:
        """A user's source text -> (ids with <eos>, whether it was truncated to max_len)."""
        raise NotImplementedError

    def decode_target(self, ids) -> str:
        """Generated target ids (markers and padding allowed) -> text."""
        raise NotImplementedError

    def references(self, split: str) -> list[str]:
        """Reference target texts of ``split`` (raw, as the metric compares them)."""
        raise NotImplementedError

    # ---- batches ----------------------------------------------------------------------
    def make_batch(self, split: str, index: np.ndarray) -> Seq2SeqBatch:
        index = np.asarray(index)
        src, src_mask = pad_batch([self.src[split][i] for i in index])
        # the targets are padded once, with one free column: <bos> + y and y + <eos> are its two shifts
        ys = [self.tgt[split][i] for i in index]
        n = np.array([len(y) for y in ys], np.int64)
        y, _ = pad_batch(ys)
        rows = np.arange(len(ys))
        tgt_in = np.zeros((len(ys), y.shape[1] + 1), np.int64)
        tgt_in[:, 0], tgt_in[:, 1:] = BOS_ID, y
        tgt_out = np.zeros_like(tgt_in)
        tgt_out[:, :-1] = y
        tgt_out[rows, n] = EOS_ID
        tgt_mask = np.arange(tgt_in.shape[1]) <= n[:, None]
        return Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, index)

    def loader(self, split: str) -> BucketLoader:
        self._check_split(split)
        if split not in self._loaders:
            lengths = [max(len(s), len(t) + 1) for s, t in zip(self.src[split], self.tgt[split])]
            train = split == "train"
            self._loaders[split] = BucketLoader(lengths, lambda idx: self.make_batch(split, idx),
                                                self.batch_tokens if train else self.eval_batch_tokens, shuffle=train)
        return self._loaders[split]

    def example_batch(self) -> Seq2SeqBatch:
        v = min(self.info()["src_vocab_size"], self.info()["tgt_vocab_size"])
        a, b = N_SPECIAL % v, (N_SPECIAL + 1) % v
        src, src_mask = pad_batch([np.array([a, b, EOS_ID]), np.array([b, EOS_ID])])
        tgt_in, tgt_mask = pad_batch([np.array([BOS_ID, a, b]), np.array([BOS_ID, a])])
        tgt_out, _ = pad_batch([np.array([a, b, EOS_ID]), np.array([a, EOS_ID])])
        return Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask, np.arange(2))


# ---- Multi30k ---------------------------------------------------------------------------
@DATASETS.register("multi30k")
class Multi30k(Seq2SeqData):
    """Multi30k task 1 (Elliott et al. 2016): image captions, German <-> English.

    Splits: train 29,000 / val 1,014 / test = test2016 (flickr) 1,000 pairs. ``direction``
    de-en (default) or en-de. ``tokenizer``: byte-level ``bpe`` (``vocab_size`` merges total,
    one vocabulary for both languages when ``shared_vocab``, else one per side) or ``word``
    (``vocab_size`` caps each vocabulary; rarer words become <unk>). References for BLEU are the
    raw target lines; hypotheses are the detokenized outputs.
    """

    source = "multi30k"

    def __init__(self, direction: Literal["de-en", "en-de"] = "de-en", tokenizer: Literal["bpe", "word"] = "bpe",
                 vocab_size: PositiveInt = 8000, shared_vocab: bool = True, lowercase: bool = False,
                 min_frequency: PositiveInt = 2, max_len: PositiveInt = 128, batch_tokens: PositiveInt = 4000,
                 eval_batch_tokens: PositiveInt | None = None, train_limit: NonNegativeInt | None = None):
        super().__init__(max_len, batch_tokens, eval_batch_tokens)
        if max_len < 2:
            raise ValueError("multi30k: max_len must be >= 2 (a token and <eos>)")
        if tokenizer == "bpe" and vocab_size < N_SPECIAL + 256:
            raise ValueError(f"multi30k: a byte-level BPE vocabulary needs vocab_size >= {N_SPECIAL + 256}, "
                             f"got {vocab_size}")
        self.direction, self.tokenizer_kind, self.vocab_size = direction, tokenizer, vocab_size
        self.shared_vocab, self.lowercase, self.min_frequency = shared_vocab, lowercase, min_frequency
        self.train_limit = train_limit
        self.src_tok: Tokenizer | None = None
        self.tgt_tok: Tokenizer | None = None
        self.raw: dict[str, tuple[list[str], list[str]]] = {}

    def _new_tokenizer(self) -> Tokenizer:
        if self.tokenizer_kind == "bpe":
            return BPETokenizer(self.vocab_size, lowercase=self.lowercase, min_frequency=self.min_frequency)
        return WordTokenizer(lowercase=self.lowercase, vocab_size=self.vocab_size, min_count=self.min_frequency)

    def load(self, root) -> None:
        data = parsers.load_multi30k(download.dataset_dir(self.source, root))
        s, t = (0, 1) if self.direction == "de-en" else (1, 0)
        self.raw = {split: (pair[s], pair[t]) for split, pair in data.items()}
        if self.train_limit:
            self.raw["train"] = tuple(x[: self.train_limit] for x in self.raw["train"])
        if self.src_tok is None:  # not restored from a run: train on the training split only
            src_train, tgt_train = self.raw["train"]
            if self.shared_vocab:
                self.src_tok = self.tgt_tok = self._new_tokenizer().fit(list(src_train) + list(tgt_train))
            else:
                self.src_tok = self._new_tokenizer().fit(src_train)
                self.tgt_tok = self._new_tokenizer().fit(tgt_train)
        for split, (src, tgt) in self.raw.items():
            self._store(split, (self.src_tok.encode(x) for x in src), (self.tgt_tok.encode(y) for y in tgt))

    def info(self) -> dict:
        src = len(self.src_tok) if self.src_tok is not None else self.vocab_size
        tgt = len(self.tgt_tok) if self.tgt_tok is not None else self.vocab_size
        return {"src_vocab_size": src, "tgt_vocab_size": tgt, "max_len": self.max_len,
                "share_vocab": self.shared_vocab}

    def encode_source(self, text: str) -> tuple[np.ndarray, bool]:
        if self.src_tok is None:
            raise RuntimeError("multi30k: no tokenizer yet (prepare the data or load a run's artifacts)")
        return self._source_ids(self.src_tok.encode(text))

    def decode_target(self, ids) -> str:
        return self.tgt_tok.decode(self._until_eos(ids)).strip()

    def references(self, split: str) -> list[str]:
        return list(self.raw[split][1])

    # ---- artifacts: the tokenizer(s), as JSON ---------------------------------------------
    def save_artifacts(self, run_dir) -> None:
        run_dir = Path(run_dir)
        if self.shared_vocab:
            self.src_tok.save(run_dir / "tokenizer.json")
        else:
            self.src_tok.save(run_dir / "src_tokenizer.json")
            self.tgt_tok.save(run_dir / "tgt_tokenizer.json")

    def load_artifacts(self, run_dir) -> None:
        run_dir = Path(run_dir)
        if self.shared_vocab and (run_dir / "tokenizer.json").is_file():
            self.src_tok = self.tgt_tok = load_tokenizer(run_dir / "tokenizer.json")
        elif not self.shared_vocab and (run_dir / "src_tokenizer.json").is_file():
            self.src_tok = load_tokenizer(run_dir / "src_tokenizer.json")
            self.tgt_tok = load_tokenizer(run_dir / "tgt_tokenizer.json")


# ---- synthetic copy / reverse / sort ----------------------------------------------------
class _SymbolSeq2Seq(Seq2SeqData):
    """Random symbol sequences (symbol k has id 6 + k) mapped by ``transform``; no download.

    Lengths are uniform in [min_length, max_length]; the three splits are drawn once from
    ``data_seed`` (disjoint streams), so every run sees the same data. Texts are the symbols
    separated by spaces (``"3 1 4"``).
    """

    metric = "sequence_accuracy"

    def __init__(self, n_train: PositiveInt = 10000, n_val: PositiveInt = 500, n_test: PositiveInt = 500,
                 min_length: PositiveInt = 1, max_length: PositiveInt = 10, symbols: PositiveInt = 10,
                 batch_tokens: PositiveInt = 2048, eval_batch_tokens: PositiveInt | None = None,
                 data_seed: NonNegativeInt = 0):
        if min_length > max_length:
            raise ValueError(f"{self.name}: min_length {min_length} > max_length {max_length}")
        super().__init__(max_length + 2, batch_tokens, eval_batch_tokens)  # + <bos>/<eos> (and headroom)
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        # each example: a source and a target array (~100 bytes of object each, 8 per symbol)
        synthetic.check_fits(self.name, 2 * (n_train + n_val + n_test) * (112 + 8 * max_length))
        self.min_length, self.max_length, self.symbols, self.data_seed = min_length, max_length, symbols, data_seed

    @staticmethod
    def transform(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def load(self, root) -> None:
        for k, (split, n) in enumerate(self.sizes.items()):
            rng = np.random.default_rng([self.data_seed, k])
            lengths = rng.integers(self.min_length, self.max_length + 1, size=n)
            xs = [rng.integers(0, self.symbols, size=int(m)) + N_SPECIAL for m in lengths]
            self._store(split, xs, [self.transform(x) for x in xs])

    def info(self) -> dict:
        v = N_SPECIAL + self.symbols
        return {"src_vocab_size": v, "tgt_vocab_size": v, "max_len": self.max_len, "share_vocab": True}

    def encode_source(self, text: str) -> tuple[np.ndarray, bool]:
        ids = []
        for word in text.split():
            if not word.isdigit() or int(word) >= self.symbols:
                raise ValueError(f"{self.name}: expected symbols 0..{self.symbols - 1} separated by spaces, "
                                 f"got {word!r}")
            ids.append(int(word) + N_SPECIAL)
        return self._source_ids(ids)

    def decode_target(self, ids) -> str:
        ids = self._until_eos(ids)
        return " ".join(str(i - N_SPECIAL) if i >= N_SPECIAL else f"<{i}>" for i in ids if i != BOS_ID)

    def references(self, split: str) -> list[str]:
        return [self.decode_target(t) for t in self.tgt[split]]


@DATASETS.register("copy")
class CopyTask(_SymbolSeq2Seq):
    """Copy: the target is the source sequence itself (a smoke test for attention)."""

    name = "copy"
    transform = staticmethod(lambda x: x.copy())


@DATASETS.register("reverse")
class ReverseTask(_SymbolSeq2Seq):
    """Reverse: the target is the source read backwards."""

    name = "reverse"
    transform = staticmethod(lambda x: x[::-1].copy())


@DATASETS.register("sort")
class SortTask(_SymbolSeq2Seq):
    """Sort: the target is the source's symbols in ascending order."""

    name = "sort"
    transform = staticmethod(lambda x: np.sort(x))
