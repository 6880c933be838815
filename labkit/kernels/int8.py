"""Integer matrix products: int8 GEMV and GEMM with int32 accumulation, and their epilogues.

A quantized Dense layer stores ``W_q`` (int8, out × in) and receives ``x_q`` (int8, with a zero point
``z_x``). Its core is the integer product

    acc[i, j] = sum_k (A[i, k] - z_a) * B[j, k]            (A: batch × K, B: out × K, both int8)

Each product fits in 16 bits (|(-255) * (-128)| = 32640) but their sum does not: two products of
-128 · -128 already make 32768 > 32767. In 32 bits the sum is exact while
``K * max|A - z_a| * 128 <= 2**31 - 1`` (K <= 131071 when z_a = 0); the kernels check that bound.

Epilogues, fused into the same loop so no int32 matrix is written and re-read:

- ``gemm_int8_requant``: the integer-only requantization of Jacob et al. (2018), with a fixed-point
  multiplier ``M = M0 · 2**-(31 + shift)`` (``M0`` an int32), ``y = clamp(z_y + round((acc + bias) · M))``.
  Rounding is half to even (labkit's convention, as numpy and PyTorch round); ``acc + bias`` saturates
  to the int32 range first, as an int32 add would.
- ``gemm_int8_dequant``: back to float32, ``y = float32(acc) · scale[j] + bias[j]`` (dynamic quantization).

Layout: ``B`` is row-major out × K, like ``Dense.W``, so every output is a dot product of two
contiguous rows. The fast core widens ``A − z_a`` to int16 once per call and keeps ``B`` in int8:
the dot product ``acc += a16[k] · int16(b[k])`` is the loop LLVM compiles to ``vpmovsxbw`` (int8 to
int16) plus ``vpdpwssd`` (AVX-512 VNNI: 32 16-bit multiplies, pairs summed into 16 int32 lanes) or
``vpmaddwd`` + ``vpaddd`` without VNNI (see ``labkit.kernels._tuning`` for the two LLVM settings
this needs). Each task owns a block of 16 output channels and accumulates an ``M × 16`` int32 tile:
up to 4 rows of ``A`` it streams the 16 rows of ``B`` in int8; for more rows it widens a 16 × 1024
block of ``B`` to int16 once (32 KiB: it stays in L1 while every row of ``A`` passes over it), so
the dot product becomes a bare ``vpdpwssd`` per 32 columns. The epilogue runs on
the tile once it is complete (no ``M × N`` int32 matrix is written and re-read). Below 2**18
multiply-adds everything runs on the calling thread: waking numba's thread pool would cost more.

On CPUs with AVX-512 VNNI, 4 rows or more go to a register-blocked micro-kernel instead
(:func:`labkit.kernels._simd.int8_tile_dot`): ``A + 128`` as unsigned bytes against ``B`` as it is
stored, 4 rows × 4 output channels in 16 registers, 64 columns per step, one ``vpdpbusd`` (4 byte
products added into an int32 lane) per register; the offset comes back out as ``128 · sum_k B``.
The result is the same integers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..qarith import INT32_MAX, int_range, requantize, saturate_int32
from ..validation import check_bits
from ._checks import as_array, as_scalar
from ._simd import AVX512_VNNI, CHUNK, TILE_COLS, TILE_ROWS, int8_tile_dot

__all__ = [
    "gemv_int8",
    "gemm_int8",
    "gemm_int8_requant",
    "gemm_int8_dequant",
    "gemm_int8_reference",
    "requantize_reference",
    "gemm_int8_dequant_reference",
    "max_accumulation_length",
]

_NR = 16  # output channels (rows of B) per task: the int32 tile is M × 16
_KC = 1024  # columns per block of K when M > 4: 16 rows of B (16 KiB) stay in L1 while A passes
_SERIAL_WORK = 1 << 18  # fewer multiply-adds than this: one thread
_TILE_FROM_ROWS = 4  # rows of A from which the VNNI micro-kernel is used (fewer: B streams once, as int8)
_TASKS = 256  # runs of channel groups the VNNI path splits over the thread pool
_USE_VNNI = AVX512_VNNI  # tests switch it off to run the portable loops on the same machine


def max_accumulation_length(zero_point: int = 0, unsigned: bool = False) -> int:
    """Largest K for which ``sum_k (a_k - zero_point) * b_k`` always fits in int32.

    ``a_k`` int8 (or uint8 if ``unsigned``), ``b_k`` int8.
    """
    lo, hi = (0, 255) if unsigned else (-128, 127)
    worst = max(abs(lo - zero_point), abs(hi - zero_point)) * 128
    return INT32_MAX // worst


# ----------------------------------------------------------------------------------------------
# numpy references (the oracles in tests)
# ----------------------------------------------------------------------------------------------


def gemm_int8_reference(A: np.ndarray, B: np.ndarray, a_zero_point: int = 0) -> np.ndarray:
    """``(A - a_zero_point) @ B.T`` in int64, checked to fit and returned as int32 (M, N)."""
    acc = (A.astype(np.int64) - a_zero_point) @ B.astype(np.int64).T
    if acc.size and (acc.max() > INT32_MAX or acc.min() < -INT32_MAX - 1):
        raise OverflowError("int32 accumulator overflow")
    return acc.astype(np.int32)


def requantize_reference(
    acc,
    bias,
    multiplier,
    shift,
    out_zero_point: int = 0,
    bits: int = 8,
    signed: bool = True,
    relu: bool = False,
    narrow_range: bool = False,
) -> np.ndarray:
    """Integer requantization of an int32 accumulator (M, N) per output channel j (numpy reference).

    ``y = clamp(out_zero_point + round_half_even(sat32(acc + bias[j]) * multiplier[j] / 2**(31 + shift[j])),
    qmin, qmax)``, computed exactly in int64; ``[qmin, qmax]`` is the signed or unsigned ``bits``-bit
    range (without its lowest code if ``narrow_range``), and a fused ReLU raises qmin to
    ``out_zero_point`` (real 0). It is :func:`labkit.qarith.requantize` (the arithmetic of
    ``labkit.quant``'s integer engine) applied after the saturating bias add. Returns int8 / uint8.
    """
    v = saturate_int32(np.asarray(acc, np.int64) + np.asarray(bias, np.int64))
    return requantize(v, multiplier, shift, out_zero_point, bits, signed, relu, narrow_range=narrow_range)


def gemm_int8_dequant_reference(acc, scale, bias=None) -> np.ndarray:
    """``float32(acc) * scale[j] + bias[j]`` in float32 (numpy reference)."""
    y = np.asarray(acc).astype(np.float32) * np.asarray(scale, np.float32)
    return y if bias is None else y + np.asarray(bias, np.float32)


# ----------------------------------------------------------------------------------------------
# numba cores (no bounds checks: the public functions validate first)
# ----------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _dot(a16, b):
    """sum_k a16[k] · b[k] in int32, b int8 or int16 (the loop LLVM turns into vpdpwssd / vpmaddwd)."""
    acc = np.int32(0)
    for k in range(a16.shape[0]):
        acc = np.int32(acc + a16[k] * np.int16(b[k]))
    return acc


@njit(cache=True, inline="always")
def _rshift_rhe(p, s):
    if s == 0:
        return p
    q = p >> s
    r = p - (q << s)
    half = np.int64(1) << (s - 1)
    if r > half or (r == half and (q & 1) == 1):
        q += 1
    return q


@njit(cache=True, inline="always")
def _epilogue(acc, i, j, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias):
    if mode == 0:
        out32[i, j] = acc
    elif mode == 1:
        v = np.int64(acc) + bias_i[j]
        if v > 2147483647:
            v = np.int64(2147483647)
        elif v < -2147483648:
            v = np.int64(-2147483648)
        q = _rshift_rhe(v * mult[j], 31 + shift[j]) + zp
        out8[i, j] = min(max(q, lo), hi)
    else:
        outf[i, j] = np.float32(acc) * fscale[j] + fbias[j]


@njit(cache=True)
def _widen(A, za):
    """A − za as int16 (M, K): the zero point is subtracted once, not in every dot product."""
    M, K = A.shape
    A16 = np.empty((M, K), np.int16)
    for i in range(M):
        for k in range(K):
            A16[i, k] = np.int16(A[i, k]) - np.int16(za)
    return A16


@njit(cache=True, inline="always")
def _block(A16, B, j0, tile, B16, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias):
    """Output channels j0 .. j0 + 15 (fewer at the end) for every row: accumulate, then the epilogue.

    Up to 4 rows of A, each row of B is read as int8 and widened inside the dot product (it is used
    at most 4 times). For more rows, a block of B (16 × 1024) is widened to int16 once into ``B16``
    and every row of A runs against it from L1 (the dot product is then one vpdpwssd per 32 columns)."""
    M, K = A16.shape
    j1 = min(B.shape[0], j0 + _NR)
    tile[:, :] = 0
    if M <= 4:
        for j in range(j0, j1):
            for i in range(M):
                tile[i, j - j0] = _dot(A16[i], B[j])
    else:
        for k0 in range(0, K, _KC):
            k1 = min(K, k0 + _KC)
            for j in range(j0, j1):
                src, dst = B[j, k0:k1], B16[j - j0]
                for k in range(k1 - k0):
                    dst[k] = src[k]
            for i in range(M):
                a = A16[i, k0:k1]
                for j in range(j0, j1):
                    tile[i, j - j0] += _dot(a, B16[j - j0, : k1 - k0])
    for i in range(M):
        for j in range(j0, j1):
            _epilogue(tile[i, j - j0], i, j, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias)


@njit(cache=True)
def _unsigned_rows(A, a_off):
    """``A + a_off`` as unsigned bytes (int8 A: a_off = 128), rows padded with zeros to a multiple of 4."""
    M, K = A.shape
    au = np.zeros((-(-M // TILE_ROWS) * TILE_ROWS, K), np.uint8)
    for i in range(M):
        for k in range(K):
            au[i, k] = np.uint8(np.int16(A[i, k]) + a_off)
    return au


@njit(cache=True, inline="always")
def _weight_sums(B, j0, colsum):
    """colsum[c] = sum_k B[j0 + c, k] for the output channels of one tile (0 past the last)."""
    for c in range(colsum.shape[0]):
        total = np.int32(0)
        if j0 + c < B.shape[0]:
            row = B[j0 + c]
            for k in range(row.shape[0]):
                total += np.int32(row[k])
        colsum[c] = total


@njit(cache=True, inline="always")
def _all_tiles(A, za, a_off, B, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias):
    """The VNNI path: groups of 4 output channels over threads; in each, tiles of 4 rows × 4 channels.

    ``sum_k (A - za) · B = sum_k (A + a_off) · B - (a_off + za) · sum_k B``: the micro-kernel multiplies
    unsigned activations by signed weights (what ``vpdpbusd`` takes) 64 columns at a time, the last
    ``K mod 64`` columns are added here, and the epilogue subtracts the correction. Everything is
    congruent modulo 2³², so the int32 result is exact whenever it fits. The 4 weight rows of a group
    (4 KiB each at K = 4096) stay in L1 while every tile of A passes over them."""
    M, (N, K) = A.shape[0], B.shape
    au = _unsigned_rows(A, a_off)
    n_chunks = K // CHUNK
    corr = np.int64(a_off + za)
    n_groups = (N + TILE_COLS - 1) // TILE_COLS
    n_tasks = min(n_groups, _TASKS)
    for task in prange(n_tasks):  # contiguous runs of channel groups; scratch arrays made once per run
        colsum = np.empty(TILE_COLS, np.int64)
        tile = np.empty((TILE_ROWS, TILE_COLS), np.int32)
        for jb in range(task * n_groups // n_tasks, (task + 1) * n_groups // n_tasks):
            j0 = jb * TILE_COLS
            _weight_sums(B, j0, colsum)
            for i0 in range(0, au.shape[0], TILE_ROWS):
                int8_tile_dot(tile, au, i0, B, j0, n_chunks)
                for r in range(min(TILE_ROWS, M - i0)):
                    for c in range(min(TILE_COLS, N - j0)):
                        acc = np.int64(tile[r, c]) - corr * colsum[c]
                        for k in range(n_chunks * CHUNK, K):
                            acc += np.int64(au[i0 + r, k]) * B[j0 + c, k]
                        out = np.int32(acc)  # wraps modulo 2**32 like the int32 sums it continues
                        _epilogue(
                            out, i0 + r, j0 + c, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias
                        )


@njit(cache=True, inline="always")
def _all_blocks(A, za, a_off, B, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias):
    """Every block of output channels; a ``prange`` loop, so parallel inside a parallel caller.

    With ``a_off`` >= 0 (4 rows or more on a CPU with AVX-512 VNNI): the register-blocked
    micro-kernel (:func:`_all_tiles`). Otherwise blocks of 16 channels with the vectorized dot
    products: up to 3 rows the weights stream once as int8 and the product is memory-bound (on 4096 ×
    4096 with 2 threads the micro-kernel was no faster there: best of 30 0.71 / 1.08 ms against
    0.94 / 1.07 ms at 2 / 3 rows, and faster from 4 rows: 1.27 against 1.53 ms)."""
    if a_off >= 0:
        _all_tiles(A, za, a_off, B, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias)
        return
    A16 = _widen(A, za)
    M = A.shape[0]
    for jb in prange((B.shape[0] + _NR - 1) // _NR):
        tile = np.empty((M, _NR), np.int32)
        B16 = np.empty((_NR, _KC) if M > 4 else (0, 0), np.int16)
        _block(A16, B, jb * _NR, tile, B16, mode, out32, out8, outf, bias_i, mult, shift, zp, lo, hi, fscale, fbias)


# One entry point per epilogue and thread mode, each taking only the arrays its epilogue needs: every
# argument costs numba's dispatcher a type check, and on a small layer those checks are the call.


@njit(cache=True, parallel=True)
def _int32_parallel(A, za, a_off, B, out):
    no8, nof, noi = np.empty((0, 0), np.int8), np.empty((0, 0), np.float32), np.empty(0, np.int64)
    _all_blocks(
        A, za, a_off, B, 0, out, no8, nof, noi, noi, noi, 0, 0, 0, np.empty(0, np.float32), np.empty(0, np.float32)
    )


@njit(cache=True)
def _int32_serial(A, za, a_off, B, out):
    no8, nof, noi = np.empty((0, 0), np.int8), np.empty((0, 0), np.float32), np.empty(0, np.int64)
    _all_blocks(
        A, za, a_off, B, 0, out, no8, nof, noi, noi, noi, 0, 0, 0, np.empty(0, np.float32), np.empty(0, np.float32)
    )


@njit(cache=True, parallel=True)
def _requant_parallel(A, za, a_off, B, out, bias_i, mult, shift, zp, lo, hi):
    no32, nof = np.empty((0, 0), np.int32), np.empty((0, 0), np.float32)
    _all_blocks(
        A,
        za,
        a_off,
        B,
        1,
        no32,
        out,
        nof,
        bias_i,
        mult,
        shift,
        zp,
        lo,
        hi,
        np.empty(0, np.float32),
        np.empty(0, np.float32),
    )


@njit(cache=True)
def _requant_serial(A, za, a_off, B, out, bias_i, mult, shift, zp, lo, hi):
    no32, nof = np.empty((0, 0), np.int32), np.empty((0, 0), np.float32)
    _all_blocks(
        A,
        za,
        a_off,
        B,
        1,
        no32,
        out,
        nof,
        bias_i,
        mult,
        shift,
        zp,
        lo,
        hi,
        np.empty(0, np.float32),
        np.empty(0, np.float32),
    )


@njit(cache=True, parallel=True)
def _dequant_parallel(A, za, a_off, B, out, fscale, fbias):
    no32, no8, noi = np.empty((0, 0), np.int32), np.empty((0, 0), np.int8), np.empty(0, np.int64)
    _all_blocks(A, za, a_off, B, 2, no32, no8, out, noi, noi, noi, 0, 0, 0, fscale, fbias)


@njit(cache=True)
def _dequant_serial(A, za, a_off, B, out, fscale, fbias):
    no32, no8, noi = np.empty((0, 0), np.int32), np.empty((0, 0), np.int8), np.empty(0, np.int64)
    _all_blocks(A, za, a_off, B, 2, no32, no8, out, noi, noi, noi, 0, 0, 0, fscale, fbias)


# ----------------------------------------------------------------------------------------------
# public kernels
# ----------------------------------------------------------------------------------------------


def _check_operands(A, B, a_zero_point):
    as_array("A", A, (np.int8, np.uint8), 2)
    as_array("B", B, np.int8, 2)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A is {A.shape} and B is {B.shape}: both need the same number of columns K (B is out × K, like Dense.W)"
        )
    return _zero_point_and_length(A, a_zero_point)


def _zero_point_and_length(A, a_zero_point):
    """The zero point of A as an int, checked against A's dtype, and K checked against int32 overflow."""
    za = as_scalar("a_zero_point", a_zero_point, "i")
    unsigned = A.dtype == np.uint8
    zlo, zhi = (0, 255) if unsigned else (-128, 127)
    if not zlo <= za <= zhi:
        raise ValueError(f"a_zero_point must be in [{zlo}, {zhi}] for {A.dtype} activations, got {za}")
    K = A.shape[1]
    kmax = max_accumulation_length(za, unsigned)
    if K > kmax:
        raise ValueError(f"K = {K} products can overflow the int32 accumulator (at most {kmax} with a_zero_point {za})")
    return za


def _per_channel(name, v, N, dtype, kind):
    arr = np.asarray(v)
    if arr.dtype.kind not in kind:
        raise TypeError(f"{name} must be {'an integer' if kind == 'iu' else 'a real'} scalar or array, got {arr.dtype}")
    if arr.ndim == 0:
        return np.full(N, arr, dtype)
    if arr.shape != (N,):
        raise ValueError(f"{name} must be a scalar or have shape ({N},) (one per output channel), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype)


def _serial(A, B) -> bool:
    return A.shape[0] * B.shape[0] * A.shape[1] < _SERIAL_WORK


def _unsigned_offset(A) -> np.int64:
    """What makes A unsigned for the VNNI micro-kernel (128 for int8, 0 for uint8), or -1: not used here
    (no VNNI, or fewer rows than :data:`_TILE_FROM_ROWS`)."""
    if not _USE_VNNI or A.shape[0] < _TILE_FROM_ROWS:
        return np.int64(-1)
    return np.int64(128 if A.dtype == np.int8 else 0)


def gemm_int8(A: np.ndarray, B: np.ndarray, a_zero_point: int = 0) -> np.ndarray:
    """``(A - a_zero_point) @ B.T`` with int32 accumulation.

    Parameters
    ----------
    A : int8 or uint8 array (M, K), C-contiguous
        Quantized activations, one sample per row.
    B : int8 array (N, K), C-contiguous
        Quantized weights, out × in (``Dense.W`` layout).
    a_zero_point : int in [-128, 127] (int8 A) or [0, 255] (uint8 A)
        Zero point of ``A`` (weights are symmetric: zero point 0).

    Returns
    -------
    int32 array (M, N), exactly equal to :func:`gemm_int8_reference`.
    """
    za = _check_operands(A, B, a_zero_point)
    out = np.empty((A.shape[0], B.shape[0]), np.int32)
    if out.size:
        (_int32_serial if _serial(A, B) else _int32_parallel)(A, np.int64(za), _unsigned_offset(A), B, out)
    return out


def gemv_int8(W: np.ndarray, x: np.ndarray, x_zero_point: int = 0) -> np.ndarray:
    """``W @ (x - x_zero_point)`` with int32 accumulation: W int8 (N, K), x int8/uint8 (K,) -> int32 (N,)."""
    as_array("x", x, (np.int8, np.uint8), 1)
    as_array("W", W, np.int8, 2)
    if W.shape[1] != x.shape[0]:
        raise ValueError(f"W is {W.shape} and x is {x.shape}: x needs W.shape[1] = {W.shape[1]} entries")
    X = x.reshape(1, -1)
    za = _zero_point_and_length(X, x_zero_point)
    out = np.empty((1, W.shape[0]), np.int32)
    if out.size:
        (_int32_serial if _serial(X, W) else _int32_parallel)(X, np.int64(za), np.int64(-1), W, out)
    return out.reshape(-1)


def gemm_int8_requant(
    A,
    B,
    bias,
    multiplier,
    shift,
    out_zero_point: int = 0,
    a_zero_point: int = 0,
    bits: int = 8,
    signed: bool = True,
    relu: bool = False,
    narrow_range: bool = False,
):
    """int8 GEMM fused with per-channel fixed-point requantization (Jacob et al. 2018).

    ``y[i, j] = clamp(out_zero_point + round_half_even(sat32(acc[i, j] + bias[j]) * multiplier[j]
    / 2**(31 + shift[j])), -2**(bits-1), 2**(bits-1) - 1)`` with ``acc = (A - a_zero_point) @ B.T``.

    Parameters
    ----------
    A, B, a_zero_point : as in :func:`gemm_int8`.
    bias : int32 scalar or array (N,)
        Bias in accumulator units (``round(b / (s_a · s_w[j]))``).
    multiplier : int scalar or array (N,), in [0, 2**31)
        ``M0`` of the real multiplier ``M = s_a · s_w[j] / s_y = M0 · 2**-(31 + shift)``.
    shift : int scalar or array (N,), with ``0 <= 31 + shift <= 62``
        Right shift after the 31-bit fixed-point product (positive for M < 0.5).
    out_zero_point : int
        Zero point of the output.
    bits : int in [2, 8]
        Output width.
    signed : bool
        int8 output range ``[-2**(bits-1), 2**(bits-1) - 1]`` or uint8 ``[0, 2**bits - 1]``.
    relu : bool
        Fused ReLU: clamp below at ``out_zero_point`` (real 0) instead of at qmin.
    narrow_range : bool
        Leave out the lowest code (int8 output in ``[-2**(bits-1) + 1, 2**(bits-1) - 1]``), for an
        output quantized symmetrically (``labkit.quant.int_range(bits, signed, narrow_range=True)``).

    Returns
    -------
    int8 or uint8 array (M, N), exactly ``requantize_reference(gemm_int8_reference(A, B, z), ...)``.
    With ``bias = q_b`` and ``a_zero_point = z_x`` it equals ``labkit.quant.integer_dense`` (whose
    int32 accumulator would wrap where this one saturates).
    """
    za = _check_operands(A, B, a_zero_point)
    N = B.shape[0]
    bits = check_bits(bits, 2, 8)
    bias_i = _per_channel("bias", bias, N, np.int64, "iu")
    mult = _per_channel("multiplier", multiplier, N, np.int64, "iu")
    sh = _per_channel("shift", shift, N, np.int64, "iu")
    if N and (mult.min() < 0 or mult.max() > INT32_MAX):
        raise ValueError(f"multiplier must be in [0, 2**31 - 1], got range [{mult.min()}, {mult.max()}]")
    if N and ((31 + sh).min() < 0 or (31 + sh).max() > 62):
        raise ValueError(f"shift must satisfy 0 <= 31 + shift <= 62, got range [{sh.min()}, {sh.max()}]")
    zp = as_scalar("out_zero_point", out_zero_point, "i")
    qlo, hi = int_range(bits, signed, narrow_range)
    if not qlo <= zp <= hi:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"out_zero_point must be in [{qlo}, {hi}] for {bits}-bit {kind} output, got {zp}")
    lo = max(qlo, zp) if relu else qlo  # a fused ReLU clamps at real 0
    out = np.empty((A.shape[0], N), np.int8 if signed else np.uint8)
    if out.size:
        core = _requant_serial if _serial(A, B) else _requant_parallel
        core(A, np.int64(za), _unsigned_offset(A), B, out, bias_i, mult, sh, np.int64(zp), np.int64(lo), np.int64(hi))
    return out


def gemm_int8_dequant(A, B, scale, bias=None, a_zero_point: int = 0) -> np.ndarray:
    """int8 GEMM fused with dequantization to float32 (the core of dynamic quantization).

    ``y[i, j] = float32(acc[i, j]) * scale[j] + bias[j]`` with ``acc = (A - a_zero_point) @ B.T``;
    ``scale[j] = s_a · s_w[j]`` (float32 scalar or (N,)), ``bias`` float32 scalar or (N,) or None.
    Returns float32 (M, N), equal to :func:`gemm_int8_dequant_reference` up to float32 rounding.
    """
    za = _check_operands(A, B, a_zero_point)
    N = B.shape[0]
    fscale = _per_channel("scale", scale, N, np.float32, "iuf")
    fbias = _per_channel("bias", 0.0 if bias is None else bias, N, np.float32, "iuf")
    out = np.empty((A.shape[0], N), np.float32)
    if out.size:
        (_dequant_serial if _serial(A, B) else _dequant_parallel)(
            A, np.int64(za), _unsigned_offset(A), B, out, fscale, fbias
        )
    return out
