"""Where the surviving weights are: relative indices with filler zeros, and CSR for comparison.

Deep Compression (Han, Mao & Dally, ICLR 2016, Sec. 2 and Fig. 2) stores a pruned matrix as the
non-zero values plus, for each one, the *difference* of its position from the previous one, in a
few bits (8 bits for conv layers, 5 for fully connected layers in the paper). When a difference does
not fit, a *filler zero* is stored: an entry of value 0 placed as far as the bits reach, after which
counting restarts. EIE (Han et al., ISCA 2016) phrases the same code as "the number of zeros before
the entry", which is what is stored here: ``gap = position − previous position − 1`` in
``[0, 2**width − 1]`` (a difference of 1..2**width).

The matrix is read in row-major order (``W`` is (out, in), so one output unit's weights after
another); zeros after the last stored entry are not stored, the decoder knows the size.

CSR keeps, per row, the column index of every non-zero (int32) plus row pointers (rows + 1 int32):
``8·nnz + 4·(rows + 1)`` bytes with float32 values.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_bits

__all__ = ["relative_encode", "relative_decode", "csr_encode", "csr_decode", "csr_nbytes"]


def relative_encode(x, width: int = 5) -> tuple:
    """Relative-index (gap) encoding of a flat array, with filler zeros when a gap overflows.

    Parameters
    ----------
    x : array_like, shape (n,)
        The values in storage order; entries equal to 0 are not stored (except as fillers).
    width : int
        Bits per gap; gaps lie in [0, 2**width − 1].

    Returns
    -------
    gaps : ndarray of int64, shape (m,)
        Zeros skipped before each stored entry.
    values : ndarray, shape (m,), dtype of ``x``
        The stored entries: every non-zero of ``x`` in order, and a 0 for each filler.

    Examples
    --------
    >>> gaps, vals = relative_encode([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5], width=3)
    >>> gaps.tolist(), vals.tolist()   # the run of 9 zeros needs one filler (gap 7, value 0)
    ([2, 7, 1], [7, 0, 5])
    """
    width = check_bits(width, 1, 32, name="width")
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"relative_encode takes a flat array, got shape {x.shape}; pass W.ravel()")
    pos = np.flatnonzero(x)
    runs = np.diff(pos, prepend=-1) - 1  # zeros before each non-zero
    step = 1 << width  # a filler covers `step` positions: 2**width − 1 zeros, then itself
    n_fill = runs // step
    m = pos.size + int(n_fill.sum())
    gaps = np.full(m, step - 1, dtype=np.int64)
    values = np.zeros(m, dtype=x.dtype)
    real = np.cumsum(n_fill + 1) - 1  # where each real entry lands after its fillers
    gaps[real] = runs % step
    values[real] = x[pos]
    return gaps, values


def relative_decode(gaps, values, size: int) -> np.ndarray:
    """Rebuild the flat array of length ``size`` from :func:`relative_encode` output.

    Raises ValueError if the entries run past ``size`` or the arrays disagree in length.
    """
    gaps = np.asarray(gaps, dtype=np.int64).ravel()
    values = np.asarray(values).ravel()
    if gaps.shape != values.shape:
        raise ValueError(f"gaps and values must have the same length, got {gaps.size} and {values.size}")
    if gaps.size and gaps.min() < 0:
        raise ValueError("gaps must be >= 0")
    pos = np.cumsum(gaps + 1) - 1
    if pos.size and pos[-1] >= size:
        raise ValueError(f"the stored entries reach position {int(pos[-1])}, beyond the array size {size}")
    out = np.zeros(int(size), dtype=values.dtype)
    out[pos] = values
    return out


def csr_encode(w) -> tuple:
    """Compressed sparse row form of a 2-D array.

    Returns
    -------
    data : ndarray of float32, shape (nnz,)
    indices : ndarray of int32, shape (nnz,)  — column of each value
    indptr : ndarray of int32, shape (rows + 1,) — row r's values are ``data[indptr[r]:indptr[r+1]]``
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"csr_encode takes a 2-D matrix, got shape {w.shape}")
    rows, cols = np.nonzero(w)
    indptr = np.zeros(w.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
    return w[rows, cols].astype(np.float32), cols.astype(np.int32), indptr


def csr_decode(data, indices, indptr, shape) -> np.ndarray:
    """Dense float32 matrix of ``shape`` from CSR arrays."""
    indptr = np.asarray(indptr)
    if len(indptr) != shape[0] + 1 or len(data) != len(indices) or (len(indptr) and indptr[-1] != len(data)):
        raise ValueError(
            f"inconsistent CSR arrays for shape {tuple(shape)}: {len(data)} values, "
            f"{len(indices)} indices, {len(indptr)} row pointers"
        )
    out = np.zeros(shape, dtype=np.float32)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    out[rows, np.asarray(indices)] = data
    return out


def csr_nbytes(w, value_bytes: int = 4, index_bytes: int = 4) -> int:
    """Bytes of :func:`csr_encode`'s arrays: values + column indices + (rows + 1) row pointers."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"csr_nbytes takes a 2-D matrix, got shape {w.shape}")
    nnz = int(np.count_nonzero(w))
    return nnz * (value_bytes + index_bytes) + index_bytes * (w.shape[0] + 1)
