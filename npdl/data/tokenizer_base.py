"""Shared machinery of the tokenizers: special-token ids, errors and the ``Tokenizer`` base.

Special tokens are always the first six vocabulary entries, with fixed ids::

    <pad>=0  <unk>=1  <bos>=2  <eos>=3  <cls>=4  <sep>=5

``<pad>`` is 0 so a padding mask is simply ``ids != 0``. The concrete tokenizers live in
``npdl.data.word_tokenizer`` and ``npdl.data.bpe_tokenizer``; import them (and
``tokenizer_from_dict``) from ``npdl.data.tokenizers``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from npdl.atomic import atomic_write
from npdl.data.vocab import DEFAULT_SPECIALS, Vocab, VocabError

SPECIAL_TOKENS: tuple[str, ...] = DEFAULT_SPECIALS
PAD_ID, UNK_ID, BOS_ID, EOS_ID, CLS_ID, SEP_ID = range(len(SPECIAL_TOKENS))
#: Ids dropped by ``decode(skip_special=True)``. ``<unk>`` is kept: it stands for a real word.
SKIPPABLE_IDS = frozenset({PAD_ID, BOS_ID, EOS_ID, CLS_ID, SEP_ID})
FORMAT_VERSION = 1


class TokenizerError(ValueError):
    """Base class for tokenizer usage errors."""


class NotFittedError(TokenizerError):
    """The tokenizer has no vocabulary yet; call ``fit`` or ``load`` first."""


class ReservedTokenError(TokenizerError):
    """The input contains a reserved special token literally, where it cannot be plain text."""


class SequenceTooLongError(TokenizerError):
    """``truncate="error"`` and the encoded text is longer than ``max_len``."""


class TokenizerFormatError(TokenizerError):
    """A tokenizer dict/JSON file is malformed, of another type or of another version."""


def _add_specials(ids: list[int], add_bos: bool, add_eos: bool, max_len: int | None,
                  truncate: str) -> list[int]:
    # Truncation shortens the text, never the markers: <bos>/<eos> always survive.
    if truncate not in ("right", "left", "error"):
        raise TokenizerError(f"truncate must be 'right', 'left' or 'error', got {truncate!r}")
    if max_len is not None:
        room = max_len - int(add_bos) - int(add_eos) if isinstance(max_len, int) else -1
        if room < 0:
            raise TokenizerError(f"max_len must be an int >= the number of added markers "
                                 f"({int(add_bos) + int(add_eos)}), got {max_len!r}")
        if len(ids) > room:
            if truncate == "error":
                raise SequenceTooLongError(f"text encodes to {len(ids)} tokens (+ markers), more "
                                           f"than max_len={max_len}; pass truncate='right'/'left'")
            ids = ids[:room] if truncate == "right" else ids[len(ids) - room:]
    return [BOS_ID] * bool(add_bos) + ids + [EOS_ID] * bool(add_eos)


class Tokenizer:
    """Shared interface: ``fit``, ``encode``, ``decode``, JSON (de)serialisation.

    Subclasses implement ``fit``, ``_encode_text`` (text -> ids without markers),
    ``decode``, ``_config`` and ``_state_to_dict``/``_state_from_dict``.
    """

    type_name: ClassVar[str] = ""
    vocab: Vocab | None

    def _require_vocab(self) -> Vocab:
        if self.vocab is None:
            raise NotFittedError(f"{type(self).__name__} has no vocabulary yet: call fit(texts) "
                                 f"or load a saved one")
        return self.vocab

    def __len__(self) -> int:
        """Vocabulary size (including the 6 specials)."""
        return len(self._require_vocab())

    def __bool__(self) -> bool:  # without this, `if tokenizer:` would call __len__ and raise
        return True

    # The special ids are fixed, so these work before fit (e.g. to size a padding mask).
    pad_id = property(lambda self: PAD_ID, doc="Id of ``<pad>`` (0).")
    unk_id = property(lambda self: UNK_ID, doc="Id of ``<unk>`` (1).")
    bos_id = property(lambda self: BOS_ID, doc="Id of ``<bos>`` (2).")
    eos_id = property(lambda self: EOS_ID, doc="Id of ``<eos>`` (3).")
    cls_id = property(lambda self: CLS_ID, doc="Id of ``<cls>`` (4).")
    sep_id = property(lambda self: SEP_ID, doc="Id of ``<sep>`` (5).")

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False,
               max_len: int | None = None, truncate: str = "right") -> list[int]:
        """Token ids of ``text``.

        Args:
            text: the input string.
            add_bos / add_eos: prepend ``<bos>`` (id 2) / append ``<eos>`` (id 3).
            max_len: maximum length of the result, markers included; None = unlimited.
            truncate: when too long, drop tokens from the ``"right"`` end or the ``"left"``
                start of the text (markers are kept), or ``"error"`` to raise.

        Raises:
            NotFittedError: no vocabulary yet.
            SequenceTooLongError: too long and ``truncate="error"``.
            TokenizerError: bad ``max_len``/``truncate``, or ``text`` is not a str.
            ReservedTokenError: WordTokenizer(split_punct=False) only; see npdl.data.word_tokenizer.
        """
        if not isinstance(text, str):
            raise TokenizerError(f"encode expects a str, got {type(text).__name__}")
        return _add_specials(self._encode_text(text), add_bos, add_eos, max_len, truncate)

    def _encode_text(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special: bool = True) -> str:
        """Text for ``ids`` (1-D); ``skip_special`` drops :data:`SKIPPABLE_IDS`."""
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: ``{"type", "format_version", "config", "vocab", ...}``."""
        out = {"type": self.type_name, "format_version": FORMAT_VERSION, "config": self._config(),
               "vocab": None if self.vocab is None else self.vocab.to_dict()}
        out.update(self._state_to_dict())
        return out

    def _state_to_dict(self) -> dict[str, Any]:
        return {}

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        pass

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Tokenizer":
        """Rebuild a tokenizer of this class from :meth:`to_dict` output.

        Raises:
            TokenizerFormatError: wrong ``type``/``format_version``, unknown config keys,
                or a vocabulary without the six specials at ids 0..5.
        """
        if not isinstance(data, dict) or data.get("type") != cls.type_name:
            got = data.get("type") if isinstance(data, dict) else type(data).__name__
            raise TokenizerFormatError(f"expected a {cls.type_name!r} tokenizer dict, got type "
                                       f"{got!r}; use npdl.data.tokenizers.tokenizer_from_dict()")
        if data.get("format_version") != FORMAT_VERSION:
            raise TokenizerFormatError(f"unsupported format_version {data.get('format_version')!r} "
                                       f"(this npdl reads version {FORMAT_VERSION})")
        config = data.get("config")
        if not isinstance(config, dict):
            raise TokenizerFormatError("tokenizer dict needs a 'config' object")
        try:
            tok = cls(**config)
        except (TypeError, TokenizerError) as err:
            raise TokenizerFormatError(f"bad {cls.type_name!r} tokenizer config {config}: {err}") from err
        if data.get("vocab") is not None:
            try:
                vocab = Vocab.from_dict(data["vocab"])
            except VocabError as err:
                raise TokenizerFormatError(f"bad vocabulary: {err}") from err
            if vocab.tokens[:len(SPECIAL_TOKENS)] != SPECIAL_TOKENS or vocab.specials != SPECIAL_TOKENS:
                raise TokenizerFormatError(f"vocabulary must start with the specials {SPECIAL_TOKENS}")
            tok.vocab = vocab
        tok._state_from_dict(data)
        return tok

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``."""
        atomic_write(path, json.dumps(self.to_dict(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer of this class saved by :meth:`save`.

        Use ``npdl.data.tokenizers.load_tokenizer`` when the type is not known in advance.

        Raises:
            TokenizerFormatError: not valid JSON, or a tokenizer of another type.
            OSError: the file cannot be read.
        """
        return cls.from_dict(read_json(path))


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file (UTF-8); data only, nothing is executed.

    Raises:
        TokenizerFormatError: the file is not valid JSON.
        OSError: the file cannot be read.
    """
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as err:
            raise TokenizerFormatError(f"{path}: not a JSON tokenizer file ({err})") from err
