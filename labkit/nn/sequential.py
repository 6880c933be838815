"""A chain of named layers, and the registry of layer types that ``load`` rebuilds from."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from .activations import GELU, ReLU
from .attention import CausalSelfAttention
from .conv import Conv2d, MaxPool2d
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .layer import Layer
from .layernorm import LayerNorm
from .reshape import Flatten, Reshape

LAYER_TYPES = {
    cls.__name__: cls
    for cls in (
        Dense,
        Conv2d,
        MaxPool2d,
        ReLU,
        Dropout,
        Flatten,
        Reshape,
        Embedding,
        LayerNorm,
        GELU,
        CausalSelfAttention,
    )
}
_PREFIX = {
    "Dense": "fc",
    "Conv2d": "conv",
    "MaxPool2d": "pool",
    "ReLU": "relu",
    "Dropout": "drop",
    "Flatten": "flatten",
    "Reshape": "reshape",
    "Embedding": "emb",
    "LayerNorm": "ln",
    "GELU": "gelu",
    "CausalSelfAttention": "attn",
}


class Sequential:
    """A chain of layers, each named ``fc1``, ``conv1``, ``relu1``, ... in order of appearance.

    Parameters
    ----------
    layers : sequence of Layer
    input_shape : tuple, optional
        One sample's input shape, e.g. (784,); used for MACs and summaries.

    Examples
    --------
    >>> from labkit.nn import Sequential, Dense, ReLU
    >>> import numpy as np
    >>> net = Sequential([Dense(4, 3), ReLU(), Dense(3, 2)], input_shape=(4,))
    >>> net.forward(np.ones((5, 4), np.float32)).shape
    (5, 2)
    >>> [name for name, _ in net.named_layers()]
    ['fc1', 'relu1', 'fc2']
    """

    def __init__(self, layers, input_shape=None):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._name_layers()

    def _name_layers(self):
        counts: dict = {}
        for layer in self.layers:
            kind = type(layer).__name__
            counts[kind] = counts.get(kind, 0) + 1
            layer.name = f"{_PREFIX.get(kind, kind.lower())}{counts[kind]}"

    # --- access -----------------------------------------------------------------------------
    def named_layers(self):
        """List of (name, layer) in order."""
        return [(layer.name, layer) for layer in self.layers]

    @property
    def layer_names(self):
        return [layer.name for layer in self.layers]

    def weight_layers(self):
        """(name, layer) for the layers with weights (Dense and Conv2d), in order."""
        return [(n, layer) for n, layer in self.named_layers() if "W" in layer.param_names]

    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; valid names: {', '.join(self.layer_names)}")

    def parameters(self) -> OrderedDict:
        """``{"fc1.W": array, "fc1.b": array, ...}`` (the arrays themselves)."""
        return OrderedDict((f"{layer.name}.{p}", a) for layer in self.layers for p, a in layer.params().items())

    # --- computation --------------------------------------------------------------------------
    def forward(self, x, training=False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def predict_logits(self, X, batch_size=1000):
        """Logits for X in batches (inference mode); shape (n, n_classes)."""
        X = np.asarray(X)
        if X.shape[0] == 0:
            raise ValueError("predict on an empty array: X has 0 samples")
        return np.concatenate([self.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])

    def predict(self, X, batch_size=1000):
        """Predicted class indices, shape (n,)."""
        return self.predict_logits(X, batch_size).argmax(axis=1)

    # --- bookkeeping --------------------------------------------------------------------------
    def copy(self) -> Sequential:
        """A deep copy (weights, masks and all)."""
        return copy.deepcopy(self)

    def astype(self, dtype) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def shapes(self):
        """[(name, input_shape, output_shape)] per layer for one sample; needs ``input_shape``."""
        if self.input_shape is None:
            raise ValueError("this model has no input_shape; pass input_shape= to Sequential")
        rows, shape = [], self.input_shape
        for layer in self.layers:
            out = layer.output_shape(shape)
            rows.append((layer.name, shape, out))
            shape = out
        return rows

    def architecture(self) -> dict:
        return {
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers],
        }

    def __repr__(self):
        lines = [f"Sequential(input_shape={self.input_shape})"]
        for layer in self.layers:
            lines.append(f"  {layer.name:<9} {layer!r}")
        return "\n".join(lines)
