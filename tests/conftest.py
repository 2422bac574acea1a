"""Shared test helpers: the data mirror (../shared/data beside the project) and tiny configs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
# NPDL_TEST_DEVICE=emulated (or cuda) runs the suite with that default device: every tensor the
# tests build (and every parameter and batch npdl builds from them) lives there
TEST_DEVICE = os.environ.get("NPDL_TEST_DEVICE", "").strip() or "cpu"
# the npdl command (and npdl bench, which tests run in-process) flushes subnormal floats to zero
# for the whole process; the test process keeps IEEE arithmetic (tests/test_runtime.py checks
# the flush in subprocesses of its own)
os.environ.setdefault("NPDL_DENORMALS", "keep")


def pytest_configure(config) -> None:
    from npdl.core import backend

    backend.set_default_device(TEST_DEVICE)


def pytest_report_header(config) -> str:
    return f"npdl test device: {TEST_DEVICE}"


def tiny_config(**overrides) -> dict:
    """A spirals MLP that trains in well under a second."""
    cfg = {
        "name": "tiny", "seed": 0,
        "data": {"type": "spirals", "n_per_class": 200, "batch_size": 32},
        "model": {"type": "mlp", "hidden": [16]},
        "optimizer": {"type": "adam", "lr": 0.01},
        "train": {"epochs": 2, "log_every": 5},
    }
    for key, value in overrides.items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"the data mirror {MIRROR} is not present")
    return MIRROR


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory with its own runs/ and datasets/ (NPDL_DATA unset)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NPDL_DATA", raising=False)
    monkeypatch.delenv("NPDL_MIRROR", raising=False)
    return tmp_path


def mirrored_root(tmp_path_factory, name: str) -> Path:
    """A temporary data root holding dataset ``name`` fetched from the mirror (skips without one)."""
    if not MIRROR.is_dir():
        pytest.skip(f"the data mirror {MIRROR} is not present")
    from npdl.data import download

    root = tmp_path_factory.mktemp("datasets")
    download.download(name, root, mirror=str(MIRROR / name), progress=False)
    return root


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """MNIST downloaded once per session from the mirror into a temporary data root."""
    return mirrored_root(tmp_path_factory, "mnist")


def env_without_data() -> dict:
    env = dict(os.environ)
    env.pop("NPDL_DATA", None)
    env.pop("NPDL_MIRROR", None)
    return env
