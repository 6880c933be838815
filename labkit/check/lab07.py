"""Checks for lab 07 (kernels and timing): CSR from a dense matrix, CSR mat-vec, bytes moved by a GEMV."""

import numpy as np

from ..kernels import csr_from_dense_reference
from .answers import compare_arrays, show
from .exercise import Case, Exercise
from .hints import Hints

# --- Exercise 1: CSR from a dense matrix ------------------------------------------------------------


def _csr_reference(A):
    data, indices, indptr = csr_from_dense_reference(np.asarray(A, np.float32))
    return data, indices.astype(np.int64), indptr.astype(np.int64)


def _not_a_triple(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 3:
        return f"return a tuple (data, indices, indptr), got {type(a.got).__name__}"
    return None


def _arrays(a):
    """(data, indices, indptr) of the answer as arrays, after :func:`_not_arrays` passed."""
    return tuple(np.asarray(g) for g in a.got)


def _not_arrays(a):
    try:
        _arrays(a)
    except Exception:  # noqa: BLE001 - ragged lists and odd objects
        return "data, indices and indptr must be arrays"
    return None


def _index_arrays_form(a):
    _, indices, indptr = _arrays(a)
    for name, arr in (("indices", indices), ("indptr", indptr)):
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            return f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}"
    return None


def _no_leading_zero(a):
    m, indptr, e_ptr = a.args[0].shape[0], _arrays(a)[2], a.expected[2]
    if indptr.shape == (m,) and np.array_equal(indptr, e_ptr[1:]):
        return f"indptr has {m} entries, expected m + 1 = {m + 1}: start it with 0 (row i is indptr[i]:indptr[i+1])"
    return None


def _row_counts(a):
    m, indptr, e_ptr = a.args[0].shape[0], _arrays(a)[2], a.expected[2]
    if indptr.shape == (m,) and np.array_equal(indptr, np.diff(e_ptr)):
        return "indptr holds the count of each row: it must be their running sum, starting at 0"
    return None


def _indptr_shape(a):
    m, indptr = a.args[0].shape[0], _arrays(a)[2]
    if indptr.shape != (m + 1,):
        return f"indptr has shape {indptr.shape}, expected ({m + 1},): one entry per row plus one"
    return None


def _zeros_stored(a):
    m, n = a.args[0].shape
    data, e_data = _arrays(a)[0], a.expected[0]
    if data.size == m * n and e_data.size < m * n:
        return f"you stored all {m * n} entries, zeros included: keep only the {e_data.size} nonzeros"
    return None


def _nonzero_count(a):
    data, e_data = _arrays(a)[0], a.expected[0]
    return f"you stored {data.size} values, but A has {e_data.size} nonzeros" if data.size != e_data.size else None


def _indptr_ends(a):
    indptr, nnz = _arrays(a)[2], a.expected[0].size
    if indptr[0] != 0 or indptr[-1] != nnz:
        return f"indptr must start at 0 and end at nnz = {nnz}, got {indptr[0]} ... {indptr[-1]}"
    return None


def _column_major(a):
    (A,) = a.args
    _, indices, indptr = _arrays(a)
    _, c_idx, c_ptr = csr_from_dense_reference(np.ascontiguousarray(A.T, np.float32))
    if indptr.shape == c_ptr.shape and np.array_equal(indptr, c_ptr) and np.array_equal(indices, c_idx):
        if not np.array_equal(indptr, a.expected[2]):
            return "you walked A column by column (that is CSC, or CSR of A.T): CSR goes row by row"
    return None


def _wrong_indptr(a):
    hint = compare_arrays(_arrays(a)[2], a.expected[2], "indptr")
    return hint + " (indptr[i+1] - indptr[i] = nonzeros in row i)" if hint else None


def _column_order(a):
    indices, e_idx = _arrays(a)[1], a.expected[1]
    if np.array_equal(np.sort(indices), np.sort(e_idx)) and not np.array_equal(indices, e_idx):
        return "the columns are not in row-major order: walk row by row, columns left to right"
    return None


def _row_numbers(a):
    (A,) = a.args
    indices = _arrays(a)[1]
    rows_t = np.nonzero(A.T)[0]
    if (indices.size == rows_t.size and np.array_equal(indices, rows_t)) or np.array_equal(indices, np.nonzero(A)[0]):
        if not np.array_equal(indices, a.expected[1]):
            return "indices hold row numbers: CSR stores each nonzero's column"
    return None


def _wrong_indices(a):
    return compare_arrays(_arrays(a)[1], a.expected[1], "indices")


def _wrong_data(a):
    return compare_arrays(_arrays(a)[0], a.expected[0], "data", rtol=0, atol=0, exact=True)


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
    compare=Hints(
        _not_a_triple,
        _not_arrays,
        _index_arrays_form,
        _no_leading_zero,
        _row_counts,
        _indptr_shape,
        _zeros_stored,
        _nonzero_count,
        _indptr_ends,
        _column_major,
        _wrong_indptr,
        _column_order,
        _row_numbers,
        _wrong_indices,
        _wrong_data,
    ),
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


def _y_shape(a):
    m, n = len(a.args[2]) - 1, a.args[3].shape[0]
    got = np.asarray(a.got)
    if got.shape != (m,):
        if got.shape == (n,) and n != m:
            return f"y has {n} entries (the length of x): it must have one per row, m = {m}"
        return f"y has shape {got.shape}, expected ({m},): one entry per row"
    return None


def _y_near(a, y) -> bool:
    return bool(np.allclose(np.asarray(a.got), y, rtol=1e-4, atol=1e-5))


def _transposed(a):
    data, indices, indptr, x = a.args
    m = len(indptr) - 1
    A = np.zeros((m, x.shape[0]))
    for i in range(m):
        A[i, indices[indptr[i] : indptr[i + 1]]] = data[indptr[i] : indptr[i + 1]]
    if m == x.shape[0] and not np.allclose(A, A.T) and _y_near(a, A.T @ x):
        return "you computed A.T @ x: in row i, multiply data[p] by x[indices[p]] and add to y[i]"
    return None


def _short_rows(a):
    short = _naive_short_rows(a.case)
    if not np.allclose(short, a.expected) and _y_near(a, short):
        return "each row's last entry is missing: row i is p in range(indptr[i], indptr[i + 1]), end excluded"
    return None


def _no_gather(a):
    no_gather = _naive_no_gather(a.case)
    if not np.allclose(no_gather, a.expected) and _y_near(a, no_gather):
        return "multiply each value by x at its column: x[indices[p]], not x[p]"
    return None


def _wrong_y(a):
    return compare_arrays(np.asarray(a.got), a.expected, "y", rtol=1e-4, atol=1e-5)


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
    compare=Hints(_y_shape, _transposed, _short_rows, _no_gather, _wrong_y),
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


KEYS = ("dense_fp32", "csr_fp32", "int8")


def _not_a_dict(a):
    return (
        None if isinstance(a.got, dict) else f"return a dict with keys {sorted(a.expected)}, got {type(a.got).__name__}"
    )


def _wrong_keys(a):
    if set(a.got) != set(a.expected):
        return f"the dict must have exactly the keys {sorted(a.expected)}, got {sorted(a.got)}"
    return None


def _not_ints(a):
    for key in KEYS:
        g = a.got[key]
        if isinstance(g, (bool, np.bool_)) or not isinstance(g, (int, np.integer)):
            if isinstance(g, (float, np.floating)) and float(g).is_integer():
                return f"{key} must be an int (a count of bytes), got float {show(g)}"
            return f"{key} must be an int (a count of bytes), got {type(g).__name__} {show(g)}"
    return None


def _bytes_mistake(name, key, value_of, hint):
    """A detector named ``name``: ``got[key]`` is wrong and equals ``value_of(m, n, nnz)``; ``hint`` may name it as
    ``{got}``."""

    def detector(a):
        m, n, sparsity = a.args
        nnz = m * n - int(np.floor(sparsity * m * n))
        g = a.got[key]
        return hint.format(got=g) if g != a.expected[key] and g == value_of(m, n, nnz) else None

    detector.__name__ = detector.__qualname__ = name
    return detector


_BYTES_MISTAKES = [
    _bytes_mistake(
        "_dense_only_W",
        "dense_fp32",
        lambda m, n, nnz: 4 * m * n,
        "dense_fp32 = {got} counts only W: add x (4n bytes) and y (4m bytes)",
    ),
    _bytes_mistake(
        "_csr_no_column_index",
        "csr_fp32",
        lambda m, n, nnz: 4 * nnz + 4 * (m + 1) + 4 * n + 4 * m,
        "csr_fp32 counts 4 bytes per kept weight: each also has a 4-byte column index",
    ),
    _bytes_mistake(
        "_csr_no_row_pointers",
        "csr_fp32",
        lambda m, n, nnz: 8 * nnz + 4 * n + 4 * m,
        "csr_fp32 forgets the row pointers: indptr has m + 1 int32 entries",
    ),
    _bytes_mistake(
        "_csr_removed_weights",
        "csr_fp32",
        lambda m, n, nnz: 8 * (m * n - nnz) + 4 * (m + 1) + 4 * n + 4 * m,
        "csr_fp32 counts the removed weights: keep m·n - floor(sparsity·m·n) of them",
    ),
    _bytes_mistake(
        "_int8_output",
        "int8",
        lambda m, n, nnz: m * n + n + m,
        "int8: the accumulator output y is int32, 4 bytes per row",
    ),
    _bytes_mistake(
        "_int8_only_W",
        "int8",
        lambda m, n, nnz: m * n,
        "int8 = m·n counts only W: add x (1 byte each, int8) and y (4 bytes each, int32)",
    ),
    _bytes_mistake(
        "_int8_four_bytes",
        "int8",
        lambda m, n, nnz: 4 * m * n + n + 4 * m,
        "int8 weights take 1 byte each, not 4: W is m·n bytes",
    ),
]


def _wrong_bytes(a):
    key = next((k for k in KEYS if a.got[k] != a.expected[k]), None)
    return None if key is None else f"{key} is {a.got[key]}, expected {a.expected[key]}"


def _bytes_cases(rng):
    cases = []
    for _ in range(4):
        m, n = int(rng.integers(1, 5000)), int(rng.integers(1, 5000))
        cases.append(Case((m, n, float(rng.choice([0.0, 0.5, 0.9, 0.97]))), label="random size"))
    return cases


gemv_bytes = Exercise(
    "gemv_bytes",
    _gemv_bytes,
    cases=_bytes_cases,
    fixed_cases=[
        Case((4096, 4096, 0.9), label="4096 x 4096 at 90% sparsity"),
        Case((3, 5, 1 / 3), label="3 x 5 at 1/3 sparsity"),
        Case((10, 10, 0.0), label="10 x 10, dense"),
    ],
    compare=Hints(_not_a_dict, _wrong_keys, _not_ints, *_BYTES_MISTAKES, _wrong_bytes),
    pass_line="gemv_bytes: all checks passed",
)
