"""One source for the figures: the JSON document ``npdl bench --json`` writes, and the README's
performance table rendered from it (``npdl bench --markdown FILE``).

The document: ``{"facts": conditions.facts(...), "figures": [Figure.to_dict(), ...]}``. Nothing
here measures or prints; the CLI does both.
"""
from __future__ import annotations

import json
from pathlib import Path


class ReportError(ValueError):
    """A file that is not a ``npdl bench --json`` document."""


def document(facts: dict, figures: list) -> dict:
    return {"facts": facts, "figures": [f.to_dict() for f in figures]}


def load(path: str | Path) -> dict:
    """Read a ``npdl bench --json`` document; ReportError if it is missing or malformed."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read a benchmark JSON document ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("facts"), dict) or not isinstance(doc.get("figures"), list):
        raise ReportError(f"{path}: not a `npdl bench --json` document (needs 'facts' and 'figures')")
    return doc


def number(x: float) -> str:
    """Three significant figures, thousands separated (1,230 / 52.1 / 0.843)."""
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def side_text(name: str, side: dict, unit: str) -> str:
    """'npdl 52.1 ms (50.3-55.0)': the median, then the spread over rounds when there were several."""
    spread = f" ({number(side['min'])}-{number(side['max'])})" if len(side["samples"]) > 1 else ""
    return f"{name} {number(side['median'])} {unit}{spread}"


def header_lines(facts: dict) -> list[str]:
    keys = ("date", "machine", "cpu", "cores", "blas", "threads", "allocator", "denormals", "python", "numpy", "torch",
            "gensim", "rounds")
    return [f"{k}: {facts.get(k)}" for k in keys if k in facts]


def markdown(doc: dict) -> str:
    """The README's performance table: one line per figure, every side's median (spread) and the ratios."""
    facts = doc["facts"]
    lines = ["Measured by `npdl bench` on " + ", ".join(
        f"{k} {facts.get(k)}" for k in ("date", "cpu", "cores", "blas", "threads", "numpy", "torch", "gensim")
        if facts.get(k) is not None) + f"; allocator: {facts.get('allocator')}"
        + (f"; subnormals: {facts['denormals']}" if facts.get("denormals") else "") + ".", "",
        "| benchmark | figure | npdl (or the measured side): median (min-max) | references: median (min-max) | ratio of medians |",
        "|---|---|---|---|---|"]
    for f in doc["figures"]:
        sides = list(f["sides"].items())
        if not sides:
            lines.append(f"| `{f['bench']}` | {f['name']} | - | - | {f['note']} |")
            continue
        subject = side_text(*sides[0], f["unit"])
        refs = "; ".join(side_text(name, s, f["unit"]) for name, s in sides[1:]) or "-"
        ratios = "; ".join(f"{number(r)}x {k.split(' / ', 1)[1]}" for k, r in f["ratios"].items()) or "-"
        lines.append(f"| `{f['bench']}` | {f['name']} | {subject} | {refs} | {ratios} |")
    return "\n".join(lines) + "\n"
