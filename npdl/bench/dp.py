"""``npdl bench dp``: data parallelism on one machine, in one run: 1 rank x T threads against
N ranks x T/N threads (T = ``--threads``, N = min(T, 2) by default), same global batch.

Each side of a round is a fresh process (``mpiexec -n N`` for the ranks), which times
``STEPS`` training steps after a warm-up: forward, backward, ``Comm.reduce_gradients``,
Adam. Reported per model (an MLP 784-512-512-10, a 2-layer Transformer LM, d_model 256,
64 tokens per sequence): samples/s (tokens/s) of both sides, the ratio (= the scaling
efficiency N ranks / 1 rank; 1.0 means N ranks do as well as one process with all cores),
the allreduce time per step and the share of the step spent communicating. For the MLP, whose
steps take a millisecond or so, the batch is swept and the smallest batch at which N ranks
break even (ratio >= 1) is reported, rather than choosing a batch that hides it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from npdl.bench import Figure, Settings

STEPS, WARMUP = 20, 3
MLP_BATCHES = (32, 128, 512, 2048)
TRANSFORMER = dict(vocab=2000, seq=64, batch=32, d_model=256, nhead=4, layers=2, ff=1024)


def _build(model: str, batch: int, quick: bool):
    import npdl
    import npdl.functional as F
    from npdl.models.mlp import MLP

    rng = np.random.default_rng(0)
    if model == "mlp":
        net = MLP([784, 512, 512, 10] if not quick else [784, 32, 10])
        x = rng.random((batch, 784), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        return net, lambda xs, ys: F.cross_entropy(net(npdl.Tensor(xs)), ys), x, y
    from npdl.families.language_model.transformer import TransformerLM

    t = dict(TRANSFORMER, d_model=32, ff=64, seq=16, batch=8) if quick else TRANSFORMER
    net = TransformerLM(t["vocab"], max_len=t["seq"], d_model=t["d_model"], nhead=t["nhead"],
                        num_layers=t["layers"], dim_feedforward=t["ff"], dropout=0.0)
    ids = rng.integers(0, t["vocab"], (batch, t["seq"] + 1))

    def loss(xs, ys):
        logits, _ = net(xs)
        return F.cross_entropy(logits.reshape(-1, t["vocab"]), ys.reshape(-1))

    return net, loss, ids[:, :-1], ids[:, 1:]


def worker(model: str, batch: int, quick: bool) -> dict:
    """Time STEPS steps on this process's rows of the global batch; rank 0 returns the figures."""
    from npdl.optim import Adam
    from npdl.train import distributed
    from npdl.train.sharding import rank_slice

    comm = distributed.init()
    net, loss_fn, x, y = _build(model, batch, quick)
    sl = rank_slice(len(x), comm.rank, comm.size)
    x, y = x[sl], y[sl]
    comm.attach(net, None, 0)
    params = list(net.parameters())
    opt = Adam(list(net.named_parameters()), lr=1e-3)
    steps = 3 if quick else STEPS
    for i in range(WARMUP + steps):
        if i == WARMUP:
            comm.agree(0.0)                  # start together
            comm.comm_seconds, start = 0.0, time.perf_counter()
        loss, _, _ = comm.combine_loss(loss_fn(x, y), int(np.size(y)))
        loss.backward()
        comm.reduce_gradients(params)
        opt.step()
        opt.zero_grad()
    wall = comm.agree(time.perf_counter() - start)         # the slowest rank's time
    comm_s = comm.agree(comm.comm_seconds)
    items = batch * (TRANSFORMER["seq"] if model == "transformer" and not quick else 1)
    if model == "transformer" and quick:
        items = batch * 16
    return {"rate": items * steps / wall, "step_ms": 1e3 * wall / steps, "comm_ms": 1e3 * comm_s / steps}


def _side(model: str, batch: int, ranks: int, threads: int, quick: bool) -> dict:
    from npdl.train.distributed import mpiexec_path

    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "npdl.bench.dp", model, str(batch), "1" if quick else "0"]
    if ranks > 1:
        cmd = [mpiexec_path(), "-n", str(ranks)] + cmd
    else:
        env = {k: v for k, v in env.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"bench dp worker failed: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pair(model: str, batch: int, settings: Settings, ranks: int, rounds: int):
    many, one = f"{ranks} ranks x {max(1, settings.threads // ranks)} threads", f"1 rank x {settings.threads} threads"
    got = {many: [], one: []}
    for r in range(rounds):   # interleaved, order reversed every other round
        order = [(many, ranks), (one, 1)] if r % 2 == 0 else [(one, 1), (many, ranks)]
        for name, n in order:
            got[name].append(_side(model, batch, n, max(1, settings.threads // n), settings.quick))
    return many, one, got


def run(settings: Settings) -> list[Figure]:
    from npdl.train.distributed import mpiexec_path

    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpi4py = None
    if mpi4py is None or mpiexec_path() is None:
        return [Figure("dp", "data parallelism", "", {}, note='needs the mpi extra: pip install -e ".[mpi]"')]
    ranks = max(2, min(settings.threads, 2))
    rounds = settings.rounds_or(3)
    figures, breakeven = [], None
    jobs = [("transformer", TRANSFORMER["batch"] if not settings.quick else 8)]
    jobs += [("mlp", b) for b in (MLP_BATCHES[:2] if settings.quick else MLP_BATCHES)]
    for model, batch in jobs:
        many, one, got = _pair(model, batch, settings, ranks, rounds)
        unit = "tokens/s" if model == "transformer" else "samples/s"
        comm_ms = float(np.median([g["comm_ms"] for g in got[many]]))
        step_ms = float(np.median([g["step_ms"] for g in got[many]]))
        fig = Figure("dp", f"{model} step, global batch {batch}", unit,
                     {many: [g["rate"] for g in got[many]], one: [g["rate"] for g in got[one]]},
                     note=f"allreduce {comm_ms:.2f} ms of a {step_ms:.1f} ms step ({100 * comm_ms / step_ms:.0f}% "
                          f"communicating); ratio = scaling efficiency")
        figures.append(fig)
        if model == "mlp" and breakeven is None and fig.ratios().get(one, 0.0) >= 1.0:
            breakeven = batch
    figures.append(Figure("dp", "MLP break-even batch", "", {},
                          note=f"{ranks} ranks reach 1 rank's samples/s from global batch {breakeven}"
                          if breakeven else f"{ranks} ranks stay below 1 rank up to batch {jobs[-1][1]}"))
    return figures


if __name__ == "__main__":  # a worker: python -m npdl.bench.dp MODEL BATCH QUICK
    result = worker(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1")
    from npdl.train import distributed as _d

    if _d.init().root:
        print(json.dumps(result))
