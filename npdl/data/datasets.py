"""Registered datasets: what a config's ``data: {type: ...}`` builds.

A ``Dataset`` is built from its config (cheap: nothing is read), then ``prepare(root)``
loads the files (raising ``DatasetNotFoundError`` with the command that fetches them).
It names the task that trains on it, says which model arguments it provides (e.g.
``num_classes``), hands out loaders per split, and can describe an example batch
without its files so ``npdl check`` works before any download.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from npdl.atomic import atomic_write
from npdl.data import download, parsers, synthetic
from npdl.data.loader import ArrayLoader, held_out
from npdl.data.sources import DataError
from npdl.registry import DATASETS
from npdl.schema import NonNegativeInt, PositiveFloat, PositiveInt


class Dataset:
    """Base class. Subclasses set ``task``, ``source`` (catalog name or None) and ``provides``."""

    task: ClassVar[str] = "classification"
    source: ClassVar[str | None] = None
    provides: ClassVar[tuple[str, ...]] = ()

    def __init__(self, batch_size: int = 32, eval_batch_size: int | None = None):
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.prepared = False
        self.root = None

    # ---- to implement ------------------------------------------------------------------
    def load(self, root) -> None:
        """Read the files into memory (called once by ``prepare``)."""

    def info(self) -> dict:
        """Values for model arguments named in ``provides`` (declared sizes when unprepared)."""
        return {}

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test")

    def loader(self, split: str):
        raise NotImplementedError

    def example_batch(self):
        """A batch of two examples with the right shapes and dtypes (for dry runs)."""
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------
    def prepare(self, root=None) -> "Dataset":
        if not self.prepared:
            self.root = root
            if self.source is not None:
                download.require(self.source, root)
            self.load(root)
            self.prepared = True
        return self

    def checksums(self) -> dict:
        """Checksums of the files behind this dataset, for the run manifest."""
        if self.source is None:
            return {}
        from npdl.data.sources import get_source

        return {f.path: (f.sha256 or f.md5 or (f"crc32:{f.crc32:08x}" if f.crc32 else None))
                for f in get_source(self.source).files if not f.optional}

    def save_artifacts(self, run_dir) -> None:
        """Store what eval/predict need to rebuild this data exactly (tokenizers, vocabularies)."""

    def load_artifacts(self, run_dir) -> None:
        """Restore what ``save_artifacts`` stored (before ``prepare``)."""

    @staticmethod
    def write_json_artifact(run_dir, name: str, payload: dict) -> None:
        """``payload`` as ``run_dir/name``, written atomically (never half a file)."""
        atomic_write(Path(run_dir) / name, json.dumps(payload))

    @staticmethod
    def read_json_artifact(run_dir, name: str) -> dict | None:
        """What ``write_json_artifact`` stored, or None when the run has no such file.

        Raises: DataError: the file is not valid JSON.
        """
        path = Path(run_dir) / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise DataError(f"{path}: not a saved npdl artifact ({exc})") from None

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise ValueError(f"dataset has no split '{split}' (splits: {', '.join(self.splits())})")


class ArrayClassification(Dataset):
    """Classification from in-memory arrays ``self.arrays[split] = (x, y)``."""

    provides = ("num_classes", "in_features", "in_channels")

    def loader(self, split: str) -> ArrayLoader:
        self._check_split(split)
        x, y = self.arrays[split]
        train = split == "train"
        return ArrayLoader((x, y), self.batch_size if train else self.eval_batch_size, shuffle=train)


@DATASETS.register("spirals")
class Spirals(ArrayClassification):
    """Interleaved spiral arms in 2-D (synthetic, built in, no download)."""

    def __init__(self, n_per_class: PositiveInt = 1000, classes: PositiveInt = 2, noise: PositiveFloat = 0.2,
                 batch_size: PositiveInt = 64, eval_batch_size: PositiveInt | None = None,
                 data_seed: NonNegativeInt = 0):
        super().__init__(batch_size, eval_batch_size)
        if classes < 2:
            raise ValueError("spirals: classes must be >= 2")
        self.n_per_class, self.classes, self.noise, self.data_seed = n_per_class, classes, noise, data_seed
        synthetic.check_fits("spirals", 80 * n_per_class * classes)  # ~10 float64 working values per point

    def load(self, root) -> None:
        x, y = synthetic.spirals(self.n_per_class, self.classes, self.noise, rng=np.random.default_rng(self.data_seed))
        n = len(y)
        a, b = int(n * 0.8), int(n * 0.9)
        self.arrays = {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}

    def info(self) -> dict:
        return {"num_classes": self.classes, "in_features": 2, "in_channels": 1}

    def example_batch(self):
        return np.zeros((2, 2), np.float32), np.zeros(2, np.int64)


class _IdxImages(ArrayClassification):
    """28x28 grey images from idx files, normalised with the training set's mean and std."""

    mean_std: ClassVar[tuple[float, float]] = (0.0, 1.0)
    num_classes: ClassVar[int] = 10

    def __init__(self, batch_size: PositiveInt = 128, val_size: NonNegativeInt = 5000,
                 eval_batch_size: PositiveInt | None = 1000, normalize: bool = True):
        super().__init__(batch_size, eval_batch_size)
        self.val_size, self.normalize = val_size, normalize

    def load(self, root) -> None:
        raw = parsers.load_mnist_like(download.dataset_dir(self.source, root))
        mean, std = self.mean_std if self.normalize else (0.0, 255.0)

        def prep(x: np.ndarray) -> np.ndarray:
            out = x.astype(np.float32)[:, None] / np.float32(255.0)
            if self.normalize:
                out -= np.float32(mean)
                out /= np.float32(std)
            return out

        x, y = raw["train"]
        if self.val_size >= len(y):
            raise ValueError(f"{self.source}: val_size {self.val_size} leaves no training data ({len(y)} examples)")
        train, val = held_out(len(y), self.val_size)
        xs = prep(x)
        self.arrays = {"train": (xs[train], y[train]), "val": (xs[val], y[val]),
                       "test": (prep(raw["test"][0]), raw["test"][1])}
        if self.val_size == 0:
            del self.arrays["val"]

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test") if self.val_size else ("train", "test")

    def info(self) -> dict:
        return {"num_classes": self.num_classes, "in_features": 28 * 28, "in_channels": 1}

    def example_batch(self):
        return np.zeros((2, 1, 28, 28), np.float32), np.zeros(2, np.int64)


@DATASETS.register("mnist")
class MNIST(_IdxImages):
    """MNIST handwritten digits (LeCun et al. 1998): 60k train / 10k test, 28x28, 10 classes."""

    source = "mnist"
    mean_std = (0.1307, 0.3081)


@DATASETS.register("fashion_mnist")
class FashionMNIST(_IdxImages):
    """Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747): Zalando article images, 10 classes."""

    source = "fashion_mnist"
    mean_std = (0.2860, 0.3530)
