"""2:4 semi-structured sparsity: compressed storage and its GEMV.

In a 2:4 sparse matrix (Mishra et al. 2021; NVIDIA Ampere's sparse tensor cores) every run of 4
consecutive weights of a row holds at most 2 non-zeros. It is stored as

- ``values`` (N, K/2) float32: the 2 kept weights of each group, in column order;
- ``meta``   (N, ceil(K/8)) uint8: the positions (0..3) of the 2 kept weights of each group, 2 bits
  each, so 4 bits per group and two groups per byte: group ``t`` of a row sits in byte ``t // 2``,
  low nibble for even ``t``; inside the nibble, bits 0–1 hold the first position, bits 2–3 the second.

That is ``N·K/2·4 + N·ceil(K/8)`` bytes instead of ``4·N·K``: 53 % of dense float32 (CSR at 50 %
sparsity needs 100 %: a 4-byte index per value). The GEMV reads ``x`` at ``4t + position``, always
inside the group's 4 entries: a gather with a small, fixed window.

A group with fewer than 2 non-zeros stores explicit zeros at the lowest free positions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import as_array
from ._simd import AVX512, nm24_block_dot

__all__ = ["NM24", "nm24_compress", "nm24_decompress", "gemv_nm24", "gemv_nm24_reference"]

_FAST = {"reassoc", "contract", "nsz"}


class NM24:
    """A 2:4 sparse matrix: ``values`` (N, K/2) float32, ``meta`` (N, ceil(K/8)) uint8, ``shape`` (N, K)."""

    def __init__(self, values: np.ndarray, meta: np.ndarray, shape):
        N, K = (int(v) for v in shape)
        if K % 4:
            raise ValueError(f"2:4 storage needs K a multiple of 4, got shape {tuple(shape)}")
        as_array("values", values, np.float32, 2)
        as_array("meta", meta, np.uint8, 2)
        if values.shape != (N, K // 2) or meta.shape != (N, (K + 7) // 8):
            raise ValueError(
                f"a 2:4 matrix of shape {(N, K)} needs values {(N, K // 2)} and meta {(N, (K + 7) // 8)}, "
                f"got {values.shape} and {meta.shape}"
            )
        self.values, self.meta, self.shape = values, meta, (N, K)

    @property
    def nbytes(self) -> int:
        """Bytes of ``values`` plus ``meta``."""
        return int(self.values.nbytes + self.meta.nbytes)

    def positions(self) -> np.ndarray:
        """(N, K/4, 2) int64: the column offset (0..3) of each kept value inside its group."""
        N, K = self.shape
        nib = np.empty((N, 2 * self.meta.shape[1]), np.uint8)
        nib[:, 0::2] = self.meta & 0xF
        nib[:, 1::2] = self.meta >> 4
        nib = nib[:, : K // 4].astype(np.int64)
        return np.stack([nib & 3, nib >> 2], axis=2)

    def todense(self) -> np.ndarray:
        """The (N, K) float32 matrix."""
        return nm24_decompress(self)

    def __repr__(self) -> str:
        return f"NM24(shape={self.shape}, nbytes={self.nbytes})"


def nm24_compress(W: np.ndarray, mask: np.ndarray | None = None) -> NM24:
    """Compress a 2:4 sparse float32 matrix (N, K), K a multiple of 4.

    Parameters
    ----------
    W : float32 array (N, K)
    mask : bool array (N, K), optional
        Exactly 2 True per group of 4 (``labkit.prune.nm_mask``): the kept positions. Without it,
        the non-zeros of ``W`` (at most 2 per group; padded with the lowest zero positions).

    Raises
    ------
    ValueError
        If a group has more than 2 non-zeros (or the mask does not keep exactly 2 of 4).
    """
    as_array("W", W, np.float32, 2, contiguous=False)
    N, K = W.shape
    if K % 4:
        raise ValueError(f"2:4 storage needs the number of columns to be a multiple of 4, got {K}")
    if mask is None:
        keep = (W != 0).reshape(N, K // 4, 4)
        counts = keep.sum(axis=2)
        if np.any(counts > 2):
            i, t = np.argwhere(counts > 2)[0]
            raise ValueError(
                f"W is not 2:4 sparse: row {i}, columns {4 * t}..{4 * t + 3} hold {counts[i, t]} non-zeros"
            )
        # pad: add the lowest-index zero positions until each group has 2
        order = np.argsort(~keep, axis=2, kind="stable")  # kept first (column order), then zeros
        pos = np.sort(order[:, :, :2], axis=2)
    else:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != W.shape:
            raise ValueError(f"mask must be a bool array of shape {W.shape}, got {mask.dtype} {mask.shape}")
        g = mask.reshape(N, K // 4, 4)
        if np.any(g.sum(axis=2) != 2):
            raise ValueError("mask must keep exactly 2 of every 4 consecutive entries of a row")
        pos = np.argsort(~g, axis=2, kind="stable")[:, :, :2]
    vals = np.take_along_axis(W.reshape(N, K // 4, 4), pos, axis=2).reshape(N, K // 2)
    nib = (pos[:, :, 0] | (pos[:, :, 1] << 2)).astype(np.uint8)  # (N, K/4)
    if nib.shape[1] % 2:
        nib = np.concatenate([nib, np.zeros((N, 1), np.uint8)], axis=1)
    meta = nib[:, 0::2] | (nib[:, 1::2] << 4)
    return NM24(np.ascontiguousarray(vals, np.float32), np.ascontiguousarray(meta, np.uint8), (N, K))


def nm24_decompress(m: NM24) -> np.ndarray:
    """The dense (N, K) float32 matrix of a :class:`NM24` (numpy reference)."""
    N, K = m.shape
    out = np.zeros((N, K // 4, 4), np.float32)
    np.put_along_axis(out, m.positions(), m.values.reshape(N, K // 4, 2), axis=2)
    return out.reshape(N, K)


def _check_x(m, x):
    if not isinstance(m, NM24):
        raise TypeError(f"expected an NM24 matrix (nm24_compress), got {type(m).__name__}")
    as_array("x", x, np.float32, 1)
    if x.shape[0] != m.shape[1]:
        raise ValueError(f"the matrix is {m.shape}: x needs {m.shape[1]} entries, got {x.shape[0]}")


def gemv_nm24_reference(m: NM24, x: np.ndarray) -> np.ndarray:
    """``todense(m) @ x`` in float64, returned as float32."""
    _check_x(m, x)
    return (nm24_decompress(m).astype(np.float64) @ x.astype(np.float64)).astype(np.float32)


@njit(cache=True, inline="always")
def _pick(bit0, bit1, a0, a1, a2, a3):
    """``a[p]`` for the position ``p = 2·bit1 + bit0``, as two levels of two-way selects.

    A chain of four cases would become a jump table, and a load ``x[4t + p]`` a gather: selects
    between values already loaded vectorize (16 groups per 512-bit register)."""
    lo = a1 if bit0 else a0
    hi = a3 if bit0 else a2
    return hi if bit1 else lo


@njit(cache=True, fastmath=_FAST)
def _row(v, mt, xp, x, simd):
    """One row: blocks of 32 columns with AVX-512 (``simd``), then the pairs of groups of each meta
    byte left (vectorized over bytes), then an odd last group."""
    acc = np.float32(0.0)
    n_pairs = xp.shape[1]
    start = 0
    if simd:  # 4 meta bytes = 8 groups = 16 kept values per block
        n_blocks = n_pairs // 4
        acc = nm24_block_dot(v, mt, x, n_blocks)
        start = 4 * n_blocks
    for b in range(start, n_pairs):
        m = np.int32(mt[b])  # bits 0-1, 2-3: the kept positions of group 2b; bits 4-5, 6-7: of group 2b + 1
        e0, e1, e2, e3 = xp[0, b], xp[1, b], xp[2, b], xp[3, b]
        o0, o1, o2, o3 = xp[4, b], xp[5, b], xp[6, b], xp[7, b]
        first = v[4 * b] * _pick((m & 1) != 0, (m & 2) != 0, e0, e1, e2, e3) + v[4 * b + 1] * _pick(
            (m & 4) != 0, (m & 8) != 0, e0, e1, e2, e3
        )
        second = v[4 * b + 2] * _pick((m & 16) != 0, (m & 32) != 0, o0, o1, o2, o3) + v[4 * b + 3] * _pick(
            (m & 64) != 0, (m & 128) != 0, o0, o1, o2, o3
        )
        acc += first + second
    if v.shape[0] > 4 * n_pairs:  # K = 8·n_pairs + 4: the last group has the low nibble of one more byte
        m = mt[n_pairs]
        base = 8 * n_pairs
        acc += v[4 * n_pairs] * x[base + (m & 3)] + v[4 * n_pairs + 1] * x[base + ((m >> 2) & 3)]
    return acc


@njit(cache=True, parallel=True)
def _gemv_parallel(values, meta, xp, x, simd, y):
    for i in prange(values.shape[0]):
        y[i] = _row(values[i], meta[i], xp, x, simd)


@njit(cache=True)
def _gemv_serial(values, meta, xp, x, simd, y):
    for i in range(values.shape[0]):
        y[i] = _row(values[i], meta[i], xp, x, simd)


_SERIAL_WORK = 1 << 18  # fewer weights than this: one thread
_USE_AVX512 = AVX512  # tests switch it off to run the portable loop on the same machine


def gemv_nm24(m: NM24, x: np.ndarray) -> np.ndarray:
    """``y = W @ x`` for a 2:4 sparse ``W`` in :class:`NM24` storage (float32 accumulation).

    With AVX-512, 16 kept weights at a time find their partners in 32 columns of ``x`` by one
    register permutation (:func:`labkit.kernels._simd.nm24_block_dot`). Elsewhere (and for the
    columns left over), each meta byte holds the positions of two groups (8 columns of ``x``); ``x``
    is split once per call into 8 phase arrays ``xp[c, b] = x[8b + c]``, and the kernel picks each
    kept weight's partner from the four phases of its group with selects, so the loop over bytes
    vectorizes (a gather ``x[4t + position]`` would not).

    Returns float32 (N,), equal to :func:`gemv_nm24_reference` up to float32 rounding.
    """
    _check_x(m, x)
    N, K = m.shape
    y = np.zeros(N, np.float32)
    if N and K:
        xp = np.ascontiguousarray(x[: 8 * (K // 8)].reshape(-1, 8).T)
        core = _gemv_serial if N * K < _SERIAL_WORK else _gemv_parallel
        core(m.values, m.meta, xp, x, _USE_AVX512, y)
    return y
