"""labkit.train: loss, optimizers, fit, callbacks, evaluate, bad input."""

import numpy as np
import pytest

from labkit import models, train


def test_cross_entropy_value_and_gradient(rng):
    logits = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    loss, grad = train.cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(4), y])))
    eps, num = 1e-6, np.zeros_like(logits)
    for i in np.ndindex(*logits.shape):
        d = np.zeros_like(logits)
        d[i] = eps
        num[i] = (train.cross_entropy(logits + d, y)[0] - train.cross_entropy(logits - d, y)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-8)


def test_cross_entropy_stable_for_huge_logits():
    loss, grad = train.cross_entropy(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and loss == pytest.approx(0.0)


def test_fit_learns_digits_and_is_reproducible(digits):
    a = models.mlp([64, 32, 10], seed=0)
    h = train.fit(a, digits, epochs=8, lr=3e-3, batch_size=32, seed=5, progress=False,
                  eval_data=(digits.X_test, digits.y_test))  # fmt: skip
    assert h["loss"][-1] < h["loss"][0]
    assert train.evaluate(a, digits.X_test, digits.y_test) > 0.9
    assert len(h["eval_acc"]) == 8
    b = models.mlp([64, 32, 10], seed=0)
    train.fit(b, digits, epochs=8, lr=3e-3, batch_size=32, seed=5, progress=False)
    np.testing.assert_array_equal(a["fc1"].W, b["fc1"].W)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_optimizers_reduce_loss(digits, opt):
    m = models.mlp([64, 10], seed=0)
    h = train.fit(m, digits, epochs=3, lr=0.05 if opt == "sgd" else 1e-2, optimizer=opt, progress=False)
    assert h["loss"][2] < h["loss"][0]


def test_callbacks_order_and_state(digits):
    calls = []

    class Recorder(train.Callback):
        def on_train_begin(self, model, state):
            calls.append("begin")

        def on_batch_begin(self, model, state):
            calls.append("batch")

        def on_backward_end(self, model, state):
            assert model["fc1"].dW.shape == model["fc1"].W.shape
            calls.append("backward")

        def on_step_end(self, model, state):
            calls.append(f"step{state.step}")

        def on_epoch_end(self, model, state):
            calls.append(f"epoch{state.epoch}")

    train.fit(models.mlp([64, 10]), (digits.X_train[:64], digits.y_train[:64]), epochs=2, batch_size=32,
              callbacks=[Recorder()], progress=False)  # fmt: skip
    assert calls == ["begin", "batch", "backward", "step1", "batch", "backward", "step2", "epoch0",
                     "batch", "backward", "step3", "batch", "backward", "step4", "epoch1"]  # fmt: skip


def test_loss_hook_receives_batch_index(digits):
    seen = []

    def loss_fn(logits, yb, idx):
        seen.append(idx.copy())
        return train.cross_entropy(logits, yb)

    X, y = digits.X_train[:50], digits.y_train[:50]
    train.fit(models.mlp([64, 10]), (X, y), epochs=1, batch_size=20, loss_fn=loss_fn, progress=False)
    assert sorted(np.concatenate(seen).tolist()) == list(range(50))


def test_cosine_schedule_reaches_zero():
    assert train._lr_at("cosine", 1.0, 0, 100) == 1.0
    assert train._lr_at("cosine", 1.0, 50, 100) == pytest.approx(0.5)
    assert train._lr_at("cosine", 1.0, 100, 100) == pytest.approx(0.0)


def test_progress_bar_shows(digits, capsys):
    train.fit(models.mlp([64, 10]), (digits.X_train[:64], digits.y_train[:64]), epochs=1, progress=True)
    assert "training" in capsys.readouterr().err


def test_bad_input(digits):
    m = models.mlp([64, 10])
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        train.fit(m, (digits.X_train[:10], digits.y_train[:9]), progress=False)
    X = digits.X_train[:10].copy()
    X[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train.fit(m, (X, digits.y_train[:10]), progress=False)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train.fit(m, digits, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="learning rate"):
        train.fit(m, digits, lr=-1, progress=False)
    with pytest.raises(TypeError, match="Dataset or an"):
        train.fit(m, digits.X_train, progress=False)
    with pytest.raises(ValueError, match="labels must be in"):
        train.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="empty"):
        train.evaluate(m, digits.X_train[:0], digits.y_train[:0])


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_updates_a_parameter_outside_the_model(name, rng):
    """update(key, param, grad) applies the same rule as step() does to a layer's parameter."""
    model = models.mlp([4, 3], seed=0)
    twin = models.mlp([4, 3], seed=0)
    opt, opt_twin = train.make_optimizer(name, 0.01), train.make_optimizer(name, 0.01)
    extra = model["fc1"].W.copy()
    with pytest.raises(RuntimeError, match="after the first optimizer step"):
        opt.update("extra", extra, np.ones_like(extra))
    for _ in range(3):
        g = rng.standard_normal(extra.shape).astype(np.float32)
        model["fc1"].dW, model["fc1"].db = g * 0, np.zeros(3, np.float32)
        twin["fc1"].dW, twin["fc1"].db = g, np.zeros(3, np.float32)
        opt.step(model)
        opt_twin.step(twin)
        opt.update("extra", extra, g)
    np.testing.assert_array_equal(extra, twin["fc1"].W)
    with pytest.raises(ValueError, match="must match"):
        opt.update("extra", extra, np.ones(3))


def test_early_stopping_restores_the_best_epoch_and_stops(digits):
    X_val, y_val = digits.X_test, digits.y_test
    model = models.mlp([64, 32, 10], seed=0)
    es = train.EarlyStopping(X_val, y_val)
    history = train.fit(
        model, digits, epochs=6, lr=3e-2, seed=0, callbacks=[es], progress=False, eval_data=(X_val, y_val)
    )
    assert es.scores == history["eval_acc"]  # scored after every epoch, on the held-out split
    assert es.best_epoch == int(np.argmax(es.scores))  # the first of equal maxima
    assert train.evaluate(model, X_val, y_val) == max(es.scores)  # the best epoch's weights are back
    # with patience 1, training stops after the first epoch that does not beat the best
    twin = models.mlp([64, 32, 10], seed=0)
    stopper = train.EarlyStopping(X_val, y_val, patience=1)
    h = train.fit(twin, digits, epochs=6, lr=3e-2, seed=0, callbacks=[stopper], progress=False)
    first_miss = next(i for i in range(1, 6) if es.scores[i] <= max(es.scores[:i]))
    assert len(h["loss"]) == len(stopper.scores) == first_miss + 1
    assert stopper.scores == es.scores[: first_miss + 1]
    with pytest.raises(ValueError, match="patience"):
        train.EarlyStopping(X_val, y_val, patience=0)
    with pytest.raises(ValueError, match="same length"):
        train.EarlyStopping(X_val, y_val[:-1])
