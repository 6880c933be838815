"""int4 weights times int8 activations (W4A8): group-wise GEMV and small-batch GEMM, exact per group.

Weights ``W`` (N × K) are stored as 4-bit codes ``q`` (0..15) with one float32 scale ``s`` and one
4-bit zero point ``z`` per row and group of ``g`` consecutive columns (GPTQ/AWQ's format). The
activation ``x`` is quantized on the fly to int8, one symmetric scale per group of the same ``g``
columns, as llama.cpp's Q4_0 × Q8_0 dot product does::

    sx[t] = max |x[k]| / 127 over group t (1 when the group is all zero),  xq = clamp(rint(x / sx), ±127)

Then every group's inner product is an *integer*, exact in int32::

    P[i, t] = sum_{k in group t} (q[i, k] − z[i, t]) · xq[k]

and the output applies each group's two scales once, summing the groups in order in float32::

    y[i] = (...((0 + (s[i, 0]·sx[0])·P[i, 0]) + (s[i, 1]·sx[1])·P[i, 1]) + ...)

Every float32 operation here is a single correctly rounded multiply or add in a fixed order, so the
fast kernel equals :func:`gemv_w4a8_reference` **bit for bit** — not just to rounding. (With float32
activations the inner sums would be float sums whose order the vectorizer picks, and only a
tolerance could be tested; that is :func:`labkit.kernels.gemv_int4`.) The price is the rounding of
``x`` to 8 bits, the same for every kernel that uses this format.

**Layout for speed** (:class:`Int4Panels`, made once per weight matrix by :func:`int4_panels`).
In the row-major layout each group's sum would be a dot product along the row, which LLVM
vectorizes along ``k`` and must then add up across the lanes of a vector: for groups of 32 that
horizontal sum costs as much as the group's products. So the kernel keeps ``R = 128`` rows side by
side: panel ``p`` holds rows ``128p .. 128p + 127`` as ``words[p, j, r]``, a 32-bit word with 8 codes
of row ``r``: byte ``m`` holds column ``8j + m`` in its low nibble and column ``8j + 4 + m`` in its high
nibble. One mask (``w & 0x0F0F0F0F``) gives the codes of columns ``8j .. 8j + 3`` as four bytes, a
shift and the mask those of ``8j + 4 .. 8j + 7``. Each group is padded with code 0 (and activation 0,
which adds nothing) to a multiple of 8 columns, rows to a multiple of 128.

Two inner loops read this layout and give the same integers:

- on CPUs with AVX-512 VNNI, ``vpdpbusd`` multiplies the four code bytes of 16 rows by four int8
  activations and adds each row's four products to an int32 lane: 16 rows × 8 codes in 5
  instructions (:func:`labkit.kernels._simd.int4_group_dot`, the instruction llama.cpp uses);
- elsewhere, a numba loop over the 128 rows takes the 8 codes apart with shifts and masks, multiplies
  each by its activation in int16 (``8 · 15 · 127`` fits) and moves the int16 sums to int32 every 2
  words (``2 · 8 · 15 · 127 = 30480 < 2¹⁵``): LLVM vectorizes it over rows, with no horizontal sums.

At the end of a group the zero point and the scales are applied to all 128 rows at once.

Bytes moved per GEMV: ``N·K/2`` of codes plus 5 bytes per row and group (scale and zero point),
against ``4·N·K`` for float32 and ``N·K`` for int8. :func:`gemm_w4a8` (a few rows of activations,
as when decoding several sequences at once) runs every row of the batch over a group while its
words are in the L1 cache, so the weights are read from memory once per call.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..validation import check_int
from ._checks import as_array
from ._simd import AVX512_VNNI, PANEL_ROWS, X_ROWS, int4_group_dot, int4_group_dot_rows

__all__ = [
    "Int4Panels",
    "int4_panels",
    "quantize_activations",
    "quantize_activations_reference",
    "gemv_w4a8",
    "gemm_w4a8",
    "gemv_w4a8_reference",
]

_R = PANEL_ROWS  # rows per panel: the lanes of the vectorized inner loop (128)
_CODES = 8  # codes per 32-bit word
_CHUNK = 2  # words summed in int16 before widening to int32 (portable loop; see the module docstring)
_MAX_GROUP = 500_000  # |P| <= 2 · g · 15 · 127 stays below 2**31
_SERIAL_WORK = 1 << 18  # fewer weights than this: one thread (waking the pool costs more)
_USE_VNNI = AVX512_VNNI  # tests switch it off to run the portable loop on the same machine


class Int4Panels:
    """Group-wise int4 weights in the kernel's panel layout (made by :func:`int4_panels`).

    Attributes
    ----------
    words : uint32 array (P, G · g8 / 8, 128)
        ``words[p, j, r]``: 8 codes of row ``128p + r`` (see the module docstring), each group padded
        to ``g8``, the group size rounded up to a multiple of 8.
    scale : float32 array (P, G, 128)
        ``scale[p, t, r]``: the scale of row ``128p + r``, group ``t`` (0 for padding rows).
    zero_point : uint8 array (P, G, 128)
    shape : (N, K)
        The weight matrix's shape (before padding).
    group_size : int
        Columns per group (a multiple of 4; one group per row is ``K`` rounded up to a multiple of 4).
    """

    def __init__(self, words, scale, zero_point, shape, group_size):
        self.words, self.scale, self.zero_point = words, scale, zero_point
        self.shape = (int(shape[0]), int(shape[1]))
        self.group_size = int(group_size)
        for a in (words, scale, zero_point):
            a.flags.writeable = False

    @property
    def n_groups(self) -> int:
        return int(self.scale.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes the GEMV reads for the weights: codes, scales and zero points (padding included)."""
        return int(self.words.nbytes + self.scale.nbytes + self.zero_point.nbytes)

    @property
    def words_per_group(self) -> int:
        return -(-self.group_size // _CODES)

    def unpack(self):
        """``(q, scale, zero_point)`` in the row-major layout :func:`int4_panels` took (for checks)."""
        N, K = self.shape
        w = self.words.transpose(0, 2, 1).reshape(-1, self.words.shape[1])  # (rows, words)
        q = np.empty((w.shape[0], w.shape[1], _CODES), np.uint8)
        for m in range(4):
            q[:, :, m] = (w >> (8 * m)) & 15
            q[:, :, 4 + m] = (w >> (8 * m + 4)) & 15
        q = q.reshape(w.shape[0], self.n_groups, -1)[:, :, : self.group_size].reshape(w.shape[0], -1)
        scale = self.scale.transpose(0, 2, 1).reshape(-1, self.n_groups)
        zp = self.zero_point.transpose(0, 2, 1).reshape(-1, self.n_groups)
        return q[:N, :K].copy(), scale[:N].copy(), zp[:N].copy()

    def __repr__(self) -> str:
        return f"Int4Panels(shape={self.shape}, group_size={self.group_size}, nbytes={self.nbytes})"


def _effective_group(group_size, K: int) -> int:
    g = check_int("group_size", group_size, lo=1)
    if g >= K:  # one group per row
        return max(4, -(-K // 4) * 4)
    if g % 4:
        raise ValueError(f"group_size must be a multiple of 4 (or >= K = {K}), got {group_size}")
    return g


def int4_panels(q, scale, zero_point, group_size) -> Int4Panels:
    """Rearrange group-wise int4 weights into the GEMV's panel layout (once per weight matrix).

    Parameters
    ----------
    q : uint8 array (N, K), values 0..15
        The codes (``labkit.quant.quantize_groupwise(W, 4, g)[0]``; signed codes −8..7 are stored as
        ``q + 8`` with zero point 8).
    scale : float32 array (N, G), finite, ``G = ceil(K / group_size)``
    zero_point : integer array (N, G), values 0..15
    group_size : int
        A multiple of 4 (32, 64, 128 …), or ``>= K`` for one group per row.

    Returns
    -------
    Int4Panels
    """
    as_array("q", q, np.uint8, 2, contiguous=False)
    as_array("scale", scale, np.float32, 2, contiguous=False)
    zero_point = np.asarray(zero_point)
    if zero_point.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be an integer array, got dtype {zero_point.dtype}")
    N, K = q.shape
    g = _effective_group(group_size, K)
    if g > _MAX_GROUP:
        raise ValueError(f"a group of {g} columns can overflow the int32 group sums (at most {_MAX_GROUP})")
    G = -(-K // g) if K else 0
    if scale.shape != (N, G) or zero_point.shape != (N, G):
        raise ValueError(
            f"scale and zero_point must be (N, groups) = {(N, G)} for q of shape {q.shape} and group_size "
            f"{group_size}; got {scale.shape} and {zero_point.shape}"
        )
    if q.size and q.max() > 15:
        raise ValueError(f"q must hold 4-bit codes 0..15, got max {q.max()} (store signed codes as q + 8)")
    if zero_point.size and (zero_point.min() < 0 or zero_point.max() > 15):
        raise ValueError(f"zero_point must be in [0, 15], got [{zero_point.min()}, {zero_point.max()}]")
    if not np.all(np.isfinite(scale)):
        raise ValueError("scale must be finite")
    P = -(-N // _R)
    Np, g8 = P * _R, -(-g // _CODES) * _CODES
    codes = np.zeros((Np, G * g), np.uint32)
    codes[:N, :K] = q
    padded = np.zeros((Np, G, g8), np.uint32)
    padded[:, :, :g] = codes.reshape(Np, G, g)
    eight = padded.reshape(Np, G * g8 // _CODES, _CODES)  # (rows, words, 8 codes)
    w = np.zeros(eight.shape[:2], np.uint32)
    for m in range(4):
        w |= (eight[:, :, m] | (eight[:, :, 4 + m] << 4)) << (8 * m)
    words = np.ascontiguousarray(w.reshape(P, _R, G * g8 // _CODES).transpose(0, 2, 1))
    sp = np.zeros((Np, G), np.float32)
    sp[:N] = scale
    zp = np.zeros((Np, G), np.uint8)
    zp[:N] = zero_point
    sp = np.ascontiguousarray(sp.reshape(P, _R, G).transpose(0, 2, 1))
    zp = np.ascontiguousarray(zp.reshape(P, _R, G).transpose(0, 2, 1))
    return Int4Panels(words, sp, zp, (N, K), g)


# ----------------------------------------------------------------------------------------------
# numpy references (the oracles in tests): plain row-major arrays, no panels
# ----------------------------------------------------------------------------------------------


def quantize_activations_reference(x, group_size: int):
    """Symmetric int8 per group of ``x`` (K,) float32: ``(xq int8 (K,), sx float32 (G,))``.

    ``sx[t] = max|x| / 127`` over group ``t`` (1 for an all-zero group), ``xq = clamp(rint(x / sx), ±127)``
    with ``rint`` rounding half to even; float32 arithmetic throughout.
    """
    x = np.asarray(x, np.float32)
    K = x.shape[0]
    g = _effective_group(group_size, K)
    G = -(-K // g) if K else 0
    sx = np.ones(G, np.float32)
    xq = np.zeros(K, np.int8)
    for t in range(G):
        xt = x[t * g : (t + 1) * g]
        amax = np.max(np.abs(xt))
        if amax > 0:
            sx[t] = amax / np.float32(127)
        xq[t * g : (t + 1) * g] = np.clip(np.rint(xt / sx[t]), -127, 127).astype(np.int8)
    return xq, sx


def gemv_w4a8_reference(q, scale, zero_point, x, group_size: int) -> np.ndarray:
    """``y`` (N,) float32 of the W4A8 product, from row-major ``q`` (N, K), ``scale``/``zero_point`` (N, G).

    Exact integer group sums ``P`` (int64, checked to fit int32), then the groups summed in order in
    float32: ``y = y + (scale[:, t] * sx[t]) * float32(P[:, t])`` (the definition in the module docstring).
    """
    q = np.asarray(q)
    N, K = q.shape
    g = _effective_group(group_size, K)
    xq, sx = quantize_activations_reference(x, group_size)
    G = len(sx)
    y = np.zeros(N, np.float32)
    for t in range(G):
        cols = slice(t * g, (t + 1) * g)
        d = q[:, cols].astype(np.int64) - np.asarray(zero_point, np.int64)[:, t : t + 1]
        P = d @ xq[cols].astype(np.int64)
        if P.size and np.abs(P).max() >= 2**31:
            raise OverflowError("int32 group sum overflow")
        y = y + (np.asarray(scale, np.float32)[:, t] * sx[t]) * P.astype(np.float32)
    return y


# ----------------------------------------------------------------------------------------------
# numba cores
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _quantize_rows(X, g, gw):
    """Quantize each row of X (B, K) per group of g columns.

    Returns the codes as x8 (B, G · 8 · gw) int8, each group padded with zeros to ``8 · gw`` columns
    (``x8.view(np.int32)`` is what :func:`_simd.int4_group_dot` reads), the scales sx (B, G)
    float32, the group sums xs (B, G) int32, and False if X holds NaN or inf."""
    B, K = X.shape
    G = -(-K // g)
    g8 = _CODES * gw
    x8 = np.zeros((B, G * g8), np.int8)
    sx = np.empty((B, G), np.float32)
    xs = np.empty((B, G), np.int32)
    finite = True
    for b in range(B):
        for t in range(G):
            k0 = t * g
            k1 = min(K, k0 + g)
            amax = np.float32(0.0)
            for k in range(k0, k1):
                a = abs(X[b, k])
                finite &= a < np.inf  # False for inf and NaN
                amax = max(amax, a)
            s = amax / np.float32(127.0) if amax > 0 else np.float32(1.0)
            total = 0
            for k in range(k0, k1):
                v = min(max(np.rint(X[b, k] / s), np.float32(-127.0)), np.float32(127.0))
                c = np.int8(v) if finite else np.int8(0)
                x8[b, t * g8 + k - k0] = c
                total += c
            sx[b, t] = s
            xs[b, t] = total
    return x8, sx, xs, finite


@njit(cache=True, inline="always")
def _add_words(words, x8, j0, j1, acc16):
    """acc16 (R,) += the products of words j0 .. j1 - 1 (KW, R) with their activations (portable loop)."""
    for j in range(j0, j1):
        x = x8[8 * j : 8 * j + 8]
        a0, a1, a2, a3 = np.int16(x[0]), np.int16(x[1]), np.int16(x[2]), np.int16(x[3])
        a4, a5, a6, a7 = np.int16(x[4]), np.int16(x[5]), np.int16(x[6]), np.int16(x[7])
        w = words[j]
        for r in range(_R):
            v = w[r]
            low = np.int16(v & 15) * a0 + np.int16((v >> 8) & 15) * a1 + np.int16((v >> 16) & 15) * a2
            high = np.int16((v >> 4) & 15) * a4 + np.int16((v >> 12) & 15) * a5 + np.int16((v >> 20) & 15) * a6
            top = np.int16((v >> 24) & 15) * a3 + np.int16(v >> 28) * a7
            acc16[r] = np.int16(acc16[r] + low + high + top)


@njit(cache=True, inline="always")
def _group_sums(words, x8, j0, j1, vnni, acc16, acc32):
    """acc32 (R,) = the exact int32 sums of one group (words j0 .. j1 - 1) for the 128 rows of a panel."""
    acc32[:] = 0
    if vnni:
        int4_group_dot(acc32, words, j0, j1, x8.view(np.int32))
        return
    for c0 in range(j0, j1, _CHUNK):
        acc16[:] = 0
        _add_words(words, x8, c0, min(c0 + _CHUNK, j1), acc16)
        for r in range(_R):
            acc32[r] += acc16[r]


@njit(cache=True, inline="always")
def _apply_scales(acc32, zero_t, scale_t, s_t, xs_t, y):
    """y (R,) += (scale · sx) · (P − z · sum(xq)) for one group: the integer sum becomes float once."""
    for r in range(_R):
        p = np.int32(acc32[r] - np.int32(zero_t[r]) * xs_t)
        y[r] = y[r] + (scale_t[r] * s_t) * np.float32(p)


@njit(cache=True, inline="always")
def _panel_gemm(words, scale, zero, x8, sx, xs, gw, vnni, acc16, acc32, acc4, Y):
    """One panel times B quantized vectors: Y (B, R); words (KW, R), scale/zero (G, R), x8 (B, ·).

    Every row of the batch runs over a group while its words (at most 8 KiB for g = 128) are in L1;
    with VNNI, rows go 4 at a time through :func:`_simd.int4_group_dot_rows` (each word taken apart
    once for the 4) and the rest one by one."""
    Y[:] = 0
    B = x8.shape[0]
    in_fours = B - B % X_ROWS if vnni else 0
    for t in range(scale.shape[0]):
        j0, j1 = t * gw, (t + 1) * gw
        for b0 in range(0, in_fours, X_ROWS):
            acc4[:] = 0
            int4_group_dot_rows(acc4, words, j0, j1, x8[b0 : b0 + X_ROWS].view(np.int32))
            for b in range(b0, b0 + X_ROWS):
                _apply_scales(acc4[b - b0], zero[t], scale[t], sx[b, t], xs[b, t], Y[b])
        for b in range(in_fours, B):
            _group_sums(words, x8[b], j0, j1, vnni, acc16, acc32)
            _apply_scales(acc32, zero[t], scale[t], sx[b, t], xs[b, t], Y[b])


@njit(cache=True, parallel=True)
def _gemm_parallel(words, scale, zero, X, g, gw, vnni, Y):
    x8, sx, xs, finite = _quantize_rows(X, g, gw)
    for p in prange(words.shape[0]):
        acc16 = np.empty(_R, np.int16)
        acc32 = np.empty(_R, np.int32)
        acc4 = np.empty((X_ROWS, _R), np.int32)
        _panel_gemm(words[p], scale[p], zero[p], x8, sx, xs, gw, vnni, acc16, acc32, acc4, Y[p])
    return finite


@njit(cache=True)
def _gemm_serial(words, scale, zero, X, g, gw, vnni, Y):
    x8, sx, xs, finite = _quantize_rows(X, g, gw)
    acc16 = np.empty(_R, np.int16)
    acc32 = np.empty(_R, np.int32)
    acc4 = np.empty((X_ROWS, _R), np.int32)
    for p in range(words.shape[0]):
        _panel_gemm(words[p], scale[p], zero[p], x8, sx, xs, gw, vnni, acc16, acc32, acc4, Y[p])
    return finite


# ----------------------------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------------------------


def _check_panels(panels):
    if not isinstance(panels, Int4Panels):
        raise TypeError(f"expected Int4Panels (made by int4_panels), got {type(panels).__name__}")


_NOT_FINITE = "the activations must be finite: NaN or inf cannot be quantized"


def quantize_activations(x, group_size: int):
    """The fast path's activation quantization, as :func:`quantize_activations_reference` returns it.

    x : float32 array (K,), finite. Returns ``(xq int8 (K,), sx float32 (G,))``, equal bit for bit
    to the reference.
    """
    as_array("x", x, np.float32, 1)
    K = x.shape[0]
    g = _effective_group(group_size, K)
    gw = -(-g // _CODES)
    x8, sx, _, finite = _quantize_rows(x.reshape(1, -1), g, gw)
    if not finite:
        raise ValueError(_NOT_FINITE)
    return x8[0].reshape(sx.shape[1], _CODES * gw)[:, :g].reshape(-1)[:K].copy(), sx[0]


def gemv_w4a8(panels: Int4Panels, x: np.ndarray) -> np.ndarray:
    """``y = W_hat @ x`` with int4 group-wise weights and ``x`` quantized to int8 per group.

    Parameters
    ----------
    panels : Int4Panels
        The weights, from :func:`int4_panels`.
    x : float32 array (K,), C-contiguous, finite

    Returns
    -------
    float32 array (N,), equal bit for bit to :func:`gemv_w4a8_reference` on the same ``q, scale,
    zero_point``. Panels split over numba's threads (one thread below 2**18 weights: waking the
    pool would cost more than the work).
    """
    if not isinstance(panels, Int4Panels):
        _check_panels(panels)
    as_array("x", x, np.float32, 1)
    N, K = panels.shape
    if x.shape[0] != K:
        raise ValueError(f"the weights are {panels.shape}: x needs {K} entries, got {x.shape[0]}")
    return _run(panels, x.reshape(1, -1))[0]


def _run(panels, X):
    """The W4A8 product of every row of X (B, K), as float32 (B, N)."""
    N, K = panels.shape
    B = X.shape[0]
    if N == 0 or K == 0 or B == 0:
        return np.zeros((B, N), np.float32)
    P = panels.words.shape[0]
    Y = np.empty((P, B, _R), np.float32)
    core = _gemm_serial if B * N * K < _SERIAL_WORK else _gemm_parallel
    args = (panels.words, panels.scale, panels.zero_point, X, panels.group_size, panels.words_per_group)
    if not core(*args, _USE_VNNI, Y):
        raise ValueError(_NOT_FINITE)
    return Y.transpose(1, 0, 2).reshape(B, P * _R)[:, :N].copy()


def gemm_w4a8(panels: Int4Panels, X: np.ndarray) -> np.ndarray:
    """``Y = X @ W_hat.T`` for a small batch: each row of ``X`` (B, K) is one :func:`gemv_w4a8`.

    Every row of the batch runs over a group of weight words while they sit in the L1 cache, so the
    weights are read from memory once for the whole batch (decoding ``B`` sequences at once).
    Returns float32 (B, N); row ``b`` equals ``gemv_w4a8(panels, X[b])`` bit for bit.
    """
    _check_panels(panels)
    as_array("X", X, np.float32, 2)
    N, K = panels.shape
    if X.shape[1] != K:
        raise ValueError(f"the weights are {panels.shape}: X needs {K} columns, got {X.shape[1]}")
    return _run(panels, X)
