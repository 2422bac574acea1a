"""Line charts in the terminal, without matplotlib.

Lines are drawn on a braille canvas (each character holds 2 x 4 dots, Unicode U+2800..U+28FF), so
that consecutive points are joined by a line, not left as loose dots. On top of the lines every
series puts its own letter at (a sample of) its points, and its letter again in the right margin
at the height where it ends. Where marks of several series fall on one character the chart shows
``*`` and the legend says which series share it; the margin lists every letter that ends on a
row ("ab"). So a series can never vanish under another, identical runs included.

Colours (one per series) appear on a colour terminal; the letters carry the identity without them.
"""
from __future__ import annotations

import dataclasses
import math
import unicodedata

from rich.text import Text

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta", "bright_green",
           "bright_yellow", "bright_blue", "bright_red"]
# braille dot bits by (column, row) inside a character: the Unicode braille pattern layout
_DOT = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (0, 3): 0x40, (1, 3): 0x80}
COMBINED = "*"


@dataclasses.dataclass
class Series:
    label: str
    points: list[tuple[float, float]]   # (step, value), in step order


def _line(x0: int, y0: int, x1: int, y1: int):
    """The dots of a straight line from (x0, y0) to (x1, y1), both ends included (Bresenham)."""
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        yield x0, y0
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def _marked(n: int, most: int) -> list[int]:
    """Indices of the points that get a mark: all of them, or ``most`` spread evenly (ends included)."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def printable(text: str) -> str:
    """``text`` with its control characters written as escapes (ESC as ``\\x1b``): a title given on
    the command line or a metric name read from a run's files cannot move the cursor or recolour
    the terminal."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)


def render(series: list[Series], title: str, width: int = 64, height: int = 16, braille: bool = True) -> Text:
    """The chart of ``series`` as rich Text: ``title``, the plot with a value axis on the left and
    a step axis below, the end letters on the right, and the legend (letter, label)."""
    series = [Series(printable(s.label), [p for p in s.points if math.isfinite(p[1])]) for s in series]
    pts = [p for s in series for p in s.points]
    out = Text(printable(title) + "\n", style="bold")
    if not pts:
        return out.append("no finite values to plot\n")
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 == y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1), y1 + 0.5 * (abs(y1) or 1)
    dw, dh = 2 * width, 4 * height
    dots = [[0] * width for _ in range(height)]
    owners: list[list[set]] = [[set() for _ in range(width)] for _ in range(height)]
    marks: dict[tuple[int, int], list[int]] = {}
    ends: dict[int, list[int]] = {}

    def to_dot(p):
        dx = 0 if x1 == x0 else round((p[0] - x0) / (x1 - x0) * (dw - 1))
        return dx, round((y1 - p[1]) / (y1 - y0) * (dh - 1))

    for k, s in enumerate(series):
        if not s.points:
            continue
        ds = [to_dot(p) for p in s.points]
        for a, b in zip(ds, ds[1:] or ds):
            for x, y in _line(*a, *b):
                dots[y // 4][x // 2] |= _DOT[(x % 2, y % 4)]
                owners[y // 4][x // 2].add(k)
        for i in _marked(len(ds), max(width // 4, 2)):
            cell = (ds[i][1] // 4, ds[i][0] // 2)
            if k not in marks.setdefault(cell, []):
                marks[cell].append(k)
        ends.setdefault(ds[-1][1] // 4, []).append(k)

    shared: dict[tuple[int, ...], int] = {}
    for ks in marks.values():
        if len(ks) > 1:
            shared[tuple(sorted(ks))] = shared.get(tuple(sorted(ks)), 0) + 1
    gutter = max((len(v) for v in ends.values()), default=0)
    for row in range(height):
        if row in (0, height - 1) or row % 4 == 0:
            value = y1 - (y1 - y0) * (row * 4 + 1.5) / (dh - 1)
            out.append(f"{value:>10.4g} ┤" if braille else f"{value:>10.4g} |")
        else:
            out.append(" " * 10 + (" │" if braille else " |"))
        for col in range(width):
            ks = marks.get((row, col))
            if ks:
                out.append(LETTERS[ks[0] % len(LETTERS)] if len(ks) == 1 else COMBINED,
                           style=COLOURS[ks[0] % len(COLOURS)] if len(ks) == 1 else "bold")
            elif dots[row][col]:
                who = owners[row][col]
                ch = chr(0x2800 + dots[row][col]) if braille else "."
                out.append(ch, style=COLOURS[next(iter(who)) % len(COLOURS)] if len(who) == 1 else "dim")
            else:
                out.append(" ")
        out.append(" ")
        for k in ends.get(row, []):
            out.append(LETTERS[k % len(LETTERS)], style=COLOURS[k % len(COLOURS)])
        out.append(" " * (gutter - len(ends.get(row, []))) + "\n")
    out.append(" " * 11 + ("└" + "─" * width if braille else "+" + "-" * width) + "\n")
    left, right = f"step {x0:,.0f}", f"step {x1:,.0f}"
    out.append(" " * 12 + left + " " * max(width - len(left) - len(right), 1) + right + "\n")
    for k, s in enumerate(series):
        out.append(f"  {LETTERS[k % len(LETTERS)]}", style=COLOURS[k % len(COLOURS)])
        out.append(f"  {s.label}" + ("" if s.points else " (no finite values)") + "\n")
    for ks, n in shared.items():
        who = "+".join(LETTERS[k % len(LETTERS)] for k in ks)
        out.append(f"  {COMBINED}  {who} at the same place ({n} mark{'s' if n > 1 else ''})\n")
    return out
