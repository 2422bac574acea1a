"""Training step of the QQP Transformer classifier: npdl beside the same model in PyTorch.

The model is ``configs/transformer_qqp.yaml``'s: vocab 20,000, d_model 128, 2 post-norm
encoder layers, 4 heads, feed-forward 512, learned positions + segment embeddings with an
embedding LayerNorm, mean pooling, a 2-way head; batches of 64 pairs x 64 random ids (no
padding), softmax cross-entropy, Adam (lr 1e-3). One step = forward, backward, Adam update.

PyTorch's copy is built from ``torch.nn.TransformerEncoder`` (batch_first) with submodule names
matching npdl's, and starts from npdl's weights (``load_state_dict``). Steps of the two are
interleaved so machine noise hits both alike; the figure is the median after warm-up; torch
runs with 2 threads like NumPy's OpenBLAS here. Dropout 0.1 and 0.0 are both measured
(PyTorch's CPU dropout is slow, so the dropout-free pair isolates the rest).

``npdl bench transformer`` prints these rows followed by the beam-search decoding rows
(sentences/s with and without the KV cache) of ``npdl.families.seq2seq.bench``.
"""
from __future__ import annotations


import numpy as np

from npdl.bench import Row, interleaved_medians, try_import_torch

CONFIG = dict(vocab=20000, d_model=128, nhead=4, num_layers=2, dim_feedforward=512, batch=64, seq=64)
LR = 1e-3


def _batch(rng: np.random.Generator, cfg: dict):
    b, t = cfg["batch"], cfg["seq"]
    ids = rng.integers(6, cfg["vocab"], (b, t))
    segments = (np.arange(t) >= t // 2).astype(np.int64)[None].repeat(b, 0)
    return ids, segments, rng.integers(0, 2, b)


def _npdl_setup(cfg: dict, dropout: float):
    import npdl
    import npdl.functional as F
    from npdl.families.text_classification.model import TransformerClassifier
    from npdl.optim import Adam

    model = TransformerClassifier(cfg["vocab"], 2, cfg["seq"], cfg["d_model"], cfg["nhead"], cfg["num_layers"],
                                  cfg["dim_feedforward"], dropout, pooling="mean", rng=np.random.default_rng(0))
    opt = Adam(model.named_parameters(), lr=LR)
    model.train()
    npdl.manual_seed(0)
    mask = np.ones((cfg["batch"], cfg["seq"]), bool)

    def step(ids, segments, labels):
        loss = F.cross_entropy(model(ids, segments, mask), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return model, step


def torch_classifier(torch, cfg: dict, dropout: float, state: dict):
    """The same classifier in PyTorch, loaded from npdl's ``state_dict`` (strict: names must match)."""
    nn = torch.nn
    d = cfg["d_model"]

    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.token, self.segment = nn.Embedding(cfg["vocab"], d), nn.Embedding(2, d)
            self.position, self.norm, self.drop = nn.Embedding(cfg["seq"], d), nn.LayerNorm(d), nn.Dropout(dropout)

        def forward(self, ids, segments):
            x = self.token(ids) + self.segment(segments) + self.position.weight[: ids.shape[1]]
            return self.drop(self.norm(x))

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = Embed()
            layer = nn.TransformerEncoderLayer(d, cfg["nhead"], cfg["dim_feedforward"], dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg["num_layers"], enable_nested_tensor=False)
            self.drop, self.head = nn.Dropout(dropout), nn.Linear(d, 2)

        def forward(self, ids, segments):
            return self.head(self.drop(self.encoder(self.embed(ids, segments)).mean(dim=1)))

    model = Classifier()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model


def _torch_setup(torch, cfg: dict, dropout: float, state: dict):
    torch.set_num_threads(2)
    nn = torch.nn
    model = torch_classifier(torch, cfg, dropout, state)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step(ids, segments, labels):
        loss = loss_fn(model(torch.from_numpy(ids), torch.from_numpy(segments)), torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def measure(dropout: float, steps: int = 10, warmup: int = 3, **config) -> dict[str, float]:
    """Median seconds per training step of each implementation (interleaved)."""
    cfg = {**CONFIG, **config}
    model, ours = _npdl_setup(cfg, dropout)
    impls = {"npdl": ours}
    torch = try_import_torch()
    if torch is not None:
        torch.manual_seed(0)
        impls["torch"] = _torch_setup(torch, cfg, dropout, dict(model.state_dict()))
    rng = np.random.default_rng(1)
    return interleaved_medians(impls, lambda: _batch(rng, cfg), steps, warmup)


def run(steps: int = 10, warmup: int = 3, **config) -> list[Row]:
    cfg = {**CONFIG, **config}
    tokens = cfg["batch"] * cfg["seq"]
    shape = (f"V={cfg['vocab']} d={cfg['d_model']} L={cfg['num_layers']} h={cfg['nhead']} "
             f"ff={cfg['dim_feedforward']} B={cfg['batch']} T={cfg['seq']}")
    rows = []
    for dropout in (0.1, 0.0):
        tag = f"dropout={dropout:g}"
        med = measure(dropout, steps, warmup, **config)
        for name, sec in med.items():
            rows.append(Row(f"{name} QQP train step {tag}", sec * 1e3, "ms", shape if name == "npdl" else "2 threads"))
            rows.append(Row(f"{name} training tokens/s {tag}", tokens / sec, "tok/s", "fwd + bwd + Adam"))
        if "torch" in med:
            rows.append(Row(f"npdl / torch time {tag}", med["npdl"] / med["torch"], "x", "target <= 1.5"))
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r.name:44s} {r.value:12.2f} {r.unit:6s} {r.note}")
