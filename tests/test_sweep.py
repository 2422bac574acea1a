"""``npdl sweep``: every combination trained, grouped in one folder, resumable; compare and plot
of a sweep show mean ± std over seeds. The members are real ``python -m npdl`` subprocesses."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.cli.sweep import cores
from npdl.runs import check_name
from npdl.sweeps import expand, parse_grid, split_values
from tests.conftest import ROOT, env_without_data
from tests.test_cli_hostile import assert_user_error

runner = CliRunner()
SHORT = ["--set", "train.epochs=2", "--set", "train.checkpoint_every=10", "--set", "train.keep_last=5"]
GRID = ["--grid", "optimizer.lr=1e-2,3e-3", "--seeds", "0,1,2"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def events(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("throughput", "time")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def member(sweep: Path, name: str) -> Path:
    (found,) = [p for p in sweep.iterdir() if p.name.startswith(name + "-2")]
    return found


def test_quickstart_sweep_finishes_compares_and_resumes(workdir):
    config = ROOT / "configs" / "quickstart.yaml"
    cmd = [sys.executable, "-m", "npdl", "sweep", str(config), *GRID, "--jobs", "2", *SHORT, "--runs-dir", "runs"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env_without_data(), cwd=workdir, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "±" in res.stdout and "[6/6]" in res.stdout
    (sweep,) = [p for p in (workdir / "runs").iterdir()]
    spec = json.loads((sweep / "sweep.json").read_text())
    assert spec["grid"] == {"optimizer.lr": ["1e-2", "3e-3"]} and spec["seeds"] == [0, 1, 2]
    assert len(spec["members"]) == 6 and all((sweep / m["run"] / "config.yaml").is_file() for m in spec["members"])
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(runs) == 6
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["blas"]["threads"] == max(1, cores() // 2)   # the cores shared between 2 jobs

    res = invoke("compare", sweep)
    assert res.exit_code == 0, res.output
    assert "±" in res.output and "3 completed" in res.output and "optimizer." in res.output
    groups = json.loads(invoke("compare", sweep, "--format", "json").stdout)
    assert sorted(groups) == ["optimizer.lr=0.003", "optimizer.lr=0.01"]
    for g in groups.values():
        acc = g["metrics"]["val.accuracy"]
        assert g["n"] == 3 and acc["n"] == 3 and acc["std"] > 0 and acc["min"] <= acc["mean"] <= acc["max"]
    rows = list(csv.reader(io.StringIO(invoke("compare", sweep, "--format", "csv").stdout)))
    assert len(rows) == 3 and len({len(r) for r in rows}) == 1 and "val.accuracy std" in rows[0]
    per_run = json.loads(invoke("compare", sweep, "--per-run", "--format", "json").stdout)
    assert len(per_run) == 6

    listed = invoke("runs", workdir / "runs").output
    assert "sweep: 6 completed" in " ".join(listed.split())
    assert invoke("runs", sweep).output.count("completed") == 6   # the members, one per line

    # one member killed between its checkpoints, one never started: a rerun does just those
    rewound, gone = member(sweep, "lr=1e-2_seed=1"), member(sweep, "lr=3e-3_seed=2")
    reference = events(rewound)
    shutil.copy(rewound / "checkpoints" / "step-00000010.npz", rewound / "checkpoints" / "last.npz")
    manifest = json.loads((rewound / "manifest.json").read_text())
    (rewound / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    shutil.rmtree(gone)
    untouched = {p.name: (p / "metrics.jsonl").read_bytes() for p in runs if p not in (rewound, gone)}
    res = invoke("sweep", config, *GRID, "--jobs", "2", *SHORT, "--runs-dir", workdir / "runs")
    assert res.exit_code == 0, res.output
    assert "4 finished, 1 to resume, 1 to start" in res.output
    assert [p for p in (workdir / "runs").iterdir()] == [sweep]                    # the same sweep folder
    assert events(rewound) == reference                                           # resumed bit-exactly
    assert json.loads((member(sweep, "lr=3e-3_seed=2") / "manifest.json").read_text())["status"] == "completed"
    assert {n: (sweep / n / "metrics.jsonl").read_bytes() for n in untouched} == untouched

    res = invoke("sweep", "--resume", sweep.name, "--runs-dir", workdir / "runs")
    assert res.exit_code == 0 and "6 finished, nothing to do" in res.output

    res = invoke("plot", sweep, "--metric", "val.accuracy")
    assert res.exit_code == 0 and "optimizer.lr=0.01 (n=3)" in res.output and "optimizer.lr=0.003 (n=3)" in res.output


def test_bad_grids_fail_before_anything_starts(workdir):
    config = ROOT / "configs" / "quickstart.yaml"
    cases = [
        (["--grid", "optimizer.lrr=1e-3,3e-4"], ["optimizer.lrr", "did you mean 'lr'"]),
        (["--grid", "optimizer.lr=1e-3,abc"], ["optimizer.lr", "abc"]),
        (["--grid", "optimizer.lr=1e-3", "--grid", "model.activation=relu,nope"], ["model.activation", "nope"]),
        (["--grid", "optimizer.lr="], ["--grid optimizer.lr", "empty value"]),
        (["--grid", "optimizer.lr=1e-3,,3e-4"], ["empty value"]),
        (["--grid", "lr"], ["expected KEY=V1,V2"]),
        (["--grid", "optimizer.lr=1,1"], ["repeated"]),
        (["--grid", "seed=1,2"], ["--seeds"]),
        (["--seeds", "0,-1"], ["--seeds"]),
        ([], ["nothing to sweep"]),
        (["--seeds", "0,1", "--jobs", "0"], ["--jobs"]),
    ]
    for args, names in cases:
        res = invoke("sweep", config, *args, "--runs-dir", workdir / "runs")
        assert_user_error(res, *names)
        assert not (workdir / "runs").exists(), args   # nothing launched, no folder made
    assert_user_error(invoke("sweep", "--resume", "nope", "--runs-dir", workdir / "runs"), "nope")
    assert_user_error(invoke("sweep", config, "--resume", "x"), "--resume")
    assert_user_error(invoke("sweep", workdir / "missing.yaml", "--seeds", "0"), "missing.yaml")


def test_grid_values_split_at_top_level_commas_only():
    assert split_values("[64,64],[32, 32]") == ["[64,64]", "[32, 32]"]
    assert parse_grid(["model.hidden=[64,64],[32]", "optimizer.lr=1e-3"]) == {
        "model.hidden": ["[64,64]", "[32]"], "optimizer.lr": ["1e-3"]}


values = st.lists(st.text(st.sampled_from("ab01.-[]x "), min_size=1, max_size=6).filter(lambda s: s.strip()),
                  min_size=1, max_size=3, unique_by=str.strip)


@settings(max_examples=60, deadline=None)
@given(grid=st.dictionaries(st.sampled_from(["optimizer.lr", "model.dropout", "data.batch_size", "x.lr"]),
                            values, min_size=1, max_size=3),
       seeds=st.one_of(st.none(), st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True)))
def test_every_combination_once_with_a_usable_unique_name(grid, seeds):
    grid = {k: [v.strip() for v in vs] for k, vs in grid.items()}
    members = expand(grid, seeds)
    count = len(seeds or [0])
    for vs in grid.values():
        count *= len(vs)
    assert len(members) == count
    assert len({m.name for m in members}) == count
    assert len({tuple(m.sets) for m in members}) == count
    for m in members:
        check_name(m.name)   # a valid folder name under any runs folder


def test_a_damaged_sweep_folder_is_named_not_a_traceback(workdir):
    sweep = workdir / "runs" / "s-sweep-20250101-120000"
    sweep.mkdir(parents=True)
    for text in ("{not json", json.dumps({"grid": {"optimizer.lr": [1]}, "seeds": None, "members": []}),
                 json.dumps({"grid": {}, "seeds": None, "members": []})):
        (sweep / "sweep.json").write_text(text)
        listed = invoke("runs", workdir / "runs")
        assert listed.exit_code == 0 and "corrupt" in listed.output, listed.output
        res = invoke("compare", sweep)
        assert res.exit_code == 2 and "Traceback" not in res.output and "sweep" in res.output, res.output
        res = invoke("sweep", "--resume", sweep)
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output


def test_exit_status_says_whether_the_runs_failed_on_a_user_error(workdir, monkeypatch):
    """Every member exiting 2 (an error in what it was given) makes the sweep exit 2; any other failure, 1."""
    import npdl.cli.sweep as sweep_cli

    config = ROOT / "configs" / "quickstart.yaml"
    for status, expected in ((2, 2), (1, 1)):
        monkeypatch.setattr(sweep_cli, "_command", lambda *a, status=status: [sys.executable, "-c",
                                                                               f"import sys; sys.exit({status})"])
        res = runner.invoke(app, ["sweep", str(config), "--seeds", "0,1", "--name", f"s{status}",
                                  "--runs-dir", str(workdir / "runs")])
        assert res.exit_code == expected, res.output
        assert "2 of 2 runs" in res.output and "Traceback" not in res.output
