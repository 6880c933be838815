"""A lookup table of learned vectors: token ids (or positions) → rows of ``W``."""

from __future__ import annotations

import numpy as np

from ..validation import check_int, check_real
from .layer import Layer


class Embedding(Layer):
    """``y = W[ids]``: each integer id selects one row of the table ``W``.

    Parameters
    ----------
    num_embeddings : int
        Size of the table (the vocabulary, or the number of positions).
    embedding_dim : int
        Length of each vector.
    rng : numpy.random.Generator, optional
    std : float
        Initialisation: ``W ~ N(0, std²)`` (0.02, as GPT-2).

    Attributes
    ----------
    W : ndarray, shape (num_embeddings, embedding_dim)
        Called ``W`` like a Dense weight, so optimizers decay it like one (GPT-2 decays its embeddings).

    Notes
    -----
    ``forward(ids)`` takes integers of any shape ``S`` in ``[0, num_embeddings)`` and returns shape
    ``(*S, embedding_dim)``. ``backward(grad_out)`` adds each row of ``grad_out`` into the row of ``dW``
    its id selected (an id that occurs twice receives both gradients) and returns None: there is no
    gradient with respect to an integer input.
    """

    param_names = ("W",)

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None, std: float = 0.02, dtype=np.float32):
        self.num_embeddings = check_int("num_embeddings", num_embeddings, lo=1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, lo=1)
        std = check_real("std", std, 0.0)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.W = (rng.standard_normal((self.num_embeddings, self.embedding_dim)) * std).astype(dtype)
        self.dW = np.zeros_like(self.W)

    def forward(self, ids, training=False):
        who = self.name or "Embedding"
        if not isinstance(ids, np.ndarray):
            raise TypeError(f"{who}: expected a numpy array of integer ids, got {type(ids).__name__}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{who}: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(
                f"{who}: ids must be in [0, {self.num_embeddings}), got values in [{ids.min()}, {ids.max()}]"
            )
        self._ids = ids
        return self.W[ids]

    def backward(self, grad_out):
        dW = np.zeros_like(self.W, dtype=grad_out.dtype)
        np.add.at(dW, self._ids.reshape(-1), grad_out.reshape(-1, self.embedding_dim))
        self.dW = dW
        return None

    def output_shape(self, input_shape):
        return (*tuple(input_shape), self.embedding_dim)

    def config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
