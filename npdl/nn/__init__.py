"""Layers and modules (``npdl.nn``): Module, Parameter, containers, layers, losses, init.

Importing this package registers every layer and loss with ``npdl.registry``.
"""
from npdl.nn import init  # noqa: F401
from npdl.nn.attention import (LearnedPositionalEmbedding, MultiHeadAttention,  # noqa: F401
                               SinusoidalPositionalEncoding)
from npdl.nn.conv import AvgPool2d, BatchNorm, Conv2d, MaxPool2d  # noqa: F401
from npdl.nn.layers import (GELU, Dropout, Embedding, Flatten, LayerNorm, LeakyReLU, Linear,  # noqa: F401
                            LogSoftmax, ReLU, Sigmoid, Softmax, Tanh, activation)
from npdl.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from npdl.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential, StateDictError  # noqa: F401
from npdl.nn.recurrent import GRU, LSTM, RNN  # noqa: F401
from npdl.nn.recurrent_cells import GRUCell, LSTMCell, RNNCell  # noqa: F401
from npdl.nn.transformer import (TransformerDecoder, TransformerDecoderLayer,  # noqa: F401
                                 TransformerEncoder, TransformerEncoderLayer)
