"""labkit.quant.llm_int8: the outlier decomposition against a plain reference and against the float product."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.quant import int8_decompose


def hidden_states(rng, n=64, d=96, outliers=(7, 50), factor=25.0):
    X = rng.standard_normal((n, d))
    X[:, list(outliers)] *= factor
    return X.astype(np.float32)


def reference(X, W, threshold):
    """LLM.int8() written out element by element (the algorithm of the paper's §3, nothing shared)."""
    X, W = X.astype(np.float64), W.astype(np.float64)
    n, d = X.shape
    out = W.shape[0]
    O = [j for j in range(d) if threshold is not None and any(abs(X[t, j]) >= threshold for t in range(n))]
    R = [j for j in range(d) if j not in O]
    acc = np.zeros((n, out), np.int64)
    sx, sw = np.ones(n), np.ones(out)
    if R:
        for t in range(n):
            m = max(abs(X[t, j]) for j in R)
            sx[t] = np.float32(m / 127) if m > 0 else 1.0
        for o in range(out):
            m = max(abs(W[o, j]) for j in R)
            sw[o] = np.float32(m / 127) if m > 0 else 1.0
        xq = np.array([[np.clip(np.rint(X[t, j] / sx[t]), -127, 127) for j in R] for t in range(n)], np.int64)
        wq = np.array([[np.clip(np.rint(W[o, j] / sw[o]), -127, 127) for j in R] for o in range(out)], np.int64)
        for t in range(n):
            for o in range(out):
                acc[t, o] = int(np.dot(xq[t], wq[o]))
    Y = acc * np.outer(sx, sw)
    if O:
        Y = Y + X[:, O] @ W[:, O].T
    return Y, O, acc, sx, sw


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 12),
    d=st.integers(1, 20),
    out=st.integers(1, 6),
    threshold=st.sampled_from([None, 1.0, 2.5, 6.0]),
)
def test_matches_a_plain_reference_of_the_same_algorithm(seed, n, d, out, threshold):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.choice([1.0, 8.0], d)).astype(np.float32)
    W = rng.standard_normal((out, d)).astype(np.float32)
    Y_ref, O, acc, sx, sw = reference(X, W, threshold)
    r = int8_decompose(X, W, threshold)
    assert r.outlier_columns.tolist() == O and r.float_fraction == len(O) / d
    np.testing.assert_array_equal(r.acc, acc)  # the integer part: exactly
    assert r.acc.dtype == np.int32
    np.testing.assert_array_equal(r.x_scale, sx.astype(np.float32))
    np.testing.assert_array_equal(r.w_scale, sw.astype(np.float32))
    np.testing.assert_array_equal(r.Y, Y_ref.astype(np.float32))  # same float64 operations: bit for bit


def test_error_against_the_float_product_is_within_the_int8_bound(rng):
    X, W = hidden_states(rng), rng.standard_normal((32, 96)).astype(np.float32)
    r = int8_decompose(X, W, 6.0)
    Y = X.astype(np.float64) @ W.T.astype(np.float64)
    R = np.setdiff1d(np.arange(96), r.outlier_columns)
    # |x w − x̂ ŵ| <= |x| δw + |w| δx + δx δw per term, δ = half a step
    dx, dw = r.x_scale.astype(np.float64)[:, None] / 2, r.w_scale.astype(np.float64)[:, None] / 2
    ax, aw = np.abs(X[:, R].astype(np.float64)), np.abs(W[:, R].astype(np.float64))
    bound = ax.sum(1)[:, None] * dw.T + dx * aw.sum(1)[None, :] + dx * dw.T * len(R)
    assert np.all(np.abs(r.Y - Y) <= bound + 1e-4)


def test_decomposition_keeps_the_outlier_features_and_helps(rng):
    X, W = hidden_states(rng), rng.standard_normal((32, 96)).astype(np.float32)
    Y = X.astype(np.float64) @ W.T.astype(np.float64)
    r = int8_decompose(X, W, 6.0)
    assert r.outlier_columns.tolist() == [7, 50] and r.float_fraction == 2 / 96
    plain = int8_decompose(X, W, None)
    assert plain.float_fraction == 0 and plain.outlier_columns.size == 0
    err = lambda A: np.mean((A.astype(np.float64) - Y) ** 2) / np.mean(Y**2)
    assert err(r.Y) < err(plain.Y) / 10  # the outliers no longer set every token's scale
    # every column an outlier: the float product
    everything = int8_decompose(X, W, 1e-9)
    assert everything.float_fraction == 1.0 and not everything.acc.any()
    np.testing.assert_allclose(everything.Y, Y, rtol=1e-6)


def test_zero_rows_and_columns(rng):
    X = np.zeros((3, 8), np.float32)
    W = rng.standard_normal((2, 8)).astype(np.float32)
    r = int8_decompose(X, W)
    np.testing.assert_array_equal(r.Y, 0)
    np.testing.assert_array_equal(r.x_scale, 1)


def test_bad_input(rng):
    X, W = hidden_states(rng, 4, 8, (1,)), rng.standard_normal((3, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"W must be a 2-D array of shape \(out, 8\)"):
        int8_decompose(X, W[:, :7])
    with pytest.raises(ValueError, match="threshold must be > 0"):
        int8_decompose(X, W, 0.0)
    with pytest.raises(TypeError, match="threshold must be a real number"):
        int8_decompose(X, W, "6")
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        int8_decompose(X[0], W)
    with pytest.raises(ValueError, match="finite"):
        int8_decompose(np.full((2, 8), np.nan, np.float32), W)
    with pytest.raises(TypeError, match="numpy array"):
        int8_decompose(X.tolist(), W)
    with pytest.raises(ValueError, match="overflow the int32"):
        int8_decompose(np.zeros((1, 140_000), np.float32), np.zeros((1, 140_000), np.float32))
