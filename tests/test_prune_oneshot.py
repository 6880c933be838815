"""labkit.prune.oneshot: n:m masks, Wanda, SparseGPT, the exact reconstruction, the layer-by-layer driver."""

import numpy as np
import pytest

from labkit import nn
from labkit.prune import (
    compress_layerwise,
    layer_inputs,
    magnitude_mask,
    nm_mask,
    reconstruct,
    sparsegpt_prune,
    wanda_mask,
    wanda_scores,
)
from labkit.quant import hessian, layer_output_error


def correlated_inputs(rng, n=400, d=48, rho=0.8):
    base = rng.standard_normal((n, 1))
    return (rho * base + np.sqrt(1 - rho**2) * rng.standard_normal((n, d))).astype(np.float32)


# ------------------------------------------------------------------ n:m


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8), (1, 1), (3, 3)])
def test_nm_mask_keeps_exactly_n_of_every_m(n, m, rng):
    W = rng.standard_normal((5, 8 * m)).astype(np.float32)
    mask = nm_mask(W, n, m)
    assert mask.dtype == bool and mask.shape == W.shape
    np.testing.assert_array_equal(mask.reshape(5, -1, m).sum(axis=2), n)
    # the kept ones are the largest |w| of their group
    g = np.abs(W).reshape(5, -1, m)
    kept_min = np.where(mask.reshape(g.shape), g, np.inf).min(axis=2)
    dropped_max = np.where(mask.reshape(g.shape), -np.inf, g).max(axis=2)
    assert np.all(kept_min >= dropped_max)


def test_nm_mask_ties_keep_the_lower_index_and_conv_shapes():
    np.testing.assert_array_equal(nm_mask(np.ones((1, 4))), [[True, True, False, False]])
    np.testing.assert_array_equal(nm_mask(np.array([[0.1, -3.0, 2.0, 0.5]])), [[False, True, True, False]])
    W = np.arange(2 * 2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2, 2)  # Conv2d (out, in, k, k)
    mask = nm_mask(W)
    assert mask.shape == W.shape
    np.testing.assert_array_equal(mask.reshape(2, -1), [[False, False, True, True] * 2] * 2)


def test_nm_mask_with_scores_and_validation(rng):
    W = rng.standard_normal((2, 8)).astype(np.float32)
    scores = -np.abs(W)  # keep the smallest instead
    mask = nm_mask(W, scores=scores)
    np.testing.assert_array_equal(mask, ~nm_mask(W))
    with pytest.raises(ValueError, match="multiple of m=4"):
        nm_mask(np.ones((2, 6)))
    with pytest.raises(ValueError, match="0 < n <= m"):
        nm_mask(W, 5, 4)
    with pytest.raises(TypeError):
        nm_mask(W, 2.0, 4)
    with pytest.raises(ValueError, match="NaN"):
        nm_mask(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="shape"):
        nm_mask(W, scores=np.ones((2, 4)))


# ------------------------------------------------------------------ Wanda


def test_wanda_with_all_ones_inputs_equals_per_row_magnitude(rng):
    W = rng.standard_normal((6, 20)).astype(np.float32)
    X = np.ones((9, 20), np.float32)
    for s in (0.0, 0.3, 0.5, 0.9):
        mask = wanda_mask(W, X, sparsity=s)
        for i in range(6):
            np.testing.assert_array_equal(mask[i], magnitude_mask(W[i], s))
    np.testing.assert_array_equal(wanda_mask(W, X, n=2, m=4), nm_mask(W, 2, 4))


def test_wanda_scores_and_per_row_counts(rng):
    W = rng.standard_normal((4, 12)).astype(np.float32)
    X = rng.standard_normal((30, 12)).astype(np.float32) * np.arange(1, 13)
    S = wanda_scores(W, X)
    np.testing.assert_allclose(S, np.abs(W) * np.linalg.norm(X.astype(np.float64), axis=0), rtol=1e-12)
    mask = wanda_mask(W, X, sparsity=0.5)
    np.testing.assert_array_equal(mask.sum(axis=1), 6)  # every row loses the same fraction
    # per-row comparison differs from one layer-wide threshold on these scores
    layer_wide = magnitude_mask(S, 0.5)
    assert not np.array_equal(mask, layer_wide) or np.all(layer_wide.sum(axis=1) == 6)
    # a large input feature protects its column
    X2 = X.copy()
    X2[:, 0] *= 1000
    assert wanda_mask(W, X2, sparsity=0.9)[:, 0].all()


def test_wanda_validation(rng):
    W = rng.standard_normal((4, 8)).astype(np.float32)
    X = rng.standard_normal((5, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="either"):
        wanda_mask(W, X)
    with pytest.raises(ValueError, match="either"):
        wanda_mask(W, X, sparsity=0.5, n=2, m=4)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        wanda_mask(W, X, sparsity=1.0)
    with pytest.raises(ValueError, match="shape"):
        wanda_mask(W, X[:, :4], sparsity=0.5)


# ------------------------------------------------------------------ SparseGPT


def test_sparsegpt_fixed_mask_is_the_least_squares_reconstruction_when_pruned_weights_come_first(rng):
    """Each pruned weight is removed while every weight to its right is still free: the sequential
    OBS sweep is then the exact per-row least-squares solution (compare with lstsq per row)."""
    W = rng.standard_normal((6, 16)).astype(np.float32)
    X = correlated_inputs(rng, d=16)
    k = rng.integers(0, 12, 6)
    mask = np.arange(16)[None, :] >= k[:, None]  # row i prunes its first k_i columns
    W_new, keep = sparsegpt_prune(W, X, mask=mask, damp=0.0, block=5)
    np.testing.assert_array_equal(keep, mask)
    Xd = X.astype(np.float64)
    for i in range(6):  # min ‖X w_K − X w‖ over the kept columns K
        K = mask[i]
        sol = np.linalg.lstsq(Xd[:, K], Xd @ W[i].astype(np.float64), rcond=None)[0]
        np.testing.assert_allclose(W_new[i, K], sol, rtol=1e-4, atol=1e-5)
        assert np.all(W_new[i, ~K] == 0)
    np.testing.assert_allclose(W_new, reconstruct(W, X, mask), rtol=1e-4, atol=1e-5)


def test_sparsegpt_fixed_mask_in_general_lies_between_masking_and_the_optimum(rng):
    W = rng.standard_normal((8, 24)).astype(np.float32)
    X = correlated_inputs(rng, d=24)
    mask = rng.random((8, 24)) > 0.5
    W_new, _ = sparsegpt_prune(W, X, mask=mask, damp=0.0)
    e_mask = layer_output_error(W, np.where(mask, W, 0), X)
    e_sgpt = layer_output_error(W, W_new, X)
    e_opt = layer_output_error(W, reconstruct(W, X, mask), X)
    assert e_opt <= e_sgpt * (1 + 1e-6) and e_sgpt < 0.5 * e_mask


def test_reconstruct_matches_lstsq(rng):
    W = rng.standard_normal((3, 10)).astype(np.float32)
    X = correlated_inputs(rng, d=10)
    mask = rng.random((3, 10)) > 0.4
    R = reconstruct(W, X, mask)
    for i in range(3):
        K = mask[i]
        sol = np.linalg.lstsq(X[:, K].astype(np.float64), X.astype(np.float64) @ W[i], rcond=None)[0]
        np.testing.assert_allclose(R[i, K], sol, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sparsity", [0.5, 0.7])
def test_sparsegpt_sparsity_and_beats_magnitude_and_wanda(sparsity, rng):
    W = rng.standard_normal((32, 64)).astype(np.float32)
    X = correlated_inputs(rng, d=64) * rng.lognormal(0, 0.5, 64).astype(np.float32)
    W_new, keep = sparsegpt_prune(W, X, sparsity=sparsity, block=32)
    assert (~keep).sum() == int(sparsity * 32 * 32) * 2  # floor per block of 32 columns, 2 blocks
    assert np.all(W_new[~keep] == 0)
    e = layer_output_error(W, W_new, X)
    assert e < layer_output_error(W, np.where(magnitude_mask(W, sparsity), W, 0), X)
    assert e < layer_output_error(W, np.where(wanda_mask(W, X, sparsity=sparsity), W, 0), X)


def test_sparsegpt_nm_mode(rng):
    W = rng.standard_normal((16, 32)).astype(np.float32)
    X = correlated_inputs(rng, d=32)
    W_new, keep = sparsegpt_prune(W, X, n=2, m=4, block=16)
    np.testing.assert_array_equal(keep.reshape(16, -1, 4).sum(axis=2), 2)
    assert np.all(W_new[~keep] == 0)
    e = layer_output_error(W, W_new, X)
    assert e < layer_output_error(W, np.where(nm_mask(W), W, 0), X)
    with pytest.raises(ValueError, match="multiple of m"):
        sparsegpt_prune(W, X, n=2, m=4, block=6)


def test_sparsegpt_validation(rng):
    W = rng.standard_normal((4, 8)).astype(np.float32)
    X = rng.standard_normal((20, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="either"):
        sparsegpt_prune(W, X)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparsegpt_prune(W, X, sparsity=-0.1)
    with pytest.raises(ValueError, match="mask"):
        sparsegpt_prune(W, X, mask=np.ones((4, 7), bool))
    with pytest.raises(ValueError, match="shape"):
        sparsegpt_prune(W, X[:, :3], sparsity=0.5)
    with pytest.raises(ValueError, match="NaN"):
        sparsegpt_prune(np.full((2, 8), np.nan), X, sparsity=0.5)


# ------------------------------------------------------------------ the driver


def small_cnn(rng):
    model = nn.Sequential(
        [
            nn.Conv2d(1, 4, 3, padding=1, rng=rng),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dense(4 * 4 * 4, 16, rng=rng),
            nn.ReLU(),
            nn.Dense(16, 8, rng=rng),
        ],
        input_shape=(1, 8, 8),
    )
    return model


def test_layer_inputs_reproduce_the_layers(rng):
    model = small_cnn(rng)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    conv = model.layers[0]
    cols = layer_inputs(conv, x)
    y = (cols @ conv.W.reshape(4, -1).T + conv.b).reshape(5, 8, 8, 4).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, conv.forward(x), rtol=1e-5, atol=1e-6)
    assert layer_inputs(model.layers[4], x.reshape(5, -1)[:, :64]) is not None
    with pytest.raises(TypeError):
        layer_inputs(model.layers[1], x)


def test_compress_layerwise_feeds_each_layer_the_compressed_outputs(rng):
    model = small_cnn(rng)
    X = rng.random((64, 1, 8, 8)).astype(np.float32)
    before = {k: v.copy() for k, v in model.parameters().items()}
    new, info = compress_layerwise(model, X, "gptq", bits=3, group_size=8)
    for k, v in model.parameters().items():  # the input model is untouched
        np.testing.assert_array_equal(v, before[k])
    assert set(info) == {name for name, _ in model.weight_layers()}
    # the last layer was calibrated on the outputs of the compressed layers before it
    h = X
    for layer in new.layers[:-1]:
        h = layer.forward(h)
    from labkit.quant import gptq_quantize

    expect = gptq_quantize(model.layers[-1].W, h.astype(np.float32), 3, group_size=8).W_hat
    np.testing.assert_allclose(new.layers[-1].W, expect, rtol=1e-5, atol=1e-6)
    # sequential=False uses the float model's activations instead
    new_f, _ = compress_layerwise(model, X, "gptq", bits=3, group_size=8, sequential=False)
    h = X
    for layer in model.layers[:-1]:
        h = layer.forward(h)
    expect_f = gptq_quantize(model.layers[-1].W, h.astype(np.float32), 3, group_size=8).W_hat
    np.testing.assert_allclose(new_f.layers[-1].W, expect_f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "method,kw",
    [
        ("magnitude", {"sparsity": 0.5}),
        ("wanda", {"sparsity": 0.5}),
        ("sparsegpt", {"sparsity": 0.5}),
        ("rtn", {"bits": 4, "group_size": 8}),
        ("awq", {"bits": 4, "group_size": 8}),
    ],
)
def test_compress_layerwise_methods(method, kw, rng):
    model = small_cnn(rng)
    X = rng.random((32, 1, 8, 8)).astype(np.float32)
    new, info = compress_layerwise(model, X, method, **kw)
    for name, layer in new.weight_layers():
        assert layer.W.shape == model[name].W.shape and layer.W.dtype == np.float32
        if "sparsity" in kw:
            n_in = layer.W[0].size  # each row (or block) loses floor(0.5 · n_in) weights
            assert np.mean(layer.W == 0) >= (n_in // 2) / n_in and layer.mask is not None
            assert np.all(layer.W[~layer.mask] == 0)
            np.testing.assert_array_equal(layer.mask, info[name]["mask"])
        assert info[name]["error"] >= 0


def test_compress_layerwise_validation(rng):
    model = small_cnn(rng)
    X = rng.random((8, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="unknown method"):
        compress_layerwise(model, X, "obs")
    with pytest.raises(ValueError, match="bits"):
        compress_layerwise(model, X, "gptq")
    with pytest.raises(ValueError, match="sparsity"):
        compress_layerwise(model, X, "wanda")
    with pytest.raises(ValueError, match="NaN"):
        compress_layerwise(model, np.full_like(X, np.nan), "rtn", bits=4)
    with pytest.raises(ValueError, match="float"):
        compress_layerwise(model, X.astype(int), "rtn", bits=4)
    with pytest.raises(ValueError, match="unknown layers"):
        compress_layerwise(model, X, "rtn", bits=4, layers=["fc9"])
    with pytest.raises(ValueError, match="multiple of m"):
        compress_layerwise(model, X, "wanda", n=2, m=4)  # the conv has 1·3·3 = 9 inputs
    names = [n for n, _ in model.weight_layers()]
    new, info = compress_layerwise(model, X, "wanda", n=2, m=4, layers=names[1:])
    assert set(info) == set(names[1:])
    np.testing.assert_array_equal(new[names[0]].W, model[names[0]].W)


def test_compress_layerwise_options_are_typed(rng):
    from labkit import prune, quant

    model = small_cnn(rng)
    X = rng.random((16, 1, 8, 8)).astype(np.float32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'gird'"):
        compress_layerwise(model, X, "awq", bits=4, gird=10)  # a misspelt option is not dropped silently
    with pytest.raises(TypeError, match="unexpected keyword argument 'bits'"):
        compress_layerwise(model, X, "wanda", sparsity=0.5, bits=4)  # an option of another method
    with pytest.raises(TypeError, match="in the options object"):
        compress_layerwise(model, X, prune.WandaOptions(sparsity=0.5), damp=0.1)
    # a name with its options, or the options object: the same compression, also from labkit.quant
    by_name, _ = compress_layerwise(model, X, "rtn", bits=4, group_size=3)
    by_object, _ = compress_layerwise(model, X, quant.RTNOptions(bits=4, group_size=3))
    from_quant, _ = quant.compress_layerwise(model, X, quant.RTNOptions(bits=4, group_size=3))
    for name, a in by_name.weight_layers():
        np.testing.assert_array_equal(a.W, by_object[name].W)
        np.testing.assert_array_equal(a.W, from_quant[name].W)
    with pytest.warns(DeprecationWarning, match=r"X_calib=\.\.\.\) is deprecated; use calib="):
        old, _ = compress_layerwise(model, X_calib=X, method="rtn", bits=4, group_size=3)
    np.testing.assert_array_equal(old.layers[-1].W, by_name.layers[-1].W)
    with pytest.raises(TypeError, match="options object with compress"):
        quant.compress_layerwise(model, X, "rtn")


def test_hessian_is_twice_the_mean_outer_product(rng):
    X = rng.standard_normal((7, 3)).astype(np.float32)
    np.testing.assert_allclose(hessian(X), 2 * X.T.astype(np.float64) @ X / 7, rtol=1e-12)


@pytest.mark.slow
def test_second_order_methods_beat_their_baselines_on_the_pretrained_mlp(fashion):
    """On the shipped LeNet-300-100 with 256 training images, every layer's calibration output error
    (all layers on the float model's inputs, so the methods see the same data) is lower for GPTQ than
    for round-to-nearest and for SparseGPT than for magnitude and Wanda at 50 % (same sparsity)."""
    from labkit.models import pretrained

    model = pretrained("lenet_300_100")
    X = fashion.X_train[np.random.default_rng(0).choice(len(fashion.X_train), 256, replace=False)]
    X = X.reshape(-1, *model.input_shape).astype(np.float32)
    err = {}
    for key, method, kw in [
        ("rtn", "rtn", {"bits": 3, "group_size": 64}),
        ("gptq", "gptq", {"bits": 3, "group_size": 64}),
        ("magnitude", "magnitude", {"sparsity": 0.5, "per_row": True}),
        ("wanda", "wanda", {"sparsity": 0.5}),
        ("sparsegpt", "sparsegpt", {"sparsity": 0.5}),
    ]:
        _, info = compress_layerwise(model, X, method, sequential=False, **kw)
        err[key] = {name: v["error"] for name, v in info.items()}
    for name in err["rtn"]:
        assert err["gptq"][name] < err["rtn"][name]
        assert err["sparsegpt"][name] < min(err["magnitude"][name], err["wanda"][name])
