"""Process settings of the ``npdl`` command (``npdl.runtime``): checked in subprocesses, since they
change the whole process."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = ("import numpy as np; from npdl.runtime import flush_denormals; ok = flush_denormals(); "
         "x = np.array([1e-39], np.float32); print(ok, float((x * np.float32(1))[0]), "
         "float(np.float32(1e-30) * np.float32(1e-10)), float(np.float32(3) * np.float32(0.5)))")


def probe(**env):
    environ = {k: v for k, v in os.environ.items() if k != "NPDL_DENORMALS"} | env
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environ, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                    reason="the flush is implemented for x86-64 Linux (MXCSR)")
def test_flush_denormals_makes_subnormal_inputs_and_results_zero():
    ok, read, made, normal = probe()
    assert ok == "True" and float(read) == 0.0 and float(made) == 0.0 and float(normal) == 1.5


def test_npdl_denormals_keep_leaves_ieee_arithmetic_alone():
    ok, read, made, normal = probe(NPDL_DENORMALS="keep")
    assert ok == "False" and float(read) == pytest.approx(1e-39, rel=1e-6) and float(made) > 0 and float(normal) == 1.5


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                    reason="the flush is implemented for x86-64 Linux (MXCSR)")
def test_threads_started_after_the_flush_inherit_it():
    """npdl's thread pool starts after the command's flush, so its threads flush too."""
    code = PROBE.replace("print(ok,", "import threading; r = []; t = threading.Thread(target=lambda: r.append("
                         "float((x * np.float32(1))[0]))); t.start(); t.join(); print(ok, r[0],")
    environ = {k: v for k, v in os.environ.items() if k != "NPDL_DENORMALS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True)
    ok, in_thread = out.stdout.split()[:2]
    assert ok == "True" and float(in_thread) == 0.0


def test_denormals_flushed_reports_the_threads_setting():
    """What the bench header prints: False before the flush (and with NPDL_DENORMALS=keep), True after."""
    code = ("from npdl.runtime import denormals_flushed, flush_denormals; before = denormals_flushed(); "
            "flush_denormals(); print(before, denormals_flushed())")
    supported = sys.platform.startswith("linux") and platform.machine() == "x86_64"
    for env, after in (({}, supported), ({"NPDL_DENORMALS": "keep"}, False)):
        environ = {k: v for k, v in os.environ.items() if k != "NPDL_DENORMALS"} | env
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True)
        assert out.stdout.split() == ["False", str(after)], (env, out.stdout)
