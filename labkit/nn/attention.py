"""Multi-head causal self-attention (Vaswani et al. 2017), as GPT-2 computes it, with its backward pass.

The layer is three steps, each a function of plain arrays:

1. ``split_heads``: one Dense layer ``qkv`` maps every token's vector (length d) to a query, a key and a
   value (3·d numbers), cut into ``n_head`` heads of ``d / n_head`` features;
2. :func:`causal_attention`: each query attends to the keys at its own and earlier positions,
   ``softmax(q kᵀ / √d_head + mask) v``;
3. ``merge_heads`` and a second Dense layer ``proj`` mixes the heads back into d features.

Step 2 takes explicit ``q, k, v`` arrays and allows more keys than queries (the queries are then the
*last* positions), so generating token by token with cached keys and values is a matter of appending
to ``k`` and ``v`` and calling the same function.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from .dense import Dense
from .layer import Composite, _check_input


def _transposed(a: np.ndarray) -> np.ndarray:
    """The last two axes swapped, as a C-contiguous array (what numpy's stacked matmul hands to BLAS)."""
    return np.ascontiguousarray(a.swapaxes(-1, -2))


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray):
    """Scaled dot-product attention with a causal mask.

    Parameters
    ----------
    q : ndarray, shape (batch, n_head, T_q, d_head)
        Queries of the last ``T_q`` positions.
    k, v : ndarray, shape (batch, n_head, T_k, d_head), ``T_k >= T_q``
        Keys and values of all ``T_k`` positions so far. Query ``i`` sits at position
        ``T_k − T_q + i`` and sees keys ``0 .. T_k − T_q + i`` (itself and the past, never the future).

    Returns
    -------
    y : ndarray, shape (batch, n_head, T_q, d_head)
        The attention-weighted sum of values, per query.
    probs : ndarray, shape (batch, n_head, T_q, T_k)
        The attention probabilities (each row sums to 1; zero on future keys).
    """
    t_q, t_k = q.shape[-2], k.shape[-2]
    if t_k < t_q:
        raise ValueError(f"causal_attention needs at least as many keys as queries, got {t_k} keys for {t_q} queries")
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    # a contiguous kᵀ keeps the stacked product on BLAS (numpy's matmul falls back to a slow loop on
    # a transposed view of a 4-D array: about 50× slower here)
    scores = (q * scale) @ _transposed(k)
    future = np.triu(np.ones((t_q, t_k), dtype=bool), k=t_k - t_q + 1)
    scores += np.where(future, -np.inf, 0.0).astype(scores.dtype)  # exp(-inf) = 0: no weight on the future
    scores -= scores.max(axis=-1, keepdims=True)  # every row keeps at least its own position: finite max
    probs = np.exp(scores, out=scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ v, probs


def causal_attention_backward(dy: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, probs: np.ndarray):
    """Gradients of :func:`causal_attention` with respect to q, k and v.

    With ``s = q kᵀ/√d``, ``p = softmax(s)`` and ``y = p v``: ``dv = pᵀ dy``, ``dp = dy vᵀ``,
    ``ds = p ⊙ (dp − Σ_j dp ⊙ p)`` (the softmax Jacobian; masked entries have ``p = 0`` and get none),
    ``dq = ds k / √d`` and ``dk = dsᵀ q / √d``. Shapes as in :func:`causal_attention`.
    """
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    dv = _transposed(probs) @ dy
    dp = dy @ _transposed(v)
    ds = probs * (dp - (dp * probs).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (_transposed(ds) @ q) * scale
    return dq, dk, dv


class CausalSelfAttention(Composite):
    """Multi-head causal self-attention over (batch, T, d_model), GPT-2's layout.

    Parameters
    ----------
    d_model : int
        Features per token.
    n_head : int
        Number of heads; must divide ``d_model``.
    rng : numpy.random.Generator, optional
        Initialises the two Dense layers (He-normal, as any Dense; ``labkit.models.gpt`` re-initialises
        them as GPT-2 does).

    Attributes
    ----------
    qkv : Dense, d_model → 3·d_model
        Output columns ``[0, d)`` are the queries, ``[d, 2d)`` the keys, ``[2d, 3d)`` the values; within
        each, head ``h`` owns columns ``[h·d_head, (h+1)·d_head)``.
    proj : Dense, d_model → d_model
        The output projection.
    probs : ndarray, shape (batch, n_head, T, T)
        Attention probabilities of the last forward pass (row i: how much query i takes from each key).
    """

    def __init__(self, d_model: int, n_head: int, rng=None, dtype=np.float32):
        self.d_model = check_int("d_model", d_model, lo=1)
        self.n_head = check_int("n_head", n_head, lo=1)
        if self.d_model % self.n_head:
            raise ValueError(f"n_head must divide d_model, got d_model={self.d_model} and n_head={self.n_head}")
        self.d_head = self.d_model // self.n_head
        rng = rng if rng is not None else np.random.default_rng(0)
        self.qkv = Dense(self.d_model, 3 * self.d_model, rng=rng, dtype=dtype)
        self.proj = Dense(self.d_model, self.d_model, rng=rng, dtype=dtype)
        self.children = (("qkv", self.qkv), ("proj", self.proj))
        self.name = ""
        self.probs = None

    def split_heads(self, x: np.ndarray):
        """Queries, keys and values of x (batch, T, d_model): three arrays (batch, n_head, T, d_head)."""
        b, t, _ = x.shape
        qkv = self.qkv.forward(x.reshape(b * t, self.d_model))
        qkv = qkv.reshape(b, t, 3, self.n_head, self.d_head).transpose(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def merge_heads(self, y: np.ndarray) -> np.ndarray:
        """(batch, n_head, T, d_head) → (batch·T, d_model), head h in features ``[h·d_head, (h+1)·d_head)``."""
        b, _, t, _ = y.shape
        return y.transpose(0, 2, 1, 3).reshape(b * t, self.d_model)

    def forward(self, x, training=False):
        _check_input(self, x, f"(batch, T, {self.d_model})", lambda x: x.ndim == 3 and x.shape[2] == self.d_model)
        b, t, _ = x.shape
        q, k, v = self.split_heads(x)
        y, self.probs = causal_attention(q, k, v)
        self._qkv = (q, k, v)
        return self.proj.forward(self.merge_heads(y)).reshape(b, t, self.d_model)

    def backward(self, grad_out):
        b, t, _ = grad_out.shape
        dy = self.proj.backward(grad_out.reshape(b * t, self.d_model))
        dy = dy.reshape(b, t, self.n_head, self.d_head).transpose(0, 2, 1, 3)
        dq, dk, dv = causal_attention_backward(dy, *self._qkv, self.probs)
        dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(b * t, 3 * self.d_model)
        return self.qkv.backward(dqkv).reshape(b, t, self.d_model)

    def config(self):
        return {"d_model": self.d_model, "n_head": self.n_head}
