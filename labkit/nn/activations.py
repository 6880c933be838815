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


class GELU(Layer):
    """The Gaussian error linear unit (Hendrycks & Gimpel 2016) in GPT-2's tanh form.

    ``gelu(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))``: the tanh approximation of ``x Φ(x)`` that
    GPT-2 and nanoGPT use; PyTorch computes the same with ``torch.nn.GELU(approximate="tanh")``. It
    differs from the exact ``x Φ(x)`` by less than 5e-4 everywhere.

    Backward: with ``u = √(2/π)(x + 0.044715 x³)`` and ``t = tanh(u)``,
    ``gelu'(x) = ½ (1 + t) + ½ x (1 − t²) √(2/π) (1 + 3 · 0.044715 x²)``.
    """

    def forward(self, x, training=False):
        f = x.dtype.type
        c, a = f(np.sqrt(2.0 / np.pi)), f(0.044715)
        x2 = x * x
        t = np.tanh(np.multiply(c, x) * (1 + a * x2))  # tanh(c (x + a x³))
        self._x, self._x2, self._t = x, x2, t
        return f(0.5) * x * (1 + t)

    def backward(self, grad_out):
        x, x2, t = self._x, self._x2, self._t
        f = x.dtype.type
        c, a = f(np.sqrt(2.0 / np.pi)), f(0.044715)
        slope = 1 - t * t  # tanh' at u
        slope *= x
        slope *= c * (1 + f(3) * a * x2)  # ½ x (1 − t²) u'(x), before the ½
        slope += 1 + t
        slope *= f(0.5)
        return grad_out * slope
