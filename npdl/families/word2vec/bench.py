"""word2vec on the text8 prefix: npdl beside gensim, same threads, same run.

What is compared. npdl's word2vec is a different estimator from gensim's (word2vec.c's):

* gensim updates the vectors after every (center, context) pair with its own K negatives
  (per-pair SGD, Hogwild threads);
* npdl trains in minibatches of ~2,000 words: the loss of a batch is summed and one SGD step
  applies it, and the negatives are a shared pool of S words per batch part, each weighted K/S
  (the same expected gradient as K independent negatives; ``npdl.families.word2vec.model``).

So words/s alone compares different things; the question both answer is how fast they reach a
given quality. Two modes:

* default (``run``): one epoch of skip-gram and of CBOW with word2vec's settings (dim 100,
  window 5, 5 negatives, min_count 5, sample 1e-3, alpha 0.025 / 0.05 decaying linearly) on the
  12.5 MB text8 prefix (2,139,748 words), npdl and gensim alternating for ``rounds`` rounds:
  raw and effective words/s (median, spread, ratio) and the analogy accuracy after that epoch;
* ``--to-quality`` (``time_to_quality`` below): wall time for each to reach gensim's 5-epoch
  analogy accuracy (minutes of work; run it on a quiet machine).

The analogy questions are split by section (``split_sections``): a development half, on which
npdl's defaults (``NPDL`` below: pool size and parts; the learning rates) were chosen, and a
report half; both halves and the whole set are reported. npdl trains through its Trainer
(``{skipgram,cbow}_text8_prefix.yaml``'s settings), gensim runs ``Word2Vec`` on the same words
cut into 10,000-word sentences as ``Text8Corpus`` does; timings cover training only (not reading
the corpus or the vocabulary).

The corpus is looked for under ``npdl.data.download.data_root()`` ($NPDL_DATA or ./datasets):
``npdl download text8_prefix --mirror DIR`` and ``npdl download analogy`` put it there.
"""
from __future__ import annotations

import time

from npdl.bench import Figure, Settings, alternate

SETTINGS = {"dim": 100, "window": 5, "negative": 5, "min_count": 5, "sample": 1e-3, "epochs": 1}
ALPHA = {"skipgram": 0.025, "cbow": 0.05}
TEXT8 = {"type": "text8_prefix", "min_count": SETTINGS["min_count"], "sample": SETTINGS["sample"],
         "window": SETTINGS["window"]}
# npdl's own knobs of its estimator, as configs/{skipgram,cbow}_text8.yaml set them (a test keeps
# them equal): 2,000-word batches from 64 streams, a pool of S negatives per part, G parts.
# Chosen on the development half of the analogy sections only, for the least wall time to
# gensim's 5-epoch development-half accuracy (README, "Benchmarks").
NPDL = {"skipgram": {"negative_pool": 64, "groups": 4}, "cbow": {"negative_pool": 32, "groups": 4}}
BATCHES = {"batch_size": 2000, "streams": 64}
PARTS_NOTE = "npdl's batch parts on 1 thread (its default), BLAS on the threads"
HALVES = ("dev", "report", "all")


def _config(kind: str, epochs: int, data: dict) -> dict:
    s = SETTINGS
    return {"name": f"bench_{kind}", "seed": 0, "data": {**BATCHES, **data},
            "model": {"type": kind, "dim": s["dim"], "negative": s["negative"], **NPDL[kind]},
            "optimizer": {"type": "sgd", "lr": ALPHA[kind]}, "schedule": {"type": "linear"},
            "train": {"epochs": epochs, "log_every": 10**9}}


def _npdl(kind: str, epochs: int, root=None, data: dict | None = None) -> dict:
    """Train npdl for ``epochs`` (a schedule planned for that many); seconds, words fed, vectors.

    The model keeps its default ``threads: 1`` (its batch parts on one thread: faster than two,
    ``npdl.families.word2vec.model``); BLAS inside it has the bench's threads.
    """
    from npdl import config, experiment

    exp = experiment.build(config.from_dict(_config(kind, epochs, data or TEXT8), f"<bench {kind}>"), root)
    t0 = time.perf_counter()
    exp.trainer().fit()
    seconds = time.perf_counter() - t0
    loader = exp.data.loader("train")
    kept = 0
    for epoch in range(epochs):  # the words each epoch fed: its subsampling draw, replayed
        loader.draw_epoch(exp.seed, epoch)
        kept += len(loader.kept)
    return {"seconds": seconds, "raw": exp.data.corpus_words * epochs, "effective": kept,
            "vectors": exp.model.vectors(), "words": exp.data.vocab.tokens}


def _gensim(kind: str, epochs: int, words: list[str] | None = None, threads: int = 2,
            sentences: list[list[str]] | None = None, data: dict | None = None) -> dict | None:
    """gensim's Word2Vec with the same settings and ``threads`` workers; None without gensim."""
    try:
        from gensim.models import Word2Vec
    except Exception:  # noqa: BLE001 - gensim is an optional dev-time reference
        return None
    s, d = SETTINGS, data or TEXT8
    if sentences is None:
        sentences = [words[i:i + 10_000] for i in range(0, len(words), 10_000)]
    model = Word2Vec(vector_size=s["dim"], window=d["window"], negative=s["negative"], min_count=d["min_count"],
                     sample=d["sample"], sg=int(kind == "skipgram"), alpha=ALPHA[kind], min_alpha=ALPHA[kind] * 1e-4,
                     workers=threads, seed=1)
    model.build_vocab(sentences)
    t0 = time.perf_counter()
    effective, raw = model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "raw": raw, "effective": effective, "vectors": model.wv.vectors,
            "words": list(model.wv.index_to_key)}


def split_sections(questions) -> dict[str, list[str]]:
    """The analogy sections in file order, alternately to the development and the report half
    (both halves then mix semantic and syntactic sections)."""
    sections = list(dict.fromkeys(s for s, _ in questions))
    return {"dev": sections[0::2], "report": sections[1::2], "all": sections}


def accuracies(result: dict, questions, restrict: int = 30000) -> dict[str, float]:
    """3CosAdd accuracy (%) of a trained model on the development half, the report half and the whole set."""
    from npdl.families.word2vec.task import analogy_accuracy

    acc = analogy_accuracy(result["vectors"], result["words"], questions, restrict)
    out = {}
    for half, sections in split_sections(questions).items():
        n = sum(acc["section_questions"][s] for s in sections)
        right = sum(acc["sections"][s] * acc["section_questions"][s] for s in sections)
        out[half] = 100.0 * right / n if n else 0.0
    return out


def corpus(root=None):
    """(words, questions or None) of the text8 prefix, or a skip Figure when it is not downloaded."""
    from npdl.data import download, parsers

    if not download.is_downloaded("text8_prefix", root):
        return Figure("word2vec", "word2vec", "", {}, f"skipped: text8_prefix is not in {download.data_root(root)}"
                      " - run: npdl download text8_prefix --mirror DIR")
    questions = None
    if download.is_downloaded("analogy", root):
        questions = parsers.load_analogy(download.dataset_dir("analogy", root))
    return parsers.load_text8(download.dataset_dir("text8_prefix", root)).split(), questions


def run(settings: Settings | None = None, root=None, to_quality: bool = False) -> list[Figure]:
    """Throughput figures (or, with ``to_quality``, time-to-quality) for skip-gram and CBOW."""
    if settings is None:
        from npdl.bench.conditions import default_threads

        settings = Settings(threads=default_threads())
    found = corpus(root)
    if isinstance(found, Figure):
        return [found]
    words, questions = found
    if to_quality:
        if questions is None:
            return [Figure("word2vec", "word2vec", "", {}, "skipped: --to-quality needs `npdl download analogy`")]
        return time_to_quality(settings, questions, root=root, words=words)
    return throughput(settings, words, questions, root=root)


def throughput(settings: Settings, words: list[str] | None, questions, root=None, data: dict | None = None,
               sentences: list[list[str]] | None = None, epochs: int = 1) -> list[Figure]:
    """Words/s of npdl and gensim over alternating rounds of ``epochs`` epochs, and their accuracies."""
    figures = []
    for kind in ("skipgram", "cbow"):
        sides = {"npdl": lambda k=kind: _npdl(k, epochs, root, data),
                 "gensim": lambda k=kind: _gensim(k, epochs, words, settings.threads, sentences, data)}
        runs = alternate(sides, settings.rounds_or(3))
        runs = {k: [r for r in v if r is not None] for k, v in runs.items()}
        note = f"{epochs} epoch(s) per round; threads = gensim workers = {settings.threads}; {PARTS_NOTE}"
        if not runs["gensim"]:
            note += "; gensim not installed: no reference"
        for what, key in (("raw words/s (corpus words fed)", "raw"),
                          ("effective words/s (after min_count and subsampling)", "effective")):
            figures.append(Figure("word2vec", f"{kind} {what}", "words/s",
                                  {k: [r[key] / r["seconds"] for r in v] for k, v in runs.items()}, note,
                                  ">= 0.3" if key == "raw" else ""))
        if questions is not None:
            acc = {k: [accuracies(r, questions) for r in v] for k, v in runs.items()}
            for half in HALVES:
                figures.append(Figure("word2vec", f"{kind} analogy accuracy after {epochs} epoch(s), {half} sections",
                                      "%", {k: [a[half] for a in v] for k, v in acc.items()},
                                      "3CosAdd, top 30k words; dev = even-numbered sections, report = odd"))
    return figures


# ---- time to quality ----------------------------------------------------------------------
# word2vec time-to-quality: wall time for npdl and gensim to reach gensim's 5-epoch accuracy.
#
# The target is the analogy accuracy, on the report half of the sections
# (``npdl.families.word2vec.bench.split_sections``), of gensim trained ``target_epochs`` (5) epochs. Then
# each side trains runs of E = 1, 2, ... epochs - each a fresh run whose learning rate decays over
# its own E epochs, as a user would plan it - until one reaches the target (npdl: up to
# ``max_epochs``); its training time is that side's time-to-quality. gensim's own search ends at
# the target run at the latest. Both sides get the same threads (BLAS and npdl's pool; gensim's
# ``workers``; npdl's model computes its batch parts on one of them, its default) and the same
# corpus and settings. Every run's accuracy on the development half, the report half and the
# whole set is reported. One sample per side: this is minutes of work,
# meant for a quiet machine (``npdl.families.word2vec.bench --to-quality``).
def _search(train, target: float, questions, max_epochs: int, known: dict | None = None) -> dict:
    """Epochs, seconds and accuracies of the first run (E = 1, 2, ...) reaching ``target`` (report half)."""
    tried = []
    for epochs in range(1, max_epochs + 1):
        result = (known or {}).get(epochs) or train(epochs)
        acc = accuracies(result, questions)
        tried.append(f"{epochs}: {acc['report']:.2f}%")
        if acc["report"] >= target:
            return {"epochs": epochs, "seconds": result["seconds"], "acc": acc, "tried": tried}
    return {"epochs": None, "seconds": None, "acc": acc, "tried": tried}


def time_to_quality(settings: Settings, questions, root=None, words: list[str] | None = None, data: dict | None = None,
        sentences: list[list[str]] | None = None, target_epochs: int = 5, max_epochs: int = 10,
        kinds=("skipgram", "cbow")) -> list[Figure]:
    """Figures per kind: seconds to the target per side (ratio npdl / gensim) and the accuracies reached."""
    n = settings.threads
    figures = []
    for kind in kinds:
        ref = _gensim(kind, target_epochs, words, n, sentences, data)
        if ref is None:
            figures.append(Figure("word2vec", f"{kind} time to quality", "", {}, "skipped: gensim not installed"))
            continue
        target = accuracies(ref, questions)["report"]
        found = {"npdl": _search(lambda e: _npdl(kind, e, root, data), target, questions, max_epochs),
                 "gensim": _search(lambda e: _gensim(kind, e, words, n, sentences, data), target, questions,
                                   target_epochs, {target_epochs: ref})}
        note = (f"target {target:.2f}% = gensim's {target_epochs}-epoch accuracy on the report half; "
                f"threads = workers = {n}; {PARTS_NOTE}; report-half accuracy per epochs tried: "
                + "; ".join(f"{k} {', '.join(v['tried'])}" for k, v in found.items()))
        figures.append(Figure("word2vec", f"{kind} wall time to gensim's {target_epochs}-epoch analogy accuracy",
                              "s", {k: [v["seconds"]] if v["seconds"] is not None else [] for k, v in found.items()},
                              note, "<= 1"))
        for half in HALVES:
            figures.append(Figure("word2vec", f"{kind} accuracy of that run, {half} sections", "%",
                                  {k: [v["acc"][half]] for k, v in found.items()},
                                  "epochs: " + ", ".join(f"{k} {v['epochs'] or f'not reached in {max_epochs}'}"
                                                         for k, v in found.items())))
    return figures
