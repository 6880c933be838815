"""Layer normalization (Ba, Kiros & Hinton 2016) over the last axis, with its backward pass."""

from __future__ import annotations

import numpy as np

from ..validation import check_int, check_real
from .layer import Layer, _check_input


class LayerNorm(Layer):
    """``y = (x − mean(x)) / sqrt(var(x) + eps) · gamma + beta``, statistics over the last axis.

    Each vector (one token's features) is normalised on its own: the mean and the (biased) variance
    are taken over its ``dim`` features, as ``torch.nn.LayerNorm(dim, eps)`` does.

    Parameters
    ----------
    dim : int
        Length of the last axis.
    eps : float
        Added to the variance (1e-5, PyTorch's default).

    Attributes
    ----------
    gamma : ndarray, shape (dim,), initially ones — the gain
    beta : ndarray, shape (dim,), initially zeros — the bias

    Notes
    -----
    Backward, with ``x̂ = (x − μ)·r``, ``r = 1/sqrt(σ² + eps)``, ``g = dL/dy · gamma`` and means over
    the ``dim`` features: ``dL/dx = r · (g − mean(g) − x̂ · mean(g · x̂))``.
    """

    param_names = ("gamma", "beta")

    def __init__(self, dim: int, eps: float = 1e-5, dtype=np.float32):
        self.dim = check_int("dim", dim, lo=1)
        self.eps = check_real("eps", eps, 0.0, lo_open=True)
        self.gamma = np.ones(self.dim, dtype=dtype)
        self.beta = np.zeros(self.dim, dtype=dtype)
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)

    def forward(self, x, training=False):
        _check_input(self, x, f"(..., {self.dim})", lambda x: x.ndim >= 1 and x.shape[-1] == self.dim)
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)
        rstd = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        xhat = xc * rstd
        self._xhat, self._rstd = xhat, rstd
        return xhat * self.gamma + self.beta

    def backward(self, grad_out):
        xhat, rstd = self._xhat, self._rstd
        lead = tuple(range(grad_out.ndim - 1))
        self.dgamma = (grad_out * xhat).sum(axis=lead)
        self.dbeta = grad_out.sum(axis=lead)
        g = grad_out * self.gamma
        return rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    def config(self):
        return {"dim": self.dim, "eps": self.eps}
