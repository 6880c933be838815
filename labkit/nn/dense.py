"""The fully connected layer, ``y = x @ W.T + b``."""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from .layer import Layer, _check_input


class Dense(Layer):
    """Fully connected layer: ``y = x @ W.T + b``.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator, optional
        Initialisation uses He-normal weights (std = sqrt(2 / in_features)) and zero bias.

    Attributes
    ----------
    W : ndarray, shape (out_features, in_features)
    b : ndarray, shape (out_features,)
    mask : ndarray of bool, same shape as W, or None
        Storage for a pruning mask (True = kept); ``labkit.prune`` sets and enforces it.
    """

    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, rng=None, dtype=np.float32):
        in_features = check_int("in_features", in_features, lo=1)
        out_features = check_int("out_features", out_features, lo=1)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_features, self.out_features = in_features, out_features
        self.W = (rng.standard_normal((out_features, in_features)) * np.sqrt(2.0 / in_features)).astype(dtype)
        self.b = np.zeros(out_features, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.mask = None

    def forward(self, x, training=False):
        _check_input(self, x, f"(batch, {self.in_features})", lambda x: x.ndim == 2 and x.shape[1] == self.in_features)
        self._x = x
        return x @ self.W.T + self.b

    def backward(self, grad_out):
        self.dW = grad_out.T @ self._x
        self.db = grad_out.sum(axis=0)
        return grad_out @ self.W

    def output_shape(self, input_shape):
        return (self.out_features,)

    def macs(self, input_shape):
        return self.in_features * self.out_features

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}
