"""Lab 07's checks pass the reference and fail the stub and plausible wrong answers."""

import numpy as np

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


def bytes_right(m, n, sparsity):
    nnz = m * n - int(np.floor(sparsity * m * n))
    return {"dense_fp32": 4 * m * n + 4 * n + 4 * m, "csr_fp32": 8 * nnz + 4 * (m + 1) + 4 * n + 4 * m,
            "int8": m * n + n + 4 * m}  # fmt: skip


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
