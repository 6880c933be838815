"""Element-wise nonlinearities."""

from __future__ import annotations

import numpy as np

from .layer import Layer


class ReLU(Layer):
    """max(x, 0); the gradient at exactly 0 is taken as 0."""

    def forward(self, x, training=False):
        self._pos = x > 0
        return np.where(self._pos, x, x.dtype.type(0))

    def backward(self, grad_out):
        return np.where(self._pos, grad_out, grad_out.dtype.type(0))
