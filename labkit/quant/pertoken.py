"""Activation quantizers of transformers: per-token dynamic, per-tensor static, and the KV cache.

Weights are known before inference; activations are not. Two ways to choose their scale:

* **Per-tensor static**: one scale (and zero point) fixed beforehand from calibration activations
  (:func:`labkit.quant.qparams` on them, min-max, percentile or MSE); at run time
  ``q = clamp(round(x / scale) + z)``. Cheap, but a value beyond the calibrated range clamps, and an
  outlier channel in the calibration data sets a large scale for every token.
* **Per-token dynamic**: each row of ``X`` (one token's features) gets its own scale from its own
  range, computed at run time (ZeroQuant, Yao et al. 2022; the ``X`` half of LLM.int8()'s
  vector-wise quantization). No clamping and no calibration; an outlier channel still sets the
  scale of every token it appears in.

Symmetric quantization uses signed codes in the narrow range ``±(2^(b−1) − 1)`` (int8: ±127, int4: ±7)
and ``scale = max|x| / (2^(b−1) − 1)``; affine uses unsigned codes ``[0, 2^b − 1]`` with a zero point,
from the row's min and max widened to contain 0 (exactly :func:`labkit.quant.qparams`). Rounding is
half to even, then clamp.

**KV cache** (:func:`quantize_kv`): the keys and values of past tokens, an array (tokens, heads,
head_dim) per layer, are stored quantized with one scale per token and head, over its ``head_dim``
values. A token's entries never change once written, so each can be quantized when it is appended.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_array, check_bits, check_bool
from .affine import QParams, dequantize, fake_quantize, qparams, quantize

__all__ = ["ActQuant", "quantize_per_token", "quantize_per_tensor", "quantize_kv"]


class ActQuant(NamedTuple):
    """Quantized activations (unpacks as ``X_hat, q, scale, zero_point``).

    Attributes
    ----------
    X_hat : ndarray of float32, shape of the input
        ``scale · (q − zero_point)``: the values the codes stand for (fake quantization).
    q : ndarray of int8 (symmetric) or uint8 (affine; int16/uint16 above 8 bits), shape of the input
    scale : ndarray of float32
        Shape ``X.shape[:-1]`` (one per token, or per token and head), or ``()`` per tensor.
    zero_point : ndarray of int64, shape of ``scale`` (0 for symmetric codes)
    """

    X_hat: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray


def _per_row(X, bits, symmetric, name):
    """Quantize each vector along the last axis of ``X`` with its own scale."""
    X = check_array(X, name, kind="fiu", non_empty=True, finite=True, ndarray_only=True)
    if X.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., features), got shape {X.shape}")
    symmetric = check_bool("symmetric", symmetric)
    bits = check_bits(bits, lo=2 if symmetric else 1)
    rows = X.reshape(-1, X.shape[-1])
    qp = qparams(rows, bits, symmetric=symmetric, axis=0)
    q = quantize(rows, qp, axis=0)
    X_hat = dequantize(q, qp.scale, qp.zero_point, axis=0)
    lead = X.shape[:-1]
    scale = np.asarray(qp.scale, np.float32).reshape(lead)
    zp = np.asarray(qp.zero_point, np.int64).reshape(lead)
    return ActQuant(X_hat.reshape(X.shape), q.reshape(X.shape), scale, zp)


def quantize_per_token(X, bits: int = 8, symmetric: bool = True) -> ActQuant:
    """Dynamic per-token quantization: every row of ``X`` gets the scale of its own range.

    Parameters
    ----------
    X : ndarray, shape (tokens, features) (or (..., features): one scale per vector along the last
        axis), finite, not empty
    bits : int
        2..16 symmetric (8 and 4 are the usual), 1..16 affine.
    symmetric : bool
        Signed narrow-range codes with zero point 0 (default), or affine unsigned codes.

    Returns
    -------
    ActQuant
        ``X_hat`` (float32, shape of X), codes, ``scale`` and ``zero_point`` of shape ``X.shape[:-1]``.
    """
    return _per_row(X, bits, symmetric, "X")


def quantize_per_tensor(X, qp: QParams) -> ActQuant:
    """Static per-tensor quantization of ``X`` with parameters calibrated beforehand.

    Parameters
    ----------
    X : array_like of float, any shape, finite
    qp : QParams
        From :func:`labkit.quant.qparams` on calibration activations (it carries bits, signedness
        and range); values of ``X`` beyond the calibrated range clamp.

    Returns
    -------
    ActQuant
        ``scale`` and ``zero_point`` are 0-d arrays.
    """
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be the QParams returned by labkit.quant.qparams, got {type(qp).__name__}")
    if np.ndim(qp.scale) != 0:
        raise ValueError("qp must be per-tensor (one scale); got per-channel parameters")
    X = check_array(X, "X", kind="fiu", finite=True)
    q = quantize(X, qp)
    return ActQuant(fake_quantize(X, qp), q, np.asarray(qp.scale, np.float32), np.asarray(qp.zero_point, np.int64))


def quantize_kv(kv, bits: int = 8, symmetric: bool = True) -> ActQuant:
    """Quantize a key or value cache with one scale per token and head.

    Parameters
    ----------
    kv : ndarray, shape (tokens, heads, head_dim) (or (batch, tokens, heads, head_dim)), finite
    bits : int
        8 or 4 usually (2..16 symmetric, 1..16 affine).
    symmetric : bool

    Returns
    -------
    ActQuant
        ``X_hat`` and codes shaped like ``kv``; ``scale`` and ``zero_point`` of shape
        ``kv.shape[:-1]`` = (tokens, heads).
    """
    kv = check_array(kv, "kv", kind="fiu", ndarray_only=True)
    if kv.ndim not in (3, 4):
        raise ValueError(f"kv must be (tokens, heads, head_dim) or (batch, tokens, heads, head_dim), got {kv.shape}")
    return _per_row(kv, bits, symmetric, "kv")
