"""labkit.quant.kmeans: k-means weight sharing with linear initialisation and codebook fine-tuning."""

import numpy as np
import pytest

from labkit import models, train
from labkit.quant import CodebookFinetune, codebook_gradient, kmeans_assign, kmeans_quantize, kmeans_quantize_model


def test_exact_on_data_with_few_values(rng):
    levels = np.array([-1.5, -0.5, 0.5, 1.5], np.float32)
    w = rng.choice(levels, size=(20, 30))
    cb, idx = kmeans_quantize(w, 2)
    assert np.array_equal(cb, levels) and idx.dtype == np.uint8
    assert np.array_equal(cb[idx], w)


def test_lloyd_fixed_point(rng):
    w = rng.standard_normal((50, 40)).astype(np.float32)
    cb, idx = kmeans_quantize(w, 3)
    assert cb.shape == (8,) and cb.dtype == np.float32 and np.all(np.diff(cb) > 0)
    assert idx.shape == w.shape and idx.max() < 8
    # every weight sits with its nearest centroid, and every centroid is the mean of its weights
    dist = np.abs(w[..., None] - cb)
    assert np.all(dist[np.arange(50)[:, None], np.arange(40)[None, :], idx] <= dist.min(axis=-1) + 1e-6)
    for k in range(8):
        assert cb[k] == pytest.approx(w[idx == k].mean(), rel=1e-5, abs=1e-6)
    # linear init spans the range: the extreme weights get their own clusters
    assert idx.flat[np.argmax(w)] == 7 and idx.flat[np.argmin(w)] == 0


def test_kmeans_beats_uniform_grid_mse(rng):
    w = rng.laplace(size=10_000).astype(np.float32)
    cb, idx = kmeans_quantize(w, 3)
    grid = np.linspace(w.min(), w.max(), 8).astype(np.float32)
    uniform = grid[kmeans_assign(w, grid)]
    assert np.mean((cb[idx] - w) ** 2) < 0.8 * np.mean((uniform - w) ** 2)


def test_mask_and_edge_cases(rng):
    w = rng.standard_normal(100).astype(np.float32)
    mask = np.abs(w) > 1.0
    cb, idx = kmeans_quantize(w, 1, mask=mask)
    assert np.all(np.abs(cb) > 1.0)  # pruned (small) weights did not pull the centroids
    cb, idx = kmeans_quantize(np.zeros((0, 3), np.float32), 2)
    assert cb.shape == (4,) and idx.shape == (0, 3)
    with pytest.raises(ValueError, match="bits must be 1..8"):
        kmeans_quantize(w, 9)
    with pytest.raises(ValueError, match="NaN or inf"):
        kmeans_quantize(np.array([1.0, np.nan], np.float32), 2)
    with pytest.raises(TypeError, match="float weights"):
        kmeans_quantize(np.arange(4), 2)


def test_codebook_gradient_sums_per_cluster(rng):
    idx = rng.integers(0, 4, (6, 7)).astype(np.uint8)
    dW = rng.standard_normal((6, 7))
    g = codebook_gradient(dW, idx, 4)
    assert np.allclose(g, [dW[idx == k].sum() for k in range(4)])
    with pytest.raises(ValueError, match="must match"):
        codebook_gradient(dW, idx[:2], 4)


def test_codebook_finetune_keeps_sharing_and_recovers(digits):
    model = models.mlp([64, 64, 10], seed=0)
    train.fit(model, digits, epochs=15, lr=3e-3, seed=0, progress=False)
    X, y = digits.X_test, digits.y_test
    base = train.evaluate(model, X, y)
    km, books = kmeans_quantize_model(model, 1)
    before = train.evaluate(km, X, y)
    idx_before = {n: idx.copy() for n, (_, idx) in books.items()}
    train.fit(km, digits, epochs=10, lr=1e-3, seed=0, callbacks=[CodebookFinetune(books, lr=1e-3)], progress=False)
    after = train.evaluate(km, X, y)
    for name, layer in km.weight_layers():
        cb, idx = books[name]
        assert np.array_equal(idx, idx_before[name])  # assignments fixed, only the shared values move
        assert np.array_equal(layer.W, cb[idx]) and len(np.unique(layer.W)) <= 2
    assert before < base - 0.05
    assert after > before + 0.5 * (base - before)


def test_codebook_gradient_leaves_out_pruned_weights(rng):
    # Han et al. 2016 §3.3: a shared value's gradient sums the weights *in* its cluster; a pruned
    # weight (placeholder index 0) is in none. Before the fix the pruned gradients landed in centroid 0.
    idx = rng.integers(0, 4, (6, 7)).astype(np.uint8)
    mask = rng.random((6, 7)) < 0.5
    idx[~mask] = 0
    dW = rng.standard_normal((6, 7))
    g = codebook_gradient(dW, idx, 4, mask=mask)
    assert np.allclose(g, [dW[(idx == k) & mask].sum() for k in range(4)])
    with pytest.raises(ValueError, match="mask has shape"):
        codebook_gradient(dW, idx, 4, mask=mask[:2])
    with pytest.raises(TypeError, match="bool"):
        codebook_gradient(dW, idx, 4, mask=mask.astype(np.uint8))


def test_codebook_finetune_ignores_pruned_gradients(rng):
    # The callback reads the layer's mask itself: huge gradients on pruned weights do not move
    # centroid 0 (before the fix: centroid 0 got their sum, e.g. 73.5 instead of 0.0072 on fc1 of
    # LeNet-300-100 pruned to 93/90/70 % with 4-bit k-means).
    from labkit.prune import layerwise_magnitude_prune

    model = models.mlp([8, 6, 3], seed=0)
    layerwise_magnitude_prune(model, 0.5)
    shared, books = kmeans_quantize_model(model, 2)
    cb_before = {n: cb.copy() for n, (cb, _) in books.items()}
    cbk = CodebookFinetune(books, lr=1e-2)
    cbk.on_train_begin(shared, {})
    for _name, layer in shared.weight_layers():
        layer.dW = np.where(layer.mask, np.float32(0), np.float32(1e6)).astype(np.float32)
    cbk.on_backward_end(shared, {})
    for name, (cb, _) in books.items():
        assert np.array_equal(cb, cb_before[name]), name  # only pruned weights had gradients
    # and the gradient of kept weights still reaches their centroid
    name, layer = next(iter(shared.weight_layers()))
    cb, idx = books[name]
    layer.dW = np.where(layer.mask & (idx == idx[layer.mask][0]), np.float32(1), np.float32(0))
    cbk.on_backward_end(shared, {})
    moved = np.flatnonzero(cb != cb_before[name])
    assert list(moved) == [idx[layer.mask][0]]
