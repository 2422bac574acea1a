"""``npdl compare``: runs as rows, config keys and metrics as columns, clean CSV/Markdown/JSON."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.cli.app import console
from npdl.cli.columns import format_column
from tests.conftest import env_without_data, tiny_config, write_config
from tests.test_cli_hostile import assert_user_error

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def three(workdir) -> list[Path]:
    """Three trained tiny runs: two learning rates, and a copy of the first under another name."""
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    for extra in ([], ["--set", "optimizer.lr=0.05", "--name", "fast"], ["--name", "again"]):
        assert invoke("train", cfg, "--runs-dir", workdir / "runs", *extra).exit_code == 0
    return sorted((workdir / "runs").iterdir())


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_through_a_pipe_has_rows_of_equal_length(three, workdir):
    cmd = [sys.executable, "-m", "npdl", "compare", *map(str, three), "--format", "csv"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env_without_data(), cwd=workdir, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = rows_of(res.stdout)
    assert len(rows) == 4 and len({len(r) for r in rows}) == 1
    header = rows[0]
    assert header[:4] == ["run", "status", "steps", "wall_seconds"]
    assert {"optimizer.lr", "seed", "val.accuracy", "test.accuracy", "train.loss"} <= set(header)
    assert [r[0] for r in rows[1:]] == [p.name for p in three]       # full names, one run per row
    lr = header.index("optimizer.lr")
    assert sorted(float(r[lr]) for r in rows[1:]) == [0.01, 0.01, 0.05]


def test_csv_md_json_ignore_a_narrow_terminal(three, monkeypatch):
    monkeypatch.setattr(console, "_width", 40)  # not "width": its undo would pin the width for later tests
    rows = rows_of(invoke("compare", *three, "--format", "csv").stdout)
    assert len(rows) == 4 and len({len(r) for r in rows}) == 1 and len(rows[0]) > 10
    md = invoke("compare", *three, "--format", "md").stdout.splitlines()
    assert len(md) == 5 and len({line.count(" | ") for line in md[2:]}) == 1 and md[0].startswith("| run |")
    data = json.loads(invoke("compare", *three, "--format", "json").stdout)
    assert list(data) == [p.name for p in three]                      # an object keyed by run name
    for run in data.values():
        assert run["status"] == "completed" and run["wall_seconds"] > 0 and run["steps"] == 20
        assert run["config"]["optimizer.lr"] in (0.01, 0.05)
        acc = run["metrics"]["val.accuracy"]
        assert acc["mode"] == "max" and 0 <= acc["best"] <= 1 and acc["best_step"] in (10, 20)
    table = invoke("compare", *three, "--metrics", "val.accuracy").stdout
    assert all(len(line) <= 40 for line in table.splitlines() if "best value" not in line)


def test_only_changed_prunes_constant_config_and_metric_columns(three):
    again, fast, a = three   # sorted by name: again-, fast-, tiny-
    header = rows_of(invoke("compare", a, again, "--format", "csv").stdout)[0]
    assert "val.accuracy" in header and "seed" in header
    header = rows_of(invoke("compare", a, again, "--only-changed", "--format", "csv").stdout)[0]
    assert header == ["run", "status", "steps", "wall_seconds"]      # same config and seed: same numbers
    header = rows_of(invoke("compare", a, again, fast, "--only-changed", "--format", "csv").stdout)[0]
    assert "optimizer.lr" in header and "seed" not in header and "val.loss" in header


def test_metrics_option_picks_the_columns(three):
    header = rows_of(invoke("compare", *three, "--only-changed", "--metrics", "val.accuracy,test.accuracy",
                            "--format", "csv").stdout)[0]
    assert header[-2:] == ["val.accuracy", "test.accuracy"] and "val.loss" not in header
    header = rows_of(invoke("compare", *three, "--metrics", "test.*", "--format", "csv").stdout)[0]
    assert header[-2:] == ["test.accuracy", "test.loss"] and "val.accuracy" not in header
    assert_user_error(invoke("compare", *three, "--metrics", "val.nope"), "val.nope", "val.accuracy")
    res = invoke("compare", *three, "--sort", "val.loss", "--format", "json")
    losses = [r["metrics"]["val.loss"]["best"] for r in json.loads(res.stdout).values()]
    assert losses == sorted(losses)


def fake_run(runs: Path, i: int) -> None:
    """A finished run folder as npdl writes it (config, manifest, metrics, summary)."""
    run = runs / f"exp-20250101-1200{i:02d}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: exp\nseed: {i % 3}\noptimizer: {{type: adam, lr: {round(0.001 * (1 + i), 6)}}}\n"
                                     f"data: {{type: spirals, n_per_class: 1000}}\n")
    (run / "manifest.json").write_text(json.dumps({"status": "completed", "steps": 12000}))
    (run / "summary.json").write_text(json.dumps({"steps": 12000, "wall_seconds": 30.0 + 61 * i}))
    events = [{"event": "eval", "split": "val", "step": s, "accuracy": 0.5 + i / 50 + s / 1e6,
               "loss": 2.0 / (1 + i) + 1e4 * (i == 7)} for s in (6000, 12000)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_twenty_runs_fit_a_terminal_one_line_each(workdir, monkeypatch):
    monkeypatch.setattr(console, "_width", 80)
    for i in range(20):
        fake_run(workdir / "runs", i)
    res = invoke("compare", *sorted((workdir / "runs").iterdir()), "--only-changed")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    body = [line for line in lines if line.startswith("exp-")]
    assert len(body) == 20 and len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "exp-120000" in body[0]                              # the common date dropped, the time kept
    assert [lines[0].split(), lines[1].split()] == [["optimizer.", "val.", "val."],   # headers on two lines
                                                    ["run", "status", "steps", "wall", "lr", "seed", "accuracy", "loss"]]
    header = ["run", "status", "steps", "wall", "optimizer.lr", "seed", "val.accuracy", "val.loss"]
    cells = [dict(zip(header, line.split())) for line in body]
    acc = [c["val.accuracy"] for c in cells]
    assert len({len(a.split(".")[1]) for a in acc}) == 1          # one number of decimals per column
    assert any("," in c["val.loss"] for c in cells)             # 10,000.1: thousands separators
    assert {c["wall"] for c in cells} >= {"30.0s", "1m31s"}


def test_number_columns_share_one_format():
    assert format_column([0.5, 0.97341, 0.0012]) == ["0.5000", "0.9734", "0.0012"]
    assert format_column([1234.5, 12.25]) == ["1,234", "12"]        # 4 significant digits of the largest
    assert format_column([1000, 250000]) == ["1,000", "250,000"]
    assert format_column([0.001, 0.0003], exact=True) == ["0.0010", "0.0003"]
    assert format_column([1e-5, 3e-6], exact=True) == ["1e-05", "3e-06"]
    assert format_column([0, 0.1, None, "relu"], exact=True) == ["0.0", "0.1", "", "relu"]
    assert format_column([float("nan"), 1.5]) == ["nan", "1.500"]
    assert re.fullmatch(r"\d\.\d+e-\d+", format_column([2e-7, 1e-7])[0])
