"""LLM.int8(): vector-wise int8 matrix products with the outlier features kept in float (Dettmers et al. 2022).

An int8 product ``X Wᵀ`` quantizes ``X`` (tokens, in) with one scale per **row** (token) and ``W``
(out, in) with one scale per **row** (output channel): vector-wise quantization (§3.1 of the paper),
symmetric, ``x_q = round(127 · x / absmax)``. The int8 codes are multiplied and summed in int32, and
the accumulator is rescaled by the outer product of the two scale vectors:

    Y ≈ (s_X ⊗ s_W) ⊙ (X_q W_qᵀ),     s_X[t] = max_j |X[t, j]| / 127,   s_W[o] = max_j |W[o, j]| / 127.

In large transformers a few hidden dimensions ("outlier features", magnitudes up to ~20× the rest,
on most tokens) set every token's scale and crush all other values to a few levels. The
**mixed-precision decomposition** (§3.2) takes every input column j in which some ``|X[t, j]|``
reaches the threshold (6.0 in the paper) out of the int8 product and multiplies it in float:

    Y = X_O W_Oᵀ  +  (s_X ⊗ s_W) ⊙ (X_q,R W_q,Rᵀ),

O the outlier columns, R the rest; the vector-wise scales are those of ``X_R`` and ``W_R`` (the
outlier columns no longer set them). The paper keeps ``W_O`` in 16-bit floats; bitsandbytes stores
only the int8 ``W`` and multiplies ``X_O`` by those columns of its dequantized copy (its scales then
come from all columns). Here ``W_O`` is the float weights, as in the paper, and the products
are computed in float64 (the int32 accumulators exactly: every partial sum is an integer below 2^53).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..qarith import INT32_MAX
from ..validation import check_matrix, check_real
from .affine import qparams, quantize

__all__ = ["Int8DecomposeResult", "int8_decompose"]


class Int8DecomposeResult(NamedTuple):
    """What :func:`int8_decompose` returns (unpacks as ``Y, float_fraction, ...``).

    Attributes
    ----------
    Y : ndarray of float32, shape (tokens, out)
    float_fraction : float
        Fraction of the input columns multiplied in float (outlier columns / ``in``).
    outlier_columns : ndarray of int64, shape (n_outliers,)
        Their indices, increasing.
    acc : ndarray of int32, shape (tokens, out)
        The int32 accumulators ``X_q,R W_q,Rᵀ`` of the int8 part.
    x_scale : ndarray of float32, shape (tokens,)
        ``s_X``: absmax of each row of ``X_R`` over 127 (1 for an all-zero row).
    w_scale : ndarray of float32, shape (out,)
        ``s_W``: absmax of each row of ``W_R`` over 127 (1 for an all-zero row).
    """

    Y: np.ndarray
    float_fraction: float
    outlier_columns: np.ndarray
    acc: np.ndarray
    x_scale: np.ndarray
    w_scale: np.ndarray


def _vectorwise(A):
    """Symmetric int8 codes of each row of ``A`` (narrow range ±127) and the row scales."""
    qp = qparams(A, 8, symmetric=True, axis=0)
    return quantize(A, qp, axis=0), np.asarray(qp.scale, np.float32)


def int8_decompose(X, W, threshold: float | None = 6.0) -> Int8DecomposeResult:
    """``X Wᵀ`` by LLM.int8(): outlier input columns in float, the rest in vector-wise int8.

    Parameters
    ----------
    X : ndarray, shape (tokens, in), finite
        The layer's input (hidden states).
    W : ndarray, shape (out, in), finite
        ``Dense.W``.
    threshold : float > 0 or None
        A column j of ``X`` goes through the float product if any ``|X[t, j]| >= threshold``.
        None: no decomposition (plain vector-wise int8 for every column).

    Returns
    -------
    Int8DecomposeResult
        ``Y`` (tokens, out) float32 (add the bias yourself), the fraction of columns kept in float,
        their indices, the int32 accumulators and the two scale vectors.

    Raises
    ------
    TypeError, ValueError
        Arrays that are not finite 2-D real matrices, ``W`` whose ``in`` differs from ``X``'s, a
        threshold that is not a positive number, or an ``in`` so large that int32 could overflow
        (more than 133,000 columns).
    """
    X = check_matrix(X, "X", rows="tokens", cols="in")
    W = check_matrix(W, "W", n_cols=X.shape[1])
    n_in = X.shape[1]
    if n_in * 127 * 127 > INT32_MAX:
        raise ValueError(f"in = {n_in} columns could overflow the int32 accumulator (at most {INT32_MAX // 127**2})")
    if threshold is None:
        outlier = np.zeros(n_in, bool)
    else:
        threshold = check_real("threshold", threshold, 0.0, lo_open=True)
        outlier = np.any(np.abs(X) >= threshold, axis=0)
    regular = ~outlier
    Xd, Wd = X.astype(np.float64), W.astype(np.float64)
    if regular.any():
        xq, sx = _vectorwise(X[:, regular])
        wq, sw = _vectorwise(W[:, regular])
        acc = (xq.astype(np.float64) @ wq.astype(np.float64).T).astype(np.int64)  # exact: integers < 2^53
    else:
        acc = np.zeros((X.shape[0], W.shape[0]), np.int64)
        sx, sw = np.ones(X.shape[0], np.float32), np.ones(W.shape[0], np.float32)
    Y = acc * (sx.astype(np.float64)[:, None] * sw.astype(np.float64)[None, :])
    if outlier.any():
        Y = Y + Xd[:, outlier] @ Wd[:, outlier].T
    cols = np.flatnonzero(outlier).astype(np.int64)
    return Int8DecomposeResult(Y.astype(np.float32), cols.size / n_in, cols, acc.astype(np.int32), sx, sw)
