"""Training step of the QQP Transformer classifier: npdl beside the same model in PyTorch.

The model is ``configs/transformer_qqp.yaml``'s: vocab 20,000, d_model 128, 2 post-norm
encoder layers, 4 heads, feed-forward 512, learned positions + segment embeddings with an
embedding LayerNorm, mean pooling, a 2-way head; batches of 64 pairs x 64 random ids (no
padding), softmax cross-entropy, Adam (lr 1e-3). One step = forward, backward, Adam update.

PyTorch's copy is built from ``torch.nn.TransformerEncoder`` (batch_first) with submodule names
matching npdl's, and starts from npdl's weights (``load_state_dict``). A round is one step of
each, on the same batch (``npdl.bench.alternate``), after ``warmup`` untimed rounds; each side
reports the median step and the spread; torch runs with the same threads as BLAS and npdl's
pool. Dropout 0.1 and 0.0 are both measured (PyTorch's CPU dropout is slow, so the
dropout-free pair isolates the rest). Beam-search decoding is ``npdl bench beam``.
"""
from __future__ import annotations


import numpy as np

from npdl.bench import Figure, Settings, alternate, timed, try_import_torch

CONFIG = dict(vocab=20000, d_model=128, nhead=4, num_layers=2, dim_feedforward=512, batch=64, seq=64)
QUICK = dict(vocab=50, d_model=8, nhead=2, num_layers=1, dim_feedforward=16, batch=2, seq=6)
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


def _torch_setup(torch, cfg: dict, dropout: float, state: dict, threads: int):
    torch.set_num_threads(threads)
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


def measure(dropout: float, rounds: int, warmup: int, threads: int, **config) -> dict[str, list[float]]:
    """Seconds per training step of each implementation, a sample per round (interleaved)."""
    cfg = {**CONFIG, **config}
    model, ours = _npdl_setup(cfg, dropout)
    impls = {"npdl": ours}
    torch = try_import_torch()
    if torch is not None:
        torch.manual_seed(0)
        impls["torch"] = _torch_setup(torch, cfg, dropout, dict(model.state_dict()), threads)
    rng = np.random.default_rng(1)
    return alternate({k: timed(f) for k, f in impls.items()}, rounds, warmup, lambda: _batch(rng, cfg))


def run(settings: Settings, steps: int = 10, warmup: int = 3) -> list[Figure]:
    cfg = QUICK if settings.quick else CONFIG
    warmup = 1 if settings.quick else warmup
    shape = (f"V={cfg['vocab']} d={cfg['d_model']} L={cfg['num_layers']} h={cfg['nhead']} "
             f"ff={cfg['dim_feedforward']} B={cfg['batch']} T={cfg['seq']}: {cfg['batch'] * cfg['seq']} tokens/step")
    figures = []
    for dropout in (0.1, 0.0):
        seconds = measure(dropout, settings.rounds_or(steps), warmup, settings.threads, **cfg)
        figures.append(Figure("transformer", f"QQP train step (fwd + bwd + Adam), dropout={dropout:g}", "ms",
                              {k: [s * 1e3 for s in v] for k, v in seconds.items()}, shape, "<= 1.5"))
    return figures
