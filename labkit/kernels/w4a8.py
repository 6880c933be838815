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
vectorizes along ``k`` and must then add up across the lanes of a vector: for groups of 32 (16
bytes) that horizontal sum costs as much as the group's products. So the kernel keeps ``R = 128``
rows side by side: panel ``p`` holds rows ``128p .. 128p + 127`` as ``words[p, j, r]``, a 16-bit
word with the four codes of columns ``4j .. 4j + 3`` of row ``r`` (column ``4j + m`` in bits
``4m .. 4m + 3``). The inner loop reads one word per row for 128 rows (256 contiguous bytes), takes
the four codes apart with shifts and masks, multiplies each by the matching ``xq`` (one number, the
same for all 128 rows; ``15 · 127`` fits 16 bits) and adds into 128 int16 accumulators: a loop over
rows that LLVM turns into full-width vector instructions (``vpsrlw``, ``vpand``, ``vpmullw``,
``vpaddw``), with no horizontal sums, whatever the group size. Every 4 words the int16 sums move to
int32 (4 words · 4 codes · 15 · 127 = 30480 < 2¹⁵, so they cannot overflow); at the end of a group
the zero point and the scales are applied to all 128 rows at once. Rows are padded to a multiple of
128 and columns to a whole number of groups with code 0 (and activation 0), which adds nothing.

Bytes moved per GEMV: ``N·K/2`` of codes plus 5 bytes per row and group (scale and zero point),
against ``4·N·K`` for float32 and ``N·K`` for int8. :func:`gemm_w4a8` (a few rows of activations,
as when decoding several sequences at once) takes each word's codes apart once and reuses them for
every row of the batch, so the weights are read once per call.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..validation import check_int
from ._checks import as_array

__all__ = [
    "Int4Panels",
    "int4_panels",
    "quantize_activations",
    "quantize_activations_reference",
    "gemv_w4a8",
    "gemm_w4a8",
    "gemv_w4a8_reference",
]

_R = 128  # rows per panel: the lanes of the vectorized inner loop
_CHUNK = 4  # words summed in int16 before widening to int32 (see the module docstring)
_MAX_GROUP = 500_000  # |P| <= 2 · g · 15 · 127 stays below 2**31
_SERIAL_WORK = 1 << 18  # fewer weights than this: one thread (waking the pool costs more)


class Int4Panels:
    """Group-wise int4 weights in the kernel's panel layout (made by :func:`int4_panels`).

    Attributes
    ----------
    words : uint16 array (P, K_pad / 4, 128)
        ``words[p, j, r]``: the codes of columns ``4j .. 4j + 3`` of row ``128p + r``.
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

    def unpack(self):
        """``(q, scale, zero_point)`` in the row-major layout :func:`int4_panels` took (for checks)."""
        N, K = self.shape
        w = self.words.transpose(0, 2, 1).reshape(-1, self.words.shape[1])
        q = np.empty((w.shape[0], 4 * w.shape[1]), np.uint8)
        for m in range(4):
            q[:, m::4] = (w >> (4 * m)) & 15
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
    Np, Kp = P * _R, G * g
    qp = np.zeros((Np, Kp), np.uint16)
    qp[:N, :K] = q
    w = qp[:, 0::4] | (qp[:, 1::4] << 4) | (qp[:, 2::4] << 8) | (qp[:, 3::4] << 12)  # (Np, Kp/4)
    words = np.ascontiguousarray(w.reshape(P, _R, Kp // 4).transpose(0, 2, 1))
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
def _quantize_rows(X, g, KW):
    """Quantize each row of X (B, K) per group of g columns.

    Returns the codes as x4 (B, 4, KW) int16 with ``x4[b, m, j] = xq[b, 4j + m]`` (padding 0), the
    scales sx (B, G) float32, the group sums xs (B, G) int32, and False if X holds NaN or inf."""
    B, K = X.shape
    G = -(-K // g)
    x4 = np.zeros((B, 4, KW), np.int16)
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
                c = np.int16(v) if finite else np.int16(0)
                x4[b, k & 3, k >> 2] = c
                total += c
            sx[b, t] = s
            xs[b, t] = total
    return x4, sx, xs, finite


@njit(cache=True, inline="always")
def _add_words(words, x4, j0, n, acc16):
    """acc16 (R,) += the products of words j0 .. j0 + n - 1 (KW, R) with the codes x4 (4, KW)."""
    for j in range(j0, j0 + n):
        a0 = x4[0, j]
        a1 = x4[1, j]
        a2 = x4[2, j]
        a3 = x4[3, j]
        w = words[j]
        for r in range(_R):
            v = w[r]
            acc16[r] = np.int16(
                acc16[r] + np.int16(v & 15) * a0 + np.int16((v >> 4) & 15) * a1
                + np.int16((v >> 8) & 15) * a2 + np.int16(v >> 12) * a3
            )  # fmt: skip


@njit(cache=True, inline="always")
def _widen(acc16, acc32):
    for r in range(acc16.shape[0]):
        acc32[r] += acc16[r]
        acc16[r] = 0


@njit(cache=True, inline="always")
def _panel_gemv(words, scale, zero, x4, sx, xs, gw, acc16, acc32, y):
    """One panel times one quantized vector: y (R,) float32; words (KW, R), scale/zero (G, R)."""
    G = scale.shape[0]
    whole = gw - gw % _CHUNK  # words of a group in whole chunks (a constant trip count LLVM unrolls)
    y[:] = 0
    acc16[:] = 0
    for t in range(G):
        acc32[:] = 0
        j_start = t * gw
        for j0 in range(j_start, j_start + whole, _CHUNK):
            _add_words(words, x4, j0, _CHUNK, acc16)
            _widen(acc16, acc32)
        if gw > whole:
            _add_words(words, x4, j_start + whole, gw - whole, acc16)
            _widen(acc16, acc32)
        s_t = sx[t]
        xs_t = xs[t]
        for r in range(_R):
            p = np.int32(acc32[r] - np.int32(zero[t, r]) * xs_t)
            y[r] = y[r] + (scale[t, r] * s_t) * np.float32(p)


@njit(cache=True, parallel=True)
def _gemv_parallel(words, scale, zero, x, g, Y):
    x4, sx, xs, finite = _quantize_rows(x.reshape(1, -1), g, words.shape[1])
    for p in prange(words.shape[0]):
        acc16 = np.empty(_R, np.int16)
        acc32 = np.empty(_R, np.int32)
        _panel_gemv(words[p], scale[p], zero[p], x4[0], sx[0], xs[0], g // 4, acc16, acc32, Y[p])
    return finite


@njit(cache=True)
def _gemv_serial(words, scale, zero, x, g, Y):
    x4, sx, xs, finite = _quantize_rows(x.reshape(1, -1), g, words.shape[1])
    acc16 = np.empty(_R, np.int16)
    acc32 = np.empty(_R, np.int32)
    for p in range(words.shape[0]):
        _panel_gemv(words[p], scale[p], zero[p], x4[0], sx[0], xs[0], g // 4, acc16, acc32, Y[p])
    return finite


@njit(cache=True, inline="always")
def _panel_gemm(words, scale, zero, x4, sx, xs, gw, codes, acc16, acc32, Y):
    """One panel times B quantized vectors: Y (B, R); x4 (B, 4, KW), sx/xs (B, G).

    The four codes of each word are taken apart once into ``codes`` (4, R) and reused by every row
    of the batch."""
    B = x4.shape[0]
    G = scale.shape[0]
    Y[:] = 0
    acc16[:] = 0
    for t in range(G):
        acc32[:] = 0
        j_end = (t + 1) * gw
        for j0 in range(t * gw, j_end, _CHUNK):
            for j in range(j0, min(j0 + _CHUNK, j_end)):
                w = words[j]
                for r in range(_R):
                    v = w[r]
                    codes[0, r] = v & 15
                    codes[1, r] = (v >> 4) & 15
                    codes[2, r] = (v >> 8) & 15
                    codes[3, r] = v >> 12
                for b in range(B):
                    a0 = x4[b, 0, j]
                    a1 = x4[b, 1, j]
                    a2 = x4[b, 2, j]
                    a3 = x4[b, 3, j]
                    acc = acc16[b]
                    for r in range(_R):
                        acc[r] = np.int16(
                            acc[r] + codes[0, r] * a0 + codes[1, r] * a1 + codes[2, r] * a2 + codes[3, r] * a3
                        )
            for b in range(B):
                _widen(acc16[b], acc32[b])
        for b in range(B):
            s_t = sx[b, t]
            xs_t = xs[b, t]
            for r in range(_R):
                p = np.int32(acc32[b, r] - np.int32(zero[t, r]) * xs_t)
                Y[b, r] = Y[b, r] + (scale[t, r] * s_t) * np.float32(p)


@njit(cache=True, parallel=True)
def _gemm_parallel(words, scale, zero, X, g, Y):
    x4, sx, xs, finite = _quantize_rows(X, g, words.shape[1])
    B = X.shape[0]
    for p in prange(words.shape[0]):
        codes = np.empty((4, _R), np.int16)
        acc16 = np.empty((B, _R), np.int16)
        acc32 = np.empty((B, _R), np.int32)
        _panel_gemm(words[p], scale[p], zero[p], x4, sx, xs, g // 4, codes, acc16, acc32, Y[p])
    return finite


@njit(cache=True)
def _gemm_serial(words, scale, zero, X, g, Y):
    x4, sx, xs, finite = _quantize_rows(X, g, words.shape[1])
    B = X.shape[0]
    codes = np.empty((4, _R), np.int16)
    acc16 = np.empty((B, _R), np.int16)
    acc32 = np.empty((B, _R), np.int32)
    for p in range(words.shape[0]):
        _panel_gemm(words[p], scale[p], zero[p], x4, sx, xs, g // 4, codes, acc16, acc32, Y[p])
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
    x4, sx, _, finite = _quantize_rows(x.reshape(1, -1), g, -(-K // 4))
    if not finite:
        raise ValueError(_NOT_FINITE)
    return x4[0].T.reshape(-1)[:K].astype(np.int8), sx[0]


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
    if N == 0 or K == 0:
        return np.zeros(N, np.float32)
    Y = np.empty((panels.words.shape[0], _R), np.float32)
    core = _gemv_serial if N * K < _SERIAL_WORK else _gemv_parallel
    if not core(panels.words, panels.scale, panels.zero_point, x, panels.group_size, Y):
        raise ValueError(_NOT_FINITE)
    return Y.reshape(-1)[:N]


def gemm_w4a8(panels: Int4Panels, X: np.ndarray) -> np.ndarray:
    """``Y = X @ W_hat.T`` for a small batch: each row of ``X`` (B, K) is one :func:`gemv_w4a8`.

    The codes of each weight word are unpacked once and reused by all ``B`` rows, so the weights are
    read once for the whole batch (decoding ``B`` sequences at once). Returns float32 (B, N); row
    ``b`` equals ``gemv_w4a8(panels, X[b])`` bit for bit.
    """
    _check_panels(panels)
    as_array("X", X, np.float32, 2)
    N, K = panels.shape
    if X.shape[1] != K:
        raise ValueError(f"the weights are {panels.shape}: X needs {K} columns, got {X.shape[1]}")
    B = X.shape[0]
    if N == 0 or K == 0 or B == 0:
        return np.zeros((B, N), np.float32)
    P = panels.words.shape[0]
    Y = np.empty((P, B, _R), np.float32)
    core = _gemm_serial if B * N * K < _SERIAL_WORK else _gemm_parallel
    if not core(panels.words, panels.scale, panels.zero_point, X, panels.group_size, Y):
        raise ValueError(_NOT_FINITE)
    return Y.transpose(1, 0, 2).reshape(B, P * _R)[:, :N].copy()
