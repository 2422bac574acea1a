"""Loggers: where the trainer's events go (``train.loggers``).

* ``JsonlLogger``: ``metrics.jsonl`` in the run folder, one event a line; always on: it is the
  record everything else (``npdl plot``, ``compare``, ``health``, resume) reads.
* ``CsvLogger``: ``metrics.csv``, one row per logged step and one column per metric
  (``train.loss``, ``val.accuracy``, ``health.grad_norm/layers.1.weight``, ...), for pandas and
  spreadsheets. A row is written once its step is over; when a metric appears that the header
  lacks (the first evaluation, the first health record) the file is rewritten atomically with
  the wider header, so the file on disk is always one valid table. The CSV is a view of
  ``metrics.jsonl``: it is rebuilt from it when training starts, so a resumed run (whose JSONL
  was cut back to the checkpoint) gets the matching table.
"""
from __future__ import annotations

import csv
import io
from npdl.atomic import atomic_write
from npdl.train.extensions.base import Logger

_KEYS = ("event", "split", "step", "epoch")
SKIPPED_EVENTS = ("eval_cli",)  # written by `npdl eval` into the same file, not by training


class JsonlLogger(Logger):
    name = "jsonl"

    def __init__(self, run):
        self.run = run

    def write(self, trainer, event: dict) -> None:
        self.run.log(event)


def columns(event: dict) -> dict:
    """An event's scalar values under ``<kind>.<metric>`` names; kind is the split for ``eval``."""
    kind = event.get("split") if event.get("event") == "eval" else event.get("event")
    out = {}
    for k, v in event.items():
        if k not in _KEYS and (v is None or isinstance(v, (int, float, str))):
            out[f"{kind}.{k}"] = v
    return out


def _cell(v) -> str:
    """None -> empty cell; floats in full precision (repr: 'nan' and 'inf' read back in pandas)."""
    if v is None:
        return ""
    return repr(float(v)) if isinstance(v, float) else str(v)


class CsvLogger(Logger):
    name = "csv"

    def __init__(self, run):
        self.run = run
        self.path = run.path / "metrics.csv"
        self.header: list[str] = ["step", "epoch"]
        self.row: dict | None = None  # the current step's row, written when the step is over

    def initialize(self, trainer) -> None:
        """Rebuild the table from ``metrics.jsonl`` (empty for a new run)."""
        self.header, self.row = ["step", "epoch"], None
        rows = []
        for event in self.run.metrics():
            row = self._merge(event)
            if row is not None and row is not self.row:
                rows.append(row)
            self.row = row if row is not None else self.row
        self.row = None
        for row in rows:
            self.header += [k for k in row if k not in self.header]
        if rows or self.path.exists():
            self._rewrite(rows)

    def _merge(self, event: dict) -> dict | None:
        """Add ``event`` to the current row, or start a row; returns the row it went to."""
        step = event.get("step")
        if event.get("event") in SKIPPED_EVENTS or isinstance(step, bool) or not isinstance(step, int):
            return None
        if self.row is None or self.row["step"] != step:
            row = {"step": step, "epoch": event.get("epoch")}
        else:
            row = self.row
        row.update(columns(event))
        if row["epoch"] is None:
            row["epoch"] = event.get("epoch")
        return row

    def write(self, trainer, event: dict) -> None:
        row = self._merge(event)
        if row is None or row is self.row:
            return
        self.flush()
        self.row = row

    def flush(self) -> None:
        """Write the pending row: appended when the header has its columns, else the file is
        rewritten with the header grown."""
        row, self.row = self.row, None
        if row is None:
            return
        new = [k for k in row if k not in self.header]
        if new or not self.path.exists():
            old = self._read() if self.path.exists() else []
            self.header += new
            self._rewrite(old + [row])
            return
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, self.header).writerow({k: _cell(v) for k, v in row.items()})

    def _read(self) -> list[dict]:
        with open(self.path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def _rewrite(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.header)
        w.writeheader()
        for row in rows:
            w.writerow({k: v if isinstance(v, str) else _cell(v) for k, v in row.items()})
        atomic_write(self.path, buf.getvalue())

    def finalize(self, trainer) -> None:
        self.flush()
