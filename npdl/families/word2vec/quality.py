"""word2vec time-to-quality: wall time for npdl and gensim to reach gensim's 5-epoch accuracy.

The target is the analogy accuracy, on the report half of the sections
(``npdl.families.word2vec.bench.split_sections``), of gensim trained ``target_epochs`` (5) epochs. Then
each side trains runs of E = 1, 2, ... epochs - each a fresh run whose learning rate decays over
its own E epochs, as a user would plan it - until one reaches the target (npdl: up to
``max_epochs``); its training time is that side's time-to-quality. gensim's own search ends at
the target run at the latest. Both sides use the same threads (npdl's ``threads`` = gensim's
``workers``) and the same corpus and settings. Every run's accuracy on the development half,
the report half and the whole set is reported. One sample per side: this is minutes of work,
meant for a quiet machine (``npdl.families.word2vec.bench --to-quality``).
"""
from __future__ import annotations

from npdl.bench import Figure, Settings
from npdl.families.word2vec.bench import HALVES, _gensim, _npdl, accuracies


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


def run(settings: Settings, questions, root=None, words: list[str] | None = None, data: dict | None = None,
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
        found = {"npdl": _search(lambda e: _npdl(kind, e, root, n, data), target, questions, max_epochs),
                 "gensim": _search(lambda e: _gensim(kind, e, words, n, sentences, data), target, questions,
                                   target_epochs, {target_epochs: ref})}
        note = (f"target {target:.2f}% = gensim's {target_epochs}-epoch accuracy on the report half; "
                f"threads = workers = {n}; report-half accuracy per epochs tried: "
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
