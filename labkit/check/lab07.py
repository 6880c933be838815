"""Checks for lab 07 (kernels and timing): CSR from a dense matrix, CSR mat-vec, bytes moved by a GEMV."""

import numpy as np

from ..kernels import csr_from_dense_reference
from .exercise import Case, Exercise, compare_arrays

# --- Exercise 1: CSR from a dense matrix ------------------------------------------------------------


def _csr_reference(A):
    data, indices, indptr = csr_from_dense_reference(np.asarray(A, np.float32))
    return data, indices.astype(np.int64), indptr.astype(np.int64)


def _compare_csr(got, expected, case):
    (A,) = case.args
    m, n = A.shape
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return a tuple (data, indices, indptr), got {type(got).__name__}"
    try:
        data, indices, indptr = (np.asarray(g) for g in got)
    except Exception:  # noqa: BLE001
        return "data, indices and indptr must be arrays"
    e_data, e_idx, e_ptr = expected
    for name, arr in (("indices", indices), ("indptr", indptr)):
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            return f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}"
    if indptr.shape != (m + 1,):
        if indptr.shape == (m,) and np.array_equal(indptr, e_ptr[1:]):
            return f"indptr has {m} entries, expected m + 1 = {m + 1}: start it with 0 (row i is indptr[i]:indptr[i+1])"
        if indptr.shape == (m,) and np.array_equal(indptr, np.diff(e_ptr)):
            return "indptr holds the count of each row: it must be their running sum, starting at 0"
        return f"indptr has shape {indptr.shape}, expected ({m + 1},): one entry per row plus one"
    if data.size == m * n and e_data.size < m * n:
        return f"you stored all {m * n} entries, zeros included: keep only the {e_data.size} nonzeros"
    if data.size != e_data.size:
        return f"you stored {data.size} values, but A has {e_data.size} nonzeros"
    if indptr[0] != 0 or indptr[-1] != e_data.size:
        return f"indptr must start at 0 and end at nnz = {e_data.size}, got {indptr[0]} ... {indptr[-1]}"
    if not np.array_equal(indptr, e_ptr):
        c_data, c_idx, c_ptr = csr_from_dense_reference(np.ascontiguousarray(A.T, np.float32))
        if indptr.shape == c_ptr.shape and np.array_equal(indptr, c_ptr) and np.array_equal(indices, c_idx):
            return "you walked A column by column (that is CSC, or CSR of A.T): CSR goes row by row"
        return compare_arrays(indptr, e_ptr, "indptr") + " (indptr[i+1] - indptr[i] = nonzeros in row i)"
    if not np.array_equal(indices, e_idx):
        rows_t, cols_t = np.nonzero(A.T)
        if np.array_equal(np.sort(indices), np.sort(e_idx)) and not np.array_equal(indices, e_idx):
            return "the columns are not in row-major order: walk row by row, columns left to right"
        rows = np.nonzero(A)[0]
        if (indices.size == rows_t.size and np.array_equal(indices, rows_t)) or np.array_equal(indices, rows):
            return "indices hold row numbers: CSR stores each nonzero's column"
        return compare_arrays(indices, e_idx, "indices")
    return compare_arrays(data, e_data, "data", rtol=0, atol=0, exact=True)


def _csr_cases(rng):
    cases = []
    for _ in range(4):
        m, n = (int(v) for v in rng.integers(1, 12, 2))
        A = (rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.4)).astype(np.float32)
        cases.append(Case((A,), label=f"random {m}x{n}"))
    return cases


_fixed_A = np.array([[0, 2, 0, 0], [0, 0, 0, 0], [5, 0, 0, 7], [0, 0, 3, 0]], np.float32)

csr_from_dense = Exercise(
    "csr_from_dense",
    _csr_reference,
    cases=_csr_cases,
    fixed_cases=[
        Case((_fixed_A,), label="the 4x4 example (row 1 is empty)"),
        Case((np.zeros((3, 2), np.float32),), label="all zeros"),
        Case((np.eye(1, dtype=np.float32),), label="1x1"),
    ],
    compare=_compare_csr,
    pass_line="csr_from_dense: all checks passed",
)

# --- Exercise 2: CSR mat-vec ------------------------------------------------------------------------


def _matvec_reference(data, indices, indptr, x):
    m = len(indptr) - 1
    y = np.zeros(m, np.float64)
    for i in range(m):
        lo, hi = indptr[i], indptr[i + 1]
        y[i] = np.dot(data[lo:hi].astype(np.float64), x[indices[lo:hi]].astype(np.float64))
    return y.astype(np.float32)


def _compare_matvec(got, expected, case):
    data, indices, indptr, x = case.args
    m = len(indptr) - 1
    got_a = np.asarray(got)
    if got_a.shape != (m,):
        n = x.shape[0]
        if got_a.shape == (n,) and n != m:
            return f"y has {n} entries (the length of x): it must have one per row, m = {m}"
        return f"y has shape {got_a.shape}, expected ({m},): one entry per row"
    A = np.zeros((m, x.shape[0]))
    for i in range(m):
        A[i, indices[indptr[i] : indptr[i + 1]]] = data[indptr[i] : indptr[i + 1]]
    if m == x.shape[0] and not np.allclose(A, A.T) and np.allclose(got_a, A.T @ x, rtol=1e-4, atol=1e-5):
        return "you computed A.T @ x: in row i, multiply data[p] by x[indices[p]] and add to y[i]"
    short = _naive_short_rows(case)
    if not np.allclose(short, expected) and np.allclose(got_a, short, rtol=1e-4, atol=1e-5):
        return "each row's last entry is missing: row i is p in range(indptr[i], indptr[i + 1]), end excluded"
    no_gather = _naive_no_gather(case)
    if not np.allclose(no_gather, expected) and np.allclose(got_a, no_gather, rtol=1e-4, atol=1e-5):
        return "multiply each value by x at its column: x[indices[p]], not x[p]"
    return compare_arrays(got_a, expected, "y", rtol=1e-4, atol=1e-5)


def _naive_short_rows(case):
    """The slip range(indptr[i], indptr[i + 1] - 1): drops each row's last entry."""
    data, indices, indptr, x = case.args
    out = np.zeros(len(indptr) - 1)
    for i in range(len(out)):
        for p in range(indptr[i], indptr[i + 1] - 1):
            out[i] += data[p] * x[indices[p]]
    return out


def _naive_no_gather(case):
    """The plausible slip data[p] * x[p] (no gather through indices), p wrapped into range."""
    data, indices, indptr, x = case.args
    m = len(indptr) - 1
    out = np.zeros(m)
    for i in range(m):
        for p in range(indptr[i], indptr[i + 1]):
            out[i] += data[p] * x[p % x.shape[0]]
    return out


def _matvec_cases(rng):
    cases = []
    for _ in range(4):
        m, n = (int(v) for v in rng.integers(1, 15, 2))
        A = (rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.35)).astype(np.float32)
        data, indices, indptr = csr_from_dense_reference(A)
        x = rng.standard_normal(n).astype(np.float32)
        cases.append(Case((data, indices, indptr, x), label=f"random {m}x{n}"))
    return cases


def _fixed_matvec():
    data, indices, indptr = csr_from_dense_reference(_fixed_A)
    x = np.array([1, 2, 3, 4], np.float32)
    wide = np.array([[0, 0, 1.5, 0, 0, -2]], np.float32)
    d2, i2, p2 = csr_from_dense_reference(wide)
    return [
        Case((data, indices, indptr, x), label="the 4x4 example, x = [1, 2, 3, 4]"),
        Case((d2, i2, p2, np.arange(6, dtype=np.float32)), label="one row, 6 columns"),
    ]


csr_matvec = Exercise(
    "csr_matvec",
    _matvec_reference,
    cases=_matvec_cases,
    fixed_cases=_fixed_matvec(),
    compare=_compare_matvec,
    pass_line="csr_matvec: all checks passed",
)

# --- Exercise 3: bytes moved by one GEMV ------------------------------------------------------------


def _gemv_bytes(m, n, sparsity):
    nnz = m * n - int(np.floor(sparsity * m * n))
    return {
        "dense_fp32": 4 * m * n + 4 * n + 4 * m,
        "csr_fp32": 8 * nnz + 4 * (m + 1) + 4 * n + 4 * m,
        "int8": m * n + n + 4 * m,
    }


def _compare_bytes(got, expected, case):
    m, n, sparsity = case.args
    if not isinstance(got, dict):
        return f"return a dict with keys {sorted(expected)}, got {type(got).__name__}"
    if set(got) != set(expected):
        return f"the dict must have exactly the keys {sorted(expected)}, got {sorted(got)}"
    nnz = m * n - int(np.floor(sparsity * m * n))
    for key in ("dense_fp32", "csr_fp32", "int8"):
        g = got[key]
        if isinstance(g, (bool, np.bool_)) or not isinstance(g, (int, np.integer)):
            if isinstance(g, (float, np.floating)) and float(g).is_integer():
                return f"{key} must be an int (a count of bytes), got float {g!r}"
            return f"{key} must be an int (a count of bytes), got {type(g).__name__} {g!r}"
        e = expected[key]
        if g == e:
            continue
        if key == "dense_fp32" and g == 4 * m * n:
            return f"dense_fp32 = {g} counts only W: add x (4n bytes) and y (4m bytes)"
        if key == "csr_fp32":
            if g == 4 * nnz + 4 * (m + 1) + 4 * n + 4 * m:
                return "csr_fp32 counts 4 bytes per kept weight: each also has a 4-byte column index"
            if g == 8 * nnz + 4 * n + 4 * m:
                return "csr_fp32 forgets the row pointers: indptr has m + 1 int32 entries"
            if g == 8 * (m * n - nnz) + 4 * (m + 1) + 4 * n + 4 * m:
                return "csr_fp32 counts the removed weights: keep m·n - floor(sparsity·m·n) of them"
        if key == "int8":
            if g == m * n + n + m:
                return "int8: the accumulator output y is int32, 4 bytes per row"
            if g == m * n:
                return "int8 = m·n counts only W: add x (1 byte each, int8) and y (4 bytes each, int32)"
            if g == 4 * m * n + n + 4 * m:
                return "int8 weights take 1 byte each, not 4: W is m·n bytes"
        return f"{key} is {g}, expected {e}"
    return None


def _bytes_cases(rng):
    return [
        Case(
            (int(rng.integers(1, 5000)), int(rng.integers(1, 5000)), float(rng.choice([0.0, 0.5, 0.9, 0.97]))),
            label="random size",
        )  # fmt: skip
        for _ in range(4)
    ]


gemv_bytes = Exercise(
    "gemv_bytes",
    _gemv_bytes,
    cases=_bytes_cases,
    fixed_cases=[
        Case((4096, 4096, 0.9), label="4096 x 4096 at 90% sparsity"),
        Case((3, 5, 1 / 3), label="3 x 5 at 1/3 sparsity"),
        Case((10, 10, 0.0), label="10 x 10, dense"),
    ],
    compare=_compare_bytes,
    pass_line="gemv_bytes: all checks passed",
)
