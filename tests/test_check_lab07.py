"""Lab 07's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import lab07


def stub(*args):
    raise NotImplementedError()


def csr_right(A):
    m, n = A.shape
    data, indices, indptr = [], [], [0]
    for i in range(m):
        for j in range(n):
            if A[i, j] != 0:
                data.append(A[i, j])
                indices.append(j)
        indptr.append(len(data))
    return np.array(data, np.float32), np.array(indices, np.int32), np.array(indptr, np.int64)


def test_csr_from_dense():
    ex = lab07.csr_from_dense
    assert ex.passes(csr_right)
    assert ex.passes(lambda A: tuple(list(v) for v in csr_right(A)))  # lists are fine too
    assert "not implemented" in ex.verdict(stub)

    def no_leading_zero(A):
        d, i, p = csr_right(A)
        return d, i, p[1:]

    assert "start it with 0" in ex.verdict(no_leading_zero)

    def counts_not_cumsum(A):
        d, i, p = csr_right(A)
        return d, i, np.diff(p)

    assert "running sum" in ex.verdict(counts_not_cumsum)

    def keeps_zeros(A):
        m, n = A.shape
        return A.ravel(), np.tile(np.arange(n), m), np.arange(0, m * n + 1, n)

    assert "zeros included" in ex.verdict(keeps_zeros)

    def column_major(A):
        d, i, p = csr_right(A.T)  # CSC of A: rows listed per column
        return d, i, p

    assert "column by column" in ex.verdict(column_major)

    def rows_as_indices(A):
        d, i, p = csr_right(A)
        rows = np.repeat(np.arange(A.shape[0]), np.diff(p))
        return d, rows, p

    assert "row numbers" in ex.verdict(rows_as_indices)
    assert "tuple" in ex.verdict(lambda A: csr_right(A)[0])

    def indices_per_row(A):  # one list of columns per row instead of one flat array
        d, i, p = csr_right(A)
        return d, [list(i[p[r] : p[r + 1]]) for r in range(A.shape[0])], p

    def positives_only(A):  # `if A[i, j] > 0` keeps only the positive entries
        return csr_right(np.where(A > 0, A, 0))

    def right_to_left(A):  # each row's columns from the last to the first
        d, i, p = csr_right(A)
        order = np.concatenate([np.arange(p[r + 1] - 1, p[r] - 1, -1) for r in range(A.shape[0])]).astype(int)
        return d[order], i[order], p

    def rows_bottom_up(A):
        return csr_right(A[::-1])

    one_based = lambda A: (csr_right(A)[0], csr_right(A)[1] + 1, csr_right(A)[2] + 1)  # Fortran's habit
    assert "data, indices and indptr must be arrays" in ex.verdict(indices_per_row)
    assert "1-D integer array" in ex.verdict(
        lambda A: (csr_right(A)[0], csr_right(A)[1].astype(float), csr_right(A)[2])
    )
    assert "one entry per row plus one" in ex.verdict(lambda A: (*csr_right(A)[:2], np.r_[csr_right(A)[2], 0]))
    assert "but A has" in ex.verdict(positives_only)
    assert "must start at 0" in ex.verdict(one_based)
    assert "indptr differs" in ex.verdict(rows_bottom_up)
    assert "columns left to right" in ex.verdict(right_to_left)
    assert "indices differs" in ex.verdict(lambda A: (csr_right(A)[0], csr_right(A)[1] + 1, csr_right(A)[2]))
    assert "data differs" in ex.verdict(lambda A: (np.abs(csr_right(A)[0]), *csr_right(A)[1:]))


def matvec_right(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1, np.float32)
    for i in range(len(y)):
        for p in range(indptr[i], indptr[i + 1]):
            y[i] += data[p] * x[indices[p]]
    return y


def test_csr_matvec():
    ex = lab07.csr_matvec
    assert ex.passes(matvec_right)
    assert "not implemented" in ex.verdict(stub)

    def transposed(data, indices, indptr, x):
        y = np.zeros(len(indptr) - 1, np.float32)
        for i in range(len(y)):
            for p in range(indptr[i], indptr[i + 1]):
                y[indices[p]] += data[p] * x[i]
        return y

    assert "A.T @ x" in ex.verdict(transposed)

    def no_gather(data, indices, indptr, x):
        y = np.zeros(len(indptr) - 1, np.float32)
        for i in range(len(y)):
            for p in range(indptr[i], indptr[i + 1]):
                y[i] += data[p] * x[p % len(x)]
        return y

    assert "x[indices[p]]" in ex.verdict(no_gather)

    def off_by_one(data, indices, indptr, x):
        y = np.zeros(len(indptr) - 1, np.float32)
        for i in range(len(y)):
            for p in range(indptr[i], indptr[i + 1] - 1):  # drops each row's last entry
                y[i] += data[p] * x[indices[p]]
        return y

    assert "last entry is missing" in ex.verdict(off_by_one)
    assert "one entry per row" in ex.verdict(lambda d, i, p, x: np.zeros(len(x) + 1))

    def without_data(data, indices, indptr, x):  # sums x at the columns, forgetting the values
        return matvec_right(np.ones_like(data), indices, indptr, x)

    assert "y is off" in ex.verdict(without_data)


def bytes_right(m, n, sparsity):
    nnz = m * n - int(np.floor(sparsity * m * n))
    return {
        "dense_fp32": 4 * m * n + 4 * n + 4 * m,
        "csr_fp32": 8 * nnz + 4 * (m + 1) + 4 * n + 4 * m,
        "int8": m * n + n + 4 * m,
    }


def test_gemv_bytes():
    ex = lab07.gemv_bytes
    assert ex.passes(bytes_right)
    assert "not implemented" in ex.verdict(stub)

    def tweak(key, fn):
        def f(m, n, s):
            d = bytes_right(m, n, s)
            d[key] = fn(m, n, s, d)
            return d

        return f

    nnz = lambda m, n, s: m * n - int(np.floor(s * m * n))  # noqa: E731
    assert "add x" in ex.verdict(tweak("dense_fp32", lambda m, n, s, d: 4 * m * n))
    assert "column index" in ex.verdict(
        tweak("csr_fp32", lambda m, n, s, d: 4 * nnz(m, n, s) + 4 * (m + 1) + 4 * n + 4 * m)
    )
    assert "row pointers" in ex.verdict(tweak("csr_fp32", lambda m, n, s, d: 8 * nnz(m, n, s) + 4 * n + 4 * m))
    assert "removed weights" in ex.verdict(
        tweak("csr_fp32", lambda m, n, s, d: 8 * (m * n - nnz(m, n, s)) + 4 * (m + 1) + 4 * n + 4 * m)
    )
    assert "int32" in ex.verdict(tweak("int8", lambda m, n, s, d: m * n + n + m))
    assert "counts only W" in ex.verdict(tweak("int8", lambda m, n, s, d: m * n))
    assert "must be an int" in ex.verdict(tweak("int8", lambda m, n, s, d: float(d["int8"])))
    assert "keys" in ex.verdict(lambda m, n, s: {"dense": 1})
    # float32 bytes for int8 weights (4 per weight) is caught too
    assert "1 byte each, not 4" in ex.verdict(tweak("int8", lambda m, n, s, d: 4 * m * n + n + 4 * m))
    assert "return a dict" in ex.verdict(lambda m, n, s: tuple(bytes_right(m, n, s).values()))
    int16_columns = tweak("csr_fp32", lambda m, n, s, d: 6 * nnz(m, n, s) + 4 * (m + 1) + 4 * n + 4 * m)
    assert "csr_fp32 is" in ex.verdict(int16_columns)


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab07)
    assert_every_hint_reached(sys.modules[__name__], lab07)
