"""Text tokenizers: word-level and byte-level BPE, with shared special tokens and JSON I/O.

Special tokens are always the first six vocabulary entries, with fixed ids::

    <pad>=0  <unk>=1  <bos>=2  <eos>=3  <cls>=4  <sep>=5

Reserved special strings typed literally in the input are plain text, never control
tokens, except where they cannot be (WordTokenizer with ``split_punct=False``, see
``npdl.data.word_tokenizer``), which raises :class:`ReservedTokenError`.

This module is the public entry point; the classes live in ``tokenizer_base``,
``word_tokenizer`` and ``bpe_tokenizer`` (BPE training/merging in ``bpe``) to keep modules
small. Loading (:func:`load_tokenizer`, :func:`tokenizer_from_dict`) only parses JSON data;
it never executes code.
"""
from __future__ import annotations

import os
from typing import Any

from npdl.data.bpe_tokenizer import BPETokenizer
from npdl.data.tokenizer_base import (BOS_ID, CLS_ID, EOS_ID, PAD_ID, SEP_ID, SKIPPABLE_IDS,
                                      SPECIAL_TOKENS, UNK_ID, NotFittedError, ReservedTokenError,
                                      SequenceTooLongError, Tokenizer, TokenizerError,
                                      TokenizerFormatError, read_json)
from npdl.data.vocab import BOS, CLS, EOS, PAD, SEP, UNK
from npdl.data.word_tokenizer import WordTokenizer, detokenize
from npdl.registry import TOKENIZERS

__all__ = ["PAD", "UNK", "BOS", "EOS", "CLS", "SEP", "SPECIAL_TOKENS", "PAD_ID", "UNK_ID",
           "BOS_ID", "EOS_ID", "CLS_ID", "SEP_ID", "SKIPPABLE_IDS", "Tokenizer", "WordTokenizer",
           "BPETokenizer", "detokenize", "tokenizer_from_dict", "load_tokenizer", "TokenizerError",
           "NotFittedError", "ReservedTokenError", "SequenceTooLongError", "TokenizerFormatError"]

for _cls in (WordTokenizer, BPETokenizer):
    TOKENIZERS.register(_cls.type_name)(_cls)


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild any tokenizer from ``to_dict`` output, choosing the class by ``data["type"]``.

    Raises:
        TokenizerFormatError: not a dict, an unknown ``type``, or a malformed dict.
    """
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in TOKENIZERS:
        raise TokenizerFormatError(f"unknown tokenizer type {kind!r:.60}; known: {TOKENIZERS.names()}")
    return TOKENIZERS.get(kind).from_dict(data)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer of any type from a JSON file written by ``Tokenizer.save``.

    Raises:
        TokenizerFormatError: not JSON, or not a known tokenizer dict.
        OSError: the file cannot be read.
    """
    return tokenizer_from_dict(read_json(path))
