"""Group-wise int4 weights times a float32 vector: the GEMV of weight-only int4 quantization.

GPTQ and AWQ store ``W`` (N × K) as 4-bit integers ``q`` with one float32 scale and one 4-bit zero
point per group of ``g`` consecutive columns of a row, and keep the activations in float. The
product is

    y[i] = sum_k s[i, k // g] · (q[i, k] − z[i, k // g]) · x[k]
         = sum_groups s[i, t] · (sum_{k in group t} q[i, k] · x[k]  −  z[i, t] · sum_{k in group t} x[k]).

The second form is what the fast kernel computes: the group sums of ``x`` are shared by all rows
(computed once), so the inner loop is one multiply-add per weight on the integer ``q`` converted to
float32 on the fly; ``x`` is split once into its even and odd entries, so that the low and high
nibbles of consecutive bytes meet contiguous vectors. Layout: two weights per byte, column ``2j``
in the low nibble and ``2j + 1`` in the high nibble (``labkit.quant.pack_int4``), unsigned 0..15
(signed symmetric weights are stored as ``q + 8`` with zero point 8). The kernel reads ``N·K/2``
bytes of weights instead of ``4·N·K`` for float32 — the whole point, as GEMV is memory-bound
(lab 07's roofline).

Group sizes must be even (32, 64, 128 …) so a group starts on a byte boundary, or ``g >= K`` (one
group per row). ``K`` may be odd (the last high nibble is padding).

This kernel keeps ``x`` in float32, so its group sums are float sums whose order LLVM chooses: it
matches its reference to float32 rounding. :mod:`labkit.kernels.w4a8` is the fast path for the same
weights: ``x`` quantized to int8 per group, exact integer group sums, a layout without horizontal
sums, and results equal to its reference bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..validation import check_int
from ._checks import as_array

__all__ = ["gemv_int4", "gemv_int4_reference", "unpack_int4_reference"]

_FAST = {"reassoc", "contract", "nsz"}


def unpack_int4_reference(packed: np.ndarray, K: int) -> np.ndarray:
    """(N, ceil(K/2)) uint8 → (N, K) uint8 nibbles (low nibble first)."""
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 0xF
    out[:, 1::2] = packed >> 4
    return out[:, :K]


def _check(packed, scale, zero_point, x, group_size):
    as_array("packed", packed, np.uint8, 2)
    as_array("x", x, np.float32, 1)
    as_array("scale", scale, np.float32, 2)
    as_array("zero_point", zero_point, np.uint8, 2)
    N, K = packed.shape[0], x.shape[0]
    if packed.shape[1] != (K + 1) // 2:
        raise ValueError(f"packed is {packed.shape}: K = {K} columns (len(x)) need {(K + 1) // 2} bytes per row")
    g = min(check_int("group_size", group_size, lo=1), max(K, 1))
    if g % 2 and g < K:
        raise ValueError(f"group_size must be even (groups start on a byte) or >= K = {K}, got {group_size}")
    G = (K + g - 1) // g
    if scale.shape != (N, G) or zero_point.shape != (N, G):
        raise ValueError(
            f"scale and zero_point must be (N, groups) = {(N, G)} for {N} rows, K = {K}, group_size {group_size}; "
            f"got {scale.shape} and {zero_point.shape}"
        )
    if zero_point.size and zero_point.max() > 15:
        raise ValueError(f"zero_point must be a 4-bit value in [0, 15], got max {zero_point.max()}")
    return g


def gemv_int4_reference(packed, scale, zero_point, x, group_size: int) -> np.ndarray:
    """``W_hat @ x`` with ``W_hat = scale · (q − zero_point)`` group-wise, in float64, returned as float32."""
    g = _check(packed, scale, zero_point, x, group_size)
    K = x.shape[0]
    q = unpack_int4_reference(packed, K).astype(np.float64)
    t = np.arange(K) // g
    W_hat = scale.astype(np.float64)[:, t] * (q - zero_point.astype(np.float64)[:, t])
    return (W_hat @ x.astype(np.float64)).astype(np.float32)


@njit(cache=True, parallel=True, fastmath=_FAST)
def _gemv_int4_core(packed, scale, zp, xe, xo, xsum, g2, y):
    N, nb = packed.shape
    G = scale.shape[1]
    for i in prange(N):
        row = packed[i]
        acc = np.float32(0.0)
        for t in range(G):
            # unsigned loop bounds: numba then drops its negative-index checks and LLVM vectorizes the loop
            b0 = np.uint64(t * g2)
            b1 = np.uint64(min((t + 1) * g2, nb))
            s_lo = np.float32(0.0)
            s_hi = np.float32(0.0)
            for b in range(b0, b1):
                v = np.int32(row[b])
                s_lo += np.float32(v & 15) * xe[b]
                s_hi += np.float32(v >> 4) * xo[b]
            acc += scale[i, t] * (s_lo + s_hi - np.float32(zp[i, t]) * xsum[t])
        y[i] = acc


def gemv_int4(packed, scale, zero_point, x, group_size: int) -> np.ndarray:
    """``y = W_hat @ x`` for group-wise int4 weights, unpacked inside the kernel.

    Parameters
    ----------
    packed : uint8 array (N, ceil(K/2)), C-contiguous
        Two 4-bit weights per byte (``labkit.quant.pack_int4`` of unsigned ``q`` in 0..15).
    scale : float32 array (N, G), C-contiguous
        One scale per row and group, ``G = ceil(K / group_size)``.
    zero_point : uint8 array (N, G), C-contiguous, values in 0..15
    x : float32 array (K,), C-contiguous
    group_size : int
        Even, or >= K (one group per row).

    Returns
    -------
    float32 array (N,), equal to :func:`gemv_int4_reference` up to float32 rounding.
    """
    g = _check(packed, scale, zero_point, x, group_size)
    N, K = packed.shape[0], x.shape[0]
    y = np.zeros(N, np.float32)
    if N and K:
        # x split into the entries that meet low nibbles (even columns) and high nibbles (odd columns),
        # each contiguous (an odd K pads the last high nibble's partner with 0); group sums of x
        xe = np.ascontiguousarray(x[0::2])
        xo = np.zeros(xe.size, np.float32)
        xo[: K // 2] = x[1::2]
        G = scale.shape[1]
        xsum = np.add.reduceat(x, np.arange(G) * g).astype(np.float32)
        _gemv_int4_core(packed, scale, zero_point, xe, xo, xsum, np.int64(g // 2 if g < K else xe.size), y)
    return y
