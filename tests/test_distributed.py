"""Data parallelism without MPI: the batch cut, the world of one, the --procs error path."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import NamedTuple

import numpy as np
from hypothesis import given, strategies as st
from typer.testing import CliRunner

from npdl.cli import launch
from npdl.cli.main import app
from npdl.train import distributed
from npdl.train.sharding import rank_slice, shard_batch
from tests.conftest import tiny_config, write_config


@given(st.integers(0, 500), st.integers(1, 16))
def test_rank_slices_cut_a_batch_into_balanced_contiguous_parts(n, size):
    parts = [rank_slice(n, r, size) for r in range(size)]
    assert np.array_equal(np.concatenate([np.arange(n)[p] for p in parts]), np.arange(n))
    lengths = [p.stop - p.start for p in parts]
    assert max(lengths) - min(lengths) <= 1


@dataclasses.dataclass
class Padded:
    inputs: np.ndarray
    mask: np.ndarray
    width: int


class Pair(NamedTuple):
    x: np.ndarray
    y: np.ndarray


def test_shard_batch_cuts_rows_of_every_batch_kind():
    x, y = np.arange(12).reshape(6, 2), np.arange(6)
    sl = rank_slice(6, 1, 2)
    tup = shard_batch((x, y), sl, 6)
    assert isinstance(tup, tuple) and np.array_equal(tup[0], x[3:]) and np.array_equal(tup[1], y[3:])
    pair = shard_batch(Pair(x, y), sl, 6)
    assert isinstance(pair, Pair) and np.array_equal(pair.y, y[3:])
    padded = shard_batch(Padded(x, x > 3, 2), sl, 6)
    assert padded.width == 2 and np.array_equal(padded.inputs, x[3:]) and padded.mask.shape == (3, 2)


def test_world_of_one_hooks_change_nothing():
    comm = distributed.LOCAL
    assert comm.size == 1 and comm.root
    data = object()
    assert comm.attach(None, data, 0) is data
    state = {"state": [np.ones((4, 2))]}
    assert comm.gather_task_state(state) is state and comm.scatter_task_state(state) is state
    assert comm.checkpoint_meta() == {} and comm.should_stop(True) and not comm.should_stop(False)


def test_no_mpi4py_import_outside_an_mpi_launch():
    code = ("import sys; from npdl.train import distributed as d; import npdl.cli.main; "
            "assert d.init() is d.LOCAL; assert 'mpi4py' not in sys.modules, 'imported'")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr


def test_procs_without_the_mpi_extra_exits_2_with_the_install_line(tmp_path, monkeypatch):
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    real = launch.importlib.util.find_spec
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: None if name == "mpi4py" else real(name))
    res = CliRunner().invoke(app, ["train", str(cfg), "--procs", "2", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert "pip install mpi4py mpich" in res.output and "[mpi]" in res.output
    assert not (tmp_path / "runs").exists()


def test_procs_forwards_every_option_to_the_ranks(tmp_path, monkeypatch):
    """What the ranks are started with: a resumed run keeps --device and --data-root on every rank."""
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    started = []

    def spawn(procs, args):
        started.append((procs, args))
        raise SystemExit(0)

    monkeypatch.setattr(launch, "spawn", spawn)
    monkeypatch.setattr(distributed, "launched_by_mpi", lambda: False)
    runs, data = str(tmp_path / "runs"), str(tmp_path / "data")
    options = ["--procs", "2", "--device", "emulated", "--data-root", data, "--runs-dir", runs]
    for args in (["resume", "some-run", *options], ["train", "--resume", "some-run", *options]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        procs, forwarded = started.pop()
        assert procs == 2 and forwarded[:2] == ["resume", "some-run"]
        assert forwarded[forwarded.index("--device") + 1] == "emulated"
        assert forwarded[forwarded.index("--data-root") + 1] == data
    res = CliRunner().invoke(app, ["train", str(cfg), "--procs", "2", "--device", "emulated", "--runs-dir", runs])
    assert res.exit_code == 0, res.output
    assert "device=emulated" in started.pop()[1]      # train folds --device into --set device=...
