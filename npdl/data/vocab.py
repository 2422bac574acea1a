"""Vocab: a fixed bijection between token strings and integer ids, plus their corpus counts.

Ids are dense, ``0 .. len(vocab) - 1``. Special tokens (padding, unknown, sentence markers)
come first, in the order given, so their ids do not depend on the corpus; every other token
follows in the order chosen by :meth:`Vocab.build`.

``counts`` is aligned with the ids (``counts[i]`` is how often token ``i`` was seen while
building) because word2vec needs it for its unigram^0.75 negative-sampling table and for
frequent-word subsampling (Mikolov et al. 2013, arXiv:1310.4546, sections 2.2-2.3).

Serialisation is plain JSON-able dicts (:meth:`Vocab.to_dict` / :meth:`Vocab.from_dict`):
loading a vocabulary never executes code.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

PAD = "<pad>"
UNK = "<unk>"
BOS = "<bos>"
EOS = "<eos>"
CLS = "<cls>"
SEP = "<sep>"
#: The reserved special tokens, in the order that gives them ids 0..5 in the tokenizers.
DEFAULT_SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS, CLS, SEP)


class VocabError(ValueError):
    """A vocabulary was built, used or loaded with invalid arguments."""


class UnknownTokenError(VocabError, KeyError):
    """A token is not in the vocabulary and the vocabulary has no ``<unk>`` to map it to."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class Vocab:
    """Token <-> id maps with special tokens and per-token counts.

    Args:
        tokens: the token strings; ``tokens[i]`` gets id ``i``. Must be unique strings.
        counts: one non-negative int per token (default: all zero).
        specials: which of ``tokens`` are special (e.g. ``("<pad>", "<unk>")``).

    Raises:
        VocabError: duplicate or non-string tokens, a special missing from ``tokens``,
            or ``counts`` of the wrong length / negative.
    """

    def __init__(self, tokens: Iterable[str], counts: Iterable[int] | None = None,
                 specials: Iterable[str] = ()) -> None:
        self._tokens: tuple[str, ...] = tuple(tokens)
        for tok in self._tokens:
            if not isinstance(tok, str):
                raise VocabError(f"tokens must be str, got {type(tok).__name__}: {tok!r}")
        self._ids: dict[str, int] = {tok: i for i, tok in enumerate(self._tokens)}
        if len(self._ids) != len(self._tokens):
            dupes = sorted(t for t, c in Counter(self._tokens).items() if c > 1)
            raise VocabError(f"tokens must be unique; duplicated: {dupes[:10]}")
        self._specials: tuple[str, ...] = tuple(specials)
        missing = [s for s in self._specials if s not in self._ids]
        if missing:
            raise VocabError(f"specials {missing} are not among the tokens; put them in `tokens` too")
        if len(set(self._specials)) != len(self._specials):
            raise VocabError(f"specials must be unique, got {self._specials}")
        if counts is None:
            arr = np.zeros(len(self._tokens), dtype=np.int64)
        else:
            arr = np.array(list(counts), dtype=np.int64)
            if arr.shape != (len(self._tokens),):
                raise VocabError(f"need one count per token: {len(self._tokens)} tokens, "
                                 f"{arr.size} counts")
            if arr.size and arr.min() < 0:
                raise VocabError("counts must be non-negative")
        arr.setflags(write=False)  # shared by reference through .counts; keep it immutable
        self._counts = arr

    @classmethod
    def build(cls, token_iterables: Iterable[Iterable[str]], min_count: int = 1,
              max_size: int | None = None, specials: Sequence[str] = DEFAULT_SPECIALS) -> "Vocab":
        """Count tokens over a corpus and keep the frequent ones.

        Order: ``specials`` first (ids ``0..len(specials)-1``, in the given order), then the
        other tokens by count descending; ties are broken by first appearance in the corpus
        (the earlier-seen token gets the smaller id), which makes the result deterministic
        for a given input order.

        A corpus token that equals a special string (e.g. Penn Treebank's literal ``<unk>``)
        is counted towards that special rather than getting a second entry.

        Args:
            token_iterables: e.g. a list of tokenized sentences (each a list of str).
            min_count: drop non-special tokens seen fewer times than this (>= 1).
            max_size: cap on the total size *including* specials; None means no cap.
            specials: special tokens, always kept whatever their count.

        Returns:
            The new Vocab, with ``counts`` filled from the corpus.

        Raises:
            VocabError: ``min_count < 1``, ``max_size < len(specials)``, a non-str token,
                or a bare string passed where an iterable of token lists is expected.
        """
        if isinstance(token_iterables, str):
            raise VocabError("token_iterables must be an iterable of token lists, not a str; "
                             "tokenize first, e.g. Vocab.build([text.split()])")
        if not isinstance(min_count, int) or min_count < 1:
            raise VocabError(f"min_count must be an int >= 1, got {min_count!r}")
        specials = tuple(specials)
        if max_size is not None and (not isinstance(max_size, int) or max_size < len(specials)):
            raise VocabError(f"max_size must be None or an int >= len(specials)={len(specials)}, "
                             f"got {max_size!r}")
        counter: Counter[str] = Counter()  # a dict: iteration follows first appearance
        for tokens in token_iterables:
            if isinstance(tokens, str):
                raise VocabError("each item of token_iterables must be a list of tokens, got a "
                                 f"str ({tokens[:30]!r}); did you forget to tokenize?")
            counter.update(tokens)
        bad = next((t for t in counter if not isinstance(t, str)), None)
        if bad is not None:
            raise VocabError(f"tokens must be str, got {type(bad).__name__}: {bad!r}")
        special_set = set(specials)
        # sorted() is stable, so equal counts keep first-appearance order.
        regular = sorted((t for t in counter if t not in special_set and counter[t] >= min_count),
                         key=lambda t: -counter[t])
        if max_size is not None:
            regular = regular[:max_size - len(specials)]
        tokens = list(specials) + regular
        return cls(tokens, [counter.get(t, 0) for t in tokens], specials)

    # ---------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self):
        return iter(self._tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self._tokens == other._tokens and self._specials == other._specials
                and np.array_equal(self._counts, other._counts))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self._specials)})"

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens, indexed by id."""
        return self._tokens

    @property
    def specials(self) -> tuple[str, ...]:
        """The special tokens, in id order."""
        return self._specials

    @property
    def counts(self) -> np.ndarray:
        """Read-only int64 array, shape ``(len(self),)``: corpus frequency of each id."""
        return self._counts

    def _special_id(self, token: str) -> int | None:
        return self._ids[token] if token in self._specials else None

    pad_id = property(lambda self: self._special_id(PAD), doc="Id of ``<pad>``, or None.")
    unk_id = property(lambda self: self._special_id(UNK), doc="Id of ``<unk>``, or None.")
    bos_id = property(lambda self: self._special_id(BOS), doc="Id of ``<bos>``, or None.")
    eos_id = property(lambda self: self._special_id(EOS), doc="Id of ``<eos>``, or None.")
    cls_id = property(lambda self: self._special_id(CLS), doc="Id of ``<cls>``, or None.")
    sep_id = property(lambda self: self._special_id(SEP), doc="Id of ``<sep>``, or None.")

    def token_to_id(self, token: str) -> int:
        """Id of ``token``; unknown tokens map to ``unk_id``.

        Raises:
            UnknownTokenError: ``token`` is unknown and the vocab has no ``<unk>``.
        """
        i = self._ids.get(token)
        if i is not None:
            return i
        if self.unk_id is None:
            raise UnknownTokenError(f"token {token!r} is not in the vocabulary and it has no "
                                    f"{UNK!r} special; build it with {UNK!r} in specials")
        return self.unk_id

    def id_to_token(self, index: int) -> str:
        """Token string of id ``index``.

        Raises:
            VocabError: ``index`` is not an int in ``[0, len(self))``.
        """
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise VocabError(f"ids must be ints, got {type(index).__name__}")
        if not 0 <= index < len(self._tokens):
            raise VocabError(f"id {index} is out of range for a vocabulary of size {len(self)}")
        return self._tokens[index]

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Ids of ``tokens`` as an int64 array of shape ``(n,)``; unknowns become ``unk_id``.

        Raises:
            UnknownTokenError: an unknown token and no ``<unk>`` in the vocabulary.
            VocabError: ``tokens`` is a bare str (pass a list of tokens).
        """
        if isinstance(tokens, str):
            raise VocabError("encode expects a sequence of tokens, not a str; tokenize first")
        get, unk = self._ids.get, self.unk_id
        if unk is None:
            return np.array([self.token_to_id(t) for t in tokens], dtype=np.int64)
        return np.array([get(t, unk) for t in tokens], dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Token strings for ``ids`` (a 1-D int sequence or array).

        Raises:
            VocabError: a non-integer id, an id out of range, or a non-1-D array.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise VocabError(f"decode expects a 1-D sequence of ids, got shape {arr.shape}")
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise VocabError(f"ids must be integers, got dtype {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= len(self._tokens):
            bad = lo if lo < 0 else hi
            raise VocabError(f"id {bad} is out of range for a vocabulary of size {len(self)}")
        toks = self._tokens
        return [toks[i] for i in arr.tolist()]

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: ``{"tokens": [...], "counts": [...], "specials": [...]}``."""
        return {"tokens": list(self._tokens), "counts": self._counts.tolist(),
                "specials": list(self._specials)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocab":
        """Inverse of :meth:`to_dict`.

        Raises:
            VocabError: ``data`` is not a dict with list-valued ``tokens``/``counts``/``specials``
                or fails the constructor's checks.
        """
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise VocabError("a vocab dict needs a 'tokens' list (as written by Vocab.to_dict)")
        counts = data.get("counts")
        specials = data.get("specials", [])
        if counts is not None and (not isinstance(counts, list)
                                   or not all(type(c) is int for c in counts)):
            raise VocabError("vocab 'counts' must be a list of ints")
        if not isinstance(specials, list):
            raise VocabError("vocab 'specials' must be a list of str")
        return cls(data["tokens"], counts, specials)
