"""Byte-level byte-pair encoding: pre-tokenization, merge learning and merge application.

BPE (Sennrich, Haddow & Birch 2016, "Neural Machine Translation of Rare Words with Subword
Units", arXiv:1508.07909) starts from single symbols and repeatedly merges the most frequent
adjacent pair into a new symbol. Here the initial symbols are the 256 byte values of the
UTF-8 encoding (byte-level BPE, as in GPT-2: Radford et al. 2019), so every string can be
encoded and decoded exactly and nothing is ever unknown.

Words are marked with a *leading space* rather than an end-of-word marker: the text is cut
into pieces by :data:`PRETOKEN_RE`, and a piece carries the single space before it
(``"a cat."`` -> ``["a", " cat", "."]``). Concatenating the pieces gives the text back, so
decoding is plain byte concatenation. Merges never cross a piece boundary.

Symbols are ints: ``0..255`` are bytes, and merge ``k`` creates symbol ``256 + k`` unless
its byte string already exists (two merge paths can spell the same string, e.g. ``th+e`` and
``t+he``), in which case the existing symbol is reused so the vocabulary stays unique.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

#: Pieces: an optional leading space, then a run of letters (apostrophes allowed between
#: letters, so "don't" stays one piece), or of digits, or of other symbols; whitespace runs
#: keep their last space for the following word (``\s+(?!\S)``), as in GPT-2.
PRETOKEN_RE = re.compile(r" ?[^\W\d_]+(?:['\u2019][^\W\d_]+)*| ?\d+| ?(?:[^\w\s]|_)+|\s+(?!\S)|\s+")


def _byte_display_char(b: int) -> str:
    # Printable ASCII except space shows as itself; every other byte (space, controls,
    # UTF-8 lead/continuation bytes) maps to U+0100+b, so each byte is one visible,
    # JSON-safe character and distinct byte strings give distinct token strings.
    return chr(b) if 0x21 <= b <= 0x7E else chr(0x100 + b)


#: Token string of each byte (index = byte value) and the inverse map.
BYTE_CHARS: tuple[str, ...] = tuple(_byte_display_char(b) for b in range(256))
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(BYTE_CHARS)}


def bytes_to_token(data: bytes) -> str:
    """Display string of a byte sequence (one char per byte, see :data:`BYTE_CHARS`)."""
    return "".join(BYTE_CHARS[b] for b in data)


def token_to_bytes(token: str) -> bytes:
    """Inverse of :func:`bytes_to_token`.

    Raises:
        ValueError: ``token`` contains a character that is not a byte display char.
    """
    try:
        return bytes(CHAR_TO_BYTE[c] for c in token)
    except KeyError as err:
        raise ValueError(f"{token!r} is not a byte-level token string") from err


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into pieces; ``"".join(pretokenize(text)) == text`` always holds."""
    return PRETOKEN_RE.findall(text)


def merge_pair(symbols: list[int], left: int, right: int, new: int) -> list[int]:
    """Replace each non-overlapping ``(left, right)`` in ``symbols``, scanning left to right.

    Returns ``symbols`` itself (same object) when the pair does not occur.
    """
    out: list[int] = []
    i, n, changed = 0, len(symbols), False
    while i < n:
        if i + 1 < n and symbols[i] == left and symbols[i + 1] == right:
            out.append(new)
            i += 2
            changed = True
        else:
            out.append(symbols[i])
            i += 1
    return out if changed else symbols


def learn_merges(piece_counts: dict[str, int], max_symbols: int, min_frequency: int = 2
                 ) -> tuple[list[tuple[int, int, int]], list[bytes], Counter]:
    """Learn BPE merges greedily from piece frequencies.

    At each step the adjacent symbol pair with the highest total frequency is merged. Ties
    are broken by the pair's byte strings in lexicographic order ``(bytes(left),
    bytes(right))``, so results do not depend on dict or corpus order.

    Pair counts are updated incrementally: a merge only revisits the pieces that contain the
    merged pair (an inverted index), and a max-heap with lazy deletion finds the next best
    pair; stale heap entries are skipped when their count no longer matches.

    Args:
        piece_counts: pre-token piece -> number of occurrences in the corpus.
        max_symbols: stop when this many symbols (256 bytes + merged) exist; >= 256.
        min_frequency: stop when the best pair occurs fewer times than this.

    Returns:
        ``(merges, symbol_bytes, symbol_counts)``: ``merges[k] = (left, right, result)`` in
        priority order; ``symbol_bytes[s]`` is the byte string of symbol ``s``;
        ``symbol_counts[s]`` is how often ``s`` occurs in the final segmentation.

    Raises:
        ValueError: ``max_symbols < 256`` or ``min_frequency < 1``.
    """
    if max_symbols < 256:
        raise ValueError(f"max_symbols must be >= 256 (one per byte), got {max_symbols}")
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
    symbol_bytes: list[bytes] = [bytes([b]) for b in range(256)]
    symbol_of: dict[bytes, int] = {bs: s for s, bs in enumerate(symbol_bytes)}
    words = [list(piece.encode("utf-8")) for piece in piece_counts]
    freqs = list(piece_counts.values())

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # may hold stale word ids
    for wi, syms in enumerate(words):
        for pair in zip(syms, syms[1:]):
            pair_counts[pair] += freqs[wi]
            where[pair].add(wi)
    heap = [(-c, symbol_bytes[a], symbol_bytes[b], a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int, int]] = []
    merged_pairs: set[tuple[int, int]] = set()
    while heap and len(symbol_bytes) < max_symbols:
        neg, _, _, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg or count == 0:
            continue  # stale entry: the pair's count changed since it was pushed
        if count < min_frequency:
            break
        joined = symbol_bytes[a] + symbol_bytes[b]
        new = symbol_of.get(joined)
        if new is None:
            new = len(symbol_bytes)
            symbol_bytes.append(joined)
            symbol_of[joined] = new
        if (a, b) not in merged_pairs:  # a pair can reappear once its parts are re-formed
            merged_pairs.add((a, b))
            merges.append((a, b, new))
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for wi in where.pop((a, b)):
            old = words[wi]
            updated = merge_pair(old, a, b, new)
            if updated is old:
                continue
            f = freqs[wi]
            for pair in zip(old, old[1:]):
                delta[pair] -= f
            for pair in zip(updated, updated[1:]):
                delta[pair] += f
                where[pair].add(wi)
            words[wi] = updated
        for pair, d in delta.items():
            if d == 0:
                continue
            c = pair_counts[pair] + d
            if c <= 0:
                del pair_counts[pair]
                where.pop(pair, None)
            else:
                pair_counts[pair] = c
                heapq.heappush(heap, (-c, symbol_bytes[pair[0]], symbol_bytes[pair[1]], *pair))

    symbol_counts: Counter = Counter()
    for syms, f in zip(words, freqs):
        for s in syms:
            symbol_counts[s] += f
    return merges, symbol_bytes, symbol_counts


def count_pieces(texts: Iterable[str], lowercase: bool = False) -> dict[str, int]:
    """Frequency of each pre-token piece over ``texts`` (in first-appearance order).

    Raises:
        TypeError: an item of ``texts`` is not a str.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__}")
        counts.update(pretokenize(text.lower() if lowercase else text))
    return dict(counts)


def apply_merges(piece: str, ranks: dict[tuple[int, int], tuple[int, int]]) -> list[int]:
    """Segment one piece: repeatedly merge the present pair with the best (lowest) rank.

    ``ranks`` maps ``(left, right) -> (rank, result)``. Merging all occurrences of the
    lowest-ranked pair present is the same as replaying the learned merges in order.
    """
    syms = list(piece.encode("utf-8"))
    while len(syms) > 1:
        best = None
        for pair in zip(syms, syms[1:]):
            hit = ranks.get(pair)
            if hit is not None and (best is None or hit[0] < best[0]):
                best, best_pair = hit, pair
        if best is None:
            break
        syms = merge_pair(syms, best_pair[0], best_pair[1], best[1])
    return syms
