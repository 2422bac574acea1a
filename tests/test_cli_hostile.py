"""Hostile and clumsy CLI input: every user error exits 2 with one message that names the file or
argument; never a traceback, never `internal error` (issue 11's error policy), plus the rough
edges of issue 14 (--version, -h, help summaries, install hints, progress)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from npdl.cli.main import app
from npdl.cli.app import classify, shorten
from tests.conftest import ROOT, env_without_data, tiny_config, write_config

runner = CliRunner()
LONG = "a" * 5000
WORDS = "the cat sat on a mat and the dog ran to the big red house near a small tree".split()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def assert_user_error(res, *names: str) -> None:
    """Exit 2, one clear message, no traceback; each of ``names`` (shortened if huge) is named."""
    out = res.output
    assert res.exit_code == 2, (res.exit_code, out, res.exception)
    assert "Traceback" not in out and "internal error" not in out, out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    for name in names:
        assert (name if len(name) < 100 else name[:30]) in out, (name[:60], out)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> SimpleNamespace:
    """Odd paths (missing, folder, FIFO, link loop, 5,000 characters, under a file) and two tiny
    trained runs (a classifier and a word language model), made once for the module."""
    base = tmp_path_factory.mktemp("hostile")
    cfg = write_config(base / "tiny.yaml", tiny_config(**{"train.epochs": 2}))
    text = base / "corpus.txt"
    rng = np.random.default_rng(0)
    text.write_text("\n".join(" ".join(rng.choice(WORDS, 7)) for _ in range(200)) + "\n")
    lm = write_config(base / "lm.yaml", {
        "name": "tinylm", "seed": 0,
        "data": {"type": "text", "path": str(text), "level": "word", "batch_size": 4, "bptt": 6},
        "model": {"type": "rnn_lm", "hidden_size": 8, "num_layers": 1},
        "optimizer": {"type": "sgd", "lr": 1.0}, "train": {"epochs": 1, "log_every": 10}})
    runs = base / "runs"
    for c in (cfg, lm):
        res = invoke("train", c, "--runs-dir", runs)
        assert res.exit_code == 0, res.output
    (base / "folder").mkdir()
    os.mkfifo(base / "fifo")
    os.symlink(base / "loop_b", base / "loop_a")
    os.symlink(base / "loop_a", base / "loop_b")
    paths = {"missing": base / "missing.yaml", "folder": base / "folder", "fifo": base / "fifo",
             "loop": base / "loop_a", "long": base / LONG, "under_file": cfg / "x"}
    return SimpleNamespace(base=base, cfg=cfg, runs=runs, paths=paths,
                           mlp=next(runs.glob("tiny-*")), lm=next(runs.glob("tinylm-*")))


# ---- OS errors on every user-given path ------------------------------------------------------
PATH_CASES = {  # command line with P for the hostile path; True: the path must be named in the message
    "train CONFIG": (lambda h, p: ["train", p, "--runs-dir", h.base / "r1"], True),
    "check CONFIG": (lambda h, p: ["check", p], True),
    "train --runs-dir": (lambda h, p: ["train", h.cfg, "--runs-dir", p], False),
    "train --data-root": (lambda h, p: ["train", ROOT / "configs" / "mlp_mnist.yaml", "--data-root", p,
                                        "--runs-dir", h.base / "r2"], False),
    "eval RUN": (lambda h, p: ["eval", p, "--runs-dir", h.runs], True),
    "eval --checkpoint": (lambda h, p: ["eval", h.mlp, "--checkpoint", p], True),
    "eval --runs-dir": (lambda h, p: ["eval", "tiny-", "--runs-dir", p], False),
    "resume RUN": (lambda h, p: ["resume", p, "--runs-dir", h.runs], True),
    "compare RUN": (lambda h, p: ["compare", p, "--runs-dir", h.runs], True),
    "plot -o": (lambda h, p: ["plot", h.mlp, "--metric", "val.loss", "-o", p], True),
    "sample RUN": (lambda h, p: ["sample", p, "--runs-dir", h.runs], True),
    "sample --checkpoint": (lambda h, p: ["sample", h.lm, "--checkpoint", p], True),
    "download --mirror": (lambda h, p: ["download", "text8_prefix", "--mirror", p, "--data-root", h.base / "d"], False),
    "download --data-root": (lambda h, p: ["download", "mnist", "--verify", "--data-root", p], False),
}


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "loop", "long", "under_file"])
@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_odd_paths_are_user_errors(hostile, case, kind):
    build, named = PATH_CASES[case]
    path = hostile.paths[kind]
    if case == "plot -o" and kind == "missing":
        path = hostile.base / "no_such_folder" / "x.png"
    if case == "train --runs-dir" and kind in ("missing", "folder"):  # a new or empty runs folder is fine
        res = invoke(*build(hostile, hostile.base / f"new_runs_{kind}"))
        assert res.exit_code == 0, res.output
        return
    t0 = time.perf_counter()
    res = invoke(*build(hostile, path))
    assert time.perf_counter() - t0 < 60  # a FIFO is never opened (that would block)
    if case == "train --data-root" and kind in ("missing", "folder"):
        assert_user_error(res, "npdl download mnist")  # simply not downloaded there
        return
    assert_user_error(res, *([str(path)] if named else []))


def test_long_paths_are_shortened_in_messages(hostile):
    res = invoke("train", hostile.paths["long"])
    assert_user_error(res, "5,0")
    assert LONG not in res.output and len(res.output) < 600
    assert shorten("x " + "b" * 500 + ": y").endswith("(500 characters): y")


# ---- CLI values out of range or not among the choices --------------------------------------
VALUE_CASES = [
    (["sample", "{lm}", "--seed", "-1"], "--seed"),
    (["sample", "{lm}", "--length", str(10**12)], "--length"),
    (["sample", "{lm}", "--length", "-5"], "--length"),
    (["sample", "{lm}", "--temperature", "nan"], "--temperature"),
    (["sample", "{lm}", "--temperature", "-1"], "--temperature"),
    (["sample", "{lm}", "--temperature", "inf"], "--temperature"),
    (["sample", "{lm}", "--temperature", "1e-300"], "--temperature"),
    (["sample", "{lm}", "--top-k", "0"], "--top-k"),
    (["sample", "{lm}", "--seed", "9" * 5000], "--seed"),
    (["translate", "{mlp}", "x", "--beam", "0"], "--beam"),
    (["translate", "{mlp}", "x", "--beam", str(10**9)], "--beam"),
    (["translate", "{mlp}", "x", "--max-len", "0"], "--max-len"),
    (["translate", "{mlp}", "x", "--length-penalty", "nan"], "--length-penalty"),
    (["neighbors", "{mlp}", "w", "-k", "0"], "-k"),
    (["analogy", "{mlp}", "a", "b", "c", "-k", "-3"], "-k"),
    (["eval", "{mlp}", "--split", "nonsense"], "nonsense"),
    (["eval", "{mlp}", "--checkpoint", "step-x"], "step-x"),
    (["eval", "{mlp}", "--checkpoint", "step-" + "9" * 5000], "--checkpoint"),
    (["eval", "{mlp}", "--task", "[red]x"], "[red]x"),
    (["compare", "{mlp}", "--format", "[/]"], "csv"),
    (["compare", "{mlp}", "--sort", "[bold]nope"], "[bold]nope"),
    (["export", "{mlp}", "--format", "[/]"], "word2vec"),
    (["list", "[/]"], "models"),
    (["bench", "[/]"], "mlp"),
    (["download", "[red]nope"], "[red]nope"),
    (["sample", "{mlp}"], "not a language model"),
]


@pytest.mark.parametrize("args,named", VALUE_CASES, ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else None)
def test_values_out_of_range_name_the_option(hostile, args, named):
    res = invoke(*[a.format(lm=hostile.lm, mlp=hostile.mlp) for a in args])
    assert_user_error(res, named)


def test_valid_sampling_still_works(hostile):
    a = invoke("sample", hostile.lm, "--length", "12", "--seed", "3", "--top-k", "5", "--temperature", "0.8")
    b = invoke("sample", hostile.lm, "--length", "12", "--seed", "3", "--top-k", "5", "--temperature", "0.8")
    assert a.exit_code == 0 and a.output == b.output and a.output.strip()
    assert invoke("sample", hostile.lm, "--length", "0", "--temperature", "0").exit_code == 0


# ---- rich markup in user text is printed as written ----------------------------------------
def test_markup_in_names_values_and_messages_prints_literally(hostile, tmp_path):
    res = invoke("train", hostile.cfg, "--runs-dir", tmp_path, "--name", "[red]x")
    assert res.exit_code == 0 and "run [red]x-" in res.output
    listed = invoke("runs", tmp_path)
    assert "[red]x-" in listed.output
    for fmt in ("table", "md", "csv", "json"):  # the table shows the name without its time stamp
        assert "[red]x" + ("" if fmt == "table" else "-") in invoke("compare", "[red]x", "--runs-dir", tmp_path,
                                                                     "--format", fmt).output
    assert "a  [red]x" in invoke("plot", "[red]x", "--runs-dir", tmp_path).output  # the legend, literally
    assert_user_error(invoke("compare", "[/]", "--runs-dir", tmp_path), "[/]")
    assert_user_error(invoke("plot", "[red]x", "--runs-dir", tmp_path, "--metric", "[bold]m[/bold]"), "[bold]m[/bold]")


def test_plot_install_hint_names_the_dependency(hostile, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = invoke("plot", hostile.mlp, "--metric", "val.loss", "-o", hostile.base / "x.png")
    assert_user_error(res, "pip install matplotlib", 'pip install -e ".[plot]"')
    assert "pip install 'npdl" not in res.output


# ---- the fallback policy: memory, OS errors, bugs ------------------------------------------
def test_memory_error_is_a_user_error_naming_what_was_built(hostile, monkeypatch):
    from npdl import experiment

    def too_big(*a, **k):
        raise MemoryError("Unable to allocate 3.64 TiB for an array with shape (1000000, 1000000)")

    monkeypatch.setattr(experiment, "build", too_big)
    res = invoke("train", hostile.cfg, "--runs-dir", hostile.base / "r3")
    assert_user_error(res, "out of memory while building the model and data of", "tiny.yaml", "3.64 TiB")
    assert not (hostile.base / "r3").exists()


def test_classify_separates_user_errors_from_bugs():
    import errno

    assert classify(OSError(errno.ENOSPC, "No space left on device", "/r/ckpt.npz"))[1] == 2
    assert "npdl resume" in classify(OSError(errno.ENOSPC, "No space left on device", "/r/x"))[0]
    assert classify(RuntimeError("Symlink loop from '/a'"))[1] == 2
    assert classify(MemoryError())[1] == 2
    message, code = classify(ZeroDivisionError("division by zero"))
    assert code == 1 and message.startswith("internal error: ZeroDivisionError")


# ---- issue 14 item 1: --version, -h, completion, help summaries and metavars ---------------
def test_version_h_and_completion():
    from importlib.metadata import version

    res = invoke("--version")
    assert res.exit_code == 0 and res.output.strip() == f"npdl {version('npdl')}"
    root = invoke("-h")
    assert root.exit_code == 0 and "--install-completion" in root.output and "-h, --help" in root.output


def _commands() -> list[str]:
    return sorted(c.name for c in app.registered_commands if c.name) + sorted(
        c.callback.__name__ for c in app.registered_commands if not c.name)


@pytest.mark.parametrize("columns", ["40", "80", "250"])
def test_help_summaries_are_never_cut(columns):
    out = invoke("--help", env={"COLUMNS": columns}).output
    commands = out.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands
    for name in ("train", "eval", "sample", "download"):
        assert re.search(rf"^\s+{name}\s", commands, re.M), name


@pytest.mark.parametrize("name", ["train", "resume", "check", "eval", "runs", "compare", "plot", "download",
                                  "datasets", "list", "bench", "sample", "translate", "predict", "neighbors",
                                  "analogy", "export"])
def test_every_command_has_h_and_no_python_types(name):
    res = invoke(name, "-h")
    assert res.exit_code == 0, res.output
    assert "<list[" not in res.output and "<str>" not in res.output and "<path>" not in res.output, res.output


# ---- issue 14 item 4: progress shows the epoch, the evaluation, honest items/s -------------
class _Clock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


def test_progress_shows_epoch_eval_status_and_items_per_second_without_eval(monkeypatch):
    import io

    from rich.console import Console

    from npdl.cli import progress as progress_mod

    clock = _Clock()
    monkeypatch.setattr(progress_mod, "time", clock)
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    rep = progress_mod.ProgressReporter(console, total_steps=10)
    trainer = SimpleNamespace(step=0, epoch=0, settings=SimpleNamespace(epochs=3),
                              optimizer=SimpleNamespace(param_groups=[{"lr": 0.1}]))
    rep.on_train_start(trainer)
    clock.now += 1.0
    trainer.step = 1
    rep.on_step(trainer, 0.5, 100)
    assert rep.items_per_second() == pytest.approx(100.0)
    rep.on_eval_start(trainer, "val")
    assert rep.progress.tasks[0].description == "eval val"
    clock.now += 9.0                                   # a long evaluation ...
    rep.on_eval_end(trainer, "val")
    assert rep.progress.tasks[0].description == "train"
    clock.now += 1.0
    trainer.step, trainer.epoch = 2, 1
    rep.on_step(trainer, 0.5, 100)
    assert rep.items_per_second() == pytest.approx(100.0)  # ... is not training time
    assert "epoch 2/3" in rep.progress.tasks[0].fields["info"]
    rep.stop()


def test_trainer_reports_evaluations_and_summary_counts_a_partial_epoch(tmp_path):
    from npdl import config as cfgmod
    from npdl import experiment

    events = []

    class Recorder:
        def on_eval_start(self, trainer, split):
            events.append(("start", split))

        def on_eval_end(self, trainer, split):
            events.append(("end", split))

    cfg = cfgmod.load(write_config(tmp_path / "t.yaml", tiny_config(**{"train.epochs": 1})))
    exp = experiment.build(cfg)
    exp.trainer(callbacks=[Recorder()]).fit()
    assert events == [("start", "val"), ("end", "val"), ("start", "test"), ("end", "test")]

    res = invoke("train", write_config(tmp_path / "s.yaml", tiny_config(**{"train.max_steps": 4})),
                 "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    epochs = float(re.search(r"epochs\s*│\s*([0-9.]+)", res.output).group(1))
    assert 0 < epochs < 1                               # e.g. 0.4, not 0


# ---- a closed stdout does not stop training (real processes) -------------------------------
def _npdl(*args) -> list[str]:
    return [sys.executable, "-m", "npdl", *[str(a) for a in args]]


def _only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _completed(run: Path) -> None:
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    assert {"last.npz", "best.npz"} <= {p.name for p in (run / "checkpoints").iterdir()}


def test_training_survives_a_stdout_closed_before_it_writes(tmp_path):
    cfg = write_config(tmp_path / "t.yaml", tiny_config(**{"train.epochs": 5}))
    read_end, write_end = os.pipe()
    os.close(read_end)                                 # every write to stdout now fails with EPIPE
    try:
        proc = subprocess.run(_npdl("train", cfg, "--runs-dir", tmp_path / "runs"), stdout=write_end,
                              stderr=subprocess.PIPE, env=env_without_data(), timeout=300, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    _completed(_only_run(tmp_path / "runs"))


def test_training_piped_into_head_completes(tmp_path):
    cfg = write_config(tmp_path / "t.yaml", tiny_config(**{"train.epochs": 8}))
    cmd = " ".join(f"'{a}'" for a in _npdl("train", cfg, "--runs-dir", tmp_path / "runs")) + " | head -c 1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, env=env_without_data(), timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout) == 1
    _completed(_only_run(tmp_path / "runs"))


# ---- one real process per command: hostile input gives exit 2 and one message --------------
def test_each_command_in_a_real_process(hostile):
    h, p = hostile, hostile.paths
    lines = {
        "train": ["train", p["fifo"]], "check": ["check", p["long"]], "resume": ["resume", p["loop"]],
        "eval": ["eval", h.mlp, "--split", "[/]"], "runs": ["runs", p["long"]],
        "compare": ["compare", h.mlp, "--format", "[/]"], "plot": ["plot", h.mlp, "-o", p["fifo"]],
        "download": ["download", "text8_prefix", "--mirror", p["fifo"], "--data-root", h.base / "d"],
        "datasets": ["datasets", "--data-root", p["long"]], "list": ["list", "[red]x"],
        "bench": ["bench", "[red]x"], "sample": ["sample", h.lm, "--seed", "-1"],
        "translate": ["translate", h.mlp, "x", "--beam", "0"], "predict": ["predict", h.mlp],
        "neighbors": ["neighbors", h.mlp, "w", "-k", "0"], "analogy": ["analogy", h.mlp, "a", "b", "c"],
        "export": ["export", h.mlp, "-o", p["folder"]],
    }
    procs = {name: subprocess.Popen(_npdl(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env_without_data(), cwd=h.base) for name, args in lines.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        text = (out + err).decode()
        assert proc.returncode == 2, (name, text)
        assert "Traceback" not in text and "internal error" not in text and "rror" in text, (name, text)


# ---- fuzzing the public entry points ---------------------------------------------------------
def _paths(h) -> st.SearchStrategy:
    return st.sampled_from([str(v) for v in h.paths.values()] + [str(h.cfg), str(h.mlp), str(h.runs), "/dev/null",
                                                                 "[red]x", "", "-", "~", "\t"])


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
_NUMBER = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                    _TEXT)
_FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def _check_outcome(res, t0: float) -> None:
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert time.perf_counter() - t0 < 30


@_FUZZ
@given(data=st.data())
def test_fuzz_check_runs_compare(hostile, data):
    t0 = time.perf_counter()
    which = data.draw(st.sampled_from(["check", "runs", "compare"]))
    path = data.draw(st.one_of(_paths(hostile), _TEXT))
    if which == "check":
        args = ["check", path] + (["--set", data.draw(_TEXT)] if data.draw(st.booleans()) else [])
    elif which == "runs":
        args = ["runs", path]
    else:
        args = ["compare", data.draw(st.sampled_from(["tiny", str(hostile.mlp), path])), "--runs-dir",
                str(hostile.runs), "--format", data.draw(st.sampled_from(["table", "csv", "md", "json"]) | _TEXT)]
        if data.draw(st.booleans()):
            args += ["--sort", data.draw(st.sampled_from(["val.accuracy", "val.loss"]) | _TEXT)]
    _check_outcome(runner.invoke(app, args), t0)


@_FUZZ
@given(data=st.data())
def test_fuzz_eval_and_sample(hostile, data):
    t0 = time.perf_counter()
    if data.draw(st.booleans()):
        args = ["eval", data.draw(st.sampled_from([str(hostile.mlp), "tiny-"]) | _paths(hostile)),
                "--runs-dir", str(hostile.runs),
                "--split", data.draw(st.sampled_from(["val", "test"]) | _TEXT),
                "--checkpoint", data.draw(st.sampled_from(["best", "last", "step-3"]) | _paths(hostile) | _TEXT)]
    else:
        small = st.integers(0, 20).map(str)
        args = ["sample", data.draw(st.sampled_from([str(hostile.lm)]) | _paths(hostile)),
                "--length", data.draw(small | _NUMBER), "--seed", data.draw(small | _NUMBER),
                "--temperature", data.draw(st.sampled_from(["0", "0.7", "1"]) | _NUMBER),
                "--prompt", data.draw(_TEXT)]
        if data.draw(st.booleans()):
            args += ["--top-k", data.draw(small | _NUMBER)]
    _check_outcome(runner.invoke(app, args), t0)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=12)
_figure = st.fixed_dictionaries({}, optional={k: _json for k in ("benchmark", "name", "unit", "sides", "npdl",
                                                                   "samples", "median", "min", "max")})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=st.dictionaries(st.sampled_from(["threads", "cpu", "numpy", "blas", "x"]), _json, max_size=4),
       figures=st.lists(_figure | _json, max_size=3))
def test_fuzz_bench_markdown_of_a_damaged_json_exits_0_or_2(tmp_path, facts, figures):
    """`npdl bench --markdown` on a hand-edited or foreign JSON: a table or one message, exit 2."""
    doc = tmp_path / "bench.json"
    doc.write_text(json.dumps({"facts": facts, "figures": figures}))
    res = invoke("bench", "--markdown", doc)
    assert res.exit_code in (0, 2), res.output
    assert "internal error" not in res.output and "Traceback" not in res.output, res.output


def test_bench_markdown_of_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "bench.json")
    res = invoke("bench", "--markdown", tmp_path / "bench.json")
    assert_user_error(res, "--markdown")
    assert "not a regular file" in res.output


@pytest.mark.parametrize("args, fragment", [
    (["ops", "--quick", "--rounds", "99999999999999999999"], "--rounds"),       # would never end
    (["ops", "--quick", "--json", "no/such/folder/bench.json"], "does not exist"),  # before measuring
    (["ops", "--quick", "--json", "."], "not a regular file"),
])
def test_bench_refuses_endless_rounds_and_bad_json_paths_before_measuring(tmp_path, args, fragment):
    start = time.monotonic()
    res = invoke("bench", *args)
    assert res.exit_code == 2 and fragment in res.output, res.output
    assert "internal error" not in res.output and time.monotonic() - start < 10


@pytest.mark.parametrize("target, fragment", [("no/such/g.dot", "does not exist"), ("folder.dot", "a folder"),
                                              ("pipe.dot", "a FIFO")])
def test_graph_output_follows_the_rules_of_every_o(workdir, target, fragment):
    """`npdl graph -o` like every -o: no folders created, no folder/FIFO replaced; exit 2 before building."""
    (workdir / "folder.dot").mkdir()
    os.mkfifo(workdir / "pipe.dot")
    cfg = write_config(workdir / "g.yaml", tiny_config())
    res = invoke("graph", cfg, "-o", workdir / target)
    assert_user_error(res, "-o")
    assert fragment in res.output and not (workdir / "no").exists()
    assert (workdir / "folder.dot").is_dir() and (workdir / "pipe.dot").is_fifo()


def test_init_refuses_a_dataset_whose_config_would_not_check(tmp_path):
    """`npdl init mlp --data text8` would write a config `npdl check` refuses (an mlp needs classes):
    exit 2 naming --data and the reason, nothing written."""
    out = tmp_path / "w.yaml"
    res = invoke("init", "mlp", "--data", "text8", "-o", out)
    assert_user_error(res, "--data text8", "classes")
    assert not out.exists()
    assert invoke("init", "mlp", "--data", "mnist", "-o", out).exit_code == 0 and out.is_file()
