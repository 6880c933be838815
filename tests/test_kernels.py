"""labkit.kernels: every fast kernel against its numpy reference (hypothesis shapes), and bad input.

Integer results must agree bit for bit; float32 results to float32 rounding (the fast kernels may
sum in another order). Shapes include empty, 1 × 1, odd sizes, all-zero rows and columns, and int8
-128 everywhere. No test here looks at wall-clock time.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import kernels as K
from labkit.kernels import _simd, int8
from labkit.kernels.int8 import max_accumulation_length
from labkit.qarith import int_range

# the inner-loop fixture sets one module flag for the whole test: nothing to reset between examples
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
INT8_LOOPS = [
    pytest.param(False, id="portable"),
    pytest.param(True, id="vnni", marks=pytest.mark.skipif(not _simd.AVX512_VNNI, reason="no AVX-512 VNNI target")),
]


@pytest.fixture(params=INT8_LOOPS)
def int8_loop(request, monkeypatch):
    """Run the test once with each int8 GEMM path this machine can take (VNNI micro-kernel from 32 rows)."""
    monkeypatch.setattr(int8, "_USE_VNNI", request.param)
    return request.param


dims = st.integers(0, 9) | st.sampled_from([1, 17, 33, 64, 127])


@st.composite
def int8_operands(draw):
    M, N, K_ = draw(dims), draw(dims), draw(dims)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["random", "min", "extreme", "zero_rows"]))
    if kind == "min":  # -128 everywhere: the largest products
        A = np.full((M, K_), -128, np.int8)
        B = np.full((N, K_), -128, np.int8)
    elif kind == "extreme":
        A = rng.choice(np.array([-128, 127, 0], np.int8), (M, K_))
        B = rng.choice(np.array([-128, 127], np.int8), (N, K_))
    else:
        A = rng.integers(-128, 128, (M, K_), dtype=np.int8)
        B = rng.integers(-128, 128, (N, K_), dtype=np.int8)
        if kind == "zero_rows" and M and N:
            A[::2] = 0
            B[:, ::3] = 0
    za = draw(st.sampled_from([0, 0, -128, 127, 3]))
    if draw(st.booleans()):  # uint8 activations (affine, zero point in [0, 255])
        A = (A.astype(np.int16) + 128).astype(np.uint8)
        za = draw(st.sampled_from([0, 128, 255, 37]))
    return A, B, za


@st.composite
def sparse_matrices(draw):
    m, n = draw(dims), draw(dims)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    A = (rng.standard_normal((m, n)) * (rng.random((m, n)) < density)).astype(np.float32)
    if m > 2 and n > 2:
        A[1] = 0  # an all-zero row
        A[:, 2] = 0  # an all-zero column
    return A, rng


# ----------------------------------------------------------------------------------------------
# int8 GEMV / GEMM
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(int8_operands())
def test_gemm_int8_bit_exact(int8_loop, ops):
    A, B, za = ops
    got = K.gemm_int8(A, B, za)
    assert got.dtype == np.int32 and got.shape == (A.shape[0], B.shape[0])
    np.testing.assert_array_equal(got, K.gemm_int8_reference(A, B, za))


@SETTINGS
@given(int8_operands())
def test_gemv_int8_bit_exact(ops):
    A, B, za = ops
    if A.shape[0] == 0:
        return
    x = np.ascontiguousarray(A[0])
    got = K.gemv_int8(B, x, za)
    np.testing.assert_array_equal(got, K.gemm_int8_reference(x[None], B, za)[0])


@SETTINGS
@given(int8_operands(), st.integers(0, 2**32 - 1), st.integers(2, 8), st.booleans(), st.booleans())
def test_gemm_int8_requant_bit_exact(int8_loop, ops, seed, bits, signed, relu):
    A, B, za = ops
    rng = np.random.default_rng(seed)
    N = B.shape[0]
    bias = rng.integers(-(2**20), 2**20, N).astype(np.int32)
    mult = rng.integers(2**30, 2**31, N)  # M0 in [0.5, 1) · 2**31
    shift = rng.integers(-1, 20, N)
    lo, hi = int_range(bits, signed)
    zp = int(rng.integers(lo, hi + 1))
    got = K.gemm_int8_requant(A, B, bias, mult, shift, zp, za, bits, signed, relu)
    assert got.dtype == (np.int8 if signed else np.uint8)
    acc = K.gemm_int8_reference(A, B, za)
    np.testing.assert_array_equal(got, K.requantize_reference(acc, bias, mult, shift, zp, bits, signed, relu))


@pytest.mark.parametrize(
    "M, N, Kc",
    [
        (1, 300, 1000),  # GEMV on the thread pool
        (3, 33, 2100),  # few rows, one thread, a partial block of 16 output channels
        (5, 33, 2100),  # int16 blocks of B, three blocks of K (1024, 1024, 52), thread pool
        (8, 17, 1030),  # int16 blocks of B on one thread
        (64, 40, 1100),  # batch 64
        (4, 130, 2052),  # VNNI tiles from 4 rows: a last group of 2 channels, K = 32 · 64 + 4 (a column tail)
        (35, 64, 1031),  # VNNI tiles: a last tile with 3 rows, K = 16 · 64 + 7
    ],
)
def test_int8_code_paths_are_bit_exact(int8_loop, rng, M, N, Kc):
    """Every path of the core (streamed int8 or widened int16 rows of B, blocks of K, one thread or the
    pool, a last partial block of output channels) gives the reference's integers, in all three modes."""
    A = rng.integers(0, 256, (M, Kc), dtype=np.uint8)
    A[0] = 255  # the largest |A - z_a| in one row
    B = rng.integers(-128, 128, (N, Kc), dtype=np.int8)
    B[-1] = -128
    acc = K.gemm_int8_reference(A, B, 3)
    np.testing.assert_array_equal(K.gemm_int8(A, B, 3), acc)
    bias = rng.integers(-(2**20), 2**20, N).astype(np.int32)
    mult, shift = rng.integers(2**30, 2**31, N), rng.integers(10, 20, N)
    np.testing.assert_array_equal(
        K.gemm_int8_requant(A, B, bias, mult, shift, 4, 3), K.requantize_reference(acc, bias, mult, shift, 4)
    )
    scale = rng.uniform(1e-4, 1e-3, N).astype(np.float32)
    np.testing.assert_allclose(
        K.gemm_int8_dequant(A, B, scale, None, 3), K.gemm_int8_dequant_reference(acc, scale), rtol=1e-6
    )
    if M == 1:
        np.testing.assert_array_equal(K.gemv_int8(B, A[0], 3), acc[0])


def test_gemm_int8_requant_equals_labkit_quant_integer_dense(rng):
    """The fused kernel is a drop-in for the integer engine's Dense layer (Jacob et al. 2018, eq. 7-9)."""
    from labkit.quant import integer_dense, quantize_multiplier

    q_x = rng.integers(0, 256, (7, 50), dtype=np.uint8)
    q_W = rng.integers(-127, 128, (13, 50), dtype=np.int8)
    q_b = rng.integers(-5000, 5000, 13).astype(np.int32)
    M0, n = quantize_multiplier(rng.uniform(1e-4, 2e-3, 13))
    for relu in (False, True):
        want = integer_dense(q_x, 117, q_W, q_b, M0, n, 9, relu=relu, bits=8, signed=False)
        got = K.gemm_int8_requant(q_x, q_W, q_b, M0, n, 9, a_zero_point=117, signed=False, relu=relu)
        np.testing.assert_array_equal(got, want)


def test_requantize_reference_is_exact_rational_rounding(rng):
    """The int64 reference equals round-half-to-even of the exact rational (acc + b) · M0 / 2**(31 + n)."""
    acc = rng.integers(-(2**31), 2**31 - 1, 500)
    acc[:4] = [0, 2**30, -(2**30), 3 << 20]  # exact ties appear with small shifts
    bias = rng.integers(-1000, 1000, 500)
    mult = rng.integers(1, 2**31 - 1, 500)
    mult[:4] = 2**30
    shift = rng.integers(-31, 31, 500)
    shift[:4] = [0, 0, 0, -11]
    got = K.requantize_reference(acc[:, None], bias[:, None], mult[:, None], shift[:, None], 0, 8)[:, 0]
    for i in range(500):
        v = max(min(int(acc[i]) + int(bias[i]), 2**31 - 1), -(2**31))
        exact = Fraction(v * int(mult[i]), 2 ** (31 + int(shift[i])))
        want = max(-128, min(127, round(exact)))  # Python's round: half to even
        assert got[i] == want, (i, exact)


@SETTINGS
@given(int8_operands(), st.integers(0, 2**32 - 1))
def test_gemm_int8_dequant_matches_reference(int8_loop, ops, seed):
    A, B, za = ops
    rng = np.random.default_rng(seed)
    N = B.shape[0]
    scale = (rng.random(N) * 1e-3 + 1e-5).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    got = K.gemm_int8_dequant(A, B, scale, bias, za)
    want = K.gemm_int8_dequant_reference(K.gemm_int8_reference(A, B, za), scale, bias)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_vnni_tiles_wrap_and_correct_exactly_at_the_longest_k(int8_loop):
    """The VNNI path sums (A + 128) · B, which overflows int32 at the longest K, then subtracts
    128 · sum(B): both wrap modulo 2**32, so the result is exact wherever the true sum fits."""
    K_ = max_accumulation_length(0)
    A = np.full((int8._TILE_FROM_ROWS, K_), 127, np.int8)
    A[1] = -128
    B = np.full((3, K_), -128, np.int8)
    B[1] = 127
    assert 255 * 128 * K_ > 2**31  # the unsigned products alone overflow
    np.testing.assert_array_equal(K.gemm_int8(A, B), K.gemm_int8_reference(A, B))


def test_int32_accumulation_is_needed_and_sufficient():
    """At the longest allowed K, -128 · -128 summed reaches 2**31 - 2**14: fits int32, wraps in int16."""
    K_ = max_accumulation_length(0)
    assert K_ == 131071 and K_ * 128 * 128 <= 2**31 - 1 < (K_ + 1) * 128 * 128
    x = np.full(K_, -128, np.int8)
    W = np.full((3, K_), -128, np.int8)
    W[1] = 127
    W[2, ::2] = 127
    got = K.gemv_int8(W, x)
    exact = W.astype(np.int64) @ x.astype(np.int64)
    np.testing.assert_array_equal(got, exact)
    assert got[0] == K_ * 16384 == 2147467264
    # int16 accumulation would be wrong here (it overflows after two products) ...
    assert (W[:1].astype(np.int16) * x.astype(np.int16)).sum(dtype=np.int16) != exact[0]
    # ... and so would float32 accumulation: past 2**24 a product of 1 is lost in rounding
    x2 = np.tile(np.array([-128, 1], np.int8), K_ // 2)
    w2 = np.tile(np.array([-128, 1], np.int8), K_ // 2)
    exact2 = int(x2.astype(np.int64) @ w2.astype(np.int64))
    assert np.cumsum(x2.astype(np.float32) * w2.astype(np.float32), dtype=np.float32)[-1] != exact2
    assert K.gemv_int8(w2[None].copy(), x2)[0] == exact2
    # one more product could overflow: refused before anything runs
    with pytest.raises(ValueError, match="overflow the int32 accumulator"):
        K.gemv_int8(np.zeros((1, K_ + 1), np.int8), np.zeros(K_ + 1, np.int8))
    # with a zero point the bound shrinks: |x - z| can reach 255
    assert max_accumulation_length(127) == (2**31 - 1) // (255 * 128)


def test_int8_bad_input():
    A = np.zeros((2, 3), np.int8)
    with pytest.raises(TypeError, match="int8"):
        K.gemm_int8(A.astype(np.float32), A)
    with pytest.raises(ValueError, match="same number of columns"):
        K.gemm_int8(A, np.zeros((2, 4), np.int8))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.gemm_int8(np.zeros((3, 6), np.int8)[:, ::2], A)
    with pytest.raises(ValueError, match="2-D"):
        K.gemm_int8(np.zeros(3, np.int8), A)
    with pytest.raises(TypeError, match="numpy array"):
        K.gemm_int8([[1, 2, 3]], A)
    with pytest.raises(ValueError, match="a_zero_point"):
        K.gemm_int8(A, A, 200)
    with pytest.raises(ValueError, match="x needs"):
        K.gemv_int8(A, np.zeros(4, np.int8))
    with pytest.raises(ValueError, match="shape"):
        K.gemm_int8_requant(A, A, np.zeros(3, np.int32), 2**30, 0)
    with pytest.raises(ValueError, match="multiplier"):
        K.gemm_int8_requant(A, A, 0, 2**31, 0)
    with pytest.raises(ValueError, match="shift"):
        K.gemm_int8_requant(A, A, 0, 2**30, 40)
    with pytest.raises(ValueError, match="out_zero_point"):
        K.gemm_int8_requant(A, A, 0, 2**30, 0, out_zero_point=300)
    with pytest.raises(TypeError, match="integer"):
        K.gemm_int8_requant(A, A, 0.5, 2**30, 0)


# ----------------------------------------------------------------------------------------------
# CSR
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(sparse_matrices())
def test_csr_from_dense_and_mask_equal_reference(arg):
    A, rng = arg
    c = K.csr_from_dense(A)
    data, indices, indptr = K.csr_from_dense_reference(A)
    np.testing.assert_array_equal(c.data, data)
    np.testing.assert_array_equal(c.indices, indices)
    np.testing.assert_array_equal(c.indptr, indptr)
    np.testing.assert_array_equal(c.todense(), A)
    mask = rng.random(A.shape) < 0.4
    cm = K.csr_from_mask(A, mask)
    data, indices, indptr = K.csr_from_dense_reference(A, mask)
    np.testing.assert_array_equal(cm.data, data)
    np.testing.assert_array_equal(cm.indices, indices)
    np.testing.assert_array_equal(cm.indptr, indptr)
    assert cm.nnz == int(mask.sum())  # kept zeros are stored too


def _tol(csr, X):
    """float32 tolerance for sums of |a| |x| (the order of summation differs); X (n,) or (n, k)."""
    absA = np.abs(csr.todense().astype(np.float64))
    return 1e-5 * (absA @ np.abs(X.astype(np.float64))) + 1e-6


@SETTINGS
@given(sparse_matrices(), st.integers(0, 5))
def test_spmv_spmm_match_reference(arg, batch):
    A, rng = arg
    m, n = A.shape
    x = rng.standard_normal(n).astype(np.float32)
    B = rng.standard_normal((n, batch)).astype(np.float32)
    for csr in (K.csr_from_dense(A), K.compact_csr(A, per_row=True), K.compact_csr(A, per_row=False)):
        y = K.spmv(csr, x)
        assert y.dtype == np.float32 and y.shape == (m,)
        assert np.all(np.abs(y - K.spmv_reference(csr, x)) <= _tol(csr, x))
        Y = K.spmm(csr, B)
        assert Y.shape == (m, batch)
        assert np.all(np.abs(Y - K.spmm_reference(csr, B)) <= _tol(csr, B))
    # float32 CSR computes A @ x itself (within float32 rounding of the dense product)
    c = K.csr_from_dense(A)
    assert np.all(np.abs(K.spmv(c, x) - A.astype(np.float64) @ x) <= _tol(c, x))


def test_compact_csr_format(rng):
    A = rng.standard_normal((5, 300)).astype(np.float32) * (rng.random((5, 300)) < 0.3)
    A[2] = 0
    cc = K.compact_csr(A)
    assert cc.compact and cc.data.dtype == np.int8 and cc.indices.dtype == np.uint16
    assert cc.scale.shape == (5,) and cc.scale[2] == 1.0  # empty row: scale 1
    assert np.abs(cc.data).max() == 127
    c = K.csr_from_dense(A)
    assert cc.nbytes == c.nnz * 3 + 4 * 6 + 4 * 5 < c.nbytes
    # every value within half a quantization step of the original
    err = np.abs(cc.todense() - A)
    assert np.all(err <= cc.row_scale()[:, None] / 2 + 1e-7)
    wide = K.compact_csr(np.eye(3, 70000, dtype=np.float32))
    assert wide.indices.dtype == np.int32  # 70000 columns do not fit 16 bits


def test_hand_made_csr_is_validated():
    data = np.ones(3, np.float32)
    ok = K.CSR(data, np.array([0, 2, 1], np.int32), np.array([0, 2, 3], np.int64), (2, 3))
    np.testing.assert_array_equal(K.spmv(ok, np.ones(3, np.float32)), [2, 1])
    with pytest.raises(ValueError, match="column index out of range"):
        K.CSR(data, np.array([0, 3, 1], np.int32), np.array([0, 2, 3]), (2, 3))
    with pytest.raises(ValueError, match="column index out of range"):
        K.CSR(data, np.array([0, -1, 1], np.int32), np.array([0, 2, 3]), (2, 3))
    with pytest.raises(ValueError, match="non-decreasing"):
        K.CSR(data, np.array([0, 1, 1], np.int32), np.array([0, 3, 2, 3]), (3, 3))
    with pytest.raises(ValueError, match="end at nnz"):
        K.CSR(data, np.array([0, 1, 1], np.int32), np.array([0, 2, 4]), (2, 3))
    with pytest.raises(ValueError, match="m \\+ 1"):
        K.CSR(data, np.array([0, 1, 1], np.int32), np.array([0, 3]), (2, 3))
    with pytest.raises(ValueError, match="one column per value"):
        K.CSR(data, np.array([0, 1], np.int32), np.array([0, 2, 3]), (2, 3))
    with pytest.raises(TypeError, match="dtype"):
        K.CSR(data.astype(np.float64), np.array([0, 1, 1], np.int32), np.array([0, 2, 3]), (2, 3))
    with pytest.raises(ValueError, match="needs a float32 scale"):
        K.CSR(data.astype(np.int8), np.array([0, 1, 1], np.int32), np.array([0, 2, 3]), (2, 3))
    # the CSR holds read-only copies: changing the caller's arrays later cannot break it
    idx = np.array([0, 2, 1], np.int32)
    c = K.CSR(data, idx, np.array([0, 2, 3]), (2, 3))
    idx[0] = 10**6
    assert c.indices[0] == 0 and not c.indices.flags.writeable
    with pytest.raises(ValueError):
        c.indices[0] = 10**6


def test_sparse_bad_input(rng):
    A = rng.standard_normal((4, 5)).astype(np.float32)
    c = K.csr_from_dense(A)
    with pytest.raises(ValueError, match="has 4 rows"):
        K.spmv(c, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="float32"):
        K.spmv(c, np.ones(5))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.spmm(c, np.ones((3, 5), np.float32).T)
    with pytest.raises(TypeError, match="CSR"):
        K.spmv(A, np.ones(5, np.float32))
    with pytest.raises(TypeError, match="float32"):
        K.csr_from_dense(A.astype(np.float64))
    with pytest.raises(ValueError, match="mask must have W's shape"):
        K.csr_from_mask(A, np.ones((5, 4), bool))
    with pytest.raises(TypeError, match="bool"):
        K.csr_from_mask(A, np.ones((4, 5)))


# ----------------------------------------------------------------------------------------------
# quantize / dequantize
# ----------------------------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 7) | st.sampled_from([1, 33]), min_size=1, max_size=3).map(tuple)


@SETTINGS
@given(shapes, st.integers(0, 2**32 - 1), st.integers(2, 8), st.booleans())
def test_quantize_per_tensor_bit_exact(shape, seed, bits, signed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    scale = np.float32(rng.uniform(0.01, 0.5))
    lo, hi = int_range(bits, signed)
    zp = int(rng.integers(lo, hi + 1))
    if x.size:  # exact ties and the range ends
        x.flat[0] = np.float32(2.5) * scale
        x.flat[-1] = np.inf
    q = K.quantize_per_tensor(x, scale, zp, bits, signed)
    np.testing.assert_array_equal(q, K.quantize_reference(x, scale, zp, bits, signed))
    assert q.dtype == (np.int8 if signed else np.uint8) and (q.size == 0 or lo <= q.min() <= q.max() <= hi)
    np.testing.assert_array_equal(K.dequantize_per_tensor(q, scale, zp), K.dequantize_reference(q, scale, zp))


def test_quantize_large_arrays_use_the_parallel_path_and_agree(rng):
    x = (rng.standard_normal((3, 100_000)) * 3).astype(np.float32)  # several 65536-element chunks
    x[0, :5] = [np.float32(0.5) * 0.05, np.inf, -np.inf, 1e30, -0.0]
    q = K.quantize_per_tensor(x, 0.05, 4)
    np.testing.assert_array_equal(q, K.quantize_reference(x, 0.05, 4))
    s = np.array([0.01, 0.02, 0.05], np.float32)
    qc = K.quantize_per_channel(x, s, np.array([0, 1, -1]), axis=0)
    np.testing.assert_array_equal(qc, K.quantize_reference(x, s, np.array([0, 1, -1]), axis=0))
    np.testing.assert_array_equal(K.dequantize_per_tensor(q, 0.05, 4), K.dequantize_reference(q, 0.05, 4))


def test_quantize_rounds_half_to_even_then_clamps():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1000, -1000], np.float32)
    np.testing.assert_array_equal(K.quantize_per_tensor(x, 1.0, 0), [0, 2, 2, 0, -2, 127, -128])
    np.testing.assert_array_equal(K.quantize_per_tensor(x, 1.0, 3, bits=4), [3, 5, 5, 3, 1, 7, -8])


def test_quantize_kernels_narrow_range_never_emit_the_lowest_code(rng):
    # narrow range: symmetric int8 weights live in [-127, 127]; the kernels clamp there when asked
    assert int_range(8, True, narrow_range=True) == (-127, 127) and int_range(4, False, True) == (1, 15)
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1000, -1000, -127.5, -np.inf], np.float32)
    np.testing.assert_array_equal(
        K.quantize_per_tensor(x, 1.0, 0, narrow_range=True), [0, 2, 2, 0, -2, 127, -127, -127, -127]
    )
    w = (rng.standard_normal((4, 300)) * 3).astype(np.float32)
    s = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
    z = np.zeros(4, np.int64)
    qc = K.quantize_per_channel(w, s, z, axis=0, narrow_range=True)
    assert qc.min() == -127
    np.testing.assert_array_equal(qc, K.quantize_reference(w, s, z, axis=0, narrow_range=True))
    assert K.quantize_per_channel(w, s, z, axis=0).min() == -128  # full range by default
    # the fused requantization clamps its output the same way
    A = rng.integers(-128, 128, (5, 16)).astype(np.int8)
    B = rng.integers(-128, 128, (3, 16)).astype(np.int8)
    args = (A, B, np.zeros(3, np.int32), np.full(3, 2**30), np.full(3, -8), 0, 0)
    out = K.gemm_int8_requant(*args, narrow_range=True)
    full = K.gemm_int8_requant(*args)
    assert full.min() == -128 and out.min() == -127
    acc = K.gemm_int8_reference(A, B, 0)
    ref = K.requantize_reference(acc, args[2], args[3], args[4], narrow_range=True)
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="out_zero_point"):
        K.gemm_int8_requant(*args[:5], -128, 0, narrow_range=True)


@SETTINGS
@given(shapes, st.integers(0, 2**32 - 1), st.booleans())
def test_quantize_per_channel_bit_exact(shape, seed, signed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    axis = int(rng.integers(-x.ndim, x.ndim))
    C = x.shape[axis]
    scales = rng.uniform(0.01, 0.5, C).astype(np.float32)
    lo, hi = int_range(8, signed)
    zps = rng.integers(lo, hi + 1, C)
    q = K.quantize_per_channel(x, scales, zps, axis, 8, signed)
    np.testing.assert_array_equal(q, K.quantize_reference(x, scales, zps, 8, signed, axis % x.ndim))
    np.testing.assert_array_equal(
        K.dequantize_per_channel(q, scales, zps, axis), K.dequantize_reference(q, scales, zps, axis % x.ndim)
    )


def test_quantize_bad_input():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="float32"):
        K.quantize_per_tensor(x.astype(np.float64), 0.1, 0)
    with pytest.raises(ValueError, match="> 0"):
        K.quantize_per_tensor(x, 0.0, 0)
    with pytest.raises(ValueError, match="code range"):
        K.quantize_per_tensor(x, 0.1, 200)
    with pytest.raises(TypeError, match="integer"):
        K.quantize_per_tensor(x, 0.1, 0.5)
    with pytest.raises(ValueError, match="bits"):
        K.quantize_per_tensor(x, 0.1, 0, bits=9)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        K.quantize_per_channel(x, np.ones(3, np.float32), np.zeros(3, int), axis=1)
    with pytest.raises(ValueError, match="axis"):
        K.quantize_per_channel(x, np.ones(3, np.float32), np.zeros(3, int), axis=2)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.quantize_per_tensor(x.T, 0.1, 0)
    with pytest.raises(TypeError, match="int8 or uint8"):
        K.dequantize_per_tensor(np.ones(3, np.int16), 0.1, 0)


# ----------------------------------------------------------------------------------------------
# global top-k
# ----------------------------------------------------------------------------------------------


@st.composite
def weight_lists(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_arrays = draw(st.integers(1, 4))
    big = draw(st.booleans())  # past the direct path: exercises the sampled bracket
    arrays = []
    for _ in range(n_arrays):
        size = int(rng.integers(0, 150_000 if big else 40))
        kind = draw(st.sampled_from(["normal", "ties", "sorted", "zeros"]))
        if kind == "normal":
            a = rng.standard_normal(size)
        elif kind == "ties":  # few distinct magnitudes, both signs: many exact ties
            a = rng.integers(-3, 4, size) * 0.5
        elif kind == "sorted":  # a strided sample can mislead on sorted data
            a = np.sort(rng.standard_normal(size))
        else:
            a = np.zeros(size)
        a = a.astype(np.float32)
        if size >= 6 and draw(st.booleans()):
            a = a.reshape(2, 3, -1) if size % 6 == 0 else a.reshape(1, -1)
        arrays.append(a)
    n = sum(a.size for a in arrays)
    k = draw(st.sampled_from([0, n, n // 2, (9 * n) // 10, min(n, 1)]))
    return arrays, k


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weight_lists())
def test_global_topk_equals_reference(arg):
    arrays, k = arg
    t = K.global_topk_threshold(arrays, k)
    assert t == K.global_topk_threshold_reference(arrays, k)
    masks = K.global_magnitude_masks(arrays, k)
    ref = K.global_magnitude_masks_reference(arrays, k)
    for m, r, a in zip(masks, ref, arrays):
        assert m.shape == a.shape and m.dtype == bool
        np.testing.assert_array_equal(m, r)
    assert sum(int((~m).sum()) for m in masks) == k  # exactly k removed
    if k:
        assert all(np.all(np.abs(a[~m]) <= t) and np.all(np.abs(a[m]) >= t) for a, m in zip(arrays, masks))


def test_global_topk_ties_broken_in_array_then_index_order():
    a = np.array([1.0, -1.0, 2.0], np.float32)
    b = np.array([[1.0, 0.5], [-1.0, 3.0]], np.float32)
    masks = K.global_magnitude_masks([a, b], 3)  # remove 0.5 and the first two |w| = 1 in order
    np.testing.assert_array_equal(masks[0], [False, False, True])
    np.testing.assert_array_equal(masks[1], [[True, False], [True, True]])
    assert K.global_topk_threshold([a, b], 3) == 1.0
    assert K.global_topk_threshold([a, b], 0) == float("-inf")


def test_global_topk_non_contiguous_and_nan():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((40, 30)).astype(np.float32)
    assert K.global_topk_threshold([w.T, w[:, ::2]], 700) == K.global_topk_threshold_reference([w.T, w[:, ::2]], 700)
    w[0, 0] = np.nan  # NaN counts as the largest magnitude (as np.sort puts it last)
    assert K.global_topk_threshold([w], 1199) == K.global_topk_threshold_reference([w], 1199)
    with pytest.raises(ValueError, match="NaN"):
        K.global_topk_threshold([w], 1200)


def test_global_topk_bad_input():
    w = np.ones(10, np.float32)
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        K.global_topk_threshold([w], 11)
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        K.global_magnitude_masks([w], -1)
    with pytest.raises(TypeError, match="float32"):
        K.global_topk_threshold([w.astype(np.float64)], 1)
    with pytest.raises(TypeError, match="int"):
        K.global_topk_threshold([w], 2.5)
    with pytest.raises(TypeError, match="numpy array"):
        K.global_topk_threshold([[1.0, 2.0]], 1)


def test_global_topk_survives_a_misleading_sample():
    """Every 4th weight (the strided sample) is large: the sampled bracket misses and is widened."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, 400_000).astype(np.float32)
    w[::4] += 10
    for k in (1, 150_000, 299_999, 360_000):
        assert K.global_topk_threshold([w], k) == K.global_topk_threshold_reference([w], k)
    masks = K.global_magnitude_masks([w[:200_000], w[200_000:]], 250_000)
    ref = K.global_magnitude_masks_reference([w[:200_000], w[200_000:]], 250_000)
    assert all(np.array_equal(m, r) for m, r in zip(masks, ref))


@pytest.mark.parametrize("chosen", [None, "workqueue"])
def test_threading_layer_default_is_openmp_with_passive_waiting(chosen):
    """labkit.kernels asks numba for OpenMP with sleeping idle threads (workqueue where no OpenMP
    runtime loads) and leaves a layer the user chose alone."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")}
    if chosen:
        env["NUMBA_THREADING_LAYER"] = chosen
    code = (
        "import os, numpy as np, numba, labkit.kernels as k\n"
        "k.gemm_int8(np.ones((8, 40000), np.int8), np.ones((8, 40000), np.int8))\n"  # a parallel call
        "print(numba.threading_layer(), os.environ.get('OMP_WAIT_POLICY'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    layer, policy = out.stdout.split()
    if chosen:
        assert (layer, policy) == (chosen, "None")
    else:
        assert layer in ("omp", "workqueue") and policy == "passive"
