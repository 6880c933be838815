"""Softmax with a temperature, and its logarithm, computed without overflow.

``softmax(z, T)_i = exp(z_i / T) / sum_j exp(z_j / T)`` over the last axis (the classes). Dividing
by a temperature ``T > 1`` flattens the distribution (Hinton et al. 2015's soft targets); ``T = 1``
is the ordinary softmax of a classifier. Both functions subtract the row maximum *before* dividing
by ``T``: ``z - max(z) <= 0``, so no ``exp`` overflows, for any finite logits and any ``T > 0``.
Training (``labkit.train``) and distillation (``labkit.distill``) use these two and no other copy.
"""

from __future__ import annotations

import numpy as np

from .validation import check_array, check_real

__all__ = ["log_softmax", "softmax"]


def _temperature(T) -> float:
    return check_real("T", T, 0.0, lo_open=True, what=" (the temperature)")


def _logits(z) -> np.ndarray:
    z = check_array(z, "logits", kind="fiu")
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"logits need at least one class on the last axis, got shape {z.shape}")
    return z if z.dtype.kind == "f" else z.astype(np.float64)


def log_softmax(z, T: float = 1.0) -> np.ndarray:
    """``log softmax(z / T)`` along the last axis.

    Parameters
    ----------
    z : array_like, shape (..., k)
        Logits; the k classes are on the last axis.
    T : float > 0
        Temperature.

    Returns
    -------
    ndarray, shape (..., k), in z's float type (float64 for integer input); each row's ``exp``
    sums to 1. NaN logits give NaN rows (training reports a diverged loss instead of stopping).
    """
    T = _temperature(T)
    z = _logits(z)
    u = z - z.max(axis=-1, keepdims=True)
    if T != 1.0:
        u = u / T
    return u - np.log(np.exp(u).sum(axis=-1, keepdims=True))


def softmax(z, T: float = 1.0) -> np.ndarray:
    """Softmax with temperature along the last axis: ``exp(z_i / T) / sum_j exp(z_j / T)``.

    ``T -> 0`` tends to a one-hot of the argmax; ``T -> inf`` to the uniform distribution.

    Parameters
    ----------
    z : array_like, shape (..., k)
        Finite logits; the classes are on the last axis.
    T : float > 0
        Temperature.

    Returns
    -------
    ndarray, shape (..., k)
        Probabilities (rows sum to 1), float64 for integer or float64 input, else z's float type.
        Computed in float64.
    """
    T = _temperature(T)
    z = check_array(_logits(z), "logits", finite=True)
    return np.exp(log_softmax(z.astype(np.float64), T)).astype(z.dtype, copy=False)
