"""Hostile and clumsy configs through the CLI: every one exits 2 with one located message.

Each class of issue 11 has a case here (through ``npdl check``, which validates and builds
without training), plus bounded-work checks of the YAML reader and hypothesis fuzzing of
config text and of ``--set`` paths and values.
"""
from __future__ import annotations

import os
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from npdl import config
from npdl.cli.main import app

runner = CliRunner()

TINY = """\
name: tiny
seed: 0
data: {type: spirals, n_per_class: 40, batch_size: 16}
model: {type: mlp, hidden: [8]}
optimizer: {type: adam, lr: 0.01}
schedule: {type: cosine, warmup_steps: 20}
train: {max_steps: 5}
"""

BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def check(path, *sets):
    args = ["check", str(path)]
    for s in sets:
        args += ["--set", s]
    return runner.invoke(app, args)


def assert_user_error(res, *fragments):
    """Exit 2, one error, no traceback, no internal error, and the expected words."""
    out = res.output
    assert res.exit_code == 2, (res.exit_code, out, res.exception)
    assert "Traceback" not in out and "internal error" not in out, out
    assert out.count("error:") == 1, out
    flat = " ".join(out.split())  # rich may wrap long lines
    for fragment in fragments:
        assert fragment in flat, (fragment, out)


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---- files that are not configs ---------------------------------------------------------------
@pytest.mark.parametrize("content,words", [
    (b"name: caf\xe9\n", ["x.yaml:1:", "not UTF-8 text"]),
    (bytes(range(256)) * 4, ["x.yaml:", "not UTF-8 text"]),
    (b"name: a\x00b\n", ["x.yaml:1:", "binary data"]),
    (b"", ["x.yaml:1:", "the config is empty"]),
    (b"   \n# only a comment\n", ["x.yaml:1:", "the config is empty"]),
    (b"- a\n- b\n", ["x.yaml:1:", "must be a mapping of sections", "got a list"]),
    (b"42\n", ["x.yaml:1:", "must be a mapping of sections", "42"]),
    (b"model: {type: mlp\n", ["x.yaml:", "invalid YAML"]),
    (b"a: !!python/object:os.system {}\n", ["x.yaml:1:", "invalid YAML"]),
])
def test_files_that_are_not_configs(tmp_path, content, words):
    assert_user_error(check(write(tmp_path, "x.yaml", content)), *words)


def test_directory_fifo_missing_and_too_large(tmp_path):
    assert_user_error(check(tmp_path), "not a regular file (a folder)")
    assert_user_error(check(tmp_path / "nope.yaml"), "nope.yaml", "no such file")
    os.mkfifo(tmp_path / "fifo.yaml")  # opening it would block forever
    assert_user_error(check(tmp_path / "fifo.yaml"), "fifo.yaml", "not a regular file")
    big = write(tmp_path, "big.yaml", b"name: " + b"x" * (2 << 20) + b"\n")
    assert_user_error(check(big), "big.yaml", "too large for a config")
    assert_user_error(check(tmp_path / ("d" * 5000 + ".yaml")), "file name too long")


# ---- keys -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,words", [
    ("1: a\n", ["x.yaml:1:", "keys must be names", "'1' (int)"]),
    (TINY + "eval: {1: a}\n", ["x.yaml:8: eval:", "keys must be names"]),
    (TINY.replace("hidden: [8]", "hidden: [8], true: 3"), ["x.yaml:4: model:", "keys must be names", "(bool)"]),
    (TINY + "? [a, b]\n: 1\n", ["x.yaml:8:", "keys must be names", "a list or mapping"]),
    (TINY + "x" * 300 + ": 1\n", ["x.yaml:8:", "a key must be a name of 1 to 200 characters"]),
])
def test_keys_that_are_not_names(tmp_path, text, words):
    assert_user_error(check(write(tmp_path, "x.yaml", text)), *words)


def test_duplicate_key_names_both_lines(tmp_path):
    text = TINY.replace("optimizer: {type: adam, lr: 0.01}", "optimizer: {type: adam, lr: 0.01}\n"
                                                            "optimizer: {type: sgd, lr: 0.1}")
    assert_user_error(check(write(tmp_path, "x.yaml", text)),
                      "x.yaml:6: optimizer: duplicate key: first set at", "x.yaml:5, set again here")
    nested = TINY.replace("lr: 0.01}", "lr: 0.01, lr: 0.02}")
    assert_user_error(check(write(tmp_path, "y.yaml", nested)), "y.yaml:5: optimizer.lr: duplicate key",
                      "first set at", "y.yaml:5")


@pytest.mark.parametrize("value", ["[mlp]", "{a: 1}", "3", "null", "[[mlp]]"])
def test_type_that_is_not_a_name(tmp_path, value):
    path = write(tmp_path, "x.yaml", TINY.replace("type: mlp", f"type: {value}"))
    assert_user_error(check(path), "x.yaml:4: model.type: expected the name of a model")
    path = write(tmp_path, "y.yaml", TINY.replace("type: adam", f"type: {value}"))
    assert_user_error(check(path), "y.yaml:5: optimizer.type: expected the name of a optimizer")


# ---- base: ------------------------------------------------------------------------------------
def test_base_loops_directories_and_missing_files(tmp_path):
    assert_user_error(check(write(tmp_path, "self.yaml", "base: self.yaml\n")),
                      "self.yaml:1: base:", "form a cycle")
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "base: a.yaml\n")
    assert_user_error(check(tmp_path / "a.yaml"), "b.yaml:1: base: 'a.yaml' leads back to", "form a cycle")
    os.symlink("loop2.yaml", tmp_path / "loop1.yaml")
    os.symlink("loop1.yaml", tmp_path / "loop2.yaml")
    assert_user_error(check(write(tmp_path, "s.yaml", "base: loop1.yaml\n")), "s.yaml:1: base: 'loop1.yaml'",
                      "cannot be read")
    assert_user_error(check(tmp_path / "loop1.yaml"), "loop1.yaml", "symbolic link")
    assert_user_error(check(write(tmp_path, "d.yaml", "base: .\n")), "d.yaml:1: base: '.'", "is a directory")
    assert_user_error(check(write(tmp_path, "m.yaml", "seed: 1\nbase: nope.yaml\n")),
                      "m.yaml:2: base: 'nope.yaml'", "does not exist")
    assert_user_error(check(write(tmp_path, "n.yaml", "base: [3]\n")), "n.yaml:1: base:", "expected a config file")
    many = write(tmp_path, "many.yaml", "base: [" + ", ".join(["many2.yaml"] * 10) + "]\n")
    write(tmp_path, "many2.yaml", "base: [" + ", ".join(["many3.yaml"] * 10) + "]\n")
    write(tmp_path, "many3.yaml", TINY)
    assert_user_error(check(many), "reads more than 32 files")


# ---- bounded work ----------------------------------------------------------------------------
def test_alias_bomb_is_refused_before_expansion_with_bounded_memory_and_time(tmp_path):
    path = write(tmp_path, "bomb.yaml", BOMB)
    assert len(BOMB) < 400
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(config.ConfigError, match="more than 20,000 values once aliases are expanded"):
            config.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < 20 * 2 ** 20, peak
    assert_user_error(check(path), "bomb.yaml:", "too large a config")
    assert_user_error(check(write(tmp_path, "rec.yaml", "a: &a [*a]\n")), "rec.yaml:1:", "recursive alias")


def test_merge_keys_still_work_and_merge_bombs_are_bounded(tmp_path):
    text = TINY.replace("optimizer: {type: adam, lr: 0.01}", "optimizer: {<<: {type: adam}, lr: 0.01}")
    assert check(write(tmp_path, "m.yaml", text)).exit_code == 0
    bomb = "a: &a {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
    prev = "a"
    for i in range(8):
        bomb += f"m{i}: &m{i} {{<<: [{', '.join(['*' + prev] * 10)}]}}\n"
        prev = f"m{i}"
    start = time.perf_counter()
    assert_user_error(check(write(tmp_path, "mb.yaml", bomb)), "mb.yaml:", "too large a config")
    assert time.perf_counter() - start < 3.0


def test_deep_nesting_and_many_values_are_refused(tmp_path):
    deep = write(tmp_path, "deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_user_error(check(deep), "deep.yaml:1:", "nested deeper than 40 levels")
    many = write(tmp_path, "many.yaml", "a: [" + ", ".join(["0"] * 150_000) + "]\n")
    start = time.perf_counter()
    assert_user_error(check(many), "many.yaml:1:", "more than 20,000 values")
    assert time.perf_counter() - start < 10.0


# ---- numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key,value,words", [
    ("lr: 0.01", "lr: .nan", ["x.yaml:5: optimizer.lr: expected a positive number, got nan"]),
    ("lr: 0.01", "lr: .inf", ["x.yaml:5: optimizer.lr: expected a positive number, got inf"]),
    ("lr: 0.01", "lr: 1e999", ["x.yaml:5: optimizer.lr: expected a positive number, got inf"]),
    ("lr: 0.01", "lr: -.inf", ["x.yaml:5: optimizer.lr:"]),
    ("lr: 0.01", "lr: 0.01, weight_decay: .nan", ["x.yaml:5: optimizer.weight_decay: expected a non-negative"]),
    ("max_steps: 5", "max_steps: true", ["x.yaml:7: train.max_steps: expected a positive integer, got True"]),
    ("max_steps: 5", "max_steps: 99999999999999999999999", ["x.yaml:7: train.max_steps: expected a positive integer"]),
    ("max_steps: 5", "max_steps: " + "9" * 5000, ["x.yaml:7: train.max_steps: a number 5,000 characters long"]),
    ("seed: 0", "seed: -1", ["x.yaml:2: seed: expected a non-negative integer"]),
    ("hidden: [8]", "hidden: [.nan]", ["x.yaml:4: model.hidden: expected a list of positive integers"]),
    ("warmup_steps: 20", "warmup_steps: 1e999", ["x.yaml:6: schedule.warmup_steps"]),
])
def test_numbers_must_be_finite_and_sized(tmp_path, key, value, words):
    assert key in TINY
    assert_user_error(check(write(tmp_path, "x.yaml", TINY.replace(key, value))), *words)


def test_a_model_too_large_for_memory_is_refused_with_the_figure(tmp_path):
    text = TINY.replace("hidden: [8]", "hidden: [100000000000]")
    assert_user_error(check(write(tmp_path, "x.yaml", text)), "x.yaml:4: model.hidden.0: too large",
                      "at least 372.5 GiB of parameters", "of memory")
    res = check(tmp_path / "x.yaml")
    assert res.exit_code == 2
    res = check(write(tmp_path, "y.yaml", TINY), "model.hidden=[100000000000000]")
    assert_user_error(res, "model.hidden.0:", "too large")


# ---- --set ------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,words", [
    ("model.hidden.0.foo=3", ["--set model.hidden.0.foo: model.hidden.0 is 8, not a mapping or a list"]),
    ("model.type.x=1", ["--set model.type.x: model.type is 'mlp'"]),
    ("model.hidden.3=1", ["--set model.hidden.3: '3' is not an index of the list at model.hidden"]),
    ("model.hidden.-1=1", ["'-1' is not an index"]),
    ("model.hidden.x=1", ["'x' is not an index"]),
    ("=3", ["the key must be a dotted path"]),
    ("a..b=3", ["the key must be a dotted path"]),
    (".a=3", ["the key must be a dotted path"]),
    ("noequals", ["expected KEY=VALUE"]),
    ("model.hidden=[1,", ["--set model.hidden: invalid YAML"]),
    ("model.hidden={a: [}", ["--set model.hidden: invalid YAML"]),
    ("model={1: a}", ["--set model: keys must be names"]),
    ("model.hidden=&a [*a]", ["--set model.hidden: an alias refers to a value that contains it"]),
    ("a" + ".b" * 40 + "=1", ["a key path of at most 16 parts"]),
    ("optimizer.lr=.nan", ["--set: optimizer.lr: expected a positive number, got nan"]),
    ("optimizer.lr=1e999", ["--set: optimizer.lr: expected a positive number, got inf"]),
    ("model.hidden.0=1e999", ["(and --set): model.hidden: expected a list of positive integers"]),
    ("optimizer.lr=[1]", ["--set: optimizer.lr: expected a positive number"]),
    ("model.type=[mlp]", ["--set: model.type: expected the name of a model"]),
    ("train.max_steps=0", ["--set: train.max_steps: expected a positive integer"]),
])
def test_bad_set_overrides(tmp_path, override, words):
    assert_user_error(check(write(tmp_path, "x.yaml", TINY), override), *words)


# ---- typos caught before training ----------------------------------------------------------------
def test_monitor_and_early_stopping_typos_are_caught_at_validation(tmp_path):
    path = write(tmp_path, "x.yaml", TINY)
    assert_user_error(check(path, "train.monitor=val.acuracy"),
                      "--set: train.monitor: 'val.acuracy' is not a metric of this run's evaluation",
                      "did you mean 'val.accuracy'?", "available: val.loss, val.accuracy")
    assert_user_error(check(path, "train.monitor=accurcy"), "did you mean 'val.accuracy'?")
    text = TINY.replace("max_steps: 5}", "max_steps: 5, early_stopping: {metric: val.acc, patience: 2}}")
    assert_user_error(check(write(tmp_path, "y.yaml", text)), "y.yaml:7: train.early_stopping.metric: 'val.acc'",
                      "did you mean 'val.accuracy'?")
    assert check(path, "train.monitor=val.loss", "train.mode=min").exit_code == 0


def test_eval_split_typo_does_not_silently_disable_evaluation(tmp_path):
    path = write(tmp_path, "x.yaml", TINY.replace("max_steps: 5}", "max_steps: 5, eval_split: vall}"))
    assert_user_error(check(path), "x.yaml:7: train.eval_split: 'vall' is not a split of this dataset",
                      "did you mean 'val'?", "splits: train, val, test")
    assert check(write(tmp_path, "y.yaml", TINY), "train.eval_split=test").exit_code == 0


def test_schedule_errors_point_at_what_the_user_wrote(tmp_path):
    text = TINY.replace("warmup_steps: 20}", "warmup_steps: 20, total_steps: 10}")
    assert_user_error(check(write(tmp_path, "x.yaml", text)),
                      "x.yaml:6: schedule.warmup_steps: must be below schedule.total_steps (10)")
    text = TINY.replace("type: cosine, warmup_steps: 20", "type: multistep, milestones: [5, 2]")
    assert_user_error(check(write(tmp_path, "y.yaml", text)), "y.yaml:6: schedule.milestones: must be strictly")


def test_optimizer_group_values_are_checked_where_written(tmp_path):
    text = TINY.replace("lr: 0.01}", "lr: 0.01, groups: [{match: bias, lr: -1}]}")
    assert_user_error(check(write(tmp_path, "x.yaml", text)), "x.yaml:5: optimizer.groups.0.lr: expected a positive")
    text = TINY.replace("lr: 0.01}", "lr: 0.01, groups: [{match: nothing_matches, lr: 0.1}]}")
    assert_user_error(check(write(tmp_path, "y.yaml", text)), "y.yaml:5: optimizer.groups.0.match:",
                      "matches no parameter")


# ---- fuzzing ------------------------------------------------------------------------------------
SECTION_KEYS = ["name", "seed", "data", "model", "loss", "optimizer", "schedule", "train", "eval", "base",
                "data.type", "data.batch_size", "data.n_per_class", "model.type", "model.hidden", "model.hidden.0",
                "model.activation", "model.dropout", "optimizer.lr", "optimizer.type", "optimizer.groups",
                "schedule.type", "schedule.warmup_steps", "schedule.total_steps", "train.max_steps",
                "train.epochs", "train.monitor", "train.eval_split", "train.early_stopping",
                "train.early_stopping.metric", "train.grad_clip", "eval.x"]
yaml_scalars = st.one_of(st.integers(-3, 60), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                         st.none(), st.text(max_size=8),
                         st.sampled_from(["mlp", "adam", "cosine", "val.accuracy", "1e-3", ".nan", "[8]", "{a: 1}",
                                          "&a [1]", "*a", "[", "}", ": :", "- x", "'", "!!binary x", "1: a",
                                          "~", "1e999", "0x10", "2024-01-01", "<<: {}"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.one_of(st.sampled_from(SECTION_KEYS), st.text(min_size=0, max_size=12)),
       value=st.one_of(yaml_scalars.map(str), st.text(max_size=20)))
def test_fuzz_set_overrides_exit_0_or_2(tmp_path, path, value):
    res = check(write(tmp_path, "x.yaml", TINY), f"{path}={value}")
    assert res.exit_code in (0, 2), (path, value, res.output, res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.sampled_from(TINY.splitlines() + ["base: x.yaml", "eval: {}", "- 1", "a: &a 1",
                                                                         "b: *a", "  hidden: [1]", "1: 2", "{"]),
                                yaml_scalars.map(str)), max_size=8),
       drop=st.sets(st.integers(0, 6), max_size=3))
def test_fuzz_config_text_exit_0_or_2(tmp_path, lines, drop):
    base = [line for i, line in enumerate(TINY.splitlines()) if i not in drop]
    mutated = base + [f"{head.split(':')[0]}: {value}" if ":" in head else head for head, value in lines]
    res = check(write(tmp_path, "x.yaml", "\n".join(mutated) + "\n"))
    assert res.exit_code in (0, 2), (mutated, res.output, res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_fuzz_raw_bytes_exit_2_or_0(tmp_path, raw):
    res = check(write(tmp_path, "x.yaml", raw))
    assert res.exit_code in (0, 2), (raw, res.output, res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output


def test_neighbouring_sizes_count_towards_the_memory_bound(tmp_path):
    text = TINY.replace("hidden: [8]", "hidden: [10000000, 10000000]")  # a 10^14-parameter weight
    assert_user_error(check(write(tmp_path, "x.yaml", text)), "x.yaml:4: model.hidden: too large",
                      "at least 363.8 TiB of parameters")


@pytest.mark.parametrize("cfg, fragments", [
    ({"model": {"type": [1]}}, ["name: expected a non-empty string", "model.type", "data: missing section"]),
    ({"name": 5, "model": {"type": "mlp"}}, ["name: expected a non-empty string, got 5", "optimizer: missing"]),
])
def test_api_fit_with_a_bad_dict_lists_every_problem_not_a_run_name_error(tmp_path, cfg, fragments):
    """npdl.fit(dict) without a usable name: one ConfigError listing every problem (the name among
    them), not a bare 'run name None' error hiding the rest; nothing is written."""
    import npdl
    from npdl.config import ConfigError

    with pytest.raises(ConfigError) as info:
        npdl.fit(cfg, runs_dir=tmp_path / "runs")
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("data, model", [
    ({"type": "spirals", "n_per_class": 300_000_000_000, "batch_size": 32}, {"type": "mlp", "hidden": [4]}),
    ({"type": "reverse", "n_train": 3_000_000_000}, {"type": "transformer_seq2seq"}),
    ({"type": "alternating", "n_train": 3_000_000_000}, {"type": "transformer_lm"}),
])
def test_synthetic_data_too_large_for_memory_is_refused_before_generating(tmp_path, data, model):
    """A synthetic dataset's size is checked against physical memory before a value is generated:
    exit 2 naming the key and the figure, in bounded time and memory."""
    from tests.conftest import tiny_config, write_config

    cfg = write_config(tmp_path / "big.yaml", {**tiny_config(), "data": data, "model": model})
    tracemalloc.start()
    start = time.monotonic()
    res = runner.invoke(app, ["check", str(cfg)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert "big.yaml:" in flat and "too large" in flat and "GiB" in flat and "internal error" not in flat
    assert time.monotonic() - start < 10 and peak < 200 * 2 ** 20
