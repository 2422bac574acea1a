"""``model: {type: sequential, layers: [...]}``: a model built straight from layer specs."""
from __future__ import annotations

from typing import ClassVar

from npdl.nn.module import Sequential
from npdl.registry import LAYERS, MODELS, Registry


@MODELS.register("sequential")
class SequentialModel(Sequential):
    """Layers from the registry applied in order; sizes left out (in_features, ...) are inferred."""

    # arguments holding lists of specs of another registry: the config layer checks each one
    spec_lists: ClassVar[dict[str, Registry]] = {"layers": LAYERS}

    def __init__(self, layers: list[dict]):
        super().__init__(*[LAYERS.build(spec) for spec in layers])
