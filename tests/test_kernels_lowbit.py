"""labkit.kernels.int4 and labkit.kernels.nm_sparse: group-wise int4 GEMV and 2:4 sparse GEMV
against their numpy references (hypothesis shapes incl. empty, 1 × 1, odd sizes, zero rows), storage
round trips, and bad input. No test here looks at wall-clock time."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import kernels as K
from labkit.kernels import _simd, nm_sparse
from labkit.prune import nm_mask
from labkit.quant import dequantize_groupwise, pack_int4, quantize_groupwise

# the inner-loop fixture sets one module flag for the whole test: nothing to reset between examples
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NM24_LOOPS = [
    pytest.param(False, id="portable"),
    pytest.param(True, id="avx512", marks=pytest.mark.skipif(not _simd.AVX512, reason="no AVX-512 target")),
]


@pytest.fixture(params=NM24_LOOPS)
def nm24_loop(request, monkeypatch):
    """Run the test once with each 2:4 inner loop this machine can take (register permutes, selects)."""
    monkeypatch.setattr(nm_sparse, "_USE_AVX512", request.param)
    return request.param


rows = st.integers(0, 9) | st.sampled_from([1, 17, 64])
cols = st.integers(0, 9) | st.sampled_from([1, 31, 33, 64, 127, 130])


def f32_tol(absval, K):
    """The float32 bound for a sum of K products in any order: (K + 4) · eps · sum of |terms|."""
    return (K + 4) * np.finfo(np.float32).eps * absval + 1e-30


@st.composite
def int4_operands(draw):
    N, Kc = draw(rows), draw(cols)
    g = draw(st.sampled_from([2, 4, 8, 32, 64, 1000]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = -(-Kc // min(g, max(Kc, 1))) if Kc else 0
    kind = draw(st.sampled_from(["random", "extreme", "zero_rows"]))
    q = rng.integers(0, 16, (N, Kc)).astype(np.uint8)
    if kind == "extreme":
        q = rng.choice(np.array([0, 15], np.uint8), (N, Kc))
    if kind == "zero_rows" and N:
        q[::2] = 0
    scale = rng.uniform(0.01, 2.0, (N, G)).astype(np.float32)
    zp = rng.integers(0, 16, (N, G)).astype(np.uint8)
    x = rng.standard_normal(Kc).astype(np.float32)
    return pack_int4(q), scale, zp, x, g, q


@SETTINGS
@given(int4_operands())
def test_gemv_int4_equals_reference(ops):
    packed, scale, zp, x, g, q = ops
    y = K.gemv_int4(packed, scale, zp, x, g)
    ref = K.gemv_int4_reference(packed, scale, zp, x, g)
    assert y.dtype == np.float32 and y.shape == (packed.shape[0],)
    Kc = x.size
    t = np.arange(Kc) // min(g, max(Kc, 1))
    xa = np.abs(x.astype(np.float64))
    # the kernel computes s · (sum q x − z · sum x) per group: bound by the magnitudes of both sums
    s64, z64 = scale.astype(np.float64)[:, t], zp.astype(np.float64)[:, t]
    absval = (s64 * q) @ xa + (s64 * z64) @ xa
    assert np.all(np.abs(y.astype(np.float64) - ref) <= f32_tol(absval, Kc) + np.abs(ref) * 1e-7)


def test_gemv_int4_matches_groupwise_dequantization(rng):
    W = rng.standard_normal((33, 130)).astype(np.float32)
    q, s, z = quantize_groupwise(W, 4, 32)
    x = rng.standard_normal(130).astype(np.float32)
    y = K.gemv_int4(pack_int4(q), s, z.astype(np.uint8), x, 32)
    W_hat = dequantize_groupwise(q, s, z, 32)
    np.testing.assert_allclose(y, W_hat.astype(np.float64) @ x, rtol=1e-4, atol=1e-4)
    # 1 × 1 and a single group per row
    y1 = K.gemv_int4(
        pack_int4(np.array([[7]], np.uint8)),
        np.array([[0.5]], np.float32),
        np.array([[3]], np.uint8),
        np.array([2.0], np.float32),
        1,
    )
    assert y1[0] == 0.5 * (7 - 3) * 2.0


def test_gemv_int4_validation():
    packed = np.zeros((2, 4), np.uint8)
    s = np.ones((2, 1), np.float32)
    z = np.zeros((2, 1), np.uint8)
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="bytes per row"):
        K.gemv_int4(packed, s, z, np.ones(10, np.float32), 8)
    with pytest.raises(ValueError, match="groups"):
        K.gemv_int4(packed, s, z, x, 4)
    with pytest.raises(ValueError, match="even"):
        K.gemv_int4(packed, np.ones((2, 3), np.float32), np.zeros((2, 3), np.uint8), x, 3)
    with pytest.raises(ValueError, match="4-bit"):
        K.gemv_int4(packed, s, z + 16, x, 8)
    with pytest.raises(TypeError, match="float32"):
        K.gemv_int4(packed, s, z, x.astype(np.float64), 8)
    with pytest.raises(TypeError, match="uint8"):
        K.gemv_int4(packed, s, z.astype(np.int64), x, 8)
    with pytest.raises(ValueError, match="contiguous"):
        K.gemv_int4(packed, s, z, np.ones(16, np.float32)[::2], 8)


@st.composite
def nm24_operands(draw):
    N, T = draw(rows), draw(st.integers(0, 9) | st.sampled_from([8, 31, 64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W = rng.standard_normal((N, 4 * T)).astype(np.float32)
    mask = nm_mask(W, 2, 4) if N and T else np.zeros(W.shape, bool)
    if draw(st.booleans()) and N:
        W[::3] = 0  # zero rows
    x = rng.standard_normal(4 * T).astype(np.float32)
    return W, mask, x


@SETTINGS
@given(nm24_operands())
def test_gemv_nm24_equals_reference_and_dense(nm24_loop, ops):
    W, mask, x = ops
    Wp = np.where(mask, W, 0).astype(np.float32)
    m = K.nm24_compress(Wp, mask if W.size else None)
    np.testing.assert_array_equal(m.todense(), Wp)
    np.testing.assert_array_equal(K.nm24_compress(Wp).todense(), Wp)  # from the non-zeros alone
    y = K.gemv_nm24(m, x)
    ref = K.gemv_nm24_reference(m, x)
    absval = np.abs(Wp.astype(np.float64)) @ np.abs(x.astype(np.float64))
    assert np.all(np.abs(y.astype(np.float64) - ref) <= f32_tol(absval, x.size) + np.abs(ref) * 1e-7)
    np.testing.assert_allclose(ref, Wp.astype(np.float64) @ x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("N, Kc", [(300, 1028), (100, 4096), (3, 12), (5, 100), (700, 1060)])
def test_gemv_nm24_code_paths(nm24_loop, rng, N, Kc):
    """One thread and the pool (above 2**18 weights), with and without an odd last group of 4 columns,
    an odd number of blocks of 32 columns and meta bytes left after the last block."""
    W = rng.standard_normal((N, Kc)).astype(np.float32)
    mask = nm_mask(W, 2, 4)
    m = K.nm24_compress(np.where(mask, W, 0).astype(np.float32), mask)
    x = rng.standard_normal(Kc).astype(np.float32)
    ref = K.gemv_nm24_reference(m, x)
    absval = np.abs(m.todense().astype(np.float64)) @ np.abs(x.astype(np.float64))
    assert np.all(np.abs(K.gemv_nm24(m, x).astype(np.float64) - ref) <= f32_tol(absval, Kc) + np.abs(ref) * 1e-7)


def test_nm24_storage_layout_and_bytes():
    W = np.array([[0, 5, 0, 7, 1, 0, 0, 0]], np.float32)  # group 0 keeps 1, 3; group 1 has one non-zero
    m = K.nm24_compress(W)
    np.testing.assert_array_equal(m.values, [[5, 7, 1, 0]])
    # group 0: positions 1, 3 -> 1 | 3 << 2 = 13; group 1: positions 0, 1 (padded) -> 0 | 1 << 2 = 4
    np.testing.assert_array_equal(m.meta, [[13 | (4 << 4)]])
    assert m.nbytes == 4 * 4 + 1
    big = K.nm24_compress(np.zeros((300, 784), np.float32))
    assert big.nbytes == 300 * 392 * 4 + 300 * 98


def test_nm24_validation():
    with pytest.raises(ValueError, match="not 2:4"):
        K.nm24_compress(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="multiple of 4"):
        K.nm24_compress(np.zeros((1, 6), np.float32))
    with pytest.raises(ValueError, match="exactly 2"):
        K.nm24_compress(np.zeros((1, 4), np.float32), mask=np.array([[True, False, False, False]]))
    with pytest.raises(TypeError):
        K.nm24_compress(np.zeros((1, 4), np.float64))
    m = K.nm24_compress(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="entries"):
        K.gemv_nm24(m, np.ones(4, np.float32))
    with pytest.raises(TypeError):
        K.gemv_nm24(np.zeros((2, 8), np.float32), np.ones(8, np.float32))


def test_bench_rows_for_int4_and_2_4():
    """The low-bit bench rows run on a tiny size, give ratios for every measured peer, name the missing
    ones, and place each kernel on its roofline."""
    from labkit.bench.lowbit import case_int4, case_nm24, case_small_layers
    from labkit.bench.runner import Runner

    try:
        import torch
    except ImportError:
        torch = None
    r = Runner(repeat=2, read_gbps=10.0, verbose=False, rounds=1, settle=0.0, peak_gops=100.0)
    rng = np.random.default_rng(0)
    case_int4(r, 64, (32, 1000), (3,), torch, rng)
    case_nm24(r, 64, torch, rng)
    case_small_layers(r, ((16, 64),), rng)
    names = [row["kernel"] for row in r.rows]
    assert names == [
        "int4 GEMV g=32",
        "int4 GEMV g=1000",
        "int4 GEMM b=3 g=1000",
        "2:4 sparse GEMV",
        "small-layer int4 GEMV g=32",
    ]
    for row in r.rows:
        assert row["labkit_ms"] > 0 and row["gbps"] > 0
        for p in row["peers"]:
            assert (p["ms"] is None) == (p["ratio"] is None)
    for row in r.rows[:4]:
        assert row["roof_bound"] == "memory" and row["roof_fraction"] == pytest.approx(
            row["gops"] / min(100.0, 10.0 * row["gops"] / row["gbps"])
        )
    assert r.rows[0]["roof_target"] == 0.8 and r.rows[0]["roof_met"] in (True, False)
    gemv = {p["peer"]: p for p in r.rows[0]["peers"]}
    assert gemv["numpy f32 GEMV"]["ratio"] > 0 and gemv["labkit int8 GEMV (float in/out)"]["target"] == 1.6
    two_four = {p["peer"]: p for p in r.rows[3]["peers"]}
    assert two_four["torch semi-structured 2:4"]["ms"] is None and two_four["labkit CSR SpMV (same 50 %)"]["ratio"] > 0
    if torch is not None:  # torch's int4 op takes groups of 32..256 that divide K: measured at g=32 on 64 columns
        torch_row = {p["peer"]: p for p in r.rows[0]["peers"]}["torch _weight_int4pack_mm_for_cpu"]
        assert torch_row["ms"] is not None and "max |labkit - torch| / max |torch|" in r.rows[0]["note"]
