"""Fused quantize / dequantize: one pass over memory, no float temporaries.

Affine quantization to b bits (Jacob et al. 2018):

    q = clamp(round_half_even(x · (1 / scale)) + zero_point, qmin, qmax)
    x̂ = (q - zero_point) · scale

with ``[qmin, qmax] = [-2**(b-1), 2**(b-1) - 1]`` (signed, stored as int8) or ``[0, 2**b - 1]``
(unsigned, uint8). ``1 / scale`` is computed once in float32 and *multiplied*, as PyTorch's
``quantize_per_tensor`` (fbgemm) does: a division per element would make the kernel compute-bound.
(``x · (1/s)`` and ``x / s`` can differ by one float32 ulp, which moves a value sitting within an ulp
of a rounding tie by one step: rare, and the reference below uses the same formula.)

Per-tensor: one scale and zero point. Per-channel: one per index along ``axis`` (the output channel
of a weight, ``axis=0`` for ``Dense.W`` and ``Conv2d.W``).

A naive numpy version (``np.clip(np.rint(x * inv) + zp, lo, hi).astype(np.int8)``) reads and writes
three float32 temporaries; the fused kernel reads x once and writes q once (5 bytes per element for
int8 output), split across threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..qarith import int_range, round_clamp
from ..validation import check_axis, check_bits, show
from ._checks import as_array

__all__ = [
    "quantize_per_tensor",
    "dequantize_per_tensor",
    "quantize_per_channel",
    "dequantize_per_channel",
    "quantize_reference",
    "dequantize_reference",
]

_CHUNK = 1 << 16


def _code_range(bits, signed, narrow_range=False) -> tuple[int, int]:
    """:func:`labkit.qarith.int_range` for the codes these kernels store in int8/uint8 (2..8 bits)."""
    return int_range(check_bits(bits, 2, 8), signed, narrow_range)


# ----------------------------------------------------------------------------------------------
# numpy references
# ----------------------------------------------------------------------------------------------


def _channel_shape(x, axis):
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = x.shape[axis]
    return shape


def quantize_reference(x, scale, zero_point, bits=8, signed=True, axis=None, narrow_range=False) -> np.ndarray:
    """``clamp(rint(x * float32(1/scale)) + zero_point)``, per tensor (axis None) or per channel,
    to :func:`labkit.qarith.int_range` ``(bits, signed, narrow_range)``."""
    lo, hi = _code_range(bits, signed, narrow_range)
    shape = _channel_shape(x, axis)
    inv = (np.float32(1) / np.asarray(scale, np.float32)).reshape(shape)
    zp = np.asarray(zero_point, np.float32).reshape(shape)
    q = round_clamp(x.astype(np.float32) * inv, lo, hi, zp)
    return q.astype(np.int8 if signed else np.uint8)


def dequantize_reference(q, scale, zero_point, axis=None) -> np.ndarray:
    """``float32(q - zero_point) * scale`` in float32."""
    shape = _channel_shape(q, axis)
    d = (q.astype(np.int32) - np.asarray(zero_point, np.int32).reshape(shape)).astype(np.float32)
    return d * np.asarray(scale, np.float32).reshape(shape)


# ----------------------------------------------------------------------------------------------
# numba cores: x viewed as (pre, C, post); per-tensor is C = 1
# ----------------------------------------------------------------------------------------------


# The prange loops only split the work into chunks; each chunk runs a serial jitted loop (numba
# vectorizes those far better than loops written inline in a prange body).


@njit(cache=True)
def _quantize_chunk(x, iv, z, lo, hi, out):
    for p in range(x.shape[0]):
        v = np.rint(x[p] * iv) + z
        v = v if v > lo else lo  # NaN compares False: it becomes lo
        v = v if v < hi else hi
        out[p] = v


@njit(cache=True)
def _dequantize_chunk(q, sc, z, out):
    for p in range(q.shape[0]):
        out[p] = np.float32(np.int32(q[p]) - z) * sc


@njit(cache=True, parallel=True)
def _quantize_core(x, inv, zp, lo, hi, out):
    pre, C, post = x.shape
    nchunk = (post + _CHUNK - 1) // _CHUNK
    for t in prange(pre * C * nchunk):
        r = t // nchunk
        a, c = r // C, r % C
        s = (t % nchunk) * _CHUNK
        e = min(post, s + _CHUNK)
        _quantize_chunk(x[a, c, s:e], inv[c], zp[c], lo, hi, out[a, c, s:e])


@njit(cache=True)
def _quantize_serial(x, inv, zp, lo, hi, out):
    # small inputs (one chunk): waking the thread pool would cost more than the work
    pre, C, post = x.shape
    for a in range(pre):
        for c in range(C):
            _quantize_chunk(x[a, c], inv[c], zp[c], lo, hi, out[a, c])


@njit(cache=True, parallel=True)
def _dequantize_core(q, scale, zp, out):
    pre, C, post = q.shape
    nchunk = (post + _CHUNK - 1) // _CHUNK
    for t in prange(pre * C * nchunk):
        r = t // nchunk
        a, c = r // C, r % C
        s = (t % nchunk) * _CHUNK
        e = min(post, s + _CHUNK)
        _dequantize_chunk(q[a, c, s:e], scale[c], zp[c], out[a, c, s:e])


# ----------------------------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------------------------


def _view3(x, axis):
    if axis is None:
        return x.reshape(1, 1, -1), 1
    axis = check_axis("axis", axis, x.ndim)
    pre = int(np.prod(x.shape[:axis], dtype=np.int64))
    C = x.shape[axis]
    return x.reshape(pre, C, -1) if x.size else x.reshape(pre, C, 0), C


def _params(scale, zero_point, C, lo, hi, per_channel):
    s = np.asarray(scale)
    z = np.asarray(zero_point)
    if s.dtype.kind not in "iuf":
        raise TypeError(f"scale must be real, got {s.dtype}")
    if z.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be an integer, got {z.dtype} ({show(zero_point)})")
    want = (C,) if per_channel else ()
    if s.shape != want or z.shape != want:
        kind = f"arrays of shape ({C},), one per channel" if per_channel else "scalars"
        raise ValueError(f"scale and zero_point must be {kind}; got shapes {s.shape} and {z.shape}")
    s = s.astype(np.float32).reshape(-1)
    z = z.astype(np.int64).reshape(-1)
    if s.size and not (np.all(np.isfinite(s)) and s.min() > 0):
        raise ValueError(f"scale must be finite and > 0, got {show(scale)}")
    if z.size and (z.min() < lo or z.max() > hi):
        raise ValueError(f"zero_point must lie in the code range [{lo}, {hi}], got {show(zero_point)}")
    return s, z


def _quantize(x, scale, zero_point, bits, signed, axis, narrow_range=False):
    as_array("x", x, np.float32)
    lo, hi = _code_range(bits, signed, narrow_range)
    x3, C = _view3(x, axis)
    s, z = _params(scale, zero_point, C, lo, hi, axis is not None)
    out = np.empty(x.shape, np.int8 if signed else np.uint8)
    if x.size:
        inv = np.float32(1) / s
        core = _quantize_serial if x.size <= _CHUNK else _quantize_core
        core(x3, inv, z.astype(np.float32), np.float32(lo), np.float32(hi), out.reshape(x3.shape))
    return out


def quantize_per_tensor(
    x: np.ndarray, scale: float, zero_point: int, bits: int = 8, signed: bool = True, narrow_range: bool = False
):
    """Quantize float32 x (any shape, C-contiguous) with one scale and zero point.

    Returns int8 (signed) or uint8 (unsigned) of x's shape, bit-exact with :func:`quantize_reference`.
    ``±inf`` clamps to the range. NaN has no code: it comes out as ``qmin`` (not checked, since a check
    would cost a second pass over x; test ``np.isnan(x).any()`` first if NaN can occur).
    ``torch.quantize_per_tensor`` (fbgemm) rounds ``x · (1/s) + zero_point`` instead, so at exact
    ties with an odd zero point it can land one step higher; with an even zero point (0 for
    symmetric int8) the two agree bit for bit. ``narrow_range=True`` clamps to :func:`labkit.qarith.int_range`
    without its lowest code (symmetric int8 weights: never -128).
    """
    return _quantize(x, scale, zero_point, bits, signed, None, narrow_range)


def quantize_per_channel(
    x, scales, zero_points, axis: int = 0, bits: int = 8, signed: bool = True, narrow_range: bool = False
):
    """Quantize float32 x with one scale and zero point per index along ``axis`` (arrays of x.shape[axis]);
    ``narrow_range`` as in :func:`quantize_per_tensor`."""
    return _quantize(x, scales, zero_points, bits, signed, axis, narrow_range)


def _dequantize(q, scale, zero_point, axis):
    as_array("q", q, (np.int8, np.uint8))
    lo, hi = (-128, 127) if q.dtype == np.int8 else (0, 255)
    q3, C = _view3(q, axis)
    s, z = _params(scale, zero_point, C, lo, hi, axis is not None)
    out = np.empty(q.shape, np.float32)
    if q.size:
        _dequantize_core(q3, s, z.astype(np.int32), out.reshape(q3.shape))
    return out


def dequantize_per_tensor(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``float32(q - zero_point) * scale`` for int8/uint8 q (C-contiguous); bit-exact with the reference."""
    return _dequantize(q, scale, zero_point, None)


def dequantize_per_channel(q: np.ndarray, scales, zero_points, axis: int = 0) -> np.ndarray:
    """Per-channel :func:`dequantize_per_tensor` along ``axis``."""
    return _dequantize(q, scales, zero_points, axis)
