"""Inverted dropout, seeded."""

from __future__ import annotations

import numpy as np

from ..validation import check_real
from .layer import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zero each activation with probability ``p`` and scale the rest by 1/(1-p).

    Randomness comes from ``rng`` (seeded); ``fit`` re-seeds it from its own seed.
    """

    def __init__(self, p: float = 0.5, rng=None):
        self.p = check_real("p", p, 0.0, 1.0, hi_open=True, what=" (the dropout probability)")
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self._keep = None
            return x
        self._keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self._keep

    def backward(self, grad_out):
        return grad_out if self._keep is None else grad_out * self._keep

    def config(self):
        return {"p": self.p}
