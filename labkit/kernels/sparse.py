"""Compressed sparse row (CSR) matrices: construction, SpMV, SpMM, and a compact int8 variant.

A pruned weight matrix W (m × n) with ``nnz`` kept entries is stored row by row as three arrays:

- ``data[p]``     the value of the p-th kept entry (float32; int8 in the compact variant),
- ``indices[p]``  its column,
- ``indptr[i]``   where row i starts in ``data``/``indices``; row i is ``p in [indptr[i], indptr[i+1])``.

``y = W @ x`` then reads ``nnz · (value bytes + index bytes) + 4 (m + 1)`` bytes of matrix instead
of ``4 m n``: at float32 values and int32 indices that is 8 bytes per kept weight, so CSR only reads
fewer bytes than dense float32 above 50 % sparsity, and each access to ``x[indices[p]]`` is a gather.
The compact variant stores int8 values with a float32 scale per row (or one per tensor) and 16-bit
column indices when ``n <= 65536``: 3 bytes per kept weight.

Semantics: ``y[i] = scale[i] · sum_p data[p] · x[indices[p]]`` over row i (``scale`` is 1 for float32
CSR). Column indices inside a row need not be sorted; duplicates add up, as in scipy.sparse.
A :class:`CSR` validates its arrays once when it is made (index ranges, monotone ``indptr``) and then
holds read-only copies, so the kernels can index without bounds checks.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..qarith import INT32_MAX
from ._checks import as_array

__all__ = [
    "CSR",
    "csr_from_dense",
    "csr_from_mask",
    "compact_csr",
    "spmv",
    "spmm",
    "csr_from_dense_reference",
    "spmv_reference",
    "spmm_reference",
]

_INDEX_DTYPES = (np.int32, np.int64, np.uint16)
_FAST = {"reassoc", "contract", "nsz"}  # reorder float sums so LLVM can vectorize them (no nan/inf assumptions)


class CSR:
    """A CSR matrix (float32 values, or int8 values with a float32 scale per row or per tensor).

    Parameters
    ----------
    data : float32 or int8 array (nnz,)
    indices : int32, int64 or uint16 array (nnz,)
        Column of each value, in ``[0, shape[1])``.
    indptr : int32 or int64 array (m + 1,)
        Non-decreasing, ``indptr[0] == 0``, ``indptr[-1] == nnz``.
    shape : (m, n)
    scale : float32 array (m,) or (1,), optional
        Required with int8 ``data`` (per-row or per-tensor scale), forbidden otherwise.
    check : bool
        Validate (default). Internal builders whose output is correct by construction skip it.

    Raises
    ------
    TypeError, ValueError
        On a wrong dtype, length, non-monotone ``indptr`` or a column index out of range: nothing is
        ever read out of bounds.
    """

    def __init__(self, data, indices, indptr, shape, scale=None, *, check: bool = True):
        if check:
            data, indices, indptr, shape, scale = _validate(data, indices, indptr, shape, scale)
        arrays = [data, indices, indptr] + ([] if scale is None else [scale])
        for a in arrays:
            a.flags.writeable = False
        self.data, self.indices, self.indptr, self.shape, self.scale = data, indices, indptr, shape, scale

    @property
    def nnz(self) -> int:
        return int(self.data.shape[0])

    @property
    def compact(self) -> bool:
        """True for int8 values with a scale."""
        return self.data.dtype == np.int8

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays: values + column indices + row pointers (+ scales)."""
        return sum(a.nbytes for a in (self.data, self.indices, self.indptr, self.scale) if a is not None)

    def row_scale(self) -> np.ndarray:
        """float32 (m,): the scale of each row (ones for float32 CSR)."""
        m = self.shape[0]
        if self.scale is None:
            return np.ones(m, np.float32)
        return np.broadcast_to(self.scale, (m,)).astype(np.float32) if self.scale.shape[0] == 1 else self.scale.copy()

    def todense(self) -> np.ndarray:
        """float32 (m, n) (compact values multiplied by their scale)."""
        m, n = self.shape
        out = np.zeros((m, n), np.float64)
        rows = np.repeat(np.arange(m), np.diff(self.indptr.astype(np.int64)))
        vals = self.data.astype(np.float64) * self.row_scale().astype(np.float64)[rows]
        np.add.at(out, (rows, self.indices.astype(np.int64)), vals)
        return out.astype(np.float32)

    def __repr__(self) -> str:
        per = "per-row" if self.scale is not None and self.scale.shape[0] == self.shape[0] else "per-tensor"
        kind = f"int8 values, {per} scale" if self.compact else "float32 values"
        return f"CSR(shape={self.shape}, nnz={self.nnz}, {kind}, {self.indices.dtype} indices, {self.nbytes} bytes)"


def _validate(data, indices, indptr, shape, scale):
    try:
        m, n = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of non-negative ints (m, n), got {shape!r}") from None
    if m < 0 or n < 0:
        raise ValueError(f"shape must be non-negative, got {shape!r}")
    data = np.array(as_array("data", data, (np.float32, np.int8), 1, contiguous=False))
    indices = np.array(as_array("indices", indices, _INDEX_DTYPES, 1, contiguous=False))
    indptr = np.array(as_array("indptr", indptr, (np.int32, np.int64), 1, contiguous=False))
    nnz = data.shape[0]
    if indices.shape[0] != nnz:
        raise ValueError(f"indices has {indices.shape[0]} entries but data has {nnz}: one column per value")
    if indptr.shape[0] != m + 1:
        raise ValueError(f"indptr must have m + 1 = {m + 1} entries for shape {(m, n)}, got {indptr.shape[0]}")
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise ValueError(f"indptr must start at 0 and end at nnz = {nnz}, got {indptr[0]} ... {indptr[-1]}")
    d = np.diff(indptr)
    if d.size and d.min() < 0:
        i = int(np.argmin(d))
        raise ValueError(
            f"indptr must be non-decreasing, but indptr[{i}] = {indptr[i]} > indptr[{i + 1}] = {indptr[i + 1]}"
        )
    if nnz:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n:
            bad = int(np.argmax((indices < 0) | (indices >= n)))
            raise ValueError(
                f"column index out of range: indices[{bad}] = {indices[bad]}, expected 0 <= index < n = {n}"
            )
    if data.dtype == np.int8:
        if scale is None:
            raise ValueError("int8 data needs a float32 scale of shape (m,) (per row) or (1,) (per tensor)")
        scale = np.array(as_array("scale", scale, np.float32, 1, contiguous=False))
        if scale.shape[0] not in (1, m) or (m != 1 and scale.shape[0] == 0):
            raise ValueError(f"scale must have shape ({m},) or (1,), got {scale.shape}")
        if not np.all(np.isfinite(scale)):
            raise ValueError("scale must be finite")
    elif scale is not None:
        raise ValueError("scale is only for int8 data; float32 CSR has no scale")
    return data, indices, indptr, (m, n), scale


# ----------------------------------------------------------------------------------------------
# numpy references
# ----------------------------------------------------------------------------------------------


def csr_from_dense_reference(A: np.ndarray, mask: np.ndarray | None = None):
    """(data, indices, indptr) of the nonzeros of ``A`` (or of the True entries of ``mask``), row by row."""
    keep = (A != 0) if mask is None else mask
    rows, cols = np.nonzero(keep)  # row-major order: sorted by row, then column
    indptr = np.zeros(A.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=A.shape[0]), out=indptr[1:])
    return A[rows, cols].astype(np.float32), cols.astype(np.int32), indptr


def spmv_reference(csr: CSR, x: np.ndarray) -> np.ndarray:
    """``y[i] = scale[i] * sum_p data[p] * x[indices[p]]``, one row at a time, in float64."""
    y = np.zeros(csr.shape[0], np.float64)
    s = csr.row_scale().astype(np.float64)
    for i in range(csr.shape[0]):
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        y[i] = s[i] * (csr.data[lo:hi].astype(np.float64) @ x[csr.indices[lo:hi]].astype(np.float64))
    return y


def spmm_reference(csr: CSR, B: np.ndarray) -> np.ndarray:
    """``csr @ B`` for dense B (n, k), in float64."""
    return csr.todense().astype(np.float64) @ B.astype(np.float64) if csr.nnz else np.zeros((csr.shape[0], B.shape[1]))


# ----------------------------------------------------------------------------------------------
# numba cores
# ----------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def _count_rows(A, mask, counts):
    m, n = A.shape
    for i in prange(m):
        c = 0
        if mask is None:
            for j in range(n):
                c += A[i, j] != 0
        else:
            for j in range(n):
                c += mask[i, j]
        counts[i] = c


@njit(cache=True, parallel=True)
def _fill_rows(A, mask, indptr, data, indices):
    m, n = A.shape
    for i in prange(m):
        p = indptr[i]
        for j in range(n):
            keep = (A[i, j] != 0) if mask is None else mask[i, j]
            if keep:
                data[p] = A[i, j]
                indices[p] = j
                p += 1


# Indices are cast to unsigned before use: numba adds a negative-index wraparound check to every
# signed index, which blocks vectorization; the CSR's validation guarantees they are in range.
@njit(cache=True, parallel=True, fastmath=_FAST)
def _spmv_core(indptr, indices, data, scale, x, y):
    m = y.shape[0]
    per_row = scale.shape[0] == m
    for i in prange(m):
        acc = np.float32(0.0)
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += np.float32(data[p]) * x[np.uint64(indices[p])]
        if scale.shape[0] == 0:
            y[i] = acc
        else:
            y[i] = acc * (scale[i] if per_row else scale[0])


@njit(cache=True, parallel=True, fastmath=_FAST)
def _spmm_core(indptr, indices, data, scale, B, Y):
    m, k = Y.shape
    per_row = scale.shape[0] == m
    for i in prange(m):
        y = Y[i]
        y[:] = 0.0
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            a = np.float32(data[p])
            b = B[np.uint64(indices[p])]
            for c in range(k):
                y[c] += a * b[c]
        if scale.shape[0] != 0:
            s = scale[i] if per_row else scale[0]
            for c in range(k):
                y[c] *= s


_NO_SCALE = np.zeros(0, np.float32)

# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------


def _build(A, mask):
    m, _ = A.shape
    counts = np.empty(m, np.int64)
    _count_rows(A, mask, counts)
    indptr = np.zeros(m + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    data = np.empty(nnz, np.float32)
    indices = np.empty(nnz, np.int32)
    _fill_rows(A, mask, indptr, data, indices)
    if nnz <= INT32_MAX:
        indptr = indptr.astype(np.int32)
    return CSR(data, indices, indptr, A.shape, check=False)


def csr_from_dense(A: np.ndarray) -> CSR:
    """CSR of the nonzero entries of a float32 matrix A (m, n), columns sorted within each row.

    int32 column indices (int32 row pointers while nnz < 2**31). Equal to
    :func:`csr_from_dense_reference`.
    """
    as_array("A", A, np.float32, 2)
    if A.shape[1] > INT32_MAX:
        raise ValueError(f"A has {A.shape[1]} columns, more than int32 indices can address")
    return _build(A, None)


def csr_from_mask(W: np.ndarray, mask: np.ndarray) -> CSR:
    """CSR of the entries of W (m, n) float32 where ``mask`` (bool, same shape; True = kept) is True.

    Kept entries that happen to be 0 are stored too: the sparsity pattern is the mask's.
    """
    as_array("W", W, np.float32, 2)
    as_array("mask", mask, np.bool_, 2)
    if mask.shape != W.shape:
        raise ValueError(f"mask must have W's shape {W.shape}, got {mask.shape}")
    return _build(W, mask)


def compact_csr(A, per_row: bool = True) -> CSR:
    """Compact CSR: int8 values, a float32 scale per row (or per tensor), 16-bit columns when they fit.

    Parameters
    ----------
    A : CSR with float32 values, or float32 array (m, n) (its nonzeros are kept)
    per_row : bool
        One symmetric scale per row (``max |row| / 127``) or a single one for the tensor.

    Values are ``clamp(round_half_even(a / scale), -127, 127)``; a row (or tensor) whose kept values are
    all zero gets scale 1. Column indices are uint16 when ``n <= 65536``, else int32.
    """
    if isinstance(A, np.ndarray):
        A = csr_from_dense(A)
    if not isinstance(A, CSR) or A.compact:
        raise TypeError(f"expected a float32 CSR or a float32 array, got {A!r}")
    m, n = A.shape
    rows = np.repeat(np.arange(m), np.diff(A.indptr.astype(np.int64)))
    mag = np.abs(A.data)
    if per_row:
        amax = np.zeros(m, np.float32)
        np.maximum.at(amax, rows, mag)
    else:
        amax = np.array([mag.max() if mag.size else 0.0], np.float32)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    s = scale[rows] if per_row else scale[0]
    q = np.clip(np.rint(A.data / s), -127, 127).astype(np.int8)
    idx = A.indices.astype(np.uint16) if n <= 65536 else A.indices.copy()
    return CSR(q, idx, A.indptr.copy(), (m, n), scale, check=False)


def _check_x(csr, x, ndim, name):
    if not isinstance(csr, CSR):
        raise TypeError(f"expected a labkit.kernels.CSR, got {type(csr).__name__}")
    as_array(name, x, np.float32, ndim)
    if x.shape[0] != csr.shape[1]:
        raise ValueError(f"{name} has {x.shape[0]} rows but the matrix {csr.shape} has {csr.shape[1]} columns")


def spmv(csr: CSR, x: np.ndarray) -> np.ndarray:
    """``y = csr @ x``: x float32 (n,) C-contiguous -> y float32 (m,).

    Rows run in parallel; the sum inside a row may be reordered (vectorized), so results equal
    :func:`spmv_reference` to float32 rounding, not bit for bit.
    """
    _check_x(csr, x, 1, "x")
    y = np.empty(csr.shape[0], np.float32)
    scale = _NO_SCALE if csr.scale is None else csr.scale
    _spmv_core(csr.indptr, csr.indices, csr.data, scale, x, y)
    return y


def spmm(csr: CSR, B: np.ndarray) -> np.ndarray:
    """``Y = csr @ B``: B float32 (n, k) C-contiguous -> Y float32 (m, k).

    For a batch of inputs X (batch, n) of a pruned Dense layer, ``spmm(W_csr, X.T.copy()).T`` is
    ``X @ W.T``.
    """
    _check_x(csr, B, 2, "B")
    Y = np.empty((csr.shape[0], B.shape[1]), np.float32)
    scale = _NO_SCALE if csr.scale is None else csr.scale
    _spmm_core(csr.indptr, csr.indices, csr.data, scale, B, Y)
    return Y
