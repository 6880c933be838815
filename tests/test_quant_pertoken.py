"""labkit.quant.pertoken: per-token dynamic, per-tensor static and KV-cache quantization of activations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.quant import fake_quantize, qparams, quantize, quantize_kv, quantize_per_tensor, quantize_per_token


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), bits=st.sampled_from([4, 8]), tokens=st.integers(1, 9))
def test_symmetric_per_token(seed, bits, tokens):
    X = np.random.default_rng(seed).standard_normal((tokens, 24)).astype(np.float32) * 3
    r = quantize_per_token(X, bits)
    qmax = (1 << (bits - 1)) - 1
    scale = (np.abs(X).max(axis=1).astype(np.float64) / qmax).astype(np.float32)
    np.testing.assert_array_equal(r.scale, scale)
    np.testing.assert_array_equal(r.zero_point, 0)
    codes = np.clip(np.rint(X / scale.astype(np.float64)[:, None]), -qmax, qmax)
    np.testing.assert_array_equal(r.q, codes.astype(np.int8))
    assert r.q.dtype == np.int8 and np.all(np.abs(r.q).max(axis=1) == qmax)  # each token's largest uses the top code
    np.testing.assert_allclose(r.X_hat, (codes * scale[:, None]).astype(np.float32), rtol=1e-7)
    assert np.all(np.abs(r.X_hat - X) <= scale[:, None] / 2 * (1 + 1e-6))


def test_affine_per_token_is_qparams_per_row(rng):
    X = rng.standard_normal((6, 10)).astype(np.float32) + 2
    r = quantize_per_token(X, 8, symmetric=False)
    qp = qparams(X, 8, axis=0)
    np.testing.assert_array_equal(r.scale, qp.scale)
    np.testing.assert_array_equal(r.zero_point, qp.zero_point)
    np.testing.assert_array_equal(r.q, quantize(X, qp, axis=0))
    assert r.q.dtype == np.uint8


def test_more_dimensions_and_the_kv_cache(rng):
    X = rng.standard_normal((2, 5, 8)).astype(np.float32)
    r = quantize_per_token(X, 8)
    flat = quantize_per_token(X.reshape(10, 8), 8)
    assert r.scale.shape == (2, 5)
    np.testing.assert_array_equal(r.X_hat.reshape(10, 8), flat.X_hat)
    kv = rng.standard_normal((7, 4, 16)).astype(np.float32)  # (tokens, heads, head_dim)
    kv[:, 2] *= 50  # one loud head does not coarsen the others
    q8, q4 = quantize_kv(kv, 8), quantize_kv(kv, 4)
    assert q8.scale.shape == q4.scale.shape == (7, 4) and q8.q.shape == kv.shape
    np.testing.assert_array_equal(q8.scale, (np.abs(kv).max(axis=2).astype(np.float64) / 127).astype(np.float32))
    np.testing.assert_array_equal(np.abs(q4.q).max(axis=2), 7)
    err = lambda r: np.abs(r.X_hat - kv)[:, [0, 1, 3]].max()
    assert err(q8) < 0.02 and err(q4) < 0.3 < 0.02 * np.abs(kv[:, 2]).max()
    assert quantize_kv(rng.standard_normal((1, 3, 2, 4)), 8).scale.shape == (1, 3, 2)


def test_per_tensor_static_clamps_beyond_the_calibrated_range(rng):
    calib = rng.standard_normal((100, 8)).astype(np.float32)
    qp = qparams(calib, 8, symmetric=True)
    X = np.array([[0.5, -0.25, 100.0, -100.0]], np.float32)
    r = quantize_per_tensor(X, qp)
    assert r.scale.shape == () and r.scale == qp.scale
    np.testing.assert_array_equal(r.X_hat, fake_quantize(X, qp))
    assert r.q[0, 2] == 127 and r.q[0, 3] == -127  # clamped
    np.testing.assert_array_equal(quantize_per_tensor(X, qparams(calib, 8)).q, quantize(X, qparams(calib, 8)))


def test_per_token_beats_per_tensor_when_tokens_differ_in_scale(rng):
    X = rng.standard_normal((64, 32)) * np.exp(rng.standard_normal((64, 1)) * 1.5)  # loud and quiet tokens
    static = quantize_per_tensor(X, qparams(X, 8, symmetric=True))
    dynamic = quantize_per_token(X, 8)
    mse = lambda r: np.mean((r.X_hat.astype(np.float64) - X) ** 2)
    assert mse(dynamic) < mse(static) / 4


def test_bad_input(rng):
    X = rng.standard_normal((4, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\]"):
        quantize_per_token(X, 1)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        quantize_per_token(X[0])
    with pytest.raises(TypeError, match="numpy array"):
        quantize_per_token(X.tolist())
    with pytest.raises(ValueError, match="finite"):
        quantize_per_token(np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match="not be empty"):
        quantize_per_token(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="symmetric must be True or False"):
        quantize_per_token(X, 8, symmetric="yes")
    with pytest.raises(TypeError, match="QParams"):
        quantize_per_tensor(X, (0.1, 0))
    with pytest.raises(ValueError, match="per-tensor"):
        quantize_per_tensor(X, qparams(X, 8, axis=0))
    with pytest.raises(ValueError, match="kv must be"):
        quantize_kv(X, 8)
