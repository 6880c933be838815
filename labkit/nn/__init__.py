"""Neural-network layers in plain numpy, with explicit forward and backward passes.

Every layer is a small object with ``forward(x, training)`` and ``backward(grad_out)``. A layer
with parameters keeps them as plain attributes (``Dense.W`` of shape (out, in), ``Dense.b`` of
shape (out,)) and their gradients beside them (``dW``, ``db``) after a backward pass. Pruning and
quantization act on those arrays directly; nothing is hidden in global state.

``Sequential`` chains layers, names them (``fc1``, ``conv1``, ``relu1``, ...), and saves/loads a
whole model as one ``.npz`` file (architecture as JSON plus the arrays), written atomically.

For language models: ``Embedding``, ``LayerNorm``, ``GELU`` and ``CausalSelfAttention`` (with the
functions :func:`causal_attention` / :func:`causal_attention_backward` it is built on), assembled into a
``GPT`` (see ``labkit.models.gpt``); :func:`record_inputs` captures the input of every linear layer;
:func:`generate` decodes greedily with a :class:`KVCache` (:func:`forward_cached`).

Shapes: a Dense layer takes (batch, in_features); convolution and pooling take
(batch, channels, height, width); LayerNorm and GELU any shape (LayerNorm normalises the last axis);
attention and the transformer blocks (batch, T, d_model); a GPT token ids (batch, T). Default dtype float32.
"""

from .activations import GELU, ReLU
from .attention import CausalSelfAttention, causal_attention, causal_attention_backward
from .conv import Conv2d, MaxPool2d, im2col
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .generate import KVCache, forward_cached, generate, kv_cache_bytes
from .hooks import Recording, record_inputs
from .layer import Composite, Layer
from .layernorm import LayerNorm
from .reshape import Flatten, Reshape
from .sequential import LAYER_TYPES, Sequential
from .serialize import load, save
from .transformer import GPT, MLP, Block

__all__ = [
    "Layer",
    "Dense",
    "Conv2d",
    "im2col",
    "MaxPool2d",
    "ReLU",
    "Dropout",
    "Flatten",
    "Reshape",
    "Sequential",
    "Composite",
    "Embedding",
    "LayerNorm",
    "GELU",
    "CausalSelfAttention",
    "causal_attention",
    "causal_attention_backward",
    "MLP",
    "Block",
    "GPT",
    "record_inputs",
    "KVCache",
    "forward_cached",
    "generate",
    "kv_cache_bytes",
    "Recording",
    "save",
    "load",
    "LAYER_TYPES",
]
