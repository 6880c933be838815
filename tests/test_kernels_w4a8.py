"""labkit.kernels.w4a8: int4 weights × int8 activations, bit for bit against the numpy reference.

Hypothesis draws the shapes (empty, 1 × 1, odd sizes, one group, a row block and one more row), every
group size, zero rows and all-zero activations; both thread paths (one thread and the thread pool)
and both inner loops (AVX-512 VNNI where the CPU has it, and the portable loop) are checked. No test
here looks at wall-clock time.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import kernels as K
from labkit.kernels import _simd, w4a8
from labkit.quant import dequantize_groupwise, quantize_groupwise

INNER_LOOPS = [pytest.param(False, id="portable")]
INNER_LOOPS.append(
    pytest.param(True, id="vnni", marks=pytest.mark.skipif(not _simd.AVX512_VNNI, reason="no AVX-512 VNNI target"))
)


@pytest.fixture(params=INNER_LOOPS)
def inner_loop(request, monkeypatch):
    """Run the test once with each inner loop the kernels can take on this machine."""
    monkeypatch.setattr(w4a8, "_USE_VNNI", request.param)
    return request.param


# the inner-loop fixture sets one module flag for the whole test: nothing to reset between examples
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

rows = st.integers(0, 9) | st.sampled_from([1, 17, 127, 128, 129, 300])
cols = st.integers(0, 9) | st.sampled_from([1, 4, 31, 33, 64, 130, 257])
groups = st.sampled_from([4, 8, 12, 32, 64, 128, 100_000])


@st.composite
def w4a8_operands(draw, batch=False):
    N, Kc, g = draw(rows), draw(cols), draw(groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    gg = w4a8._effective_group(g, Kc)
    G = -(-Kc // gg) if Kc else 0
    q = rng.integers(0, 16, (N, Kc)).astype(np.uint8)
    scale = rng.uniform(0.01, 2.0, (N, G)).astype(np.float32)
    zp = rng.integers(0, 16, (N, G)).astype(np.uint8)
    kind = draw(st.sampled_from(["random", "extreme", "zero_rows"]))
    if kind == "extreme":  # the largest integer sums: codes 0 or 15 against zero points 15 or 0
        q = rng.choice(np.array([0, 15], np.uint8), (N, Kc))
        zp = (15 - rng.choice(np.array([0, 15], np.uint8), (N, G))).astype(np.uint8)
    if kind == "zero_rows" and N and G:  # q == z on every other row: those rows are exactly 0
        zp[::2] = 5
        q[::2] = 5
    B = draw(st.integers(0, 5)) if batch else 1
    x_kind = draw(st.sampled_from(["normal", "zero", "zero_group", "wide", "ties"]))
    X = rng.standard_normal((B, Kc)).astype(np.float32)
    if x_kind == "zero":
        X[:] = 0
    elif x_kind == "zero_group":
        X[:, :gg] = 0
    elif x_kind == "wide":  # magnitudes from 1e-30 to 1e30 in one vector
        X *= np.float32(10.0) ** rng.integers(-30, 30, X.shape).astype(np.float32)
    elif x_kind == "ties":  # values that land on .5 after scaling (rounding half to even decides)
        X = (rng.integers(-254, 255, X.shape) / 2).astype(np.float32)
        X[:, :1] = 127
    return q, scale, zp, g, X


@SETTINGS
@given(w4a8_operands())
def test_gemv_w4a8_equals_reference_bit_for_bit(inner_loop, ops):
    q, scale, zp, g, X = ops
    x = X[0].copy()
    panels = K.int4_panels(q, scale, zp, g)
    y = K.gemv_w4a8(panels, x)
    assert y.dtype == np.float32 and y.shape == (q.shape[0],)
    np.testing.assert_array_equal(y, K.gemv_w4a8_reference(q, scale, zp, x, g))
    xq, sx = K.quantize_activations(x, g)
    xr, sr = K.quantize_activations_reference(x, g)
    np.testing.assert_array_equal(xq, xr)
    np.testing.assert_array_equal(sx, sr)


@SETTINGS
@given(w4a8_operands(batch=True))
def test_gemm_w4a8_rows_are_gemvs(inner_loop, ops):
    q, scale, zp, g, X = ops
    panels = K.int4_panels(q, scale, zp, g)
    Y = K.gemm_w4a8(panels, X)
    assert Y.dtype == np.float32 and Y.shape == (X.shape[0], q.shape[0])
    for b in range(X.shape[0]):
        np.testing.assert_array_equal(Y[b], K.gemv_w4a8_reference(q, scale, zp, X[b], g))


@pytest.mark.parametrize(
    "N, Kc, g, B", [(300, 1024, 32, 1), (129, 2052, 128, 1), (200, 700, 64, 3), (130, 1020, 12, 2), (140, 900, 32, 6)]
)
def test_thread_pool_path_is_bit_exact(inner_loop, rng, N, Kc, g, B):
    """Above 2**18 weights the panels are split over numba's threads; the result does not change."""
    assert B * N * Kc >= w4a8._SERIAL_WORK
    q = rng.integers(0, 16, (N, Kc)).astype(np.uint8)
    G = -(-Kc // g)
    scale = rng.uniform(0.01, 1, (N, G)).astype(np.float32)
    zp = rng.integers(0, 16, (N, G)).astype(np.uint8)
    X = rng.standard_normal((B, Kc)).astype(np.float32)
    panels = K.int4_panels(q, scale, zp, g)
    Y = K.gemm_w4a8(panels, X) if B > 1 else K.gemv_w4a8(panels, X[0])[None]
    for b in range(B):
        np.testing.assert_array_equal(Y[b], K.gemv_w4a8_reference(q, scale, zp, X[b], g))


def test_one_by_one_and_the_arithmetic_written_out(inner_loop):
    q, s, z = np.array([[7]], np.uint8), np.array([[0.5]], np.float32), np.array([[3]], np.uint8)
    x = np.array([2.0], np.float32)
    sx = np.float32(2.0) / np.float32(127)  # max |x| / 127; x quantizes to 127
    expected = (np.float32(0.5) * sx) * np.float32((7 - 3) * 127)
    y = K.gemv_w4a8(K.int4_panels(q, s, z, 1), x)
    assert y.dtype == np.float32 and y[0] == expected


def test_close_to_the_float_product_within_the_activation_rounding(rng):
    """Against W_hat @ x in float64 the only error is x's rounding to 8 bits: at most half a step per entry."""
    W = rng.standard_normal((70, 260)).astype(np.float32)
    q, s, z = quantize_groupwise(W, 4, 64)
    x = rng.standard_normal(260).astype(np.float32)
    y = K.gemv_w4a8(K.int4_panels(q, s, z, 64), x).astype(np.float64)
    W_hat = dequantize_groupwise(q, s, z, 64).astype(np.float64)
    xq, sx = K.quantize_activations(x, 64)
    step = np.repeat(sx.astype(np.float64), 64)[:260]
    bound = np.abs(W_hat) @ (step / 2) + 1e-5 * np.abs(W_hat) @ np.abs(x)
    assert np.all(np.abs(y - W_hat @ x) <= bound)
    assert np.all(np.abs(xq.astype(np.float64) * step - x) <= step / 2 * (1 + 1e-6))


def test_panels_layout_bytes_and_round_trip(rng):
    q = rng.integers(0, 16, (130, 70)).astype(np.uint8)
    s = rng.uniform(0.1, 1, (130, 3)).astype(np.float32)
    z = rng.integers(0, 16, (130, 3)).astype(np.int64)
    p = K.int4_panels(q, s, z, 32)
    assert p.shape == (130, 70) and p.group_size == 32 and p.n_groups == 3
    # two panels of 128 rows; columns padded to 3 groups of 32 = 96, eight codes per 32-bit word
    assert p.words.shape == (2, 12, 128) and p.words.dtype == np.uint32
    assert p.nbytes == 2 * 12 * 128 * 4 + 2 * 3 * 128 * (4 + 1)
    # byte m of word j: column 8j + m in the low nibble, column 8j + 4 + m in the high nibble
    word = sum((int(q[5, 8 + m]) | int(q[5, 12 + m]) << 4) << (8 * m) for m in range(4))
    assert int(p.words[0, 1, 5]) == word
    for g, words_per_group in ((32, 4), (12, 2), (4, 1)):  # groups padded to a multiple of 8 columns
        G = -(-70 // g)
        sg, zg = rng.uniform(0.1, 1, (130, G)).astype(np.float32), rng.integers(0, 16, (130, G))
        p = K.int4_panels(q, sg, zg, g)
        assert p.words.shape == (2, G * words_per_group, 128)
        q2, s2, z2 = p.unpack()
        np.testing.assert_array_equal(q2, q)
        np.testing.assert_array_equal(s2, sg)
        np.testing.assert_array_equal(z2, zg)
    assert "Int4Panels(shape=(130, 70)" in repr(p)
    with pytest.raises(ValueError, match="read-only"):
        p.words[0, 0, 0] = 1


def test_empty_inputs(inner_loop):
    for N, Kc in ((0, 8), (3, 0), (0, 0)):
        p = K.int4_panels(
            np.zeros((N, Kc), np.uint8),
            np.ones((N, 1 if Kc else 0), np.float32),
            np.zeros((N, 1 if Kc else 0), np.uint8),
            32,
        )
        assert K.gemv_w4a8(p, np.ones(Kc, np.float32)).shape == (N,)
        assert K.gemm_w4a8(p, np.ones((2, Kc), np.float32)).shape == (2, N)
    p = K.int4_panels(np.zeros((3, 8), np.uint8), np.ones((3, 1), np.float32), np.zeros((3, 1), np.uint8), 32)
    np.testing.assert_array_equal(K.gemm_w4a8(p, np.ones((0, 8), np.float32)), np.zeros((0, 3), np.float32))


def test_bad_input_says_what_was_expected():
    q = np.zeros((4, 16), np.uint8)
    s, z = np.ones((4, 2), np.float32), np.zeros((4, 2), np.uint8)
    with pytest.raises(TypeError, match="q must have dtype uint8, got int64"):
        K.int4_panels(q.astype(np.int64), s, z, 8)
    with pytest.raises(TypeError, match="scale must have dtype float32"):
        K.int4_panels(q, s.astype(np.float64), z, 8)
    with pytest.raises(TypeError, match="zero_point must be an integer array"):
        K.int4_panels(q, s, z.astype(np.float32), 8)
    with pytest.raises(ValueError, match=r"multiple of 4 \(or >= K = 16\), got 6"):
        K.int4_panels(q, np.ones((4, 3), np.float32), np.zeros((4, 3), np.uint8), 6)
    with pytest.raises(ValueError, match=r"\(N, groups\) = \(4, 4\).*got \(4, 2\)"):
        K.int4_panels(q, s, z, 4)
    with pytest.raises(ValueError, match="4-bit codes 0..15, got max 16"):
        K.int4_panels(q + 16, s, z, 8)
    with pytest.raises(ValueError, match=r"zero_point must be in \[0, 15\], got \[0, 16\]"):
        K.int4_panels(q, s, z + np.array([[0, 16]], np.uint8), 8)
    with pytest.raises(ValueError, match="scale must be finite"):
        K.int4_panels(q, np.full((4, 2), np.inf, np.float32), z, 8)
    with pytest.raises(ValueError, match="group_size"):
        K.int4_panels(q, s, z, 0)
    p = K.int4_panels(q, s, z, 8)
    with pytest.raises(TypeError, match="expected Int4Panels"):
        K.gemv_w4a8(q, np.ones(16, np.float32))
    with pytest.raises(ValueError, match="x needs 16 entries, got 15"):
        K.gemv_w4a8(p, np.ones(15, np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32, got float64"):
        K.gemv_w4a8(p, np.ones(16))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.gemv_w4a8(p, np.ones(32, np.float32)[::2])
    with pytest.raises(ValueError, match="finite"):
        K.gemv_w4a8(p, np.array([np.nan] + [0.0] * 15, np.float32))
    with pytest.raises(ValueError, match="finite"):
        K.gemm_w4a8(p, np.full((2, 16), np.inf, np.float32))
    with pytest.raises(ValueError, match="X needs 16 columns, got 8"):
        K.gemm_w4a8(p, np.ones((2, 8), np.float32))
    with pytest.raises(ValueError, match="finite"):
        K.quantize_activations(np.array([np.inf], np.float32), 4)


@pytest.mark.parametrize(
    "env, state",
    [
        ({}, "on: LLVM -vectorizer-maximize-bandwidth"),
        ({"LABKIT_LLVM_TUNING": "0"}, "off (LABKIT_LLVM_TUNING=0)"),
        ({"NUMBA_CPU_NAME": "generic"}, "off (NUMBA_CPU_NAME"),
    ],
)
def test_llvm_tuning_state(env, state):
    """labkit.kernels applies its two LLVM settings on import unless the user chose otherwise."""
    import os
    import platform
    import subprocess
    import sys

    if not platform.machine().lower().startswith(("x86", "amd64")) and not env:
        state = "off (not an x86 CPU)"
    chosen = ("LABKIT_LLVM_TUNING", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
    clean = {k: v for k, v in os.environ.items() if k not in chosen}
    code = "import labkit.kernels; print(labkit.kernels.llvm_tuning())"
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    assert out.stdout.startswith(state)
    late = "import numba; numba.njit(lambda: 1); import labkit.kernels; print(labkit.kernels.llvm_tuning())"
    out = subprocess.run([sys.executable, "-c", late], env=clean, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("off (numba's code generator was set up before")
