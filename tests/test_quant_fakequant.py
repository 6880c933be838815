"""labkit.quant.fakequant: the STE, observers, QAT through fit's callbacks, the FakeQuant layer."""

import numpy as np
import pytest

from labkit import models, nn, train
from labkit.quant import (
    FakeQuant,
    MinMaxObserver,
    MovingAverageObserver,
    QATCallback,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_weights,
    lsq_backward,
    lsq_fake_quantize,
    lsq_init_step,
    qparams,
    quantize,
    ste_mask,
)


def test_ste_passes_gradient_inside_range_only():
    x = np.array([-2.0, -1.0, -0.4, 0.0, 0.3, 1.0, 1.05, 3.0], np.float32)
    s, z = np.float32(0.5), 2  # unsigned 3 bits: q in [0, 7] <-> real [-1.0, 2.5]
    g = np.arange(1, 9, dtype=np.float32)
    out = fake_quantize_backward(g, x, s, z, bits=3)
    assert out.tolist() == [0, 2, 3, 4, 5, 6, 7, 0]
    # the boundary is taken after rounding: -1.2 / 0.5 = -2.4 -> -2, + 2 = 0 inside; -1.3 -> -3 + 2 = -1 outside
    assert ste_mask(np.float32(-1.2), s, z, 3) and not ste_mask(np.float32(-1.3), s, z, 3)


def test_ste_mask_matches_clamping(rng):
    x = rng.normal(0, 2, 5000).astype(np.float32)
    s, z = qparams(x[:100], 4)  # range from a subset: many values fall outside
    inside = ste_mask(x, s, z, 4)
    unclamped = np.rint(x.astype(np.float64) / np.float64(s)) + z
    assert np.array_equal(inside, (unclamped >= 0) & (unclamped <= 15))
    assert 0 < inside.sum() < x.size
    # inside the range fake_quantize moves x by at most half a step; outside it saturates
    fq = fake_quantize(x, s, z, 4)
    assert np.all(np.abs(fq - x)[inside] <= s / 2 * (1 + 1e-5))
    assert np.all(np.isin(fq[~inside], [s * (0 - z), s * (15 - z)]))


def test_fake_quantize_backward_shape_check():
    with pytest.raises(ValueError, match="must match"):
        fake_quantize_backward(np.ones(3), np.ones(4), 0.1, 0)


def test_observers():
    mm = MinMaxObserver()
    with pytest.raises(ValueError, match="seen no data"):
        mm.qparams()
    mm.observe(np.array([0.5, 2.0]))
    mm.observe(np.array([-1.0, 1.0]))
    assert (mm.lo, mm.hi) == (-1.0, 2.0)
    assert mm.qparams(8) == qparams(np.array([-1.0, 2.0]), 8)
    ema = MovingAverageObserver(0.5)
    ema.observe(np.array([1.0, 4.0]))  # first batch sets the range (widened to contain 0)
    ema.observe(np.array([-2.0, 2.0]))
    assert (ema.lo, ema.hi) == (-1.0, 3.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ema.observe(np.array([np.nan]))
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageObserver(0.0)


class _State:
    batch_index = None


def test_qat_callback_swaps_and_restores(rng):
    """The per-batch max|W| step: the old behaviour, kept as the baseline; it never clips."""
    model = models.mlp([6, 5, 3], seed=1)
    fc1 = model["fc1"]
    fc1.W[0, 0] = 50.0  # an outlier in row 0: with 2 bits most of row 0 rounds to 0
    W_float = fc1.W.copy()
    cb = QATCallback(bits=2, per_channel=True, step_size="max")
    cb.on_batch_begin(model, _State())
    assert cb.clipped_fraction == [0.0]
    Wq = fc1.W.copy()
    s, z = qparams(W_float, 2, symmetric=True, axis=0)
    assert np.array_equal(Wq, fake_quantize(W_float, s, z, 2, True, axis=0))
    for row in Wq:
        assert len(np.unique(row)) <= 3  # symmetric 2 bits: {-s, 0, s}
    x = rng.standard_normal((4, 6)).astype(np.float32)
    logits = model.forward(x, training=True)
    _, dlogits = train.cross_entropy(logits, np.array([0, 1, 2, 0]))
    model.backward(dlogits)
    dW_full = fc1.dW.copy()
    cb.on_backward_end(model, _State())
    assert np.array_equal(fc1.W, W_float)  # the float shadow is back
    mask = ste_mask(W_float, s, z, 2, True, axis=0)
    assert np.array_equal(fc1.dW, np.where(mask, dW_full, 0))


def test_qat_with_learned_steps_clips_and_trains_the_steps(rng):
    model = models.mlp([30, 8, 3], seed=1)
    fc1 = model["fc1"]
    W_float = fc1.W.copy()
    cb = QATCallback(bits=2, per_channel=True)
    cb.on_train_begin(model, _State())
    s0 = cb.steps["fc1"].copy()
    np.testing.assert_array_equal(s0, lsq_init_step(W_float, 2, axis=0))
    cb.on_batch_begin(model, _State())
    np.testing.assert_array_equal(fc1.W, lsq_fake_quantize(W_float, s0, 2, axis=0))
    clipped = ~ste_mask(W_float, s0, np.zeros(8, np.int64), 2, True, axis=0, narrow_range=True)
    assert clipped.any()  # the paper's initial step clips the largest weights at 2 bits
    assert 0 < cb.clipped_fraction[0] < 1
    x = rng.standard_normal((16, 30)).astype(np.float32)
    logits = model.forward(x, training=True)
    _, dlogits = train.cross_entropy(logits, rng.integers(0, 3, 16))
    model.backward(dlogits)
    dW_full = fc1.dW.copy()
    cb.on_backward_end(model, _State())
    assert np.array_equal(fc1.W, W_float)  # the float shadow is back
    assert np.array_equal(fc1.dW, np.where(clipped, 0, dW_full))  # the STE: no gradient where clipped
    assert (fc1.dW[clipped] == 0).all() and (dW_full[clipped] != 0).any()
    # the step takes one step of fit's optimizer along its LSQ gradient
    opt = train.SGD(lr=0.1, momentum=0.0)
    opt.t = 1
    state = _State()
    state.optimizer = opt
    _, g = lsq_backward(dW_full, W_float, s0, 2, axis=0)
    cb.on_step_end(model, state)
    np.testing.assert_allclose(cb.steps["fc1"], s0 - 0.1 * g.astype(np.float32), rtol=1e-6)
    # the trained grid is what quantized() applies
    q = cb.quantized(model)
    np.testing.assert_array_equal(q["fc1"].W, lsq_fake_quantize(W_float, cb.steps["fc1"], 2, axis=0))
    assert np.array_equal(model["fc1"].W, W_float)


@pytest.mark.parametrize("step_size", ["learned", "max"])
def test_qat_recovers_2bit_accuracy(digits, step_size):
    model = models.mlp([64, 64, 10], seed=0)
    train.fit(model, digits, epochs=15, lr=3e-3, seed=0, progress=False)
    X, y = digits.X_test, digits.y_test
    base = train.evaluate(model, X, y)
    ptq = train.evaluate(fake_quantize_weights(model, 2), X, y)
    qat_model = model.copy()
    cb = QATCallback(2, step_size=step_size)
    train.fit(qat_model, digits, epochs=10, lr=1e-3, seed=0, callbacks=[cb], progress=False)
    qat = train.evaluate(cb.quantized(qat_model), X, y)
    assert base > 0.9
    assert ptq < base - 0.05  # 2 bits hurts...
    assert qat > ptq + 0.5 * (base - ptq)  # ...and QAT wins back more than half of it
    steps = len(cb.clipped_fraction)
    assert steps == 10 * int(np.ceil(len(digits.X_train) / 128))
    if step_size == "max":
        assert max(cb.clipped_fraction) == 0.0  # the range always covers max|W|: the STE never clips
    else:
        assert min(cb.clipped_fraction) > 0.0  # learned steps clip on every batch
        assert all(np.all(s > 0) for s in cb.steps.values())


def test_qat_callback_bad_layer_name(digits):
    with pytest.raises(ValueError, match="unknown layers"):
        train.fit(models.mlp([64, 10]), digits, epochs=1, callbacks=[QATCallback(4, layers=["fc9"])], progress=False)
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\]"):
        QATCallback(1)
    with pytest.raises(ValueError, match="step_size must be one of"):
        QATCallback(4, step_size="minmax")
    with pytest.raises(ValueError, match="no learned step size"):
        QATCallback(4).quantized(models.mlp([64, 10]))


def test_fake_quantize_weights_per_tensor_and_channel(rng):
    model = models.mlp([8, 4, 2], seed=0)
    for per_channel in (True, False):
        q = fake_quantize_weights(model, 3, per_channel)
        for (_, a), (_, b) in zip(model.weight_layers(), q.weight_layers()):
            s, z = qparams(a.W, 3, symmetric=True, axis=0 if per_channel else None)
            assert np.array_equal(b.W, fake_quantize(a.W, s, z, 3, True, axis=0 if per_channel else None))
            assert np.array_equal(b.b, a.b)
    assert not np.array_equal(model["fc1"].W, q["fc1"].W)  # the original is untouched


def test_fakequant_layer(rng, tmp_path):
    layer = FakeQuant(bits=4)
    x = rng.uniform(0, 3, (8, 5)).astype(np.float32)
    assert np.array_equal(layer.forward(x), x)  # identity before any data
    y = layer.forward(x, training=True)
    s, z = layer.observer.qparams(4)
    assert np.array_equal(y, fake_quantize(x, s, z, 4))
    assert len(np.unique(y)) <= 16
    big = x * 10
    layer.forward(big)
    g = layer.backward(np.ones_like(big))
    assert np.array_equal(g, ste_mask(big, s, z, 4).astype(np.float32))
    # a model with FakeQuant trains, saves and loads
    net = nn.Sequential([nn.Dense(5, 4), nn.ReLU(), FakeQuant(6), nn.Dense(4, 2)], input_shape=(5,))
    assert net.layer_names == ["fc1", "relu1", "fakequant1", "fc2"]
    train.fit(net, (x, np.arange(8) % 2), epochs=2, batch_size=4, progress=False)
    path = nn.save(net, tmp_path / "fq.npz")
    with pytest.raises(ValueError, match=r"types \['FakeQuant'\], not labkit.nn layers: pass their classes"):
        nn.load(path)  # nothing registers a layer type as a side effect of an import
    loaded = nn.load(path, layer_types=[FakeQuant])
    assert isinstance(loaded["fakequant1"], FakeQuant) and loaded["fakequant1"].bits == 6
    assert quantize(np.float32(0), s, z, 4) == z


def test_ste_mask_follows_the_narrow_range(rng):
    # narrow range: the STE mask clamps where quantize clamps. A symmetric 8-bit quantizer
    # emits [-127, 127], so x = -128·s is outside (before the fix: inside, and quantized to -128).
    w = rng.standard_normal(200).astype(np.float32)
    qp = qparams(w, 8, symmetric=True)
    s, _ = qp
    x = np.array([-128, -127, -126.6, -127.4, 127, 127.4, 127.6, 128], np.float32) * s
    mask = ste_mask(x, qp)
    assert mask.tolist() == [False, True, True, True, True, True, False, False]
    q_raw = np.rint(x.astype(np.float64) / np.float64(s))
    assert np.array_equal(mask, np.asarray(quantize(x, qp)) == q_raw)  # inside <=> not clamped
    assert ste_mask(x, s, 0, 8, True)[0]  # the full signed range, asked for explicitly
    g = np.ones_like(x)
    assert np.array_equal(fake_quantize_backward(g, x, qp), mask.astype(np.float32))
    obs = MinMaxObserver()
    obs.observe(w)
    oq = obs.qparams(8, symmetric=True)
    assert oq.narrow_range and oq.qrange == (-127, 127)
    assert not obs.qparams(8).narrow_range


def test_fake_quantized_weights_use_the_narrow_range(rng):
    model = models.mlp([8, 4, 2], seed=0)
    q = fake_quantize_weights(model, 2, per_channel=False)  # 2-bit symmetric: levels -1, 0, 1 only
    for (_, a), (_, b) in zip(model.weight_layers(), q.weight_layers()):
        s, _ = qparams(a.W, 2, symmetric=True)
        assert set(np.unique(np.rint(b.W / s)).tolist()) <= {-1.0, 0.0, 1.0}
