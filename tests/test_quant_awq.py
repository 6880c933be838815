"""labkit.quant.awq: activation scales, the α search, and folding 1/s so the float model is unchanged."""

import numpy as np
import pytest

from labkit import nn
from labkit.quant import (
    activation_scale,
    awq_scales,
    awq_search,
    dequantize_groupwise,
    fold_awq_scales,
    layer_output_error,
    quantize_groupwise,
)


def salient_inputs(rng, n=256, d=64):
    """Inputs where a few channels carry much larger activations (the setting AWQ is built for)."""
    X = rng.standard_normal((n, d))
    X[:, :3] *= 30
    return X.astype(np.float32)


def test_activation_scale(rng):
    X = rng.standard_normal((10, 6)).astype(np.float32)
    np.testing.assert_allclose(activation_scale(X), np.abs(X.astype(np.float64)).mean(axis=0))
    s = activation_scale(X, channel_size=3)
    np.testing.assert_allclose(s[:3], np.abs(X[:, :3].astype(np.float64)).mean())
    with pytest.raises(ValueError, match="divide"):
        activation_scale(X, channel_size=4)


def test_awq_alpha_zero_is_round_to_nearest(rng):
    W = rng.standard_normal((16, 64)).astype(np.float32)
    X = salient_inputs(rng)
    r = awq_search(W, X, 3, 16, grid=1)  # only α = 0: s = 1
    assert r.alpha == 0.0
    np.testing.assert_array_equal(r.scales, np.ones(64, np.float32))
    q, s, z = quantize_groupwise(W, 3, 16)
    np.testing.assert_array_equal(r.W_hat, dequantize_groupwise(q, s, z, 16))


def test_awq_search_reduces_the_output_error(rng):
    W = rng.standard_normal((32, 64)).astype(np.float32)
    X = salient_inputs(rng)
    r = awq_search(W, X, 3, 32, grid=20)
    assert r.errors.shape == (20,) and r.alpha > 0
    assert r.errors.min() == r.errors[int(round(r.alpha * 20))]
    assert layer_output_error(W, r.W_hat, X) < 0.9 * r.errors[0]
    np.testing.assert_allclose(layer_output_error(W, r.W_hat, X), r.errors.min(), rtol=1e-5)
    # s = s_X^α, normalised by sqrt(max · min)
    s = activation_scale(X) ** r.alpha
    s = s / np.sqrt(s.max() * s.min())
    np.testing.assert_allclose(r.scales, s, rtol=1e-6)
    np.testing.assert_array_equal(awq_scales(W, X, 3, 32, grid=20), r.scales)
    assert np.argmax(r.scales) < 3  # the salient channels get the largest scales


def test_fold_awq_scales_keeps_the_float_function(rng):
    model = nn.Sequential(
        [nn.Dense(8, 12, rng=rng), nn.ReLU(), nn.Dropout(0.0), nn.Dense(12, 5, rng=rng)], input_shape=(8,)
    )
    model.layers[0].b[:] = rng.standard_normal(12)
    x = rng.standard_normal((7, 8)).astype(np.float32)
    s = rng.uniform(0.5, 3.0, 12)
    names = [name for name, _ in model.weight_layers()]
    folded = fold_awq_scales(model, names[1], s)
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(folded[names[1]].W, model[names[1]].W * s.astype(np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="input"):
        fold_awq_scales(model, names[0], np.ones(8))
    with pytest.raises(ValueError, match="positive"):
        fold_awq_scales(model, names[1], -s)


def test_fold_awq_scales_conv_to_conv_and_flatten_refused(rng):
    model = nn.Sequential(
        [
            nn.Conv2d(1, 3, 3, rng=rng),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(3, 4, 2, rng=rng),
            nn.Flatten(),
            nn.Dense(16, 2, rng=rng),
        ],
        input_shape=(1, 8, 8),
    )
    names = [name for name, _ in model.weight_layers()]
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    s = np.repeat(np.array([0.5, 2.0, 3.0]), 4)  # one scale per input channel (k·k = 4 columns)
    folded = fold_awq_scales(model, names[1], s)
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="constant"):
        fold_awq_scales(model, names[1], np.linspace(1, 2, 12))
    with pytest.raises(ValueError, match="Flatten"):
        fold_awq_scales(model, names[2], np.ones(16))


def test_awq_validation(rng):
    W = rng.standard_normal((4, 8)).astype(np.float32)
    X = rng.standard_normal((5, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="grid"):
        awq_scales(W, X, 4, 4, grid=0)
    with pytest.raises(ValueError, match="bits"):
        awq_scales(W, X, 0, 4)
    with pytest.raises(ValueError, match="shape"):
        awq_scales(W, X[:, :4], 4, 4)
    with pytest.raises(ValueError, match="NaN"):
        awq_scales(W, np.full((5, 8), np.nan), 4, 4)
