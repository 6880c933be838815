"""labkit.quant.groupwise and labkit.quant.gptq: group-wise RTN, int4 packing, the OBS step, OBQ, GPTQ."""

import numpy as np
import pytest

from labkit.quant import (
    GPTQResult,
    dequantize,
    dequantize_groupwise,
    gptq_quantize,
    hessian,
    layer_output_error,
    obq_quantize_row,
    obs_eliminate,
    obs_update,
    pack_int4,
    qparams,
    quantize,
    quantize_groupwise,
    unpack_int4,
)
from labkit.quant.gptq import prepare_hessian


def correlated_inputs(rng, n=400, d=48, rho=0.8):
    """Calibration inputs with strongly correlated features (so H is far from diagonal)."""
    base = rng.standard_normal((n, 1))
    return (rho * base + np.sqrt(1 - rho**2) * rng.standard_normal((n, d))).astype(np.float32)


def rtn(W, bits, group_size, symmetric=False):
    q, s, z = quantize_groupwise(W, bits, group_size, symmetric)
    return dequantize_groupwise(q, s, z, group_size)


# ------------------------------------------------------------------ group-wise quantization


def test_groupwise_per_row_equals_per_channel_qparams(rng):
    W = rng.standard_normal((7, 13)).astype(np.float32)
    for symmetric in (False, True):
        q, s, z = quantize_groupwise(W, 4, None, symmetric)
        s_ref, z_ref = qparams(W, 4, symmetric, axis=0)
        assert s.shape == (7, 1) and z.shape == (7, 1)
        np.testing.assert_array_equal(s[:, 0], s_ref)
        np.testing.assert_array_equal(z[:, 0], z_ref)
        q_ref = quantize(W, s_ref, z_ref, 4, signed=symmetric, axis=0)
        np.testing.assert_array_equal(q, q_ref)
        np.testing.assert_array_equal(dequantize_groupwise(q, s, z), dequantize(q_ref, s_ref, z_ref, axis=0))


def test_groupwise_each_group_is_its_own_tensor(rng):
    W = rng.standard_normal((3, 10)).astype(np.float32)
    q, s, z = quantize_groupwise(W, 3, 4)  # groups [0:4], [4:8], [8:10] (the last one shorter)
    assert s.shape == (3, 3)
    for i in range(3):
        for k, (a, b) in enumerate([(0, 4), (4, 8), (8, 10)]):
            s_ref, z_ref = qparams(W[i, a:b], 3)
            assert s[i, k] == s_ref and z[i, k] == z_ref
            np.testing.assert_array_equal(q[i, a:b], quantize(W[i, a:b], s_ref, z_ref, 3))


def test_groupwise_round_half_even_then_clamp():
    # group [0, 15]: scale 1 (4 bits, 15 steps), zero point 0; 2.5 → 2, 3.5 → 4 (half to even)
    W = np.array([[0.0, 15.0, 2.5, 3.5]], np.float32)
    q, s, z = quantize_groupwise(W, 4, None)
    assert s[0, 0] == 1.0 and z[0, 0] == 0
    np.testing.assert_array_equal(q, [[0, 15, 2, 4]])


def test_groupwise_error_shrinks_with_smaller_groups(rng):
    W = (rng.standard_normal((32, 256)) * rng.lognormal(0, 1, 256)).astype(np.float32)
    errs = [np.mean((rtn(W, 4, g) - W) ** 2) for g in (None, 128, 32)]
    assert errs[0] > errs[1] > errs[2]


def test_groupwise_validation(rng):
    W = rng.standard_normal((2, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="bits"):
        quantize_groupwise(W, 0, 2)
    with pytest.raises(ValueError, match="bits"):
        quantize_groupwise(W, 17, 2)
    with pytest.raises(ValueError, match="group_size"):
        quantize_groupwise(W, 4, 0)
    with pytest.raises(ValueError, match="2-D"):
        quantize_groupwise(W.ravel(), 4, 2)
    with pytest.raises(ValueError, match="NaN"):
        quantize_groupwise(np.array([[np.nan, 1.0]]), 4, 2)
    with pytest.raises(ValueError, match="empty"):
        quantize_groupwise(np.zeros((0, 4), np.float32), 4, 2)
    with pytest.raises(TypeError):
        quantize_groupwise(W.tolist(), 4, 2)
    q, s, z = quantize_groupwise(W, 4, 2)
    with pytest.raises(ValueError, match="shape"):
        dequantize_groupwise(q, s, z, 4)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (4, 8), (0, 5), (2, 0)])
def test_int4_pack_unpack_round_trips(shape, rng):
    q = rng.integers(0, 16, shape).astype(np.uint8)
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (shape[0], (shape[1] + 1) // 2)
    np.testing.assert_array_equal(unpack_int4(packed, shape[1]), q)
    qs = rng.integers(-8, 8, shape).astype(np.int8)
    np.testing.assert_array_equal(unpack_int4(pack_int4(qs), shape[1], signed=True), qs)


def test_int4_pack_layout_and_range():
    np.testing.assert_array_equal(pack_int4(np.array([[1, 2, 15]], np.uint8)), [[0x21, 0x0F]])
    np.testing.assert_array_equal(pack_int4(np.array([[-1, 7]], np.int8)), [[0x7F]])
    with pytest.raises(ValueError, match="4-bit"):
        pack_int4(np.array([[16]], np.uint8))
    with pytest.raises(ValueError, match="4-bit"):
        pack_int4(np.array([[-9]], np.int8))
    with pytest.raises(ValueError, match="bytes"):
        unpack_int4(np.zeros((1, 2), np.uint8), 5)


# ------------------------------------------------------------------ OBS / OBQ


def test_obs_update_is_the_constrained_optimum(rng):
    """Fixing w_q = t, the OBS update minimises ½ δ H δᵀ; compare with solving the KKT system."""
    X = correlated_inputs(rng, d=6)
    H = hessian(X)
    w = rng.standard_normal(6)
    H_inv = np.linalg.inv(H)
    q, t = 2, 0.3
    w_new, dloss = obs_update(w, H_inv, q, t)
    assert w_new[q] == t
    free = np.arange(6) != q  # optimum: H_ff δ_f = −H_fq δ_q
    d_q = t - w[q]
    d_f = np.linalg.solve(H[np.ix_(free, free)], -H[free, q] * d_q)
    np.testing.assert_allclose(w_new[free] - w[free], d_f, rtol=1e-9, atol=1e-12)
    delta = w_new - w
    np.testing.assert_allclose(dloss, 0.5 * delta @ H @ delta, rtol=1e-9)
    # the loss is the mean squared output error
    np.testing.assert_allclose(dloss, np.mean((X.astype(np.float64) @ delta) ** 2), rtol=1e-6)
    # a plausible wrong update (moving only w_q) costs more
    naive = w.copy()
    naive[q] = t
    assert 0.5 * (naive - w) @ H @ (naive - w) > dloss


def test_obs_eliminate_gives_the_inverse_of_the_sub_hessian(rng):
    H = hessian(correlated_inputs(rng, d=5))
    out = obs_eliminate(np.linalg.inv(H), 1)
    keep = np.arange(5) != 1
    np.testing.assert_allclose(out[np.ix_(keep, keep)], np.linalg.inv(H[np.ix_(keep, keep)]), rtol=1e-9)
    assert not out[1].any() and not out[:, 1].any()


def test_obs_validation(rng):
    with pytest.raises(ValueError, match="H_inv"):
        obs_update(np.ones(3), np.eye(2), 0)
    with pytest.raises(ValueError, match="index"):
        obs_update(np.ones(3), np.eye(3), 3)
    with pytest.raises(ValueError, match="positive"):
        obs_update(np.ones(3), np.zeros((3, 3)), 0)


def test_obq_row_beats_rtn_and_lands_on_the_grid(rng):
    X = correlated_inputs(rng, d=12)
    w = rng.standard_normal(12).astype(np.float32)
    s, z = qparams(w, 3)
    w_hat, order = obq_quantize_row(w, hessian(X), 3, s, z, damp=0.0)
    assert sorted(order) == list(range(12))
    grid = s * (np.arange(8) - z)
    assert np.all(np.min(np.abs(w_hat[:, None] - grid[None, :]), axis=1) < 1e-6)
    w_rtn = dequantize(quantize(w, s, z, 3), s, z)
    err = lambda v: np.mean((X.astype(np.float64) @ (v - w)) ** 2)  # noqa: E731
    assert err(w_hat) < err(w_rtn)


# ------------------------------------------------------------------ GPTQ


@pytest.mark.parametrize("group_size", [None, 16, 20])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_beats_round_to_nearest_on_calibration_error(group_size, act_order, rng):
    W = rng.standard_normal((32, 48)).astype(np.float32)
    X = correlated_inputs(rng)
    for bits in (3, 4):
        r = gptq_quantize(W, X, bits, group_size=group_size, act_order=act_order)
        assert layer_output_error(W, r.W_hat, X) < 0.8 * layer_output_error(W, rtn(W, bits, group_size), X)


def test_gptq_equals_rtn_when_h_is_identity(rng):
    X = np.vstack([3 * np.eye(24), -2 * np.eye(24)])  # orthogonal columns of one norm: H = 2·13/48 · I
    W = rng.standard_normal((10, 24)).astype(np.float32)
    for group_size, symmetric in [(None, False), (8, False), (8, True), (5, True)]:
        r = gptq_quantize(W, X.astype(np.float32), 4, group_size=group_size, symmetric=symmetric)
        q, s, z = quantize_groupwise(W, 4, group_size, symmetric)
        np.testing.assert_array_equal(r.q, q)
        np.testing.assert_array_equal(r.scale, s)
        np.testing.assert_array_equal(r.zero_point, z)
        np.testing.assert_array_equal(r.W_hat, dequantize_groupwise(q, s, z, group_size))


def test_gptq_result_format_and_block_independence(rng):
    W = rng.standard_normal((16, 40)).astype(np.float32)
    X = correlated_inputs(rng, d=40)
    r = gptq_quantize(W, X, 4, group_size=8)
    assert isinstance(r, GPTQResult)
    W_hat, q, s, z = r  # unpacks like a tuple
    assert W_hat.dtype == np.float32 and q.dtype == np.uint8 and s.shape == (16, 5) and z.shape == (16, 5)
    assert q.min() >= 0 and q.max() <= 15
    np.testing.assert_array_equal(W_hat, dequantize_groupwise(q, s, z, 8))
    for block in (1, 3, 8, 128):  # lazy batches change the order of float operations only
        r2 = gptq_quantize(W, X, 4, group_size=8, block=block)
        assert np.mean(r2.q != r.q) < 0.01
    rs = gptq_quantize(W, X, 4, group_size=8, symmetric=True)
    assert rs.q.dtype == np.int8 and rs.q.min() >= -7 and rs.q.max() <= 7 and not rs.zero_point.any()


def test_gptq_follows_algorithm_1_on_a_tiny_layer(rng):
    """No lazy batching, no groups: the textbook loop with the explicit inverse of the remaining H."""
    W = rng.standard_normal((3, 5))
    X = correlated_inputs(rng, n=50, d=5)
    H = hessian(X)
    Wd, _, _ = prepare_hessian(W, H, 0.01)
    Hd = H + 0.01 * np.mean(np.diag(H)) * np.eye(5)
    s, z = qparams(W.astype(np.float32), 3, axis=0)
    s = s.astype(np.float64)
    w = Wd.copy()
    for j in range(5):
        Hinv = np.linalg.inv(Hd[j:, j:])  # inverse Hessian of the columns not yet quantized
        qj = np.clip(np.rint(w[:, j] / s) + z, 0, 7)
        target = s * (qj - z)
        w[:, j:] -= np.outer((w[:, j] - target) / Hinv[0, 0], Hinv[0])
        w[:, j] = target
    r = gptq_quantize(W.astype(np.float32), X, 3)
    np.testing.assert_allclose(r.W_hat, w, rtol=1e-5, atol=1e-6)


def test_gptq_dead_inputs_get_zero_weights(rng):
    W = rng.standard_normal((4, 6)).astype(np.float32)
    X = correlated_inputs(rng, d=6)
    X[:, 2] = 0
    r = gptq_quantize(W, X, 4)
    assert np.all(r.W_hat[:, 2] == 0)


def test_gptq_validation(rng):
    W = rng.standard_normal((4, 6)).astype(np.float32)
    X = rng.standard_normal((20, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="shape"):
        gptq_quantize(W, X[:, :5], 4)
    with pytest.raises(ValueError, match="bits"):
        gptq_quantize(W, X, 0)
    with pytest.raises(ValueError, match="bits"):
        gptq_quantize(W, X, 17)
    with pytest.raises(ValueError, match="NaN"):
        gptq_quantize(W, np.where(X > 2, np.nan, X), 4)
    with pytest.raises(ValueError, match="NaN"):
        gptq_quantize(np.full((2, 6), np.nan), X, 4)
    with pytest.raises(ValueError, match="damp"):
        gptq_quantize(W, X, 4, damp=-1)
    with pytest.raises(ValueError, match="block"):
        gptq_quantize(W, X, 4, block=0)
    with pytest.raises(ValueError, match="positive definite"):
        gptq_quantize(W, X[:2], 4, damp=0.0)  # 2 samples, 6 inputs: H singular
    with pytest.raises(TypeError):
        gptq_quantize(W, X.tolist(), 4)
