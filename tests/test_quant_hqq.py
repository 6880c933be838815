"""labkit.quant.hqq: the shrinkage operator, the zero-point update, early stopping, and HQQ against RTN."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.quant import dequantize_groupwise, hqq_quantize, quantize_groupwise, shrink_lp


def heavy(rng, shape=(128, 512)):
    """Heavy-tailed weights (Student t, 3 degrees of freedom): outliers in most groups."""
    return (rng.standard_t(3, shape) * 0.02).astype(np.float32)


def l1(A, W):
    return float(np.mean(np.abs(A.astype(np.float64) - W)))


def l2(A, W):
    return float(np.mean((A.astype(np.float64) - W) ** 2))


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(-10, 10), min_size=1, max_size=30),
    beta=st.floats(0.1, 100),
    p=st.sampled_from([0.3, 0.5, 0.7, 0.9, 1.0]),
)
def test_shrink_matches_its_formula(x, beta, p):
    x = np.array(x)
    out = shrink_lp(x, beta, p)
    a = np.abs(x)
    with np.errstate(divide="ignore"):
        expected = np.sign(x) * np.maximum(a - a ** (p - 1) / beta, 0.0)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(shrink_lp(-x, beta, p), -out)  # odd
    assert np.all(np.abs(out) <= a) and np.all(out * x >= 0)  # shrinks towards 0, never past it
    # for p < 1, |x| <= beta^(-1/(2-p)) is set to 0 exactly (0 included)
    thr = beta ** (-1 / (2 - p))
    assert np.all(out[a < thr * (1 - 1e-9)] == 0)


def test_shrink_with_p_one_is_the_proximal_operator_of_the_l1_norm():
    beta = 4.0
    y = np.linspace(-3, 3, 600001)
    for x in [-2.0, -0.3, -0.25, 0.0, 0.1, 0.26, 1.7]:
        prox = y[np.argmin(np.abs(y) + beta / 2 * (y - x) ** 2)]
        assert abs(shrink_lp(x, beta, 1.0) - prox) < 2e-5
    assert shrink_lp(0.0, 10.0, 0.7) == 0.0  # 0^(p-1) is inf: shrunk to 0, no NaN


def test_one_step_is_the_reference_update(rng):
    W = heavy(rng, (8, 128))
    r = hqq_quantize(W, 4, 64, iters=1, early_stop=False)
    Wd = W.astype(np.float64).reshape(8, 2, 64)
    lo, hi = Wd.min(axis=2, keepdims=True), Wd.max(axis=2, keepdims=True)
    s = 15 / (hi - lo)
    z = -lo * s
    W_q = np.clip(np.round(Wd * s + z), 0, 15)
    W_e = shrink_lp(Wd - (W_q - z) / s, 10.0, 0.7)
    z1 = np.mean(W_q - (Wd - W_e) * s, axis=2)
    np.testing.assert_allclose(r.zero, z1.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(r.scale, (1 / s[..., 0]).astype(np.float32), rtol=1e-7)
    assert r.errors.shape == (2,)
    assert r.errors[0] == pytest.approx(np.mean(np.abs(Wd - (W_q - z) / s)), rel=1e-12)
    np.testing.assert_array_equal(r.q.reshape(8, 2, 64), np.clip(np.round(Wd * s + z1[..., None]), 0, 15))


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_early_stopping_keeps_the_best_zero_point(rng, bits):
    W = heavy(rng)
    r = hqq_quantize(W, bits, 64)
    e = r.errors
    assert np.all(np.diff(e[:-1]) < 0)  # improving until the one that did not
    assert len(e) <= 21
    if len(e) < 21:
        assert e[-1] >= e[-2]
    np.testing.assert_allclose(l1(r.W_hat, W), e.min(), rtol=1e-5)  # the result is the best one seen
    assert e.min() < e[0]  # the optimisation improved on its min-max start
    full = hqq_quantize(W, bits, 64, early_stop=False, iters=30)
    assert full.errors.shape == (31,)
    np.testing.assert_allclose(l1(full.W_hat, W), full.errors[-1], rtol=1e-5)  # no early stop: the last


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hqq_beats_round_to_nearest_on_heavy_tailed_weights(bits, seed):
    W = heavy(np.random.default_rng(seed))
    r = hqq_quantize(W, bits, 64)
    q, s, z = quantize_groupwise(W, bits, 64)
    rtn = dequantize_groupwise(q, s, z, 64)
    assert l1(r.W_hat, W) < 0.97 * l1(rtn, W)
    assert l2(r.W_hat, W) < 0.97 * l2(rtn, W)


def test_groups_codes_and_shapes(rng):
    W = heavy(rng, (5, 100))  # groups of 64: a last group of 36
    r = hqq_quantize(W, 3, 64)
    assert r.q.dtype == np.uint8 and r.q.shape == (5, 100) and r.q.max() <= 7
    assert r.scale.shape == r.zero.shape == (5, 2)
    gi = np.arange(100) // 64
    np.testing.assert_allclose(r.W_hat, r.scale[:, gi] * (r.q - r.zero[:, gi]), rtol=1e-6, atol=1e-9)
    per_row = hqq_quantize(W, 3, None)
    assert per_row.scale.shape == (5, 1)
    C = np.full((2, 64), 0.3, np.float32)  # a constant group comes back exactly
    np.testing.assert_allclose(hqq_quantize(C, 4, 64).W_hat, C, rtol=1e-7)


def test_bad_input(rng):
    W = heavy(rng, (4, 64))
    with pytest.raises(ValueError, match=r"bits must be in \[1, 8\]"):
        hqq_quantize(W, 9)
    with pytest.raises(ValueError, match="lp_norm must be in"):
        hqq_quantize(W, 4, lp_norm=1.5)
    with pytest.raises(ValueError, match="lp_norm must be in"):
        shrink_lp([1.0], 1.0, 0.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        hqq_quantize(W, 4, beta=0.0)
    with pytest.raises(ValueError, match="kappa must be >= 1"):
        hqq_quantize(W, 4, kappa=0.5)
    with pytest.raises(ValueError, match="iters must be >= 1"):
        hqq_quantize(W, 4, iters=0)
    with pytest.raises(TypeError, match="early_stop must be True or False"):
        hqq_quantize(W, 4, early_stop="yes")
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        hqq_quantize(W, 4, group_size=0)
    with pytest.raises(ValueError, match="2-D array"):
        hqq_quantize(W[0], 4)
    with pytest.raises(ValueError, match="finite"):
        hqq_quantize(np.full((2, 8), np.inf, np.float32), 4)
