"""BPETokenizer: byte-level byte-pair encoding (the algorithm is in ``npdl.data.bpe``).

Vocabulary layout (ids): the 6 specials (0..5), the 256 single bytes (6..261, byte ``b`` has
id ``6 + b``), then one token per learned merge in the order learned. Token strings show
each byte as one character (printable ASCII as itself, anything else as ``U+0100 + byte``;
a space is ``Ġ``), e.g. ``" cat"`` is the token ``"Ġcat"``.

Because the base symbols are bytes, every string encodes and ``decode(encode(t))`` returns
``t`` exactly (lowercased when ``lowercase=True``); there is never an ``<unk>``. Reserved
special strings typed in the text (``"<pad>"``) are plain text and come back unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from npdl.data import bpe
from npdl.data.tokenizer_base import (SKIPPABLE_IDS, SPECIAL_TOKENS, Tokenizer, TokenizerError,
                                      TokenizerFormatError)
from npdl.data.vocab import Vocab

_N_SPECIAL = len(SPECIAL_TOKENS)
_CACHE_LIMIT = 1 << 17  # pieces remembered by encode; cleared when full to bound memory


class BPETokenizer(Tokenizer):
    """Byte-level BPE tokenizer (Sennrich et al. 2016, arXiv:1508.07909).

    Args:
        vocab_size: total vocabulary size including the 6 specials and 256 bytes
            (so >= 262). Training may stop earlier when no pair is frequent enough.
        lowercase: lowercase text before encoding (decode then returns lowercase text).
        min_frequency: only merge pairs seen at least this many times in training.

    Raises:
        TokenizerError: ``vocab_size < 262`` or ``min_frequency < 1``.
    """

    type_name = "bpe"

    def __init__(self, vocab_size: int, lowercase: bool = False, min_frequency: int = 2) -> None:
        minimum = _N_SPECIAL + 256
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < minimum:
            raise TokenizerError(f"vocab_size must be an int >= {minimum} (6 specials + 256 bytes), "
                                 f"got {vocab_size!r}")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise TokenizerError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
        self.vocab_size, self.lowercase, self.min_frequency = vocab_size, bool(lowercase), min_frequency
        self.vocab = None
        self._symbol_bytes: list[bytes] = []
        self._merges: list[tuple[int, int, int]] = []  # (left, right, result) symbol ids
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        self._cache: dict[str, tuple[int, ...]] = {}

    def _config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "lowercase": self.lowercase,
                "min_frequency": self.min_frequency}

    @property
    def merges(self) -> list[tuple[str, str]]:
        """Learned merges as ``(left, right)`` token strings, highest priority first."""
        tok = self._require_vocab().tokens
        return [(tok[a + _N_SPECIAL], tok[b + _N_SPECIAL]) for a, b, _ in self._merges]

    def fit(self, texts: Iterable[str]) -> "BPETokenizer":
        """Learn merges from ``texts`` and build the vocabulary (replaces any previous one).

        Raises:
            TokenizerError: ``texts`` is a bare str or contains a non-str.
        """
        if isinstance(texts, str):
            raise TokenizerError("fit expects an iterable of texts, not a single str")
        try:
            pieces = bpe.count_pieces(texts, self.lowercase)
        except TypeError as err:
            raise TokenizerError(str(err)) from err
        merges, symbol_bytes, counts = bpe.learn_merges(pieces, self.vocab_size - _N_SPECIAL,
                                                        self.min_frequency)
        tokens = list(SPECIAL_TOKENS) + [bpe.bytes_to_token(bs) for bs in symbol_bytes]
        all_counts = [0] * _N_SPECIAL + [counts.get(s, 0) for s in range(len(symbol_bytes))]
        self.vocab = Vocab(tokens, all_counts, SPECIAL_TOKENS)
        self._set_model(symbol_bytes, merges)
        return self

    def _set_model(self, symbol_bytes: list[bytes], merges: list[tuple[int, int, int]]) -> None:
        self._symbol_bytes = symbol_bytes
        self._merges = merges
        self._ranks = {(a, b): (rank, res) for rank, (a, b, res) in enumerate(merges)}
        self._cache = {}

    def tokenize(self, text: str) -> list[str]:
        """The token strings ``encode`` would produce (for inspection)."""
        return self._require_vocab().decode(self._encode_text(text))

    def _encode_text(self, text: str) -> list[int]:
        self._require_vocab()
        if self.lowercase:
            text = text.lower()
        out: list[int] = []
        cache = self._cache
        for piece in bpe.pretokenize(text):
            ids = cache.get(piece)
            if ids is None:
                ids = tuple(s + _N_SPECIAL for s in bpe.apply_merges(piece, self._ranks))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[piece] = ids
            out.extend(ids)
        return out

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special: bool = True) -> str:
        """Text for ``ids``: the bytes of the tokens concatenated and read as UTF-8.

        ``skip_special`` drops pad/bos/eos/cls/sep; other specials are written as their
        strings (e.g. ``<unk>``). Byte sequences that are not valid UTF-8 (possible for
        model-generated ids) become U+FFFD.

        Raises:
            NotFittedError: no vocabulary yet.
            VocabError: an id out of range or not an integer.
        """
        tokens = self._require_vocab().decode(ids)  # validates range, dtype and shape
        chunks: list[bytes] = []
        for i, tok in zip(np.asarray(ids).tolist(), tokens):
            if i >= _N_SPECIAL:
                chunks.append(self._symbol_bytes[i - _N_SPECIAL])
            elif not (skip_special and i in SKIPPABLE_IDS):
                chunks.append(tok.encode("utf-8"))
        return b"".join(chunks).decode("utf-8", errors="replace")

    # ---------------------------------------------------------- serialisation
    def _state_to_dict(self) -> dict[str, Any]:
        return {"merges": [list(pair) for pair in self.merges] if self.vocab is not None else []}

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        merges = data.get("merges", [])
        if self.vocab is None:
            if merges:
                raise TokenizerFormatError("a BPE dict with merges needs its 'vocab'")
            return
        try:
            symbol_bytes = [bpe.token_to_bytes(t) for t in self.vocab.tokens[_N_SPECIAL:]]
        except ValueError as err:
            raise TokenizerFormatError(f"bad BPE vocabulary: {err}") from err
        if symbol_bytes[:256] != [bytes([b]) for b in range(256)]:
            raise TokenizerFormatError("BPE vocabulary must list the 256 bytes in order after the specials")
        symbol_of = {bs: s for s, bs in enumerate(symbol_bytes)}
        if not isinstance(merges, list):
            raise TokenizerFormatError("BPE 'merges' must be a list of [left, right] pairs")
        triples = []
        for pair in merges:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise TokenizerFormatError(f"bad merge {pair!r}: expected [left, right] strings")
            try:
                left, right = (symbol_of[bpe.token_to_bytes(t)] for t in pair)
                result = symbol_of[symbol_bytes[left] + symbol_bytes[right]]
            except (KeyError, ValueError) as err:
                raise TokenizerFormatError(f"merge {pair!r} does not match the vocabulary") from err
            triples.append((left, right, result))
        self._set_model(symbol_bytes, triples)
