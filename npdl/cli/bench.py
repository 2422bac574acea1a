"""``npdl bench``: npdl beside references measured in the same run, by one method (``npdl.bench``)."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from npdl.cli.app import command, console, fail
from npdl.cli.arguments import output_file, regular_file

# name -> the module whose ``run(settings)`` measures it; a family's benchmark lives in its folder
BENCHMARKS = {
    "ops": "npdl.bench.ops",
    "mlp": "npdl.bench.mlp",
    "layers": "npdl.bench.layers",
    "cnn": "npdl.bench.cnn",
    "lstm": "npdl.families.language_model.bench",
    "transformer": "npdl.families.text_classification.bench",
    "beam": "npdl.families.seq2seq.bench",
    "word2vec": "npdl.families.word2vec.bench",
    "dp": "npdl.bench.dp",
}


@command(short_help="Benchmarks beside NumPy, PyTorch and gensim.")
def bench(names: list[str] = typer.Argument(None, help=f"Which benchmarks: {', '.join(BENCHMARKS)} (default all).",
                                             metavar="NAME"),
          threads: int = typer.Option(None, "--threads", min=1,
                                      help="Threads for BLAS, npdl's pool, torch and gensim alike "
                                           "(default: what threadpoolctl reports for NumPy's BLAS)."),
          rounds: int = typer.Option(None, "--rounds", min=1, max=1000, help="Alternating rounds per comparison "
                                                                    "(default: each benchmark's own)."),
          quick: bool = typer.Option(False, "--quick", help="Tiny sizes and at most 2 rounds: checks that the "
                                                            "benchmarks run; the figures mean nothing."),
          json_out: Path = typer.Option(None, "--json", help="Write every figure and the run's facts to this file."),
          markdown: Path = typer.Option(None, "--markdown", help="Render the README performance table from a "
                                                                 "--json file and exit (measures nothing)."),
          to_quality: bool = typer.Option(False, "--to-quality", help="word2vec: wall time to reach gensim's "
                                                                      "5-epoch analogy accuracy (minutes)."),
          device: str = typer.Option(None, "--device", metavar="DEVICE",
                                     help="Training steps (mlp, lstm, transformer) of npdl on this device beside "
                                          "npdl on the CPU and PyTorch on the GPU (cuda), in the same run.")):
    """Measure npdl beside hand-written NumPy, PyTorch and gensim (when installed), same run, same threads."""
    from npdl.bench import report

    if markdown is not None:
        regular_file(markdown, "--markdown")  # a FIFO would block the read for good
        try:
            doc = report.load(markdown)
            # load checks the top level only; a figure or fact of the wrong shape (a hand-edited
            # or foreign file) is the file's fault, not npdl's
            try:
                text = report.markdown(doc)
            except (KeyError, TypeError, AttributeError, ValueError, IndexError, ArithmeticError) as exc:
                raise report.ReportError(f"{markdown}: not a `npdl bench --json` document (a figure or fact "
                                         f"of the wrong shape: {type(exc).__name__}: {exc})") from None
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        except report.ReportError as exc:
            raise fail(str(exc)) from None
        return
    if json_out is not None:
        output_file(json_out, "--json")  # a bad path fails now, not after the measurements
    if device is not None and device.strip().lower() != "cpu":
        return _on_device(device, names, threads, rounds, quick, json_out)
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise fail(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    from npdl.bench import conditions

    settings = _settings(threads, rounds, quick)
    figures = []
    with conditions.threads_set(settings.threads):
        facts = conditions.facts(settings)
        for line in report.header_lines(facts):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        for name in chosen:
            from importlib import import_module

            module = import_module(BENCHMARKS[name])
            found = module.run(settings, to_quality=to_quality) if name == "word2vec" else module.run(settings)
            console.print(_table(name, found))
            figures += found
    if json_out is not None:
        json_out.write_text(json.dumps(report.document(facts, figures), indent=1) + "\n")
        console.print(f"figures written to {json_out}", markup=False, highlight=False, soft_wrap=True)


DEVICE_BENCHMARKS = ("mlp", "lstm", "transformer")


def _on_device(device: str, names, threads, rounds, quick: bool, json_out) -> None:
    """``npdl bench --device D [mlp|lstm|transformer]...``: see ``npdl.bench.device``."""
    from npdl.bench import conditions, device as device_bench, report
    from npdl.core import backend

    chosen = names or list(DEVICE_BENCHMARKS)
    unknown = [n for n in chosen if n not in DEVICE_BENCHMARKS]
    if unknown:
        raise fail(f"--device benchmarks are {', '.join(DEVICE_BENCHMARKS)}; not {unknown[0]!r}")
    backend.device(device)   # DeviceError (exit 2) before anything runs: no CuPy, no GPU
    settings = _settings(threads, rounds, quick)
    with conditions.threads_set(settings.threads):
        facts = conditions.facts(settings)
        for line in report.header_lines(facts):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        figures = device_bench.run(settings, device, chosen)
    for f in figures:
        console.print(_table(f.bench, [f]))
    if json_out is not None:
        json_out.write_text(json.dumps(report.document(facts, figures), indent=1) + "\n")
        console.print(f"figures written to {json_out}", markup=False, highlight=False, soft_wrap=True)


def _settings(threads: int | None, rounds: int | None, quick: bool):
    """The settings every side runs under (the allocator's applied to this process too)."""
    import os

    from npdl.bench import Settings, conditions
    from npdl.runtime import flush_denormals, keep_freed_memory

    malloc = os.environ.get("NPDL_MALLOC") != "default"
    if malloc:
        keep_freed_memory()   # the in-process benchmarks share this process; workers apply it themselves
    flush_denormals()         # every worker does too, both sides (npdl.bench.worker)
    if quick and rounds is not None:
        rounds = min(rounds, 2)  # --quick means at most 2 rounds, whatever --rounds says
    return Settings(threads=threads or conditions.default_threads(), rounds=rounds, quick=quick, npdl_malloc=malloc)


def _table(name: str, figures) -> Table:
    from npdl.bench.report import number

    table = Table(title=f"npdl bench {name}")
    for col in ("figure", "side", "median", "min-max", "unit", "note"):
        table.add_column(col, justify="right" if col in ("median", "min-max") else "left")
    for f in figures:
        if not f.sides:
            table.add_row(f.name, "", "", "", "", f.note)
        for i, (side, samples) in enumerate((k, v) for k, v in f.sides.items() if v):
            lo, hi = f.spread(side)
            table.add_row(f.name if i == 0 else "", side, number(f.median(side)), f"{number(lo)}-{number(hi)}",
                          f.unit, f"{len(samples)} round(s); {f.note}" if i == 0 else "")
        for i, (ref, ratio) in enumerate(f.ratios().items()):
            subject = next(iter(f.sides))
            table.add_row("", f"{subject} / {ref}", number(ratio), "", "x",
                          f"target {f.target}" if f.target and i == 0 else "")
    return table
