"""word2vec throughput and analogy accuracy on the text8 prefix: npdl beside gensim, same run.

One epoch of skip-gram and of CBOW with word2vec's settings (dim 100, window 5, 5 negatives,
min_count 5, sample 1e-3, alpha 0.025 / 0.05 decaying linearly to 0.0001 x alpha) on the 12.5 MB
text8 prefix (2,139,748 words). npdl trains through its Trainer (configs
``{skipgram,cbow}_text8_prefix.yaml``); gensim (optional, dev-time only) runs ``Word2Vec`` with
the same settings and 2 workers on the same words, cut into 10,000-word sentences as gensim's
``Text8Corpus`` does. Timings cover training only (not reading the corpus or the vocabulary).

Figures: raw words/s (corpus words fed per second) and effective words/s (after min_count and
subsampling), npdl / gensim ratios, and both models' 3CosAdd accuracy on questions-words.txt
(top 30,000 words) measured by the same code. ``rounds`` > 1 alternates npdl and gensim and
reports medians, so load from other processes hits both alike.

The corpus is looked for under ``npdl.data.download.data_root()`` ($NPDL_DATA or ./datasets):
``npdl download text8_prefix --mirror DIR`` and ``npdl download analogy`` put it there.
"""
from __future__ import annotations

import statistics
import time

from npdl.bench import Row

SETTINGS = {"dim": 100, "window": 5, "negative": 5, "min_count": 5, "sample": 1e-3, "epochs": 1}
ALPHA = {"skipgram": 0.025, "cbow": 0.05}


def _config(kind: str, epochs: int) -> dict:
    s = SETTINGS
    return {"name": f"bench_{kind}", "seed": 0,
            "data": {"type": "text8_prefix", "min_count": s["min_count"], "sample": s["sample"],
                     "window": s["window"]},
            "model": {"type": kind, "dim": s["dim"], "negative": s["negative"]},
            "optimizer": {"type": "sgd", "lr": ALPHA[kind]}, "schedule": {"type": "linear"},
            "train": {"epochs": epochs, "log_every": 10**9}}


def _npdl(kind: str, epochs: int, root) -> dict:
    from npdl import config, experiment

    exp = experiment.build(config.from_dict(_config(kind, epochs), f"<bench {kind}>"), root)
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


def _gensim(kind: str, epochs: int, words: list[str]) -> dict | None:
    try:
        from gensim.models import Word2Vec
    except Exception:  # noqa: BLE001 - gensim is an optional dev-time reference
        return None
    s = SETTINGS
    sentences = [words[i:i + 10_000] for i in range(0, len(words), 10_000)]
    model = Word2Vec(vector_size=s["dim"], window=s["window"], negative=s["negative"], min_count=s["min_count"],
                     sample=s["sample"], sg=int(kind == "skipgram"), alpha=ALPHA[kind], min_alpha=ALPHA[kind] * 1e-4,
                     workers=2, seed=1)
    model.build_vocab(sentences)
    t0 = time.perf_counter()
    effective, raw = model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "raw": raw, "effective": effective, "vectors": model.wv.vectors,
            "words": list(model.wv.index_to_key)}


def run(epochs: int = 1, rounds: int = 3, root=None) -> list[Row]:
    """Rows for skip-gram and CBOW: words/s of npdl and gensim, ratios, analogy accuracies."""
    from npdl.data import download, parsers
    from npdl.families.word2vec.task import analogy_accuracy

    if not download.is_downloaded("text8_prefix", root):
        return [Row("word2vec", 0.0, "", f"skipped: text8_prefix is not in {download.data_root(root)} - run: "
                                         "npdl download text8_prefix --mirror DIR")]
    questions = None
    if download.is_downloaded("analogy", root):
        questions = parsers.load_analogy(download.dataset_dir("analogy", root))
    words = parsers.load_text8(download.dataset_dir("text8_prefix", root)).split()
    rows = []
    for kind in ("skipgram", "cbow"):
        runs = {"npdl": [], "gensim": []}
        for _ in range(rounds):
            runs["npdl"].append(_npdl(kind, epochs, root))
            g = _gensim(kind, epochs, words)
            if g is not None:
                runs["gensim"].append(g)
        rows += _rows(kind, epochs, runs, questions, analogy_accuracy)
    return rows


def _rows(kind, epochs, runs, questions, analogy_accuracy) -> list[Row]:
    rows, rates = [], {}
    for who, results in runs.items():
        if not results:
            rows.append(Row(f"{kind} gensim", 0.0, "", "gensim not installed: no reference"))
            continue
        raw = statistics.median(r["raw"] / r["seconds"] for r in results)
        eff = statistics.median(r["effective"] / r["seconds"] for r in results)
        rates[who] = (raw, eff)
        note = f"{epochs} epoch(s), median of {len(results)}" + (", 2 workers" if who == "gensim" else "")
        rows += [Row(f"{kind} {who} raw words/s", raw, "words/s", note),
                 Row(f"{kind} {who} effective words/s", eff, "words/s", "after min_count and subsampling")]
        if questions is not None:
            last = results[-1]
            acc = analogy_accuracy(last["vectors"], last["words"], questions, 30000)
            rows.append(Row(f"{kind} {who} analogy accuracy", 100 * acc["accuracy"], "%",
                            f"{acc['questions']} of {acc['total_questions']} questions (top 30k words)"))
    if "gensim" in rates:
        rows.append(Row(f"{kind} npdl / gensim raw words/s", rates["npdl"][0] / rates["gensim"][0], "x",
                        "target >= 0.3"))
        rows.append(Row(f"{kind} npdl / gensim effective words/s", rates["npdl"][1] / rates["gensim"][1], "x"))
    return rows
