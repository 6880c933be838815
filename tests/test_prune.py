"""labkit.prune: exact masks, global threshold, masks that survive Adam, AGP, structured shrinking, lottery."""

import math

import numpy as np
import pytest

from labkit import data, metrics, models, prune, train
from labkit.nn import Conv2d, Dense, Flatten, MaxPool2d, ReLU, Reshape, Sequential


def tiny_data(n=256, d=20, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :k] * np.arange(1, k + 1)).argmax(axis=1)
    return X, y


def tiny_convnet(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Reshape((1, 8, 8)),
            Conv2d(1, 4, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Conv2d(4, 6, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Dense(24, 10, rng=rng),
            ReLU(),
            Dense(10, 3, rng=rng),
        ],
        input_shape=(64,),
    )


# --- magnitude_mask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.25, 0.5, 0.73, 0.9, 0.999])
@pytest.mark.parametrize("shape", [(1,), (7,), (10, 13), (3, 4, 5, 5)])
def test_mask_removes_exactly_floor_and_the_smallest(sparsity, shape):
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    m = prune.magnitude_mask(w, sparsity)
    k = math.floor(sparsity * w.size)
    assert m.dtype == bool and m.shape == w.shape
    assert int((~m).sum()) == k
    if 0 < k < w.size:
        assert np.abs(w[~m]).max() <= np.abs(w[m]).min()
    # agrees with a full stable sort (the oracle)
    order = np.argsort(np.abs(w).ravel(), kind="stable")
    expected = np.ones(w.size, bool)
    expected[order[:k]] = False
    np.testing.assert_array_equal(m.ravel(), expected)


def test_mask_ties_broken_by_flat_index():
    w = np.array([[1.0, -1.0, 1.0], [0.5, 1.0, -1.0]], np.float32)
    m = prune.magnitude_mask(w, 0.5)  # removes 3: the 0.5, then the first two |1|s in C order
    np.testing.assert_array_equal(m, [[False, False, True], [False, True, True]])
    assert prune.magnitude_mask(np.zeros(10, np.float32), 0.3).tolist() == [False] * 3 + [True] * 7


def test_mask_bad_input():
    w = np.ones((3, 3), np.float32)
    for s in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            prune.magnitude_mask(w, s)
    with pytest.raises(TypeError):
        prune.magnitude_mask(w, "0.5")
    with pytest.raises(TypeError):
        prune.magnitude_mask([1.0, 2.0], 0.5)
    bad = w.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prune.magnitude_mask(bad, 0.5)


# --- global / layer-wise ----------------------------------------------------------------------------


def test_global_prune_one_threshold_and_exact_count():
    model = models.mlp([30, 20, 10, 5], seed=3)
    before = {n: layer.W.copy() for n, layer in model.weight_layers()}
    biases = {n: layer.b.copy() + 1 for n, layer in model.weight_layers()}
    for n, layer in model.weight_layers():
        layer.b[...] = biases[n]
    masks = prune.global_magnitude_prune(model, 0.8)
    total = sum(w.size for w in before.values())
    assert sum(int((~m).sum()) for m in masks.values()) == math.floor(0.8 * total)
    kept = np.concatenate([np.abs(before[n][m]) for n, m in masks.items()])
    gone = np.concatenate([np.abs(before[n][~m]) for n, m in masks.items()])
    assert gone.max() <= kept.min()
    for n, layer in model.weight_layers():
        assert layer.mask is masks[n] or np.array_equal(layer.mask, masks[n])
        np.testing.assert_array_equal(layer.W, before[n] * masks[n])
        np.testing.assert_array_equal(layer.b, biases[n])  # biases are not pruned
    # layers with smaller weights lose more: fc1 (std sqrt(2/30)) vs fc3 (std sqrt(2/10))
    sp = metrics.layer_sparsity(model)
    assert sp["fc1"] > sp["fc3"]


def test_global_prune_subset_of_layers_and_errors():
    model = models.mlp([30, 20, 10, 5], seed=3)
    w3 = model["fc3"].W.copy()
    masks = prune.global_magnitude_prune(model, 0.5, layers=["fc1", "fc2"])
    assert set(masks) == {"fc1", "fc2"} and model["fc3"].mask is None
    np.testing.assert_array_equal(model["fc3"].W, w3)
    with pytest.raises(KeyError, match="fc1, relu1, fc2"):
        prune.global_magnitude_prune(model, 0.5, layers=["fc9"])
    with pytest.raises(ValueError, match="no weights"):
        prune.global_magnitude_prune(model, 0.5, layers=["relu1"])
    with pytest.raises(ValueError):
        prune.global_magnitude_prune(model, 1.0)
    with pytest.raises(ValueError, match="biases"):
        prune.global_magnitude_prune(model, 0.5, include_bias=True)
    model["fc2"].W[0, 0] = np.nan
    with pytest.raises(ValueError, match="fc2.W.*NaN"):
        prune.global_magnitude_prune(model, 0.5)


def test_global_prune_matches_kernels_contract():
    from labkit import kernels

    model = models.mlp([40, 30, 6], seed=5)
    ws = [layer.W.copy() for _, layer in model.weight_layers()]
    k = math.floor(0.7 * sum(w.size for w in ws))
    expected = kernels.global_magnitude_masks(ws, k)
    got = prune.global_magnitude_prune(model, 0.7)
    for e, g in zip(expected, got.values()):
        np.testing.assert_array_equal(e, g)


@pytest.mark.parametrize("sparsity", [0.3, 0.9, 0.98])
def test_kernel_path_and_partition_path_give_the_same_masks(sparsity):
    # float32 weights take the compiled radix select; float64 ones np.partition. Large enough
    # (> 262,144 weights) that the kernel's sampled-bracket path runs, with many exact ties.
    rng = np.random.default_rng(7)
    ws32 = [np.round(rng.standard_normal(shape), 2).astype(np.float32) for shape in [(300, 784), (100, 300), (10, 100)]]
    ws32[0][:, :50] = 0.0  # a block of already-pruned weights (ties at 0)
    ws64 = [w.astype(np.float64) for w in ws32]
    k = math.floor(sparsity * sum(w.size for w in ws32))
    from labkit.prune.magnitude import _keep_masks

    for a, b in zip(_keep_masks(ws32, k), _keep_masks(ws64, k)):
        np.testing.assert_array_equal(a, b)
    assert sum(int((~m).sum()) for m in _keep_masks(ws32, k)) == k


def test_layerwise_prune_each_layer_exact():
    model = models.mlp([30, 20, 10, 5], seed=3)
    masks = prune.layerwise_magnitude_prune(model, 0.6)
    for n, layer in model.weight_layers():
        assert int((~masks[n]).sum()) == math.floor(0.6 * layer.W.size)
    masks = prune.layerwise_magnitude_prune(model.copy(), {"fc1": 0.9})
    assert set(masks) == {"fc1"}
    with pytest.raises(ValueError):
        prune.layerwise_magnitude_prune(model, {"fc1": 1.2})


def test_apply_masks_rejects_wrong_shape_and_dtype():
    model = models.mlp([6, 4, 2])
    with pytest.raises(ValueError, match=r"shape \(3, 6\).*\(4, 6\)"):
        prune.apply_masks(model, {"fc1": np.ones((3, 6), bool)})
    with pytest.raises(TypeError, match="bool"):
        prune.apply_masks(model, {"fc1": np.ones((4, 6))})
    with pytest.raises(KeyError, match="valid names"):
        prune.apply_masks(model, {"nope": np.ones((4, 6), bool)})
    model["fc1"].mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match="shape"):
        train.fit(model, tiny_data(d=6), epochs=1, callbacks=[prune.MaskCallback()], progress=False)


# --- masks survive training -------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_stay_exactly_zero_through_training(optimizer):
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    # train dense first so the optimizer holds momentum for every weight, then prune and keep training
    opt = train.make_optimizer(optimizer, 1e-2)
    train.fit(model, (X, y), epochs=2, optimizer=opt, progress=False)
    masks = prune.global_magnitude_prune(model, 0.7)
    before = {n: layer.W.copy() for n, layer in model.weight_layers()}
    train.fit(model, (X, y), epochs=5, optimizer=opt, callbacks=[prune.MaskCallback()], progress=False)
    for n, layer in model.weight_layers():
        assert np.all(layer.W[~masks[n]] == 0.0)
        assert np.any(layer.W[masks[n]] != before[n][masks[n]])  # the survivors did train
    # the control: without the callback, the same optimizer state resurrects pruned weights
    control = models.mlp([20, 16, 12, 4], seed=0)
    opt2 = train.make_optimizer(optimizer, 1e-2)
    train.fit(control, (X, y), epochs=2, optimizer=opt2, progress=False)
    cmasks = prune.global_magnitude_prune(control, 0.7)
    train.fit(control, (X, y), epochs=1, optimizer=opt2, progress=False)
    assert any(np.any(layer.W[~cmasks[n]] != 0) for n, layer in control.weight_layers())


# --- schedules --------------------------------------------------------------------------------------


def test_agp_formula_and_window():
    kw = dict(s_init=0.1, s_final=0.9, t0=100, n_steps=10, dt=20)
    assert prune.agp_sparsity(0, **kw) == 0.1 and prune.agp_sparsity(99, **kw) == 0.1
    assert prune.agp_sparsity(100, **kw) == pytest.approx(0.1)
    assert prune.agp_sparsity(300, **kw) == 0.9 and prune.agp_sparsity(10_000, **kw) == 0.9
    for t in range(100, 300, 20):
        expected = 0.9 + (0.1 - 0.9) * (1 - (t - 100) / 200) ** 3
        assert prune.agp_sparsity(t, **kw) == pytest.approx(expected, abs=1e-12)
        assert prune.agp_sparsity(t + 19, **kw) == prune.agp_sparsity(t, **kw)  # constant between steps
    values = [prune.agp_sparsity(t, **kw) for t in range(0, 400)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    increments = np.diff([prune.agp_sparsity(100 + 20 * i, **kw) for i in range(11)])
    assert np.all(np.diff(increments) < 0)  # prunes fast first, slowly at the end


@pytest.mark.parametrize(
    "bad",
    [dict(s_final=1.0), dict(s_init=-0.1), dict(n_steps=0), dict(dt=0), dict(t0=-1), dict(step=-1), dict(dt=1.5)],
)
def test_agp_bad_input(bad):
    kw = dict(step=5, s_init=0.0, s_final=0.9, t0=0, n_steps=10, dt=1) | bad
    wrong_type = any(isinstance(v, float) for k, v in bad.items() if k in ("step", "t0", "n_steps", "dt"))
    with pytest.raises(TypeError if wrong_type else ValueError):  # a step count of 1.5: the wrong type
        prune.agp_sparsity(**kw)


def test_agp_callback_reaches_final_sparsity_and_keeps_it():
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    cb = prune.AGPCallback(0.8, t0=0, n_steps=4, dt=2, scope="global")
    train.fit(model, (X, y), epochs=3, batch_size=64, callbacks=[cb], progress=False)  # 12 steps
    assert [s for s, _ in cb.history] == [0, 2, 4, 6, 8]
    assert cb.history[-1][1] == 0.8
    n = metrics.count_params(model, weights_only=True)
    assert metrics.count_params(model, True) - metrics.count_nonzero(model, True) == math.floor(0.8 * n)


def test_agp_callback_prunes_each_layer_to_the_schedule_by_default():
    # Zhu & Gupta 2017 bring every layer to s_t; before the fix AGPCallback used one global
    # threshold, which on this net left fc layers at different sparsities (checked below).
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    model["fc1"].W *= 10  # layers of very different scales: one global threshold would spare fc1
    cb = prune.AGPCallback(0.75, t0=0, n_steps=4, dt=2)
    assert cb.scope == "layer"
    train.fit(model, (X, y), epochs=3, batch_size=64, callbacks=[cb], progress=False)
    for step, per_layer in cb.layer_history:
        s_t = dict(cb.history)[step]
        for name, layer in model.weight_layers():
            assert per_layer[name] == math.floor(s_t * layer.W.size) / layer.W.size
    for name, layer in model.weight_layers():
        assert np.count_nonzero(~layer.mask) == math.floor(0.75 * layer.W.size), name
        assert np.all(layer.W[~layer.mask] == 0)
    other = models.mlp([20, 16, 12, 4], seed=0)
    other["fc1"].W *= 10
    g = prune.AGPCallback(0.75, t0=0, n_steps=4, dt=2, scope="global")
    train.fit(other, (X, y), epochs=3, batch_size=64, callbacks=[g], progress=False)
    final = g.layer_history[-1][1]
    assert final["fc1"] < 0.75 < max(final.values())  # one threshold spares the large layer
    with pytest.raises(ValueError, match="scope"):
        prune.AGPCallback(0.75, t0=0, n_steps=4, dt=2, scope="per-layer")


def test_iterative_and_one_shot():
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    log = prune.iterative_prune(model, (X, y), [0.5, 0.7, 0.8], 1, eval_data=(X, y))
    assert [r["sparsity"] for r in log] == [0.5, 0.7, 0.8]
    assert all(0 <= r["accuracy"] <= 1 for r in log)
    assert metrics.sparsity(model) >= 0.8
    with pytest.raises(ValueError, match="non-decreasing"):
        prune.iterative_prune(model, (X, y), [0.8, 0.5], 1)
    other = models.mlp([20, 16, 12, 4], seed=0)
    r = prune.one_shot_prune(other, (X, y), 0.8, 2, eval_data=(X, y))
    assert metrics.sparsity(other) >= 0.8 and 0 <= r["accuracy"] <= 1


# --- sensitivity --------------------------------------------------------------------------------------


def test_sensitivity_scan_restores_model_and_matches_manual_pruning():
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    train.fit(model, (X, y), epochs=3, progress=False)
    params = {k: a.copy() for k, a in model.parameters().items()}
    scan = prune.sensitivity_scan(model, X, y, [0.0, 0.5, 0.9], layers=["fc1", "fc3"])
    assert set(scan) == {"fc1", "fc3"} and scan["fc1"].shape == (3,)
    for k, a in model.parameters().items():
        np.testing.assert_array_equal(a, params[k])
    base = train.evaluate(model, X, y)
    assert scan["fc1"][0] == base == scan["fc3"][0]
    manual = model.copy()
    prune.layerwise_magnitude_prune(manual, {"fc3": 0.9})
    assert scan["fc3"][2] == train.evaluate(manual, X, y)
    with pytest.raises(ValueError, match="at least one sparsity"):
        prune.sensitivity_scan(model, X, y, [])
    with pytest.raises(ValueError, match="same length"):
        prune.sensitivity_scan(model, X, y[:-1], [0.5])


def test_sensitivity_scan_has_no_default_split():
    """A Dataset or an (X, y) pair is refused: the caller names the split (validation, not test)."""
    X, y = tiny_data()
    model = models.mlp([20, 16, 4], seed=0)
    d = data.Dataset(X, y, X, y, ("a", "b", "c", "d"), "tiny", X, y)
    for bad in (d, (X, y)):
        with pytest.raises(TypeError, match=r"sensitivity_scan\(model, X, y, sparsities\)"):
            prune.sensitivity_scan(model, bad, [0.5])


# --- structured ---------------------------------------------------------------------------------------


def test_unit_importance_norms():
    W = np.array([[3.0, -4.0], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(prune.unit_importance(W, "l1"), [7.0, 2.0])
    np.testing.assert_allclose(prune.unit_importance(W, "l2"), [5.0, np.sqrt(2)])
    with pytest.raises(ValueError, match="l1"):
        prune.unit_importance(W, "linf")
    np.testing.assert_array_equal(prune.units_to_keep(np.ones((4, 3), np.float32), 0.5), [2, 3])


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_prune_neurons_shrinks_and_equals_masked_model(norm):
    X, _ = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=2)
    for _, layer in model.weight_layers():
        layer.b[...] = np.random.default_rng(0).standard_normal(layer.b.shape)  # non-zero biases matter
    small = prune.prune_neurons(model, "fc1", 0.5, norm=norm)
    assert small["fc1"].W.shape == (8, 20) and small["fc1"].b.shape == (8,)
    assert small["fc2"].W.shape == (12, 8) and small["fc3"].W.shape == (4, 12)
    assert model["fc1"].W.shape == (16, 20)  # the input model is untouched
    masked = prune.mask_units(model, "fc1", 0.5, norm=norm)
    np.testing.assert_allclose(small.forward(X), masked.forward(X), rtol=1e-5, atol=1e-5)
    keep = prune.units_to_keep(model["fc1"].W, 0.5, norm)
    np.testing.assert_array_equal(small["fc1"].W, model["fc1"].W[keep])
    assert metrics.count_params(small) == 8 * 21 + 12 * 9 + 4 * 13 < metrics.count_params(model)
    assert metrics.size_bytes(small) < metrics.size_bytes(model) and metrics.macs(small) < metrics.macs(model)
    both = prune.prune_neurons(small, "fc2", 0.5)
    assert both["fc2"].W.shape == (6, 8) and both["fc3"].W.shape == (4, 6)


def test_prune_neurons_keeps_masks_and_errors():
    model = models.mlp([20, 16, 12, 4], seed=2)
    prune.global_magnitude_prune(model, 0.5)
    small = prune.prune_neurons(model, "fc2", 0.25)
    assert small["fc2"].mask.shape == small["fc2"].W.shape == (9, 16)
    assert small["fc3"].mask.shape == (4, 9)
    with pytest.raises(ValueError, match="output layer"):
        prune.prune_neurons(model, "fc3", 0.5)
    with pytest.raises(KeyError, match="valid names: fc1, relu1"):
        prune.prune_neurons(model, "fc7", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.prune_neurons(model, "fc1", 1.0)
    with pytest.raises(ValueError, match="Conv2d|Dense"):
        prune.prune_neurons(tiny_convnet(), "conv1", 0.5)
    with pytest.raises(ValueError, match="prune_neurons"):
        prune.prune_channels(model, "fc1", 0.5)


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_prune_channels_conv_to_conv_and_conv_to_flatten_dense(layer):
    X = np.random.default_rng(0).random((16, 64), dtype=np.float32)
    model = tiny_convnet()
    for _, lay in model.weight_layers():
        lay.b[...] = 0.1
    small = prune.prune_channels(model, layer, 0.5, norm="l2")
    masked = prune.mask_units(model, layer, 0.5, norm="l2")
    np.testing.assert_allclose(small.forward(X), masked.forward(X), rtol=1e-5, atol=1e-5)
    if layer == "conv1":
        assert small["conv1"].W.shape == (2, 1, 3, 3) and small["conv2"].W.shape == (6, 2, 3, 3)
    else:
        assert small["conv2"].W.shape == (3, 4, 3, 3) and small["fc1"].W.shape == (10, 12)
        keep = prune.units_to_keep(model["conv2"].W, 0.5, "l2")
        cols = (keep[:, None] * 4 + np.arange(4)).ravel()  # each channel feeds 2×2 flattened columns
        np.testing.assert_array_equal(small["fc1"].W, model["fc1"].W[:, cols])
    assert metrics.macs(small) < metrics.macs(model)


@pytest.mark.slow
def test_prune_channels_lenet5_matches_masked():
    model = models.pretrained("lenet5")
    X = np.random.default_rng(0).random((8, 784), dtype=np.float32)
    small = prune.prune_channels(prune.prune_channels(model, "conv1", 0.5), "conv2", 0.5)
    assert small["conv1"].W.shape == (3, 1, 5, 5) and small["conv2"].W.shape == (8, 3, 5, 5)
    assert small["fc1"].W.shape == (120, 200)
    masked = prune.mask_units(prune.mask_units(model, "conv1", 0.5), "conv2", 0.5)
    np.testing.assert_allclose(small.forward(X), masked.forward(X), rtol=1e-4, atol=1e-5)


def _dead_units_by_weight_mask(model, layer, amount):
    """Prune all incoming weights of the ``amount`` lowest-norm units of ``layer`` with a weight
    mask, keeping their biases (what a weight-level mask does): each such unit emits relu(b)."""
    masked = prune.mask_units(model, layer, amount, keep_bias=True)
    lay = masked[layer]
    lay.mask = lay.W != 0  # a weight mask that removed those units' incoming weights
    return masked


@pytest.mark.slow
def test_prune_neurons_folds_dead_units_bias_lenet_300_100():
    # Before the fix the shrunk model dropped relu(b1[removed]) @ W2[:, removed]: outputs differed
    # from the masked model it came from (max |logit diff| of order 1 on LeNet-300-100).
    X = np.random.default_rng(0).random((32, 784), dtype=np.float32)
    model = models.pretrained("lenet_300_100")
    masked = _dead_units_by_weight_mask(model, "fc1", 0.5)
    dead = np.flatnonzero(~masked["fc1"].mask.any(axis=1))
    assert dead.size == 150 and np.count_nonzero(np.maximum(masked["fc1"].b[dead], 0)) > 10
    small = prune.prune_neurons(masked, "fc1", 0.5)
    assert small["fc1"].W.shape == (150, 784)
    np.testing.assert_allclose(small.forward(X), masked.forward(X), rtol=1e-4, atol=1e-4)
    masked2 = _dead_units_by_weight_mask(small, "fc2", 0.5)
    small2 = prune.prune_neurons(masked2, "fc2", 0.5)
    np.testing.assert_allclose(small2.forward(X), masked2.forward(X), rtol=1e-4, atol=1e-4)
    # removed outright: the constant is lost, and the result equals mask_units' outright removal
    dropped = prune.prune_neurons(masked, "fc1", 0.5, bias="drop")
    assert np.abs(dropped.forward(X) - masked.forward(X)).max() > 1e-2
    outright = prune.mask_units(model, "fc1", 0.5)
    np.testing.assert_allclose(prune.prune_neurons(model, "fc1", 0.5).forward(X), outright.forward(X), atol=1e-4)
    with pytest.raises(ValueError, match="fold"):
        prune.prune_neurons(masked, "fc1", 0.5, bias="keep")


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_prune_channels_folds_dead_channels_bias_lenet5(layer):
    X = np.random.default_rng(0).random((8, 784), dtype=np.float32)
    model = models.pretrained("lenet5")
    masked = _dead_units_by_weight_mask(model, layer, 0.5)
    dead = np.flatnonzero(~masked[layer].mask.reshape(masked[layer].mask.shape[0], -1).any(axis=1))
    assert np.count_nonzero(np.maximum(masked[layer].b[dead], 0)) > 0  # some dead channel emits relu(b) > 0
    small = prune.prune_channels(masked, layer, 0.5)
    np.testing.assert_allclose(small.forward(X), masked.forward(X), rtol=1e-4, atol=1e-4)
    dropped = prune.prune_channels(masked, layer, 0.5, bias="drop")
    assert np.abs(dropped.forward(X) - masked.forward(X)).max() > 1e-3


def test_prune_channels_cannot_fold_into_padded_conv():
    model = tiny_convnet()
    model["conv1"].b[...] = 0.5
    masked = _dead_units_by_weight_mask(model, "conv1", 0.5)
    with pytest.raises(ValueError, match="padding"):
        prune.prune_channels(masked, "conv1", 0.5)  # conv2 has zero padding: not exact
    small = prune.prune_channels(masked, "conv1", 0.5, bias="drop")  # removed outright, as stated
    assert small["conv1"].W.shape == (2, 1, 3, 3)


# --- lottery ----------------------------------------------------------------------------------------


def test_rewind_and_reinit_apply_masks():
    X, y = tiny_data()
    model = models.mlp([20, 16, 12, 4], seed=0)
    snap = prune.SnapshotCallback(0)
    train.fit(model, (X, y), epochs=1, callbacks=[snap], progress=False)
    init = models.mlp([20, 16, 12, 4], seed=0)
    for k, a in init.parameters().items():
        np.testing.assert_array_equal(snap.params[k], a)
    masks = prune.global_magnitude_prune(model, 0.6)
    ticket = models.mlp([20, 16, 12, 4], seed=9)
    prune.rewind(ticket, masks, snap.params)
    for n, layer in ticket.weight_layers():
        np.testing.assert_array_equal(layer.W, init[n].W * masks[n])
    ctrl = models.mlp([20, 16, 12, 4], seed=0)
    prune.random_reinit(ctrl, masks, np.random.default_rng(1))
    for n, layer in ctrl.weight_layers():
        assert np.all(layer.W[~masks[n]] == 0) and not np.array_equal(layer.W, init[n].W * masks[n])


def test_lottery_ticket_runs_and_keeps_masks():
    X, y = tiny_data()
    out = prune.lottery_ticket(
        lambda s: models.mlp([20, 16, 12, 4], seed=s), (X, y), 0.8, epochs=2, seed=0, eval_data=(X, y), lr=1e-2
    )
    assert set(out) == {"dense", "ticket", "reinit", "masks"}
    assert all(0 <= out[k] <= 1 for k in ("dense", "ticket", "reinit"))
    with pytest.raises(ValueError, match="eval_data"):
        prune.lottery_ticket(lambda s: models.mlp([20, 4], seed=s), (X, y), 0.5, epochs=1)
