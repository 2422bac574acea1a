"""WordTokenizer: word-level tokens with punctuation split off, and a detokenizer.

Apostrophes and hyphens inside a word stay in it ("don't", "t-shirt", "man's" are single
tokens), so contractions need no re-attachment rules when decoding.

Reserved special strings in the input: with ``split_punct=True`` they are plain text (``<``,
``pad``, ``>`` are ordinary tokens). With ``split_punct=False`` a whitespace-separated word
equal to ``<pad>``, ``<bos>``, ``<eos>``, ``<cls>`` or ``<sep>`` raises
:class:`ReservedTokenError`, since it cannot be told from the control token; a literal
``<unk>`` maps to the unk id (Penn Treebank marks rare words that way).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from npdl.data.tokenizer_base import (SKIPPABLE_IDS, SPECIAL_TOKENS, ReservedTokenError, Tokenizer,
                                      TokenizerError)
from npdl.data.vocab import UNK, Vocab

# A word is a run of word characters; apostrophes and hyphens inside it are kept ("don't",
# "t-shirt" stay whole, so contractions need no re-attachment rules), as are '.', ',' and
# ':' between digits ("3.5", "1,000", "10:30"). Any other non-space character is a token.
_WORD_RE = re.compile(r"\w+(?:(?:['\u2019-]|(?<=\d)[.,:](?=\d))\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}\u2026\u201d")  # ... and the closing quote ”
_NO_SPACE_AFTER = frozenset("([{\u00bf\u00a1$\u00a3\u20ac\u201e")  # ¿ ¡ $ £ € and German „
_TOGGLE_QUOTES = {'"': '"', "\u201c": '"', "'": "'"}  # alternate opening / closing


def detokenize(tokens: Sequence[str]) -> str:
    """Join word-level tokens with spaces, re-attaching punctuation (best effort).

    Closing punctuation sticks to the left, opening brackets/currency to the right, and
    ``"``/``'``/``“`` alternate between opening and closing (``„`` opens, ``”`` closes).
    Guarantee: for tokens produced by ``WordTokenizer(split_punct=True).tokenize``,
    tokenizing the result again gives the same tokens (a space is kept wherever gluing
    could merge two tokens).
    """
    parts: list[str] = []
    glue_next = True  # no space before the first token
    open_quote = {'"': False, "'": False}
    for tok in tokens:
        kind = "right" if tok in _NO_SPACE_AFTER else "left" if tok in _NO_SPACE_BEFORE else ""
        if tok == "\u201e":
            open_quote['"'] = True
        elif tok == "\u201d":
            open_quote['"'] = False
        elif tok in _TOGGLE_QUOTES:
            family = _TOGGLE_QUOTES[tok]
            kind = "left" if open_quote[family] else "right"
            open_quote[family] = not open_quote[family]
        if parts and not glue_next and kind != "left":
            parts.append(" ")
        parts.append(tok)
        glue_next = kind == "right"
    return "".join(parts)


class WordTokenizer(Tokenizer):
    """Word-level tokenizer: NFC-normalise, optionally lowercase, split into words.

    Args:
        lowercase: lowercase the text first.
        split_punct: split punctuation into one-character tokens (see ``_WORD_RE``);
            when False, tokens are just the whitespace-separated words.
        vocab_size: cap on the vocabulary size *including* the 6 specials; None = no cap.
        min_count: words seen fewer times than this during ``fit`` become ``<unk>``.

    ``decode(encode(t))`` gives the normalised ``t``: NFC, lowercased if asked, single
    spaces, punctuation attached as by :func:`detokenize` (out-of-vocabulary words come
    back as ``<unk>``).

    Raises:
        TokenizerError: ``vocab_size < 7`` or ``min_count < 1``.
    """

    type_name = "word"

    def __init__(self, lowercase: bool = True, split_punct: bool = True,
                 vocab_size: int | None = None, min_count: int = 1) -> None:
        if vocab_size is not None and (not isinstance(vocab_size, int)
                                       or vocab_size <= len(SPECIAL_TOKENS)):
            raise TokenizerError(f"vocab_size must be None or an int > {len(SPECIAL_TOKENS)} "
                                 f"(it includes the specials), got {vocab_size!r}")
        if not isinstance(min_count, int) or min_count < 1:
            raise TokenizerError(f"min_count must be an int >= 1, got {min_count!r}")
        self.lowercase, self.split_punct = bool(lowercase), bool(split_punct)
        self.vocab_size, self.min_count = vocab_size, min_count
        self.vocab = None

    def _config(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "split_punct": self.split_punct,
                "vocab_size": self.vocab_size, "min_count": self.min_count}

    def tokenize(self, text: str) -> list[str]:
        """Normalise ``text`` and split it into word tokens (no vocabulary needed).

        Raises:
            ReservedTokenError: ``split_punct=False`` and a word is a reserved special
                other than ``<unk>``.
            TokenizerError: ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise TokenizerError(f"expected a str, got {type(text).__name__}")
        text = unicodedata.normalize("NFC", text)
        if self.lowercase:
            text = text.lower()
        if self.split_punct:
            return _WORD_RE.findall(text)
        words = text.split()
        for w in words:
            if w in SPECIAL_TOKENS and w != UNK:
                raise ReservedTokenError(f"the input contains the reserved token {w!r} as a word; "
                                         f"reserved tokens cannot be plain text when split_punct="
                                         f"False (use split_punct=True or remove it)")
        return words

    def fit(self, texts: Iterable[str]) -> "WordTokenizer":
        """Build the vocabulary from ``texts`` (see :meth:`Vocab.build` for the order).

        Raises:
            TokenizerError: ``texts`` is a bare str.
            ReservedTokenError: as in :meth:`tokenize`.
        """
        if isinstance(texts, str):
            raise TokenizerError("fit expects an iterable of texts, not a single str")
        self.vocab = Vocab.build((self.tokenize(t) for t in texts), min_count=self.min_count,
                                 max_size=self.vocab_size, specials=SPECIAL_TOKENS)
        return self

    def _encode_text(self, text: str) -> list[int]:
        vocab = self._require_vocab()
        return vocab.encode(self.tokenize(text)).tolist()

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special: bool = True) -> str:
        """Text for ``ids``; ``skip_special`` drops pad/bos/eos/cls/sep (``<unk>`` stays).

        Raises:
            NotFittedError: no vocabulary yet.
            VocabError: an id out of range.
        """
        tokens = self._require_vocab().decode(ids)
        if skip_special:
            tokens = [t for t, i in zip(tokens, np.asarray(ids).tolist()) if i not in SKIPPABLE_IDS]
        return detokenize(tokens) if self.split_punct else " ".join(tokens)
