"""Parsers on the real data of the offline mirror, and on small damaged files."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from npdl.data.parsers import (CorruptDataError, load_analogy, load_babi, load_mnist_like, load_multi30k, load_ptb,
                               load_qqp_csv, load_qqp_glue, load_text8, parse_babi, read_idx)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"offline data mirror {SHARED} is absent")


@needs_shared
@pytest.mark.parametrize("name, first_train_labels", [("mnist", [5, 0, 4, 1, 9]), ("fashion_mnist", [9, 0, 0, 3, 0])])
def test_mnist_like(name, first_train_labels):
    data = load_mnist_like(SHARED / name)
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,) and y_train.dtype == np.int64
    assert y_train[:5].tolist() == first_train_labels
    counts = np.bincount(y_train, minlength=10)
    assert counts.sum() == 60000 and counts.min() > 5000 and counts.max() < 7000  # roughly balanced
    assert x_train.max() == 255 and x_train.min() == 0


@needs_shared
def test_ptb_token_counts():
    ptb = load_ptb(SHARED / "ptb")
    # SOURCE.md counts one <eos> per line, which the loader leaves to the language model.
    counts = {split: sum(len(line) + 1 for line in lines) for split, lines in ptb.items()}
    assert counts == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert ptb["train"][1][:4] == ["pierre", "<unk>", "N", "years"]


@needs_shared
def test_text8_prefix():
    text = load_text8(SHARED / "text8")
    assert len(text) == 12_549_837 and text.startswith(" anarchism originated as a term of abuse")
    assert len(text.split()) == 2_139_748


@needs_shared
def test_analogy_sections():
    questions = load_analogy(SHARED / "word2vec_analogy" / "questions-words.txt")
    sections = list(dict.fromkeys(section for section, _ in questions))
    assert len(questions) == 19_544 and len(sections) == 14
    assert sections[0] == "capital-common-countries" and sections[-1] == "gram9-plural-verbs"
    assert questions[0] == ("capital-common-countries", ("athens", "greece", "baghdad", "iraq"))
    assert sum(1 for s, _ in questions if not s.startswith("gram")) == 8_869


@needs_shared
def test_babi_qa1():
    data = load_babi(SHARED / "babi", 1)
    assert len(data["train"]) == 1000 and len(data["test"]) == 1000
    story, question, answer, supporting = data["train"][1]
    assert story == [["mary", "moved", "to", "the", "bathroom"], ["john", "went", "to", "the", "hallway"],
                     ["daniel", "went", "back", "to", "the", "hallway"], ["sandra", "moved", "to", "the", "garden"]]
    assert (question, answer, supporting) == (["where", "is", "daniel"], "hallway", [2])


@needs_shared
def test_babi_en10k_gz():
    data = load_babi(SHARED / "babi", 19, variant="en-10k")
    assert len(data["train"]) == 10000 and len(data["test"]) == 1000
    assert all("," in ex.answer for ex in data["train"][:50])  # path answers such as "n,w"


def test_babi_story_boundaries_and_supporting_indices():
    lines = ["1 Mary went home.", "2 Where is Mary? \thome\t1", "3 John got the milk.",
             "4 Where is Mary?\thome\t1", "5 What has John?\tmilk\t3",
             "1 Sam left.", "2 Where is Sam?\tout\t1"]
    first, second, third, fourth = parse_babi(lines)
    assert first.story == [["mary", "went", "home"]] and first.question == ["where", "is", "mary"]
    assert second.story == [["mary", "went", "home"], ["john", "got", "the", "milk"]]
    assert third.supporting == [1] and fourth.story == [["sam", "left"]] and fourth.answer == "out"
    with pytest.raises(CorruptDataError, match=":2:"):
        parse_babi(["1 A b.", "2 Where?\tx\t7"], "t")


@needs_shared
def test_multi30k_line_counts():
    data = load_multi30k(SHARED / "multi30k")
    assert {split: (len(de), len(en)) for split, (de, en) in data.items()} == {
        "train": (29000, 29000), "val": (1014, 1014), "test": (1000, 1000)}
    assert data["train"][1][0].startswith("Two young, White males are outside near many bushes")
    assert not any(line.endswith("\n") for line in data["val"][0])


@needs_shared
def test_qqp_sample():
    rows = load_qqp_csv(SHARED / "qqp_sample" / "quora_train_first10k.csv")
    assert len(rows) == 10_000 and sum(label for _, _, label in rows) == 3_711
    assert rows[7] == ("How can I be a good geologist?", "What should I do to be a great geologist?", 1)
    assert any("\n" in q1 + q2 for q1, q2, _ in rows)  # row 2332's embedded newline survives


def test_qqp_glue_skips_and_counts_malformed_rows(tmp_path):
    (tmp_path / "QQP").mkdir()
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    (tmp_path / "QQP" / "train.tsv").write_text(header + "1\t1\t2\tA \"quoted\" q?\tB?\t1\n2\t3\t4\tonly three\n"
                                                "3\t5\t6\tC?\tD?\tmaybe\n")
    (tmp_path / "QQP" / "dev.tsv").write_text(header + "9\t7\t8\tE?\tF?\t0\n")
    with pytest.warns(UserWarning, match="skipped 2 malformed"):
        data = load_qqp_glue(tmp_path)
    assert data == {"train": [('A "quoted" q?', "B?", 1)], "dev": [("E?", "F?", 0)]}


def _idx(shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_read_idx_plain_and_gzip(tmp_path):
    pixels = bytes(range(24))
    (tmp_path / "a.idx").write_bytes(_idx((2, 3, 4), pixels))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx((2, 3, 4), pixels)))
    for name in ("a.idx", "a.idx.gz"):
        array = read_idx(tmp_path / name)
        assert array.shape == (2, 3, 4) and array.dtype == np.uint8 and array[1, 2, 3] == 23
    wide = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", -1, 70000)
    (tmp_path / "b.idx").write_bytes(wide)
    assert read_idx(tmp_path / "b.idx").tolist() == [-1, 70000]


@pytest.mark.parametrize("content, match", [
    (_idx((2, 3, 4), bytes(23)), "truncated"),
    (_idx((2, 3, 4), bytes(25)), "trailing bytes"),
    (b"\x00\x00\x08", "not an idx file"),
    (b"PK\x03\x04rest", "not an idx file"),
    (gzip.compress(_idx((2, 3, 4), bytes(24)))[:-12], "damaged gzip"),
])
def test_read_idx_rejects_damaged_files(tmp_path, content, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(CorruptDataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_analogy_malformed_lines(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(": family\nBoy Girl Brother Sister\nking queen man\n")
    with pytest.raises(CorruptDataError, match=r"q.txt:3: expected 4 words"):
        load_analogy(path)
    path.write_text("a b c d\n")
    with pytest.raises(CorruptDataError, match=r":1: question before any"):
        load_analogy(path)


def test_missing_files_name_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        load_ptb(tmp_path)
    with pytest.raises(ValueError, match="1 to 20"):
        load_babi(tmp_path, 21)
