"""labkit.quant.smoothquant: the scales s_j = max|X_j|^α / max|W_j|^(1−α), their folds, and what they buy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.quant import (
    fake_quantize,
    fold_smoothquant_layernorm,
    fold_smoothquant_linear,
    qparams,
    smoothquant_scales,
)


def outlier_activations(rng, n=512, d=64, channels=(3, 40), factor=30.0):
    X = rng.standard_normal((n, d))
    X[:, list(channels)] *= factor
    return X


def layernorm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return g * (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) + b


@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_scales_follow_the_formula(alpha, seed):
    rng = np.random.default_rng(seed)
    X, W = outlier_activations(rng, 64, 16, (2,)), rng.standard_normal((8, 16))
    a = np.abs(X).max(axis=0)
    s = smoothquant_scales(a, W, alpha)
    assert s.dtype == np.float32 and s.shape == (16,) and np.all(s > 0)
    np.testing.assert_allclose(s, a**alpha / np.abs(W).max(axis=0) ** (1 - alpha), rtol=1e-6)


def test_alpha_one_half_balances_the_two_maxima(rng):
    X, W = outlier_activations(rng), rng.standard_normal((32, 64))
    a, w = np.abs(X).max(axis=0), np.abs(W).max(axis=0)
    s = smoothquant_scales(a, W, 0.5).astype(np.float64)
    np.testing.assert_allclose(a / s, w * s, rtol=1e-6)
    np.testing.assert_allclose(a / smoothquant_scales(a, W, 1.0), 1.0, rtol=1e-6)  # α = 1: activations' max 1
    np.testing.assert_allclose(w * smoothquant_scales(a, W, 0.0), 1.0, rtol=1e-6)  # α = 0: weights' max 1


def test_several_readers_share_one_scale_and_dead_channels_keep_one(rng):
    Wq, Wk, Wv = rng.standard_normal((3, 16, 8))
    Wv[:, 2] *= 10
    a = np.abs(rng.standard_normal(8)) + 0.1
    a[5] = 0.0  # a channel that never fires
    Wk[:, 6] = Wq[:, 6] = Wv[:, 6] = 0.0  # a column nobody reads
    s = smoothquant_scales(a, [Wq, Wk, Wv], 0.5)
    w = np.max([np.abs(m).max(axis=0) for m in (Wq, Wk, Wv)], axis=0)
    live = [j for j in range(8) if j not in (5, 6)]
    np.testing.assert_allclose(s[live], np.sqrt(a[live] / w[live]), rtol=1e-6)
    assert s[5] == 1.0 and s[6] == 1.0


def test_fold_into_layernorm_keeps_the_output(rng):
    d = 64
    X = outlier_activations(rng, 32, d)
    g, b = 1 + 0.1 * rng.standard_normal(d), 0.1 * rng.standard_normal(d)
    Ws = [rng.standard_normal((48, d)) for _ in range(3)]
    h = layernorm(X, g, b)
    s = smoothquant_scales(np.abs(h).max(axis=0), Ws, 0.5)
    g2, b2, Ws2 = fold_smoothquant_layernorm(g, b, Ws, s)
    h2 = layernorm(X, g2, b2)
    np.testing.assert_allclose(h2, h / s.astype(np.float64), rtol=1e-12)
    for W, W2 in zip(Ws, Ws2):
        np.testing.assert_allclose(h2 @ W2.T, h @ W.T, rtol=1e-10, atol=1e-10)
    # float32 in, float32 out; the inputs are left alone
    g32, b32, W32 = fold_smoothquant_layernorm(g.astype(np.float32), b.astype(np.float32), Ws[0].astype(np.float32), s)
    assert g32.dtype == b32.dtype == W32.dtype == np.float32 and isinstance(W32, np.ndarray)
    np.testing.assert_allclose(layernorm(X, g32, b32) @ W32.T, h @ Ws[0].T, rtol=2e-4, atol=2e-4)
    assert not np.shares_memory(g2, g)


def test_fold_into_the_value_projection_through_attention(rng):
    T, d, heads = 10, 16, 2
    Z = rng.standard_normal((T, d))
    Wv, bv, Wo = rng.standard_normal((d, d)), rng.standard_normal(d), rng.standard_normal((d, d))
    Wv[3] *= 25  # an outlier channel in the values
    P = rng.random((heads, T, T))
    P /= P.sum(-1, keepdims=True)

    def attend(Wv, bv, Wo):
        v = (Z @ Wv.T + bv).reshape(T, heads, d // heads).transpose(1, 0, 2)
        return (P @ v).transpose(1, 0, 2).reshape(T, d) @ Wo.T

    a = np.abs(Z @ Wv.T + bv).max(axis=0)
    s = smoothquant_scales(a, Wo, 0.5)
    Wv2, bv2, Wo2 = fold_smoothquant_linear(Wv, bv, Wo, s)
    np.testing.assert_allclose(attend(Wv2, bv2, Wo2), attend(Wv, bv, Wo), rtol=1e-10, atol=1e-10)
    _, none, _ = fold_smoothquant_linear(Wv, None, Wo, s)
    assert none is None


def w8a8_error(X, W):
    """Per-tensor static int8 activations and per-channel int8 weights: relative output MSE."""
    Xq = fake_quantize(X, qparams(X, 8, symmetric=True))
    Wq = fake_quantize(W, qparams(W, 8, symmetric=True, axis=0), axis=0)
    Y = X @ W.T
    return np.mean((Xq.astype(np.float64) @ Wq.T.astype(np.float64) - Y) ** 2) / np.mean(Y**2)


def test_smoothing_makes_outlier_activations_quantizable(rng):
    X, W = outlier_activations(rng, factor=60.0), rng.standard_normal((32, 64))
    s = smoothquant_scales(np.abs(X).max(axis=0), W, 0.5).astype(np.float64)
    naive, smooth = w8a8_error(X, W), w8a8_error(X / s, W * s)
    assert smooth < naive / 4


def test_bad_input(rng):
    W = rng.standard_normal((4, 8))
    a = np.ones(8)
    with pytest.raises(ValueError, match=r"x_absmax must have shape \(8,\)"):
        smoothquant_scales(np.ones(7), W)
    with pytest.raises(ValueError, match="non-negative"):
        smoothquant_scales(-a, W)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        smoothquant_scales(a, W, 1.5)
    with pytest.raises(ValueError, match="share one input"):
        smoothquant_scales(a, [W, np.ones((4, 7))])
    with pytest.raises(TypeError, match="non-empty list"):
        smoothquant_scales(a, [])
    with pytest.raises(TypeError, match="numpy array"):
        smoothquant_scales(a, W.tolist())
    with pytest.raises(ValueError, match="finite"):
        smoothquant_scales(np.full(8, np.nan), W)
    with pytest.raises(ValueError, match="positive scales"):
        fold_smoothquant_layernorm(a, a, W, -a)
    with pytest.raises(ValueError, match=r"gamma must have shape \(8,\)"):
        fold_smoothquant_layernorm(np.ones(3), a, W, a)
    with pytest.raises(ValueError, match="W_prev must have 8 rows"):
        fold_smoothquant_linear(np.ones((7, 3)), None, W, a)
    with pytest.raises(ValueError, match=r"b_prev must have shape \(8,\)"):
        fold_smoothquant_linear(np.ones((8, 3)), np.ones(2), W, a)
