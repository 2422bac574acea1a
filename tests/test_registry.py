"""Registries (lookup, binding) and the config layer's spec checks with their documented error texts."""
from __future__ import annotations

from typing import Literal

import pytest

import npdl.nn  # noqa: F401
from npdl import schema
from npdl.config import check_spec
from npdl.registry import ALL, LAYERS, Registry, listing
from npdl.schema import ArgumentError


def test_unknown_name_error_text():
    problems = check_spec(LAYERS, {"type": "linera", "out_features": 3}, "model.layers.1")
    assert str(problems[0]).startswith("model.layers.1.type: unknown layer 'linera' — did you mean 'linear'?")
    with pytest.raises(ArgumentError, match="did you mean 'linear'"):  # Python callers: a ValueError
        LAYERS.build({"type": "linera", "out_features": 3})


def test_unknown_argument_error_text_lists_accepted():
    text = "\n".join(str(p) for p in check_spec(LAYERS, {"type": "linear", "out_feature": 3}, "model.layers.1"))
    assert ("model.layers.1.out_feature: unknown argument for layer 'linear' — did you mean 'out_features'? "
            "(accepted: out_features, in_features, bias)") in text
    assert "model.layers.1.out_features: missing required argument of layer 'linear'" in text
    assert text.count("\n") == 1


def test_unhashable_or_non_string_type_names_are_reported_not_raised():
    for name in (["mlp"], {"a": 1}, 3, None):
        (problem,) = check_spec(LAYERS, {"type": name}, "model")
        assert problem.path == "model.type" and "expected the name of a layer" in problem.message


def test_wrong_value_types_reported_all_at_once():
    problems = check_spec(LAYERS, {"type": "conv2d", "out_channels": 0, "kernel_size": "3", "bias": 1}, "m")
    assert [str(p) for p in problems] == [
        "m.out_channels: expected a positive integer, got 0",
        "m.kernel_size: expected a positive integer or a list of positive integers, got '3'",
        "m.bias: expected true or false, got 1",
    ]


def test_build_binds_dependencies_only_when_accepted_and_not_given():
    reg = Registry("thing")

    @reg.register("a")
    def make_a(size: schema.PositiveInt, vocab_size: int = 0):
        return (size, vocab_size)

    assert reg.build({"type": "a", "size": 2}, vocab_size=7, unrelated=1) == (2, 7)
    assert reg.build({"type": "a", "size": 2, "vocab_size": 3}, vocab_size=7) == (2, 3)


def test_required_argument_satisfied_by_dependency():
    reg = Registry("thing")

    @reg.register("b")
    def make_b(vocab_size: int, mode: Literal["x", "y"] = "x"):
        return vocab_size, mode

    assert reg.build({"type": "b"}, vocab_size=5) == (5, "x")
    assert str(check_spec(reg, {"type": "b", "mode": "z"}, "")[0]) == "mode: expected one of 'x', 'y', got 'z'"


def test_duplicate_registration_is_an_error():
    reg = Registry("thing")
    reg.register("n")(int)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("n")(float)


def test_missing_type_and_non_mapping():
    assert "missing 'type'" in str(check_spec(LAYERS, {"out_features": 1}, "model")[0])
    assert "expected a mapping" in str(check_spec(LAYERS, ["linear"], "model")[0])


def test_listing_every_registry():
    for kind in ALL:
        for name, sig, doc in listing(kind):
            assert sig.startswith(name + "(")
    assert any(n == "linear" for n, _, _ in listing("layers"))


@pytest.mark.parametrize("value,ann,ok", [
    (3, schema.PositiveInt, True), (0, schema.PositiveInt, False), (True, int, False), (2, float, True),
    (0.5, schema.Probability, True), (1.5, schema.Probability, False), (1.0, schema.UnitInterval, False),
    ([1, 2], list[int], True), ([1, "a"], list[int], False), ([1, 2], tuple[int, int], True),
    (None, int | None, True), ("relu", Literal["relu", "gelu"], True), ({"a": 1}, dict[str, int], True),
    # numbers must be finite and integers fit in 64 bits
    (float("nan"), schema.PositiveFloat, False), (float("inf"), schema.PositiveFloat, False),
    (float("-inf"), float, False), (float("nan"), schema.NonNegativeFloat, False), (10 ** 30, float, False),
    (2 ** 63, int, False), (2 ** 63 - 1, int, True), (-(2 ** 63), int, True), (True, schema.PositiveInt, False),
    (False, float, False),
])
def test_schema_check(value, ann, ok):
    assert (schema.check(value, ann) is None) == ok
