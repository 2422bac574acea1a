"""``model: {type: sequential, layers: [...]}``: a model built straight from layer specs."""
from __future__ import annotations

from npdl.nn.module import Sequential
from npdl.registry import LAYERS, MODELS, Problem


@MODELS.register("sequential")
class SequentialModel(Sequential):
    """Layers from the registry applied in order; sizes left out (in_features, ...) are inferred."""

    def __init__(self, layers: list[dict]):
        super().__init__(*[LAYERS.build(spec, f"model.layers.{i}") for i, spec in enumerate(layers)])

    @staticmethod
    def validate_spec(spec: dict, path: str) -> list[Problem]:
        layers = spec.get("layers")
        if not isinstance(layers, list):
            return []  # the signature check already reported it
        if not layers:
            return [Problem(f"{path}.layers", "expected at least one layer")]
        problems = []
        for i, layer in enumerate(layers):
            problems += LAYERS.validate(layer, f"{path}.layers.{i}")
        return problems
