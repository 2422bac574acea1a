"""Pure readers of the raw dataset files into NumPy arrays and Python lists.

Each function takes a path (a dataset folder as laid out by ``npdl download``, or the file
itself where noted) and returns plain data; nothing is cached, downloaded or tokenised beyond
what the format itself defines. Damaged content raises ``CorruptDataError`` naming the file
(and the line, for text formats); a missing file raises ``FileNotFoundError`` naming what was
looked for.
"""
from __future__ import annotations

import csv
import gzip
import math
import os
import re
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from npdl.data.sources import BABI_DIR, DataError

PathLike = str | os.PathLike


class CorruptDataError(DataError, ValueError):
    """A data file that exists but whose content does not follow its format."""


def _find(path: PathLike, names: list[str], what: str) -> Path:
    """``path`` itself if it is a file, else the first of ``names`` that exists under it.

    Raises: FileNotFoundError: none of them exists.
    """
    path = Path(path)
    if path.is_file():
        return path
    for name in names:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"no {what} in {path} (looked for {', '.join(names)})")


def _read_bytes(path: Path) -> bytes:
    """The content of ``path``, gunzipped when it starts with the gzip magic number.

    Raises: CorruptDataError: a damaged or truncated gzip stream.
    """
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        if gzipped:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptDataError(f"{path}: damaged gzip stream ({exc})") from None


def _read_lines(path: Path) -> list[str]:
    """UTF-8 lines of ``path`` (gzip or plain), split on ``\\n`` only, without line ends."""
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{path}: not UTF-8 text ({exc})") from None
    # split("\n") rather than splitlines(): captions may hold other Unicode line separators.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


# --- MNIST-style idx files ----------------------------------------------------------------
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: PathLike) -> np.ndarray:
    """Read an idx file (gzip-compressed or plain), e.g. MNIST ``train-images-idx3-ubyte.gz``.

    Returns: a writable native-endian array of the shape in the header, e.g. uint8 (60000, 28, 28).
    Raises:
        CorruptDataError: bad magic number, truncated or overlong payload, damaged gzip stream.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise CorruptDataError(f"{path}: not an idx file (magic number {data[:4].hex() or 'missing'})")
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise CorruptDataError(f"{path}: truncated idx header ({len(data)} bytes)")
    shape = struct.unpack(f">{data[3]}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise CorruptDataError(f"{path}: {kind}: {len(data)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist_like(directory: PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load MNIST or Fashion-MNIST from the four idx files (``.gz`` or uncompressed) in ``directory``.

    Returns: ``{"train": (X, y), "test": (X, y)}`` with X uint8 (N, 28, 28) and y int64 (N,);
    N is 60000 and 10000 for the original data.
    Raises:
        CorruptDataError: a damaged file, or images and labels that disagree in count.
        FileNotFoundError: a file is missing.
    """
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x_path = _find(directory, [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"],
                       f"{split} images")
        y_path = _find(directory, [f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte"],
                       f"{split} labels")
        images, labels = read_idx(x_path), read_idx(y_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CorruptDataError(f"{directory}: {split} images {images.shape} do not match labels {labels.shape}")
        out[split] = (images, labels.astype(np.int64))
    return out


# --- language-model corpora ---------------------------------------------------------------
def load_ptb(directory: PathLike) -> dict[str, list[list[str]]]:
    """Load Mikolov's PTB ``ptb.{train,valid,test}.txt`` from ``directory``.

    Returns: ``{"train", "valid", "test"}`` → one list of tokens per line, split on whitespace
    (``<unk>`` and ``N`` kept as they are). No ``<eos>`` is added: a language model appends one
    per line itself (train: 887,521 words + 42,068 lines = 929,589 tokens with ``<eos>``).
    Raises: FileNotFoundError: a split is missing. CorruptDataError: not UTF-8.
    """
    return {split: [line.split() for line in _read_lines(_find(directory, [f"ptb.{split}.txt"], f"PTB {split}"))]
            for split in ("train", "valid", "test")}


def load_text8(path_or_dir: PathLike) -> str:
    """Load text8 as one string: the full ``text8`` (or ``text8.zip``), else ``text8_prefix.gz``.

    Returns: lowercase a-z words separated by single spaces (the full file starts with a space);
    ``.split()`` gives the tokens (17,005,207 for the full corpus, 2,139,748 for the prefix).
    Raises: FileNotFoundError: none of the files. CorruptDataError: damaged or non-ASCII content.
    """
    path = _find(path_or_dir, ["text8", "text8.zip", "text8_prefix.gz", "text8_prefix"], "text8 corpus")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                data = zf.read("text8")
        else:
            data = _read_bytes(path)
        return data.decode("ascii")
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CorruptDataError(f"{path}: not a text8 corpus ({exc})") from None


def load_analogy(path: PathLike) -> list[tuple[str, tuple[str, str, str, str]]]:
    """Load the word2vec analogy questions (``questions-words.txt``, or its folder).

    Returns: ``(section, (a, b, c, d))`` per question, lowercased, meaning "a is to b as c is to d";
    ``section`` is the header without ``": "`` (e.g. ``"capital-common-countries"``).
    Raises: CorruptDataError: a line that is not 4 words, or a question before any section header.
    """
    path = _find(path, ["questions-words.txt"], "analogy questions")
    questions, section = [], None
    for number, line in enumerate(_read_lines(path), start=1):
        if line.startswith(":"):
            section = line[1:].strip().lower()
            continue
        words = line.lower().split()
        if not words:
            continue
        if len(words) != 4 or section is None:
            why = "expected 4 words" if len(words) != 4 else "question before any ': section' header"
            raise CorruptDataError(f"{path}:{number}: {why}: {line!r}")
        questions.append((section, tuple(words)))
    return questions


# --- bAbI ---------------------------------------------------------------------------------
class BabiExample(NamedTuple):
    """One bAbI question with the story it is asked about.

    story: the sentences of the current story before the question (earlier questions excluded),
        each a list of tokens. question: tokens. answer: the answer string, lowercased (lists and
        paths keep their commas, e.g. ``"n,w"``). supporting: 0-based indices into ``story`` of the
        supporting sentences (the file numbers lines including questions; these are remapped).
    """

    story: list[list[str]]
    question: list[str]
    answer: str
    supporting: list[int]


_BABI_TOKEN = re.compile(r"[^\s.?!,]+")  # words only: the full stop and question mark are dropped


def _babi_tokens(text: str) -> list[str]:
    return _BABI_TOKEN.findall(text.lower())


def parse_babi(lines: list[str], where: str = "<bAbI>") -> list[BabiExample]:
    """Parse bAbI lines (``ID text`` / ``ID question<TAB>answer<TAB>supporting IDs``) into examples.

    A line ID of 1 starts a new story; each question sees all statements of its story so far.
    Raises: CorruptDataError: a line without a numeric ID, a question without 3 tab-separated
    fields, or a supporting ID that is not an earlier statement of the story.
    """
    examples, story, index_of = [], [], {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        head, _, text = line.strip().partition(" ")
        if not head.isdigit():
            raise CorruptDataError(f"{where}:{number}: expected 'ID text', got {line!r}")
        if int(head) == 1:
            story, index_of = [], {}
        if "\t" not in text:
            index_of[int(head)] = len(story)
            story.append(_babi_tokens(text))
            continue
        fields = text.split("\t")
        try:
            question, answer, support = fields
            supporting = [index_of[int(i)] for i in support.split()]
        except (ValueError, KeyError):
            raise CorruptDataError(f"{where}:{number}: bad question line {line!r}") from None
        examples.append(BabiExample(list(story), _babi_tokens(question), answer.strip().lower(), supporting))
    return examples


def load_babi(directory: PathLike, task: int, variant: str = "en") -> dict[str, list[BabiExample]]:
    """Load bAbI v1.2 task ``task`` (1-20) of ``variant`` (``"en"``: 1k questions, ``"en-10k"``).

    ``directory`` is the dataset folder (holding ``tasks_1-20_v1-2/``), that folder itself, or the
    variant folder. Files may be plain ``.txt`` or ``.txt.gz``.
    Returns: ``{"train": [BabiExample, ...], "test": [...]}``.
    Raises: ValueError: ``task`` not in 1..20. FileNotFoundError: no such file. CorruptDataError.
    """
    if not (isinstance(task, int) and 1 <= task <= 20):
        raise ValueError(f"bAbI task must be an integer from 1 to 20, got {task!r}")
    base = Path(directory)
    folders = [base / BABI_DIR / variant, base / variant, base]
    out = {}
    for split in ("train", "test"):
        matches = [p for folder in folders if folder.is_dir()
                   for p in sorted(folder.glob(f"qa{task}_*_{split}.txt*")) if p.name.endswith((".txt", ".txt.gz"))]
        if not matches:
            raise FileNotFoundError(f"no bAbI qa{task} {split} file of variant {variant!r} under {base} "
                                    f"(looked in {', '.join(str(f) for f in folders)})")
        out[split] = parse_babi(_read_lines(matches[0]), str(matches[0]))
    return out


# --- translation --------------------------------------------------------------------------
MULTI30K_SPLITS = {"train": ("train", 29000), "val": ("val", 1014), "test": ("test_2016_flickr", 1000)}


def load_multi30k(directory: PathLike) -> dict[str, tuple[list[str], list[str]]]:
    """Load Multi30k task 1 from the official ``{train,val,test_2016_flickr}.{de,en}.gz`` files.

    ``directory`` holds them directly or in ``github_raw/``.
    Returns: ``{"train", "val", "test"}`` → ``(german_lines, english_lines)``, aligned, without line ends.
    Raises: CorruptDataError: line counts differ between languages or from 29000/1014/1000.
    """
    base = Path(directory)
    folder = base / "github_raw" if (base / "github_raw").is_dir() else base
    out = {}
    for split, (stem, count) in MULTI30K_SPLITS.items():
        de, en = (_read_lines(_find(folder, [f"{stem}.{lang}.gz"], f"Multi30k {split}.{lang}"))
                  for lang in ("de", "en"))
        if len(de) != count or len(en) != count:
            raise CorruptDataError(f"{folder}: Multi30k {split} has {len(de)} German / {len(en)} English lines, "
                                   f"expected {count} each")
        out[split] = (de, en)
    return out


# --- Quora Question Pairs -----------------------------------------------------------------
QqpPair = tuple[str, str, int]  # (question1, question2, is_duplicate 0/1)


def _warn_skipped(path: Path, skipped: int) -> None:
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} malformed row(s)", stacklevel=3)


def load_qqp_csv(path: PathLike) -> list[QqpPair]:
    """Read Kaggle-format QQP (``train.csv``: quoted CSV, fields may hold commas, quotes, newlines).

    ``path`` is the CSV or a folder holding ``quora_train_first10k.csv`` or ``train.csv``.
    Returns: ``(question1, question2, is_duplicate)`` per row; rows with missing fields or a label
    other than 0/1 are skipped with a warning that counts them.
    Raises: CorruptDataError: no ``question1``/``question2``/``is_duplicate`` header.
    """
    path = _find(path, ["quora_train_first10k.csv", "train.csv"], "QQP csv")
    rows, skipped = [], 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"question1", "question2", "is_duplicate"} <= set(reader.fieldnames or ()):
            raise CorruptDataError(f"{path}: header {reader.fieldnames} lacks question1, question2, is_duplicate")
        for row in reader:
            q1, q2, label = row.get("question1"), row.get("question2"), row.get("is_duplicate")
            if q1 is None or q2 is None or label not in ("0", "1") or None in row:
                skipped += 1
                continue
            rows.append((q1, q2, int(label)))
    _warn_skipped(path, skipped)
    return rows


def read_qqp_tsv(path: PathLike) -> tuple[list[QqpPair], int]:
    """Read one GLUE QQP TSV (``id qid1 qid2 question1 question2 is_duplicate``, unquoted).

    Returns: ``(pairs, skipped)``: the well-formed rows and the number of malformed ones.
    Raises: CorruptDataError: the header lacks the needed columns.
    """
    path = Path(path)
    with open(path, encoding="utf-8", newline="\n") as f:  # split rows on \n only
        header = f.readline().rstrip("\r\n").split("\t")
        try:
            i1, i2, il = (header.index(c) for c in ("question1", "question2", "is_duplicate"))
        except ValueError:
            raise CorruptDataError(f"{path}: header {header} lacks question1, question2, is_duplicate") from None
        rows, skipped = [], 0
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(header) or fields[il] not in ("0", "1"):
                skipped += 1
                continue
            rows.append((fields[i1], fields[i2], int(fields[il])))
    return rows, skipped


def load_qqp_glue(directory: PathLike) -> dict[str, list[QqpPair]]:
    """Load GLUE QQP ``train.tsv`` and ``dev.tsv`` from ``directory`` or ``directory/QQP``.

    Returns: ``{"train": pairs, "dev": pairs}``; malformed rows are skipped with a warning that counts them.
    Raises: FileNotFoundError: a split is missing. CorruptDataError: a bad header.
    """
    base = Path(directory)
    folder = base / "QQP" if (base / "QQP").is_dir() else base
    out = {}
    for split in ("train", "dev"):
        path = _find(folder, [f"{split}.tsv"], f"QQP {split}")
        out[split], skipped = read_qqp_tsv(path)
        _warn_skipped(path, skipped)
    return out
