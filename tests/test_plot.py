"""``npdl plot``: several metrics in one figure, legends from the config, no run ever hidden."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.cli.chart import LETTERS, Series, render
from tests.conftest import env_without_data, tiny_config, write_config

runner = CliRunner()
BRAILLE = re.compile("[\u2801-\u28ff]")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def runs(workdir):
    """Two identical runs (same config and seed) and one with another learning rate and seed."""
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    for extra in ([], [], ["--set", "optimizer.lr=0.05", "--set", "seed=1"]):
        assert invoke("train", cfg, "--runs-dir", workdir / "runs", *extra).exit_code == 0
    return sorted((workdir / "runs").iterdir())


def chart_and_legend(output: str) -> tuple[str, list[str]]:
    lines = output.splitlines()
    axis = next(i for i, line in enumerate(lines) if line.strip().startswith(("└", "+")))
    return "\n".join(lines[1:axis]), [line for line in lines[axis + 2:] if line.strip()]


def test_identical_runs_both_appear(runs):
    res = invoke("plot", runs[0], runs[1], "--metric", "val.accuracy")
    assert res.exit_code == 0, res.output
    chart, legend = chart_and_legend(res.output)
    assert legend[0].startswith("  a  ") and legend[1].startswith("  b  ")  # both in the legend
    assert "*" in chart and "a+b at the same place" in res.output            # a combined mark, explained
    assert "ab" in chart                                                     # both letters where they end
    assert BRAILLE.search(chart)                                             # points joined by lines


def test_control_characters_in_a_title_reach_the_terminal_as_escapes(runs):
    res = invoke("plot", runs[0], "--metric", "val.accuracy", "--title", "\x1b[2J\x1b[31mloss\x07")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert res.output.splitlines()[0] == "\\x1b[2J\\x1b[31mloss\\x07"


def test_several_metrics_one_figure_labelled_by_what_differs(runs):
    res = invoke("plot", *runs, "--metric", "val.loss", "--metric", "train.loss", "--title", "tiny runs")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "tiny runs"
    chart, legend = chart_and_legend(res.output)
    assert len(legend) >= 6 and {"val.loss", "train.loss"} <= {line.split()[1] for line in legend[:6]}
    labels = " ".join(legend)
    assert "optimizer.lr=0.05, seed=1" in labels and "optimizer.lr=0.01, seed=0" in labels
    for k in range(6):
        assert LETTERS[k] in chart                                           # every series marked
    res = invoke("plot", *runs, "--metric", "val.loss,val.accuracy")        # two kinds: two panels
    assert res.exit_code == 0 and "val.loss, val.accuracy: val.loss" in res.output
    assert "val.loss, val.accuracy: val.accuracy" in res.output


def test_legend_names_runs_by_config_not_time(runs):
    res = invoke("plot", runs[0], runs[2], "--metric", "val.loss")
    _, legend = chart_and_legend(res.output)
    assert [line.split(None, 1)[1] for line in legend[:2]] == ["optimizer.lr=0.01, seed=0", "optimizer.lr=0.05, seed=1"]
    assert not any(re.search(r"\d{8}-\d{6}", line) for line in legend)


def test_unknown_metric_names_what_there_is(runs):
    res = invoke("plot", runs[0], "--metric", "val.nope")
    assert res.exit_code == 2 and "val.nope" in res.output and "val.accuracy" in res.output


def test_png_with_matplotlib(runs, workdir):
    pytest.importorskip("matplotlib")
    out = workdir / "curves.png"
    cmd = [sys.executable, "-m", "npdl", "plot", *map(str, runs), "--metric", "val.loss,train.loss",
           "--metric", "val.accuracy", "--title", "tiny", "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env_without_data(), cwd=workdir, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


curve = st.lists(st.tuples(st.integers(0, 1000), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(curves=st.lists(curve, min_size=1, max_size=8), copies=st.integers(0, 2),
       width=st.integers(10, 80), height=st.integers(3, 20))
def test_no_series_vanishes(curves, copies, width, height):
    curves = [sorted(c) for c in curves] + [sorted(curves[0])] * copies     # identical series included
    text = render([Series(f"run {i}", c) for i, c in enumerate(curves)], "t", width=width, height=height).plain
    rows = text.splitlines()[1:1 + height]
    assert len(rows) == height
    for k in range(len(curves)):
        letter = LETTERS[k]
        assert any(letter in row[12 + width + 1:] for row in rows), (letter, text)   # the end margin
        assert f"  {letter}  run {k}" in text
