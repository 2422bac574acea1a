"""Data-parallel training on 2 MPI ranks against one process (``npdl train --procs 2``).

Each test starts real ranks with the venv's mpiexec (the ``mpi`` extra); skipped only when
mpi4py or mpiexec is absent. Configs are built-in synthetic data: no download.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npdl.train.distributed import mpiexec_path
from npdl.train import checkpoint
from tests.conftest import tiny_config, write_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or mpiexec_path() is None,
                                reason='needs the mpi extra: pip install -e ".[mpi]"')


def npdl(cwd: Path, *args, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "npdl", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, **kw)


def run_dir(cwd: Path, name: str) -> Path:
    (path,) = (cwd / "runs").glob(f"{name}-*")
    return path


def events(path: Path, kind: str) -> dict[int, dict]:
    out = {}
    for line in (path / "metrics.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == kind:
            out[e["step"]] = e
    return out


def weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "checkpoints" / "last.npz") as z:
        return {k: z[k] for k in z.files if k.startswith("model")}


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(np.asarray(b, np.float64)),
                                                                     1e-30))


MLP = tiny_config(**{"data.n_per_class": 500, "data.batch_size": 64, "model.hidden": [32, 32],
                     "train.max_steps": 100, "train.log_every": 1, "train.epochs": None})


def test_two_ranks_train_like_one_process(tmp_path):
    """Same global batch: per-step loss within 1e-4, final weights within 1e-5, same test metrics;
    only rank 0 writes, the manifest names the world."""
    cfg = write_config(tmp_path / "mlp.yaml", MLP)
    one = npdl(tmp_path, "train", cfg, "--name", "one")
    two = npdl(tmp_path, "train", cfg, "--name", "two", "--procs", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    a, b = run_dir(tmp_path, "one"), run_dir(tmp_path, "two")
    la, lb = events(a, "train"), events(b, "train")
    assert sorted(la) == sorted(lb) == list(range(1, 101))
    worst = max(abs(la[s]["loss"] - lb[s]["loss"]) / abs(la[s]["loss"]) for s in la)
    assert worst < 1e-4
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(rel(wb[k], wa[k]) < 1e-5 for k in wa)
    ta, tb = events(a, "eval")[100], events(b, "eval")[100]
    assert ta["accuracy"] == tb["accuracy"] and abs(ta["loss"] - tb["loss"]) < 1e-5
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and len(manifest["hosts"]) == 2 and manifest["status"] == "completed"
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_token_mean_loss_and_padded_batches(tmp_path):
    """A Transformer LM on padded batches (loss a mean over real tokens, uneven per rank): the
    item-weighted combination gives the one-process loss at every step."""
    cfg = {"name": "alt", "seed": 0,
           "data": {"type": "alternating", "n_train": 300, "n_val": 40, "n_test": 40, "min_len": 2,
                    "max_len": 12, "batch_tokens": 256},
           "model": {"type": "transformer_lm", "d_model": 16, "nhead": 2, "num_layers": 1,
                     "dim_feedforward": 32, "dropout": 0.0},
           "optimizer": {"type": "adamw", "lr": 3.0e-3},
           "train": {"max_steps": 25, "log_every": 1, "grad_clip": 1.0}}
    path = write_config(tmp_path / "alt.yaml", cfg)
    one = npdl(tmp_path, "train", path, "--name", "one")
    two = npdl(tmp_path, "train", path, "--name", "two", "--procs", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stdout + two.stderr
    la, lb = events(run_dir(tmp_path, "one"), "train"), events(run_dir(tmp_path, "two"), "train")
    assert max(abs(la[s]["loss"] - lb[s]["loss"]) / abs(la[s]["loss"]) for s in la) < 1e-4
    ea, eb = events(run_dir(tmp_path, "one"), "eval"), events(run_dir(tmp_path, "two"), "eval")
    assert abs(ea[25]["loss"] - eb[25]["loss"]) < 1e-4 * abs(ea[25]["loss"])


def _rank_pid(info_marker: str, rank: int) -> int | None:
    """The pid of rank ``rank`` of the launch whose environment holds ``info_marker``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"NPDL_TEST_MARK={info_marker}".encode() in env and f"PMI_RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def _start(tmp_path: Path, cfg: Path, mark: str) -> subprocess.Popen:
    env = dict(os.environ, NPDL_TEST_MARK=mark)
    return subprocess.Popen([sys.executable, "-m", "npdl", "train", str(cfg), "--name", "long", "--procs", "2"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(tmp_path: Path, proc: subprocess.Popen, steps: int = 5, limit: float = 120) -> Path:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        runs = list((tmp_path / "runs").glob("long-*")) if (tmp_path / "runs").is_dir() else []
        if runs and (runs[0] / "metrics.jsonl").is_file() and len(events(runs[0], "train")) >= steps:
            return runs[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    pytest.fail("the run did not start")


LONG = tiny_config(**{"data.n_per_class": 2000, "data.batch_size": 32, "model.hidden": [32, 32],
                      "train.epochs": 400, "train.log_every": 1})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank through /proc")
def test_a_killed_rank_brings_the_run_down(tmp_path):
    cfg = write_config(tmp_path / "long.yaml", LONG)
    proc = _start(tmp_path, cfg, f"kill-{os.getpid()}")
    run = _wait_for_steps(tmp_path, proc)
    pid = _rank_pid(f"kill-{os.getpid()}", 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - killed < 15 and proc.returncode not in (0, None)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "rank" in manifest["error"]


def test_ctrl_c_checkpoints_and_resumes_on_one_process(tmp_path):
    """Ctrl-C on the launcher: 'interrupted', rank 0's final checkpoint; resumed on ONE process,
    the run ends where an uninterrupted one-process run ends (within float32 reduction error)."""
    # batches of 512, not LONG's 32: on an idle machine LONG's 400 steps took ~0.3 s, so Ctrl-C
    # could land after training had ended (or during its last collectives)
    cfg_dict = dict(LONG, data=dict(LONG["data"], batch_size=512), train={"max_steps": 400, "log_every": 1})
    cfg = write_config(tmp_path / "long.yaml", cfg_dict)
    proc = _start(tmp_path, cfg, f"int-{os.getpid()}")
    run = _wait_for_steps(tmp_path, proc, steps=20)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 130 and json.loads((run / "manifest.json").read_text()).get("status") == "completed":
        pytest.skip("the 400 steps ended before Ctrl-C arrived; nothing was interrupted")
    assert proc.returncode == 130, out + err
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    meta = checkpoint.load(run / "checkpoints" / "last.npz")["meta"]
    assert meta["world_size"] == 2 and len(meta["rank_rngs"]) == 2
    resumed = npdl(tmp_path, "resume", run)
    assert resumed.returncode == 0, resumed.stderr
    (tmp_path / "ref").mkdir()
    ref = npdl(tmp_path / "ref", "train", cfg, "--name", "long")
    assert ref.returncode == 0
    wa, wb = weights(run_dir(tmp_path / "ref", "long")), weights(run)
    assert all(rel(wb[k], wa[k]) < 1e-5 for k in wa), {k: rel(wb[k], wa[k]) for k in wa}


REDUCE_SCRIPT = '''
import json, sys
import numpy as np
from npdl.core.sparse import RowSparseGrad
from npdl.train import distributed as D
comm = D.init(force=True)

class Param:  # what reduce_gradients reads: .data and .grad
    def __init__(self, shape, grad):
        self.data, self.grad = np.zeros(shape, np.float32), grad

out = {}
for factor in (1e9, 0.0):  # rows gathered, then the densified table summed
    D.DENSE_FACTOR = factor
    comm._buckets = None
    rng = np.random.default_rng(comm.rank)
    rows = rng.integers(0, 50, 7 + comm.rank)
    values = rng.standard_normal((len(rows), 3)).astype(np.float32)
    dense = rng.standard_normal((4, 5)).astype(np.float32)
    params = [Param((4, 5), dense.copy()), Param((50, 3), RowSparseGrad(rows, values, (50, 3))),
              Param((2,), None)]                      # no gradient on any rank: stays None
    comm.reduce_gradients(params)
    g = params[1].grad
    out[str(factor)] = {"dense": params[0].grad.tolist(), "rows": g.rows.tolist(), "values": g.values.tolist(),
                        "none": params[2].grad is None}
if comm.rank == 0:
    json.dump(out, open(sys.argv[1], "w"))
'''


def test_gradient_sums_dense_buckets_and_sparse_rows(tmp_path):
    """Dense gradients and both sparse exchanges (rows, densified) give the sum over ranks;
    a row-sparse result keeps exactly the union of the rows the ranks touched."""
    script = tmp_path / "reduce.py"
    script.write_text(REDUCE_SCRIPT)
    res = subprocess.run([mpiexec_path(), "-n", "2", sys.executable, str(script), str(tmp_path / "out.json")],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    from npdl.core.sparse import scatter_add_rows

    want_dense, want_table, union = 0, 0, set()
    for rank in range(2):
        rng = np.random.default_rng(rank)
        rows = rng.integers(0, 50, 7 + rank)
        values = rng.standard_normal((len(rows), 3)).astype(np.float32)
        want_dense = want_dense + rng.standard_normal((4, 5)).astype(np.float32)
        want_table = want_table + scatter_add_rows(rows, values, 50)
        union |= set(rows.tolist())
    for way in got.values():
        np.testing.assert_allclose(way["dense"], want_dense, rtol=1e-6)
        assert way["rows"] == sorted(union) and way["none"]
        np.testing.assert_allclose(way["values"], want_table[sorted(union)], rtol=1e-5, atol=1e-6)


def test_bench_dp_runs_both_sides(tmp_path):
    """``npdl bench dp --quick``: both sides measured in one run, ratios and the break-even line."""
    res = npdl(tmp_path, "bench", "dp", "--quick", "--threads", "2", "--json", tmp_path / "dp.json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "dp.json").read_text())
    text = json.dumps(doc)
    assert "transformer step" in text and "mlp step" in text and "break-even" in text
