"""transformer_classifier: gradchecks with padding, padding invariance, clear errors, built from a
config spec, and equality with the benchmark's PyTorch reference model."""
from __future__ import annotations

import numpy as np
import pytest

import npdl
from npdl.families.text_classification.model import TransformerClassifier
from npdl.nn.attention import ContextTooLongError
from npdl.registry import MODELS

V, D, H, FF = 11, 8, 2, 12
# two pairs, the second shorter (right-padded): [CLS] a [SEP] b [SEP] with segment ids
IDS = np.array([[4, 6, 7, 5, 8, 9, 5], [4, 10, 5, 6, 5, 0, 0]])
SEG = np.array([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]])
MASK = IDS != 0


def classifier(pooling="mean", positional="learned", norm_first=False, dropout=0.0, seed=0, layers=2, max_len=16):
    return TransformerClassifier(V, 2, max_len, D, H, layers, FF, dropout, "gelu", norm_first, positional, pooling,
                                 rng=np.random.default_rng(seed))


def _perturb(model, seed=3):
    """Non-trivial LayerNorm parameters and biases, so their gradients are checked for real."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if "norm" in name or name.endswith("bias"):
            p.data = p.data + 0.3 * rng.standard_normal(p.shape)


# ---- gradchecks (float64, tiny sizes, padding masks) ---------------------------------------------
@pytest.mark.parametrize("pooling,positional,norm_first", [("mean", "learned", False), ("cls", "sinusoidal", True)])
def test_gradcheck_classifier_with_padding(pooling, positional, norm_first):
    model = classifier(pooling, positional, norm_first, layers=1, max_len=7).double()  # the layers have their own
    _perturb(model)
    npdl.gradcheck(lambda *ps: model(IDS, SEG, MASK), *model.parameters())


# ---- padding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_a_pairs_output(pooling):
    model = classifier(pooling).eval()
    with npdl.no_grad():
        alone = model(IDS[1:, :5], SEG[1:, :5]).data                          # no padding at all
        batched = model(IDS, SEG, MASK).data[1]                                # padded to 7 beside a longer pair
        ids = IDS[1:].copy()
        ids[0, 5:] = 0
        more = model(np.pad(ids, ((0, 0), (0, 4))), np.pad(SEG[1:], ((0, 0), (0, 4)))).data  # padded to 11
    np.testing.assert_allclose(batched, alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(more[0], alone[0], rtol=1e-5, atol=1e-6)


# ---- errors and construction ----------------------------------------------------------------------
def test_bad_ids_are_clear_errors():
    model = classifier()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(np.array([[4, V + 3]]))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(np.array([4, 5]))
    with pytest.raises(ContextTooLongError):
        model(np.full((1, 17), 6))


def test_built_from_a_config_spec():
    m = MODELS.build({"type": "transformer_classifier", "d_model": 8, "nhead": 2, "num_layers": 1,
                      "dim_feedforward": 16, "pooling": "cls"}, vocab_size=V, num_classes=3, max_len=8)
    assert m(IDS[:, :6], SEG[:, :6]).shape == (2, 3)
    with pytest.raises(ValueError, match="divisible"):
        TransformerClassifier(V, 2, d_model=10, nhead=4)


# ---- PyTorch equivalence (the benchmark's reference model) --------------------------------------------
def test_classifier_matches_pytorch():
    torch = pytest.importorskip("torch")
    from npdl.families.text_classification.bench import torch_classifier

    cfg = dict(vocab=50, d_model=16, nhead=4, num_layers=2, dim_feedforward=32, seq=12, batch=3)
    model = TransformerClassifier(50, 2, 12, 16, 4, 2, 32, 0.1, rng=np.random.default_rng(0)).eval()
    _perturb(model)
    ref = torch_classifier(torch, cfg, 0.1, dict(model.state_dict())).eval()  # strict: names match
    ids = np.random.default_rng(1).integers(6, 50, (3, 12))
    seg = (np.arange(12) >= 5).astype(np.int64)[None].repeat(3, 0)
    with npdl.no_grad():
        ours = model(ids, seg).data
    with torch.no_grad():
        theirs = ref(torch.from_numpy(ids), torch.from_numpy(seg)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
