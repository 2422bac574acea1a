"""``npdl bench``: smoke tests at tiny sizes (``--quick``, one round) that check the structure of
what is printed and saved - sides, spreads, ratios, JSON keys, header facts - never a speed."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from npdl.bench import Figure, Settings, alternate, conditions
from npdl.cli.main import app

runner = CliRunner()
FACTS = ("date", "machine", "cpu", "cores", "blas", "threads", "allocator", "denormals", "numpy", "torch", "gensim",
         "python")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_alternate_reverses_the_order_every_other_round_and_drops_warmup():
    calls, inputs = [], iter(range(10))
    out = alternate({"a": lambda x: calls.append(("a", x)) or x, "b": lambda x: calls.append(("b", x)) or -x},
                    rounds=3, warmup=1, make_input=lambda: (next(inputs),))
    assert [c[0] for c in calls] == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert out == {"a": [1, 2, 3], "b": [-1, -2, -3]}              # each round's input shared by both sides


def test_figure_reports_medians_spreads_and_ratios_of_medians():
    f = Figure("x", "step", "ms", {"npdl": [3.0, 1.0, 2.0], "torch": [4.0, 8.0, 6.0], "absent": []})
    assert f.median("npdl") == 2.0 and f.spread("torch") == (4.0, 8.0)
    assert f.ratios() == {"torch": pytest.approx(2.0 / 6.0)}
    d = f.to_dict()
    assert set(d["sides"]) == {"npdl", "torch"} and d["ratios"] == {"npdl / torch": pytest.approx(1 / 3)}
    assert d["sides"]["npdl"] == {"median": 2.0, "min": 1.0, "max": 3.0, "samples": [3.0, 1.0, 2.0]}


def test_threads_setting_reaches_npdl_pool_blas_and_children():
    from npdl.core import parallel

    before = parallel.THREADS
    with conditions.threads_set(1):
        assert parallel.THREADS == 1
        blas = [p for p in __import__("threadpoolctl").threadpool_info() if p.get("user_api") == "blas"]
        assert all(p["num_threads"] == 1 for p in blas)
    assert parallel.THREADS == before
    env = conditions.child_env(3)
    assert all(env[v] == "3" for v in conditions.THREAD_VARS)
    assert conditions.default_threads() >= 1


def test_cli_quick_run_prints_header_and_writes_json_that_renders_as_markdown(tmp_path):
    out = tmp_path / "bench.json"
    res = invoke("bench", "ops", "mlp", "transformer", "beam", "cnn", "--quick", "--rounds", "1", "--threads", "1",
                 "--json", out)
    assert res.exit_code == 0, res.output
    for fact in ("threads: 1", "allocator:", "blas:", "cpu:", "numpy:"):
        assert fact in res.output
    doc = json.loads(out.read_text())
    assert all(k in doc["facts"] for k in FACTS) and doc["facts"]["threads"] == 1
    benches = {f["bench"] for f in doc["figures"]}
    assert benches == {"ops", "mlp", "transformer", "beam", "cnn"}
    for f in doc["figures"]:
        assert set(f) >= {"bench", "name", "unit", "sides", "ratios", "note"}
        for side in f["sides"].values():
            assert side["min"] <= side["median"] <= side["max"] and len(side["samples"]) == 1
    mlp = next(f for f in doc["figures"] if f["bench"] == "mlp")
    assert "npdl / numpy by hand" in mlp["ratios"]
    share = next(f for f in doc["figures"] if f["bench"] == "mlp" and f["unit"] == "% of peak")
    assert "GFLOP/s" in share["note"] and all(0 < s["median"] for s in share["sides"].values())
    beam = [f for f in doc["figures"] if f["bench"] == "beam"]
    assert all(set(f["sides"]) == {"KV cache", "no cache"} and "KV cache / no cache" in f["ratios"] for f in beam)
    cnn = {f["name"]: f for f in doc["figures"] if f["bench"] == "cnn"}
    assert any("memory of the work" in n for n in cnn) and any("raw peak" in n for n in cnn)
    # the floor side (the step's GEMMs alone) is timed beside npdl, and kept out of the memory rows
    assert "npdl / npdl's GEMMs alone" in cnn["cnn_mnist train step"]["ratios"]
    assert all("npdl's GEMMs alone" not in f["sides"] for n, f in cnn.items() if f["unit"] == "MB")
    if conditions._version("torch") is not None:
        assert all("npdl / torch" in f["ratios"] for f in doc["figures"] if f["bench"] in ("cnn", "transformer"))
    res = invoke("bench", "--markdown", out)
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("| `")]
    assert len(lines) == len(doc["figures"]) and "threads 1" in res.output


def test_layers_and_lstm_compare_like_with_like(monkeypatch):
    from npdl.bench import layers, lstm_layer, transformer_layer
    from npdl.families.language_model import bench as lstm

    for module in (lstm, lstm_layer, transformer_layer):   # npdl's sides only: the CLI test spawns torch's
        monkeypatch.setattr(module, "has_module", lambda name: False)
    s = Settings(threads=1, rounds=1, quick=True)
    figs = layers.run(s)
    names = [f.name for f in figs]
    # both allocator settings, each applied to both sides
    assert any("glibc default malloc" in n for n in names) and any("npdl.runtime malloc" in n for n in names)
    assert all(f.sides["npdl"] and f.unit in ("ms", "MB") for f in figs)
    (step,) = lstm.run(s)
    assert list(step.sides)[0] == "npdl dense" and "npdl sparse" in step.sides   # dense vs dense first
    assert "npdl sparse" in step.ratios()


def test_bench_user_errors_exit_2(tmp_path):
    res = invoke("bench", "nonsense")
    assert res.exit_code == 2 and "unknown benchmark" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    res = invoke("bench", "--markdown", bad)
    assert res.exit_code == 2 and "not a `npdl bench --json` document" in res.output
    res = invoke("bench", "--markdown", tmp_path / "missing.json")
    assert res.exit_code == 2
    res = invoke("bench", "ops", "--threads", "0")
    assert res.exit_code == 2


def test_word2vec_split_halves_and_time_to_quality_on_a_tiny_corpus(tmp_path):
    from npdl.families.word2vec import bench as word2vec
    from tests.families.test_word2vec import planted_corpus

    questions = [(s, q) for s in ("capital-a", "gram-b", "capital-c", "gram-d")
                 for q in [("country0", "capital0", "country1", "capital1"),
                           ("country2", "capital2", "country3", "capital3")]]
    halves = word2vec.split_sections(questions)
    assert halves["dev"] == ["capital-a", "capital-c"] and halves["report"] == ["gram-b", "gram-d"]
    assert sorted(halves["dev"] + halves["report"]) == sorted(halves["all"])
    path = planted_corpus(tmp_path / "planted.txt", n_sentences=300)
    data = {"type": "text_file", "path": str(path), "min_count": 1, "sample": 0, "window": 3}
    sentences = [line.split() for line in path.read_text().splitlines()]
    s = Settings(threads=1, rounds=1, quick=True)
    figs = word2vec.throughput(s, None, questions, data=data, sentences=sentences)
    acc = [f for f in figs if f.unit == "%"]
    assert len(acc) == 6 and {f.name.rsplit(", ", 1)[1] for f in acc} == {"dev sections", "report sections",
                                                                          "all sections"}
    if conditions._version("gensim") is None:
        pytest.skip("gensim not installed: no time-to-quality reference")
    figs = word2vec.time_to_quality(s, questions, data=data, sentences=sentences, target_epochs=2, max_epochs=2,
                           kinds=("skipgram",))
    assert figs[0].unit == "s" and "gensim" in figs[0].sides and "target" in figs[0].note
    assert [f.name.rsplit(", ", 1)[1] for f in figs[1:]] == ["dev sections", "report sections", "all sections"]


def test_mlp_epoch_flops_count_the_gemms():
    from npdl.bench import mlp

    # per sample: x W1^T and dW1 (2 x 784 x 256 multiply-adds), h W2^T, dW2 and dh (3 x 256 x 10)
    assert mlp.epoch_flops(1) == 2 * (2 * 784 * 256 + 3 * 256 * 10)
    assert mlp.matmul_peak(64, repeats=1) > 0
