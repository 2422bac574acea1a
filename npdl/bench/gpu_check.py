"""The GPU check a session with a CUDA GPU runs once: ``python -m npdl.bench.gpu_check``.

npdl's CI has no GPU: the seam is proven on the emulated device. On a machine with a GPU and
``pip install -e ".[cuda,dev]"`` (PyTorch with CUDA beside it for the reference side), this runs,
in order, and stops at the first failure:

1. the test suite with every tensor on the GPU (``NPDL_TEST_DEVICE=cuda python -m pytest -q``);
2. ``npdl bench --device cuda``: npdl on the GPU beside npdl on the CPU and PyTorch on the GPU
   (the issue's targets: Transformer step within 2x of PyTorch's, MLP and LSTM within 3x);
3. one short real training run on the GPU (``transformer_alternating``), then its evaluation on
   the CPU from the same run folder (checkpoints hold host arrays).

``--quick`` passes ``--quick`` to the benchmark and runs only ``tests/core`` (a smoke check).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile


def _step(title: str, cmd: list[str], env: dict | None = None) -> None:
    print(f"\n== {title}\n+ {' '.join(cmd)}", flush=True)
    done = subprocess.run(cmd, env={**os.environ, **(env or {})})
    if done.returncode:
        sys.exit(f"gpu_check: '{title}' failed (exit {done.returncode})")


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--quick", action="store_true", help="tests/core only, benchmark with --quick")
    args.add_argument("--device", default="cuda", help="the device to check (default cuda)")
    opts = args.parse_args(argv)
    py = sys.executable
    _step("device available", [py, "-c", f"import npdl; print(npdl.device({opts.device!r}))"])
    tests = ["tests/core"] if opts.quick else []
    _step("test suite on the device", [py, "-m", "pytest", "-q", *tests], {"NPDL_TEST_DEVICE": opts.device})
    _step("benchmark", [py, "-m", "npdl", "bench", "--device", opts.device, *(["--quick"] if opts.quick else [])])
    runs = tempfile.mkdtemp(prefix="npdl-gpu-check-")
    _step("a short training run on the device",
          [py, "-m", "npdl", "train", "configs/transformer_alternating.yaml", "--device", opts.device,
           "--runs-dir", runs, "--name", "gpu_check"])
    run = os.path.join(runs, next(n for n in os.listdir(runs) if n.startswith("gpu_check")))
    _step("its evaluation on the CPU", [py, "-m", "npdl", "eval", run, "--device", "cpu"])
    print(f"\ngpu_check: all passed (run folder: {run})")


if __name__ == "__main__":
    main()
