"""bAbI question answering (Weston et al. 2015, arXiv:1502.05698), tasks 1-20 of v1.2.

An example is (story, question, answer): the story is the statements of the current bAbI
story before the question, flattened into one token sequence with ``<sep>`` closing every
sentence (the parser drops full stops); the answer is one class among the answer strings
seen in training (a word, or for tasks 8 and 19 a comma-joined list such as ``"n,w"``), with
class 0 ``<unk>`` for a test answer never seen in training (always counted wrong).

Batches are ``(story (B, Ls) int64, story_mask (B, Ls) bool, question (B, Lq), question_mask,
answer (B,))``, padded with id 0 (``<pad>``) to the longest of the batch, masks True at real
tokens. Training batches are drawn in a seeded order per epoch; evaluation batches group
stories of similar length (the order does not change an accuracy, and less padding is faster).

The validation split is carved from the training file: a fixed ``val_fraction`` of its
questions chosen with seed 0, the same for every run.
"""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np

from npdl.data import download, parsers
from npdl.data.datasets import Dataset
from npdl.data.loader import epoch_rng, held_out
from npdl.data.text_batching import pad_batch
from npdl.data.vocab import PAD, SEP, UNK, Vocab
from npdl.registry import DATASETS
from npdl.schema import PositiveInt, Range, UnitInterval

VOCAB_FILE = "babi_vocab.json"
BabiTask = Annotated[int, Range(1, 20)]


class QALoader:
    """Padded bAbI batches from per-example id arrays; ``shuffle`` reorders them per (seed, epoch).

    Without shuffling, examples are taken in story-length order (see the module docstring).
    """

    def __init__(self, stories: list[np.ndarray], questions: list[np.ndarray], answers: np.ndarray,
                 batch_size: int, shuffle: bool):
        self.stories, self.questions, self.answers = stories, questions, answers
        self.batch_size, self.shuffle = batch_size, shuffle
        self.n = len(answers)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0, seed: int = 0):
        if self.shuffle:
            order = epoch_rng(seed, epoch).permutation(self.n)
        else:
            order = np.argsort([len(s) for s in self.stories], kind="stable")
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            story, story_mask = pad_batch([self.stories[i] for i in idx])
            question, question_mask = pad_batch([self.questions[i] for i in idx])
            yield story, story_mask, question, question_mask, self.answers[idx]


@DATASETS.register("babi")
class Babi(Dataset):
    """bAbI v1.2 task ``task`` (1-20): story + question -> answer; ``en`` has 1k training questions, ``en-10k`` 10k."""

    task: ClassVar[str] = "qa"
    source: ClassVar[str] = "babi"
    provides: ClassVar[tuple[str, ...]] = ("vocab_size", "num_answers")

    def __init__(self, task: BabiTask = 1, variant: Literal["en", "en-10k"] = "en", batch_size: PositiveInt = 32,
                 eval_batch_size: PositiveInt | None = 128, val_fraction: UnitInterval = 0.1,
                 max_sentences: PositiveInt | None = None):
        super().__init__(batch_size, eval_batch_size)
        self.babi_task, self.variant, self.val_fraction = task, variant, val_fraction
        self.max_sentences = max_sentences
        self.vocab: Vocab | None = None
        self.answers: list[str] | None = None
        self.examples: dict[str, tuple] = {}

    def load(self, root) -> None:
        try:
            raw = parsers.load_babi(download.dataset_dir(self.source, root), self.babi_task, self.variant)
        except FileNotFoundError as exc:   # e.g. an optional en-10k file a mirror did not have
            raise download.DatasetNotFoundError(f"{exc} -- run: npdl download babi (the official archive "
                                                f"holds every task of both variants)") from None
        train = raw["train"]
        train_idx, val_idx = held_out(len(train), int(round(len(train) * self.val_fraction)))
        parts = {"train": [train[i] for i in train_idx], "val": [train[i] for i in val_idx], "test": raw["test"]}
        if not parts["val"]:
            del parts["val"]
        if self.vocab is None:
            words = [self._story_tokens(e) + e.question for e in parts["train"]]
            self.vocab = Vocab.build(words, specials=(PAD, UNK, SEP))
            self.answers = [UNK] + sorted({e.answer for e in parts["train"]})
        answer_id = {a: i for i, a in enumerate(self.answers)}
        for split, examples in parts.items():
            stories = [self.vocab.encode(self._story_tokens(e)) for e in examples]
            questions = [self.vocab.encode(e.question) for e in examples]
            answers = np.array([answer_id.get(e.answer, 0) for e in examples], np.int64)
            self.examples[split] = (stories, questions, answers)

    def _story_tokens(self, example: parsers.BabiExample) -> list[str]:
        sentences = example.story[-self.max_sentences:] if self.max_sentences else example.story
        return [tok for sentence in sentences for tok in (*sentence, SEP)]

    def info(self) -> dict:
        if self.vocab is None:  # declared sizes (npdl check before a download): the largest task's order
            return {"vocab_size": 200, "num_answers": 50}
        return {"vocab_size": len(self.vocab), "num_answers": len(self.answers)}

    def splits(self) -> tuple[str, ...]:
        if self.examples:
            return tuple(self.examples)
        return ("train", "val", "test") if self.val_fraction else ("train", "test")

    def loader(self, split: str) -> QALoader:
        self._check_split(split)
        stories, questions, answers = self.examples[split]
        train = split == "train"
        return QALoader(stories, questions, answers, self.batch_size if train else self.eval_batch_size, train)

    def example_batch(self):
        ids, mask = np.zeros((2, 5), np.int64), np.ones((2, 5), bool)
        return ids, mask, ids[:, :3].copy(), mask[:, :3].copy(), np.zeros(2, np.int64)

    def save_artifacts(self, run_dir) -> None:
        self.write_json_artifact(run_dir, VOCAB_FILE, {"vocab": self.vocab.to_dict(), "answers": self.answers})

    def load_artifacts(self, run_dir) -> None:
        data = self.read_json_artifact(run_dir, VOCAB_FILE)
        if data is not None:
            self.vocab, self.answers = Vocab.from_dict(data["vocab"]), list(data["answers"])
