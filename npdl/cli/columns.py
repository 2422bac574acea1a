"""Columns of numbers for tables: one format per column, and machine-readable cells.

A table reads well when a column's numbers line up: the same decimals for every row, thousands
separators for large values, scientific notation only for a column of tiny values. Config
values are shown exactly (the fewest decimals that reproduce every value of the column);
metrics to about four significant digits of the column's largest value.
"""
from __future__ import annotations

import json
import math


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fixed(d: int):
    return lambda v: f"{v:,.{d}f}"


def _sci(k: int):
    return lambda v: f"{v:.{k}e}"


def _exact(nums: list[float]):
    """The shortest format that gives back every number of the column (at most 6 decimals)."""
    finite = [abs(v) for v in nums if math.isfinite(v)]
    big = max(finite, default=0.0)
    tiny = 0 < big < 1e-3
    if not tiny:
        for d in range(7):
            if all(not math.isfinite(v) or float(f"{v:.{d}f}") == v for v in nums):
                return _fixed(d)
    for k in range(7):
        if all(not math.isfinite(v) or float(f"{v:.{k}e}") == v for v in nums):
            return _sci(k)
    return _significant(nums, 6)  # 0.1 + 0.2: no short exact form; six digits say enough


def _significant(nums: list[float], digits: int = 4):
    """About ``digits`` significant digits of the column's largest value, for every row."""
    finite = [abs(v) for v in nums if math.isfinite(v)]
    big = max(finite, default=0.0)
    if big == 0:
        return _fixed(digits)
    if big < 1e-3 or big >= 1e9:
        return _sci(digits - 1)
    return _fixed(min(max(digits - 1 - math.floor(math.log10(big)), 0), 6))


def column_format(values: list, exact: bool = False):
    """A function that formats one number the way every number of ``values`` is formatted."""
    nums = [v for v in values if is_number(v)]
    if nums and all(isinstance(v, int) for v in nums):
        return lambda v: f"{v:,}"
    floats = [float(v) for v in nums]
    return _exact(floats) if exact else _significant(floats)


def text(v) -> str:
    """A non-number cell as text: None empty, lists and mappings as JSON, booleans as YAML writes them."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def format_column(values: list, exact: bool = False) -> list[str]:
    """Every cell of a column as text, numbers in one format."""
    fmt = column_format(values, exact)
    out = []
    for v in values:
        if is_number(v):
            out.append(fmt(v) if math.isfinite(v) else str(v).lower())
        else:
            out.append(text(v))
    return out


def raw(v) -> str:
    """A cell for CSV: numbers at full precision, nothing rounded."""
    if is_number(v):
        return repr(v) if isinstance(v, float) else str(v)
    return text(v)


def duration(seconds) -> str:
    """12.3s, 4m05s, 2h07m: wall times of any length in a few characters."""
    if not is_number(seconds) or not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
