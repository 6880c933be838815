"""Group-wise weight quantization (int4 and friends) and packing two 4-bit weights per byte.

Per-channel quantization gives each output row of ``W`` (out, in) one scale. Low-bit weight
quantization (GPTQ, AWQ, llama.cpp's ``Q4``) goes finer: each row is cut along the *input*
dimension into groups of ``group_size`` consecutive weights, and every group gets its own scale and
zero point. With ``g`` columns per group and ``G = ceil(in / g)`` groups per row (the last group
may be shorter when ``g`` does not divide ``in``):

* ``scale[i, k], zero_point[i, k]`` come from the min and max of ``W[i, k·g : (k+1)·g]``
  (the range widened to contain 0, exactly as :func:`labkit.quant.qparams` does);
* ``q[i, j] = clamp(round_half_even(W[i, j] / scale[i, j // g]) + zero_point[i, j // g])``;
* ``W_hat[i, j] = scale[i, j // g] · (q[i, j] − zero_point[i, j // g])``.

``group_size=None`` means one group per row: per-channel quantization.

Affine quantization uses unsigned integers ``[0, 2^b − 1]``; symmetric uses signed integers in the
restricted range ``±(2^(b−1) − 1)`` with zero point 0 (as everywhere in ``labkit.quant``).

Storage: with ``bits <= 4``, :func:`pack_int4` stores two weights per byte (column ``2j`` in the low
nibble, ``2j + 1`` in the high nibble; an odd last column leaves a zero high nibble).
"""

from __future__ import annotations

import math

import numpy as np

from ..qarith import int_dtype, int_range, round_clamp
from ..validation import check_bits, check_int, check_matrix
from .affine import _params_from_range

__all__ = [
    "check_group_size",
    "group_index",
    "groupwise_params",
    "quantize_groupwise",
    "dequantize_groupwise",
    "pack_int4",
    "unpack_int4",
]


def check_group_size(group_size, n_in: int) -> int:
    """``group_size`` as an int in 1..n_in (None → n_in, one group per row)."""
    if group_size is None:
        return int(n_in)
    return min(check_int("group_size", group_size, lo=1, what=" (columns per group) or None"), int(n_in))


def group_index(n_in: int, group_size) -> np.ndarray:
    """The group of every input column: ``j // group_size``, shape (n_in,), int64."""
    g = check_group_size(group_size, n_in)
    return np.arange(n_in, dtype=np.int64) // g


def groupwise_params(W, bits: int, group_size=None, symmetric: bool = False):
    """Per-group scale and zero point of ``W`` (out, in) from each group's min and max.

    Returns
    -------
    scale : ndarray of float32, shape (out, G)
    zero_point : ndarray of int64, shape (out, G)
        ``G = ceil(in / group_size)``; unsigned zero points for affine, 0 for symmetric.
    """
    W = check_matrix(W)
    bits = check_bits(bits, lo=1 + bool(symmetric))
    out, n_in = W.shape
    g = check_group_size(group_size, n_in)
    n_groups = math.ceil(n_in / g)
    Wd = W.astype(np.float64)
    starts = np.arange(n_groups) * g
    lo = np.minimum.reduceat(Wd, starts, axis=1)
    hi = np.maximum.reduceat(Wd, starts, axis=1)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    scale, zp = _params_from_range(lo.ravel(), hi.ravel(), bits, bool(symmetric), bool(symmetric))
    return scale.reshape(out, n_groups).astype(np.float32), zp.reshape(out, n_groups).astype(np.int64)


def quantize_groupwise(W, bits: int, group_size=None, symmetric: bool = False):
    """Round-to-nearest group-wise quantization of ``W`` (out, in) along its input dimension.

    Parameters
    ----------
    W : ndarray, shape (out, in), finite
        A ``Dense.W`` (or a ``Conv2d.W`` reshaped to (out_c, in_c·k·k)).
    bits : int
        1..16 (2..16 if symmetric).
    group_size : int or None
        Consecutive input columns sharing one scale (32, 64, 128 are usual); None = per row.
    symmetric : bool
        Signed integers ``±(2^(b−1)−1)``, zero point 0; otherwise unsigned ``[0, 2^b−1]``.

    Returns
    -------
    q : ndarray of uint8/uint16 (affine) or int8/int16 (symmetric), shape (out, in)
    scale : ndarray of float32, shape (out, G)
    zero_point : ndarray of int64, shape (out, G)
    """
    scale, zp = groupwise_params(W, bits, group_size, symmetric)
    bits = int(bits)
    gi = group_index(W.shape[1], group_size)
    qmin, qmax = int_range(bits, signed=bool(symmetric), narrow_range=bool(symmetric))
    q = round_clamp(W.astype(np.float64) / scale.astype(np.float64)[:, gi], qmin, qmax, zp[:, gi])
    return q.astype(int_dtype(bits, bool(symmetric))), scale, zp


def dequantize_groupwise(q, scale, zero_point, group_size=None) -> np.ndarray:
    """``W_hat[i, j] = scale[i, j // g] · (q[i, j] − zero_point[i, j // g])`` as float32.

    Parameters
    ----------
    q : integer ndarray, shape (out, in)
    scale : float ndarray, shape (out, G), positive
    zero_point : integer ndarray, shape (out, G)
    group_size : int or None
        The ``group_size`` used to quantize (None = one group per row).
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"dequantize_groupwise expects integer q, got dtype {q.dtype}")
    if q.ndim != 2:
        raise ValueError(f"q must be 2-D (out, in), got shape {q.shape}")
    scale, zero_point = np.asarray(scale), np.asarray(zero_point)
    g = check_group_size(group_size, max(q.shape[1], 1))
    n_groups = math.ceil(q.shape[1] / g) if q.shape[1] else 0
    if scale.shape != (q.shape[0], n_groups) or zero_point.shape != (q.shape[0], n_groups):
        raise ValueError(
            f"scale and zero_point must have shape (out, groups) = {(q.shape[0], n_groups)} for q of shape "
            f"{q.shape} and group_size {group_size}, got {scale.shape} and {zero_point.shape}"
        )
    if zero_point.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be integers, got dtype {zero_point.dtype}")
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise ValueError("scale must be positive and finite")
    gi = np.arange(q.shape[1]) // g
    s = scale.astype(np.float32).astype(np.float64)[:, gi]
    return (s * (q.astype(np.int64) - zero_point.astype(np.int64)[:, gi])).astype(np.float32)


def pack_int4(q) -> np.ndarray:
    """Two 4-bit integers per byte along the last axis: column ``2j`` low nibble, ``2j+1`` high.

    Parameters
    ----------
    q : integer ndarray, shape (out, in)
        Unsigned values in 0..15, or signed values in −8..7 (stored as their two's-complement nibble).

    Returns
    -------
    packed : ndarray of uint8, shape (out, ceil(in / 2)); an odd ``in`` leaves the last high nibble 0.
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"pack_int4 expects integers, got dtype {q.dtype}")
    if q.ndim != 2:
        raise ValueError(f"pack_int4 expects a 2-D array (out, in), got shape {q.shape}")
    lo, hi = (-8, 7) if q.dtype.kind == "i" else (0, 15)
    if q.size and (q.min() < lo or q.max() > hi):
        raise ValueError(
            f"pack_int4 needs 4-bit values in [{lo}, {hi}] for dtype {q.dtype}, got [{q.min()}, {q.max()}]"
        )
    nib = (q.astype(np.int64) & 0xF).astype(np.uint8)
    if q.shape[1] % 2:
        nib = np.concatenate([nib, np.zeros((q.shape[0], 1), np.uint8)], axis=1)
    return np.ascontiguousarray(nib[:, 0::2] | (nib[:, 1::2] << 4))


def unpack_int4(packed, n_cols: int, signed: bool = False) -> np.ndarray:
    """Inverse of :func:`pack_int4`: (out, ceil(n_cols/2)) uint8 → (out, n_cols) uint8 or int8."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise TypeError(f"unpack_int4 expects a 2-D uint8 array, got dtype {packed.dtype} shape {packed.shape}")
    n_cols = check_int("n_cols", n_cols, lo=0)
    if packed.shape[1] != math.ceil(n_cols / 2):
        raise ValueError(f"{n_cols} columns pack into {math.ceil(n_cols / 2)} bytes per row, got {packed.shape[1]}")
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 0xF
    out[:, 1::2] = packed >> 4
    out = out[:, :n_cols]
    if signed:
        return np.ascontiguousarray(np.where(out >= 8, out.astype(np.int16) - 16, out).astype(np.int8))
    return np.ascontiguousarray(out)
