"""``npdl bench layers``: the two layer benchmarks of the layer registry, in one table.

forward+backward of ``transformer_encoder_layer`` (d_model 128, 4 heads, ff 512, batch 64,
seq 64) and of ``lstm`` (input 128, hidden 256, batch 32, seq 35): ms per step beside PyTorch
when installed, and the memory of the work over each process's own baseline (raw peak apart).
"""
from __future__ import annotations

from npdl.bench import Figure, Settings


def run(settings: Settings) -> list[Figure]:
    from npdl.bench import lstm_layer, transformer_layer

    return transformer_layer.run(settings) + lstm_layer.run(settings)
