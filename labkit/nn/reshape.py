"""Layers that only change the shape of each sample: Flatten and Reshape."""

from __future__ import annotations

import numpy as np

from .layer import Layer, _check_input


class Flatten(Layer):
    """(batch, ...) → (batch, prod(...))."""

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        return grad_out.reshape(self._shape)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Reshape(Layer):
    """(batch, ...) → (batch, *shape); lets a conv net take flat (batch, 784) images."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x, training=False):
        ok = lambda x: x.ndim >= 1 and int(np.prod(x.shape[1:])) == int(np.prod(self.shape))
        _check_input(self, x, f"(batch, ...) with {int(np.prod(self.shape))} values per sample", ok)
        self._shape = x.shape
        return x.reshape((x.shape[0], *self.shape))

    def backward(self, grad_out):
        return grad_out.reshape(self._shape)

    def output_shape(self, input_shape):
        return self.shape

    def config(self):
        return {"shape": list(self.shape)}
