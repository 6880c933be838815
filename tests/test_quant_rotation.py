"""labkit.quant.rotation: the fast Walsh–Hadamard transform, and which rotations a pre-LN GPT absorbs exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labkit.quant import (
    block_diagonal,
    fold_layernorm_affine,
    fold_rotation,
    fwht,
    hadamard,
    mean_preserving_rotation,
    randomized_hadamard,
    rotate_input_side,
    rotate_output_side,
)


# --- the transform ------------------------------------------------------------------------------
def test_hadamard_is_sylvesters_and_orthogonal():
    assert hadamard(1).tolist() == [[1.0]]
    np.testing.assert_array_equal(hadamard(2) * np.sqrt(2), [[1, 1], [1, -1]])
    H4 = hadamard(4) * 2
    np.testing.assert_array_equal(H4, np.block([[hadamard(2), hadamard(2)], [hadamard(2), -hadamard(2)]]) * np.sqrt(2))
    for n in [1, 2, 8, 64, 256]:
        H = hadamard(n)
        np.testing.assert_allclose(H @ H.T, np.eye(n), atol=1e-12)
        np.testing.assert_array_equal(H, H.T)
        np.testing.assert_allclose(np.abs(H), 1 / np.sqrt(n))


@settings(max_examples=60, deadline=None)
@given(
    log_n=st.integers(0, 9),
    lead=st.lists(st.integers(1, 4), max_size=2),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_fwht_is_the_hadamard_product(log_n, lead, seed, dtype):
    n = 1 << log_n
    x = np.random.default_rng(seed).standard_normal((*lead, n)).astype(dtype)
    y = fwht(x)
    assert y.shape == x.shape and y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(y, x.astype(np.float64) @ hadamard(n).T, rtol=tol, atol=tol)
    np.testing.assert_allclose(fwht(y), x, rtol=tol, atol=tol)  # an involution
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=tol)


def test_fwht_spreads_an_outlier_channel():
    x = np.zeros((1, 256))
    x[0, 17] = 100.0
    y = fwht(x)
    np.testing.assert_allclose(np.abs(y), 100.0 / 16)  # every channel an equal share
    assert fwht(np.arange(4)).dtype == np.float64  # integers are transformed in float64


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float64, st.sampled_from([(8,), (3, 16)]), elements=st.floats(-1e3, 1e3)))
def test_fwht_linear(x):
    np.testing.assert_allclose(fwht(2 * x), 2 * fwht(x), atol=1e-9)


def test_rotations_are_orthogonal():
    for Q in [randomized_hadamard(32, 3), mean_preserving_rotation(32, 3), block_diagonal(hadamard(8), 4)]:
        np.testing.assert_allclose(Q @ Q.T, np.eye(32), atol=1e-12)
    assert not np.allclose(randomized_hadamard(32, 1), randomized_hadamard(32, 2))
    x = np.random.default_rng(0).standard_normal((5, 32))
    d = np.random.default_rng(3).choice([-1.0, 1.0], 32)
    np.testing.assert_allclose(x @ randomized_hadamard(32, 3).T, fwht(x * d), atol=1e-12)
    Q = mean_preserving_rotation(64, 7)
    np.testing.assert_allclose(Q @ np.ones(64), np.ones(64), atol=1e-12)
    np.testing.assert_allclose(Q, Q.T, atol=1e-15)
    assert np.abs(Q).max() < 0.5  # spreads (an identity would have 1)
    d = np.random.default_rng(7).choice([-1.0, 1.0], 64)
    d[0] = 1
    x = np.random.default_rng(1).standard_normal((3, 64))
    np.testing.assert_allclose(x @ Q.T, fwht(fwht(x) * d), atol=1e-12)  # two fast transforms
    assert not np.allclose(hadamard(64) @ np.ones(64), np.ones(64))  # a plain Hadamard does not keep 1


# --- folding ------------------------------------------------------------------------------------
def test_a_rotation_between_two_linear_layers_is_exact(rng):
    W1, b1, W2 = rng.standard_normal((16, 8)), rng.standard_normal(16), rng.standard_normal((5, 16))
    x = rng.standard_normal((10, 8))
    Q = hadamard(16)
    W1r, b1r, W2r = fold_rotation(W1, b1, W2, Q)
    np.testing.assert_allclose((x @ W1r.T + b1r) @ W2r.T, (x @ W1.T + b1) @ W2.T, atol=1e-12)
    np.testing.assert_allclose(x @ W1r.T + b1r, (x @ W1.T + b1) @ Q.T, atol=1e-12)  # the stream is rotated
    W1r32, b1r32 = rotate_output_side(W1.astype(np.float32), b1.astype(np.float32), Q)
    assert W1r32.dtype == b1r32.dtype == np.float32


def test_online_hadamard_before_the_down_projection(rng):
    gelu = lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    W_up, W_down = rng.standard_normal((64, 16)), rng.standard_normal((16, 64))
    x = rng.standard_normal((7, 16))
    a = gelu(x @ W_up.T)
    np.testing.assert_allclose(fwht(a) @ rotate_input_side(W_down, hadamard(64)).T, a @ W_down.T, atol=1e-10)
    # not foldable into the up-projection: GELU does not commute with the rotation
    W_up_r, _ = rotate_output_side(W_up, None, hadamard(64))
    assert not np.allclose(gelu(x @ W_up_r.T) @ rotate_input_side(W_down, hadamard(64)).T, a @ W_down.T, atol=1e-3)


def test_fold_layernorm_affine(rng):
    g, be, W, b = rng.standard_normal(8), rng.standard_normal(8), rng.standard_normal((3, 8)), rng.standard_normal(3)
    n = rng.standard_normal((4, 8))
    Wf, bf = fold_layernorm_affine(g, be, W, b)
    np.testing.assert_allclose(n @ Wf.T + bf, (g * n + be) @ W.T + b, atol=1e-12)
    _, b0 = fold_layernorm_affine(g, be, W)
    np.testing.assert_allclose(b0, W @ be)


# --- a two-block pre-LN GPT in numpy: which rotations keep its logits -----------------------------
D, HEADS, FF, VOCAB, T = 32, 4, 128, 11, 9


def layernorm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return g * (x - mu) / np.sqrt(var + eps) + b


def gelu(z):
    return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))


def make_gpt(rng, n_layer=2):
    r = lambda *s: rng.standard_normal(s) * 0.3
    p = {"E": r(VOCAB, D), "P": r(T, D), "gf": 1 + r(D), "bf": r(D), "head": r(VOCAB, D), "blocks": []}
    for _ in range(n_layer):
        blk = {"g1": 1 + r(D), "b1": r(D), "g2": 1 + r(D), "b2": r(D)}
        shapes = {"q": (D, D), "k": (D, D), "v": (D, D), "o": (D, D), "fc1": (FF, D), "fc2": (D, FF)}
        for name, (o, i) in shapes.items():
            blk["W" + name], blk["b" + name] = r(o, i), r(o)
        p["blocks"].append(blk)
    p["E"][:, 5] *= 20  # an outlier channel in the stream, as trained GPTs grow
    return p


def forward(p, tokens, online_down=None):
    x = p["E"][tokens] + p["P"][: len(tokens)]
    mask = np.triu(np.ones((len(tokens), len(tokens)), bool), 1)
    for blk in p["blocks"]:
        h = layernorm(x, blk["g1"], blk["b1"])
        q, k, v = (h @ blk["W" + n].T + blk["b" + n] for n in "qkv")
        split = lambda a: a.reshape(len(tokens), HEADS, D // HEADS).transpose(1, 0, 2)
        s = split(q) @ split(k).transpose(0, 2, 1) / np.sqrt(D // HEADS)
        s = np.where(mask, -np.inf, s)
        P = np.exp(s - s.max(-1, keepdims=True))
        P /= P.sum(-1, keepdims=True)
        a = (P @ split(v)).transpose(1, 0, 2).reshape(len(tokens), D)
        x = x + a @ blk["Wo"].T + blk["bo"]
        h = gelu(layernorm(x, blk["g2"], blk["b2"]) @ blk["Wfc1"].T + blk["bfc1"])
        if online_down is not None:
            h = online_down(h)
        x = x + h @ blk["Wfc2"].T + blk["bfc2"]
    return layernorm(x, p["gf"], p["bf"]) @ p["head"].T


def rotate_residual(p, Q):
    """The recipe of the module docstring: fold every γ, β into its readers, then rotate the stream by Q."""
    p = {**p, "blocks": [dict(b) for b in p["blocks"]]}
    ones, zeros = np.ones(D), np.zeros(D)
    for blk in p["blocks"]:
        for n in "qkv":
            blk["W" + n], blk["b" + n] = fold_layernorm_affine(blk["g1"], blk["b1"], blk["W" + n], blk["b" + n])
            blk["W" + n] = rotate_input_side(blk["W" + n], Q)
        blk["Wfc1"], blk["bfc1"] = fold_layernorm_affine(blk["g2"], blk["b2"], blk["Wfc1"], blk["bfc1"])
        blk["Wfc1"] = rotate_input_side(blk["Wfc1"], Q)
        blk["g1"], blk["b1"], blk["g2"], blk["b2"] = ones, zeros, ones, zeros
        blk["Wo"], blk["bo"] = rotate_output_side(blk["Wo"], blk["bo"], Q)
        blk["Wfc2"], blk["bfc2"] = rotate_output_side(blk["Wfc2"], blk["bfc2"], Q)
    head, head_b = fold_layernorm_affine(p["gf"], p["bf"], p["head"])
    p["head"], p["gf"], p["bf"] = rotate_input_side(head, Q), ones, zeros
    p["E"], p["P"] = rotate_input_side(p["E"], Q), rotate_input_side(p["P"], Q)
    return p, head_b


@pytest.fixture
def gpt():
    rng = np.random.default_rng(5)
    return make_gpt(rng), rng.integers(0, VOCAB, T)


def test_mean_preserving_rotation_of_the_residual_stream_is_exact(gpt):
    p, tokens = gpt
    ref = forward(p, tokens)
    rotated, head_b = rotate_residual(p, mean_preserving_rotation(D, seed=2))
    np.testing.assert_allclose(forward(rotated, tokens) + head_b, ref, atol=1e-9)
    # the stream really is rotated: the outlier channel is spread
    assert np.abs(rotated["E"]).max() < 0.5 * np.abs(p["E"]).max()


def test_plain_hadamard_on_the_residual_stream_is_not_exact_with_layernorm(gpt):
    p, tokens = gpt
    ref = forward(p, tokens)
    rotated, head_b = rotate_residual(p, hadamard(D))  # H·1 != 1: LayerNorm's mean subtraction breaks it
    assert np.abs(forward(rotated, tokens) + head_b - ref).max() > 1e-2


def test_per_head_rotations_of_values_queries_and_keys_are_exact(gpt):
    p, tokens = gpt
    ref = forward(p, tokens)
    Qh = block_diagonal(hadamard(D // HEADS), HEADS)
    q = {**p, "blocks": [dict(b) for b in p["blocks"]]}
    for blk in q["blocks"]:
        blk["Wv"], blk["bv"], blk["Wo"] = fold_rotation(blk["Wv"], blk["bv"], blk["Wo"], Qh)
        blk["Wq"], blk["bq"] = rotate_output_side(blk["Wq"], blk["bq"], Qh)
        blk["Wk"], blk["bk"] = rotate_output_side(blk["Wk"], blk["bk"], Qh)
    np.testing.assert_allclose(forward(q, tokens), ref, atol=1e-9)
    # a rotation mixing heads does not commute with the per-head attention
    bad = {**p, "blocks": [dict(b) for b in p["blocks"]]}
    for blk in bad["blocks"]:
        blk["Wv"], blk["bv"], blk["Wo"] = fold_rotation(blk["Wv"], blk["bv"], blk["Wo"], hadamard(D))
    assert np.abs(forward(bad, tokens) - ref).max() > 1e-3


def test_online_hadamard_in_the_mlp_is_exact(gpt):
    p, tokens = gpt
    q = {**p, "blocks": [dict(b) for b in p["blocks"]]}
    for blk in q["blocks"]:
        blk["Wfc2"] = rotate_input_side(blk["Wfc2"], hadamard(FF))
    np.testing.assert_allclose(forward(q, tokens, online_down=fwht), forward(p, tokens), atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        hadamard(12)
    with pytest.raises(ValueError, match="n must be >= 1"):
        hadamard(0)
    with pytest.raises(ValueError, match="power of two"):
        fwht(np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"x.shape\[-1\] must be >= 1"):
        fwht(np.ones((2, 0)))
    with pytest.raises(ValueError, match="0-d"):
        fwht(np.float64(1.0))
    with pytest.raises(TypeError, match="x must be a"):
        fwht(["a", "b"])
    with pytest.raises(ValueError, match="orthogonal"):
        rotate_input_side(np.ones((2, 4)), 2 * np.eye(4))
    with pytest.raises(ValueError, match=r"\(4, 4\) rotation"):
        rotate_input_side(np.ones((2, 4)), np.eye(8))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        rotate_output_side(np.ones((4, 2)), np.ones(3), np.eye(4))
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        fold_layernorm_affine(np.ones(3), np.ones(4), np.ones((2, 4)))
    with pytest.raises(ValueError, match="n_blocks must be >= 1"):
        block_diagonal(np.eye(2), 0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        mean_preserving_rotation(8, -1)
