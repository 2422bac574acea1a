"""npdl state dicts <-> PyTorch state dicts: parameter names and layouts.

npdl's layers keep PyTorch's names and layouts, so for almost every layer the mapping is the
identity. Audit, layer by layer, against the ``torch.nn`` module a user would build for it:

====================================  ==========================  =========================================
npdl layer                            torch module                state dict
====================================  ==========================  =========================================
linear                                nn.Linear                   same: weight (out, in), bias (out,)
embedding                             nn.Embedding                same: weight (num, dim)
layer_norm                            nn.LayerNorm                same: weight, bias (absent without affine)
batch_norm (1d/2d)                    nn.BatchNorm1d/2d           same: weight, bias, running_mean,
                                                                  running_var, num_batches_tracked (int64, ())
conv2d                                nn.Conv2d                   same: weight (out, in, kh, kw), bias
rnn / lstm / gru                      nn.RNN / LSTM / GRU         same: weight_ih_l{k}[_reverse] (G*H, I), ...;
                                                                  gates i,f,g,o / r,z,n (give torch
                                                                  batch_first=True: npdl's default)
rnn_cell / lstm_cell / gru_cell       nn.RNNCell / ...            same: weight_ih, weight_hh, bias_ih, bias_hh
multi_head_attention (packed)         nn.MultiheadAttention       same: in_proj_weight (3E, E), in_proj_bias,
                                                                  out_proj.weight, out_proj.bias
multi_head_attention (packed=False)   nn.MultiheadAttention       MAPPED, see below
transformer_encoder/decoder(_layer)   nn.TransformerEncoder...    same: self_attn, multihead_attn, linear1/2,
                                                                  norm1..3, layers.N, norm (torch's layers
                                                                  always use packed attention, as npdl's do)
learned_positional_embedding          (none in torch)             weight (max_len, d): an nn.Embedding or an
                                                                  nn.Parameter named ``weight`` in torch code
sinusoidal_positional_encoding        (none in torch)             nothing saved (a non-persistent buffer)
dropout, activations, pooling,        (no parameters)             nothing
flatten
====================================  ==========================  =========================================

The one mapping: npdl's unpacked attention (``packed=False``) holds three ``Linear`` layers
``q_proj``, ``k_proj``, ``v_proj``; torch's ``nn.MultiheadAttention`` holds plain tensors. When
kdim == vdim == embed_dim torch packs them, ``in_proj_weight = [q; k; v]`` (3E, E); otherwise it
keeps ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim). The
biases are always packed into ``in_proj_bias = [b_q; b_k; b_v]`` (3E,). ``out_proj`` is the same.

Model families (mlp, cnn, transformer_classifier, ...) are compositions of these layers: the
torch module that mirrors one uses the same attribute names (the README's recipe shows two).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from npdl.core.backend import to_host
from npdl.nn.attention import MultiHeadAttention
from npdl.nn.module import Module


def _contiguous(a) -> np.ndarray:
    """A C-contiguous host array of the same shape (``np.ascontiguousarray`` would make a 0-d array 1-d)."""
    a = np.asarray(to_host(a))   # exports hold host arrays
    return a if a.flags.c_contiguous else a.copy(order="C")


def _unpacked_attention(model: Module) -> list[tuple[str, MultiHeadAttention]]:
    """(dotted prefix with a trailing dot, layer) for every unpacked attention layer in ``model``."""
    return [(f"{name}." if name else "", m) for name, m in model.named_modules()
            if isinstance(m, MultiHeadAttention) and not m.packed]


def _torch_packs(mha: MultiHeadAttention) -> bool:
    """Whether torch packs this layer's projection weights (its ``_qkv_same_embed_dim``)."""
    return mha.kdim == mha.embed_dim and mha.vdim == mha.embed_dim


def to_torch(model: Module, state: dict | None = None) -> "OrderedDict[str, np.ndarray]":
    """``model``'s state dict (or ``state``, with npdl names) under PyTorch's names and layouts.

    Arrays are contiguous host arrays in their stored dtype (tied weights appear under each name,
    as in torch's ``state_dict()``).
    """
    state = model.state_dict() if state is None else state
    out = OrderedDict((k, _contiguous(v)) for k, v in state.items())
    for pre, mha in _unpacked_attention(model):
        names = [f"{pre}{p}_proj.weight" for p in "qkv"]
        if not all(n in out for n in names):
            continue  # a partial state: leave it for the strict check to report
        weights = [out.pop(n) for n in names]
        if _torch_packs(mha):
            out[f"{pre}in_proj_weight"] = np.concatenate(weights, axis=0)
        else:
            for p, w in zip("qkv", weights):
                out[f"{pre}{p}_proj_weight"] = w
        biases = [f"{pre}{p}_proj.bias" for p in "qkv"]
        if all(b in out for b in biases):
            out[f"{pre}in_proj_bias"] = np.concatenate([out.pop(b) for b in biases])
    return out


def from_torch(model: Module, tensors: dict) -> "OrderedDict[str, np.ndarray]":
    """The inverse of ``to_torch``: PyTorch-named arrays -> an npdl state dict for ``model``.

    Names this mapping does not know pass through unchanged, so ``load_state_dict`` reports them.
    """
    out = OrderedDict(tensors)
    for pre, mha in _unpacked_attention(model):
        e = mha.embed_dim
        if _torch_packs(mha):
            packed = out.pop(f"{pre}in_proj_weight", None)
            weights = None if packed is None else [packed[i * e:(i + 1) * e] for i in range(3)]
        else:
            names = [f"{pre}{p}_proj_weight" for p in "qkv"]
            weights = [out.pop(n) for n in names] if all(n in out for n in names) else None
        if weights is not None:
            out.update((f"{pre}{p}_proj.weight", w) for p, w in zip("qkv", weights))
        bias = out.pop(f"{pre}in_proj_bias", None)
        if bias is not None:
            out.update((f"{pre}{p}_proj.bias", bias[i * e:(i + 1) * e]) for i, p in enumerate("qkv"))
    return out
