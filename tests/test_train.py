"""labkit.train: loss, optimizers, fit, callbacks, evaluate, bad input; the language-model loop fit_lm."""

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
    h = train.fit(
        a, digits, epochs=8, lr=3e-3, batch_size=32, seed=5, progress=False, eval_data=(digits.X_test, digits.y_test)
    )
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

    train.fit(
        models.mlp([64, 10]),
        (digits.X_train[:64], digits.y_train[:64]),
        epochs=2,
        batch_size=32,
        callbacks=[Recorder()],
        progress=False,
    )
    assert calls == [
        "begin",
        "batch",
        "backward",
        "step1",
        "batch",
        "backward",
        "step2",
        "epoch0",
        "batch",
        "backward",
        "step3",
        "batch",
        "backward",
        "step4",
        "epoch1",
    ]


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


# --- language models -------------------------------------------------------------------------------

TINY = {"vocab_size": 6, "context": 8, "n_layer": 1, "n_head": 2, "d_model": 16}


def test_cross_entropy_over_every_position(rng):
    logits = rng.standard_normal((2, 3, 5))
    y = rng.integers(0, 5, (2, 3))
    loss, grad = train.cross_entropy(logits, y)
    flat_loss, flat_grad = train.cross_entropy(logits.reshape(6, 5), y.reshape(6))
    assert loss == flat_loss and grad.shape == (2, 3, 5)
    np.testing.assert_array_equal(grad.reshape(6, 5), flat_grad)
    with pytest.raises(ValueError, match=r"got \(2, 3, 5\) and \(2, 4\)"):
        train.cross_entropy(logits, np.zeros((2, 4), dtype=int))


@pytest.mark.peers
def test_adamw_and_clipping_match_pytorch(rng):
    from conftest import require_torch

    torch = require_torch()
    model = models.gpt(**TINY, seed=1).astype(np.float64)
    ids = rng.integers(0, 6, (3, 8))
    params = {k: torch.tensor(a.copy(), requires_grad=True) for k, a in model.parameters().items()}
    decay = [p for k, p in params.items() if k.endswith(".W")]
    other = [p for k, p in params.items() if not k.endswith(".W")]
    ref = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
        lr=1e-2,
        betas=(0.9, 0.99),
        eps=1e-8,
    )
    opt = train.AdamW(lr=1e-2, beta2=0.99, weight_decay=0.1)
    state = train.TrainState(optimizer=opt)
    for _ in range(3):
        grads = rng.standard_normal((3, 8, 6))  # any fixed upstream gradient
        model.forward(ids)
        model.backward(grads)
        norm = train.clip_grad_norm(model, 0.5)
        opt.step(model)
        state.step += 1
        for p in params.values():
            p.grad = None
        # the same function in torch: sum(logits * grads), same weights
        logits = _torch_gpt_logits(torch, params, ids)
        (logits * torch.tensor(grads)).sum().backward()
        ref_norm = torch.nn.utils.clip_grad_norm_(list(params.values()), 0.5)
        ref.step()
        assert norm == pytest.approx(float(ref_norm), rel=1e-9)
    for k, a in model.parameters().items():
        np.testing.assert_allclose(a, params[k].detach().numpy(), rtol=1e-8, atol=1e-10, err_msg=k)


def _torch_gpt_logits(torch, P, ids):
    F = torch.nn.functional
    d, h, t = TINY["d_model"], TINY["n_head"], ids.shape[1]
    lin = lambda x, name: F.linear(x, P[f"{name}.W"], P[f"{name}.b"])
    ln = lambda x, name: F.layer_norm(x, (d,), P[f"{name}.gamma"], P[f"{name}.beta"], eps=1e-5)
    x = P["wte.W"][torch.tensor(ids)] + P["wpe.W"][:t]
    b = ids.shape[0]
    q, k, v = lin(ln(x, "h0.ln1"), "h0.attn.qkv").split(d, dim=2)
    q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
    x = x + lin(y, "h0.attn.proj")
    x = x + lin(F.gelu(lin(ln(x, "h0.ln2"), "h0.mlp.fc1"), approximate="tanh"), "h0.mlp.fc2")
    return lin(ln(x, "ln_f"), "head")


def test_clip_grad_norm_scales_all_gradients_by_one_factor(rng):
    model = models.mlp([4, 3, 2], seed=0)
    model.forward(rng.standard_normal((5, 4)).astype(np.float32))
    model.backward(rng.standard_normal((5, 2)).astype(np.float32) * 10)
    before = [g.copy() for layer in model.layers for g in layer.grads().values()]
    norm = train.clip_grad_norm(model, 1.0)
    assert norm == pytest.approx(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in before)), rel=1e-6)
    after = [g for layer in model.layers for g in layer.grads().values()]
    assert np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in after)) == pytest.approx(1.0, rel=1e-5)
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b / norm, rtol=1e-5)
    assert train.clip_grad_norm(model, 10.0) == pytest.approx(1.0, rel=1e-5)  # below the limit: unchanged
    with pytest.raises(ValueError, match="max_norm"):
        train.clip_grad_norm(model, 0.0)


def test_warmup_cosine_schedule():
    f = train.warmup_cosine(1e-3, 10, final_lr=1e-4)
    assert f(0, 110) == pytest.approx(1e-4) and f(9, 110) == pytest.approx(1e-3)
    assert f(10, 110) == pytest.approx(1e-3)
    assert f(59.5, 110) == pytest.approx(5.5e-4)  # half way down the cosine: the mid-point of lr and final_lr
    assert f(109, 110) == pytest.approx(1e-4)
    rates = [f(s, 110) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="final_lr"):
        train.warmup_cosine(1e-3, 10, final_lr=2e-3)


def test_fit_lm_learns_a_periodic_text_and_is_reproducible():
    tokens = np.tile(np.array([1, 2, 3, 4, 5, 3, 2]), 60)  # period 7: predictable after a few tokens
    a, b = models.gpt(**TINY, seed=0), models.gpt(**TINY, seed=0)
    kw = dict(steps=60, batch_size=8, lr=1e-2, warmup_steps=5, seed=3, val_tokens=tokens[:64], eval_every=20)
    h = train.fit_lm(a, tokens, progress=False, **kw)
    train.fit_lm(b, tokens, progress=False, **kw)
    for (k, x), y in zip(a.parameters().items(), b.parameters().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert h["step"] == [20, 40, 60] and len(h["loss"]) == len(h["val_loss"]) == len(h["lr"]) == 3
    assert h["val_loss"][-1] < 0.5 < np.log(6) < h["loss"][0] + 1  # from about uniform to well below it
    assert h["lr"][-1] == pytest.approx(1e-3)  # ends at lr / 10
    assert all(g is not None and g > 0 for g in h["grad_norm"])
    assert train.evaluate_lm(a, tokens[:64]) == pytest.approx(h["val_loss"][-1])


def test_fit_lm_runs_the_same_callbacks_as_fit():
    calls = []

    class Spy(train.Callback):
        def on_train_begin(self, m, s):
            calls.append("begin")

        def on_batch_begin(self, m, s):
            calls.append("batch")

        def on_backward_end(self, m, s):
            calls.append("backward")

        def on_step_end(self, m, s):
            calls.append("step")

        def on_epoch_end(self, m, s):
            calls.append("eval")

    train.fit_lm(
        models.gpt(**TINY),
        np.arange(1, 6).repeat(10),
        steps=2,
        batch_size=2,
        eval_every=2,
        callbacks=[Spy()],
        progress=False,
    )
    assert calls == ["begin", "batch", "backward", "step", "batch", "backward", "step", "eval"]


def test_fit_lm_bad_input():
    m = models.gpt(**TINY)
    with pytest.raises(ValueError, match="context must be in"):
        train.fit_lm(m, np.arange(1, 6).repeat(10), steps=1, context=9, progress=False)
    with pytest.raises(TypeError, match="integer ids"):
        train.fit_lm(m, np.zeros(50), steps=1, progress=False)
    with pytest.raises(ValueError, match="steps must be"):
        train.fit_lm(m, np.arange(1, 6).repeat(10), steps=-1, progress=False)
