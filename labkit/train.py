"""Training: the cross-entropy loss, SGD, Adam and AdamW, and a ``fit`` loop with callbacks.

``fit`` is deliberately small. What later labs need plugs in through two hooks:

* ``callbacks``: objects with any of ``on_train_begin``, ``on_batch_begin``, ``on_backward_end``
  (gradients computed, weights not yet updated), ``on_step_end`` (after the optimizer step),
  ``on_epoch_end`` (setting ``state.stop`` ends training after this epoch) and ``on_train_end``.
  Pruning re-applies masks in ``on_step_end``; quantization-aware training swaps fake-quantized
  weights in ``on_batch_begin`` and restores the float ones in ``on_backward_end``.
* ``loss_fn(logits, y_batch, batch_index) -> (loss, dlogits)``: knowledge distillation looks the
  teacher's logits up by ``batch_index`` (the rows of the training set in this batch).

``fit_lm`` trains a language model (``labkit.models.gpt``) with the same step: it draws random windows
of a token array instead of shuffling examples, counts steps instead of epochs, and adds what
transformers are trained with: AdamW, a linear warm-up then cosine decay of the learning rate,
clipping of the gradient's global norm, and a periodic validation loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .data import Dataset, lm_windows, sample_windows
from .softmax import log_softmax
from .validation import check_int, check_real, show

__all__ = [
    "cross_entropy",
    "log_softmax",
    "SGD",
    "Adam",
    "AdamW",
    "Callback",
    "EarlyStopping",
    "TrainState",
    "fit",
    "evaluate",
    "make_optimizer",
    "clip_grad_norm",
    "warmup_cosine",
    "fit_lm",
    "evaluate_lm",
]


def cross_entropy(logits: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of integer labels and its gradient with respect to the logits.

    Parameters
    ----------
    logits : ndarray, shape (n, k) — or (..., k), e.g. (batch, T, vocab) for a language model
    y : ndarray of int, shape (n,) — or ``logits.shape[:-1]``; values in [0, k)

    Returns
    -------
    loss : float
        The mean over all n labels (all batch·T positions), in nats.
    dlogits : ndarray, logits' shape — ``(softmax(logits) - onehot(y)) / n``
    """
    if logits.ndim < 2 or y.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy expects logits (n, k) and labels (n,) (or (..., k) and (...)), "
            f"got {logits.shape} and {y.shape}"
        )
    shape, k = logits.shape, logits.shape[-1]
    logits, y = logits.reshape(-1, k), y.reshape(-1)
    n = y.size
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must be in [0, {k}), got values in [{y.min()}, {y.max()}]")
    logp = log_softmax(logits)
    loss = -logp[np.arange(n), y].mean()
    grad = np.exp(logp)
    grad[np.arange(n), y] -= 1.0
    return float(loss), (grad / n).reshape(shape)


class _Optimizer:
    """Updates every parameter of a model in place from the gradients of the last backward pass."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {show(lr)}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict = {}
        self.t = 0

    decoupled = False  # True: weight decay shrinks the weights directly (AdamW), not through the gradient

    def step(self, model) -> None:
        self.t += 1
        for layer in model.layers:
            grads = layer.grads()
            for name, param in layer.params().items():
                g = grads[name]
                decay = self.weight_decay and name.rsplit(".", 1)[-1] == "W"  # weights, not biases or gains
                if decay and not self.decoupled:
                    g = g + self.weight_decay * param
                if decay and self.decoupled:
                    param -= param.dtype.type(self.lr * self.weight_decay) * param
                self._update(f"{layer.name}.{name}", param, g)

    def update(self, key: str, param: np.ndarray, grad) -> None:
        """Apply this optimizer's rule, in place, to a parameter that belongs to no layer.

        For parameters a callback trains alongside the model (e.g. a learned quantizer step size),
        with the current learning rate and step count and no weight decay. Call it after
        :meth:`step` (in a callback's ``on_step_end``). ``key`` names the parameter's optimizer
        state (momentum, Adam's moments); it must not be a layer's ``"layer.param"`` name.
        """
        if self.t < 1:
            raise RuntimeError("update() follows step(): call it from on_step_end, after the first optimizer step")
        grad = np.asarray(grad)
        if grad.shape != param.shape:
            raise ValueError(f"grad has shape {grad.shape}, the parameter {param.shape}: they must match")
        self._update(key, param, grad.astype(param.dtype, copy=False))

    def _update(self, key, param, grad):  # pragma: no cover
        raise NotImplementedError


class SGD(_Optimizer):
    """SGD with (heavy-ball) momentum: ``v = m v + g; w -= lr v``."""

    def __init__(self, lr=0.05, momentum=0.9, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {show(momentum)}")
        self.momentum = float(momentum)

    def _update(self, key, param, grad):
        if self.momentum:
            v = self.state.get(key)
            v = grad.copy() if v is None else self.momentum * v + grad
            self.state[key] = v
            grad = v
        param -= (self.lr * grad).astype(param.dtype, copy=False)


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, key, param, grad):
        m, v = self.state.get(key, (np.zeros_like(param), np.zeros_like(param)))
        m = self.beta1 * m + (1 - self.beta1) * grad
        v = self.beta2 * v + (1 - self.beta2) * grad * grad
        self.state[key] = (m, v)
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        param -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(param.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    After each Adam step every weight matrix ``W`` (Dense, Conv2d, Embedding tables; not biases or
    LayerNorm gains) shrinks by ``lr · weight_decay · W``, whatever its gradient's scale; Adam with L2
    (``Adam(weight_decay=...)``) instead adds ``weight_decay · W`` to the gradient, which the adaptive
    step then rescales.
    """

    decoupled = True

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


def make_optimizer(optimizer, lr, weight_decay=0.0):
    """An optimizer instance from a name (``"adam"``, ``"adamw"``, ``"sgd"``) or pass one through."""
    if isinstance(optimizer, _Optimizer):
        return optimizer
    if optimizer == "adam":
        return Adam(lr=lr, weight_decay=weight_decay)
    if optimizer == "adamw":
        return AdamW(lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return SGD(lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam', 'adamw', 'sgd' or an optimizer object")


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale every gradient of ``model`` by one factor so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(Σ over all parameters of Σ g²)``; above ``max_norm`` every gradient is
    multiplied by ``max_norm / norm`` (the direction is kept), as ``torch.nn.utils.clip_grad_norm_``.
    Returns the norm before clipping.
    """
    max_norm = check_real("max_norm", max_norm, 0.0, lo_open=True)
    grads = [g for layer in model.layers for g in layer.grads().values()]
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if norm > max_norm:
        for g in grads:
            g *= g.dtype.type(max_norm / (norm + 1e-6))
    return norm


def warmup_cosine(lr: float, warmup_steps: int, final_lr: float = 0.0):
    """A schedule ``f(step, total_steps) -> learning rate``: linear warm-up, then cosine decay.

    Step s < ``warmup_steps`` uses ``lr · (s + 1) / warmup_steps``; afterwards the rate follows half a
    cosine from ``lr`` down to ``final_lr`` at the last step. Pass it as ``lr_schedule=`` to ``fit``.
    """
    lr = check_real("lr", lr, 0.0, lo_open=True)
    warmup_steps = check_int("warmup_steps", warmup_steps, lo=0)
    final_lr = check_real("final_lr", final_lr, 0.0, lr)

    def schedule(step, total_steps):
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - 1 - warmup_steps, 1)
        return final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))

    return schedule


class Callback:
    """Base class for training callbacks; override the hooks you need. Each gets (model, state)."""

    def on_train_begin(self, model, state): ...
    def on_batch_begin(self, model, state): ...
    def on_backward_end(self, model, state): ...
    def on_step_end(self, model, state): ...
    def on_epoch_end(self, model, state): ...
    def on_train_end(self, model, state): ...


@dataclass
class TrainState:
    """What callbacks can see: progress counters, the optimizer and the history so far."""

    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    optimizer: object = None
    batch_index: np.ndarray | None = None
    history: dict = field(default_factory=dict)
    stop: bool = False  # set by a callback's on_epoch_end: no further epoch is run
    grad_norm: float | None = None  # the last step's global gradient norm before clipping (when clipping)


def _as_xy(data):
    if isinstance(data, Dataset):
        return data.X_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data
    raise TypeError(f"data must be a Dataset or an (X, y) pair, got {type(data).__name__}")


def _validate_xy(X, y, what="X"):
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"{what} and y must have the same length, got {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{what} is empty: nothing to train or evaluate on")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what} contains NaN or inf values")
    return X, y


def _lr_at(schedule, base_lr, step, total_steps):
    if schedule is None or schedule == "constant":
        return base_lr
    if schedule == "cosine":  # decays from base_lr to 0 over the run
        return 0.5 * base_lr * (1 + math.cos(math.pi * step / max(total_steps, 1)))
    if callable(schedule):
        return schedule(step, total_steps)
    raise ValueError(f"lr_schedule must be None, 'constant', 'cosine' or a callable, got {schedule!r}")


def fit(
    model,
    data,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 128,
    optimizer="adam",
    seed: int = 0,
    callbacks=(),
    progress: bool = True,
    loss_fn=None,
    lr_schedule=None,
    weight_decay: float = 0.0,
    eval_data=None,
    clip_norm: float | None = None,
):
    """Train ``model`` with mini-batches; returns the history.

    Parameters
    ----------
    model : labkit.nn.Sequential
    data : Dataset or (X, y)
        Training examples; a Dataset's test split is *not* used for training.
    epochs, lr, batch_size : training budget and step size.
    optimizer : {"adam", "adamw", "sgd"} or an optimizer object (then ``lr`` is ignored).
    seed : int
        Seeds the shuffling and every Dropout layer, so a run is reproducible.
    callbacks : sequence of Callback
    progress : bool
        Show a tqdm progress bar over the epochs (loss in the postfix).
    loss_fn : callable, optional
        ``loss_fn(logits, y_batch, batch_index) -> (loss, dlogits)``; default cross-entropy.
    lr_schedule : None, "cosine" or callable(step, total_steps) -> lr (e.g. :func:`warmup_cosine`)
    eval_data : (X, y), optional
        Evaluated after each epoch into ``history["eval_acc"]``.
    clip_norm : float, optional
        Clip the gradients' global norm to this value before every step (:func:`clip_grad_norm`).

    Returns
    -------
    dict with per-epoch lists ``loss`` and ``train_acc`` (running, on the batches seen),
    plus ``eval_acc`` when ``eval_data`` is given.
    """
    X, y = _validate_xy(*_as_xy(data))
    epochs = check_int("epochs", epochs, lo=0)
    batch_size = check_int("batch_size", batch_size, lo=1)
    opt = make_optimizer(optimizer, lr, weight_decay)
    base_lr = opt.lr
    rng = np.random.default_rng(seed)
    _seed_dropout(model, seed)
    loss_fn = loss_fn or (lambda logits, yb, idx: cross_entropy(logits, yb))
    n = len(X)
    history = {"loss": [], "train_acc": []}
    if eval_data is not None:
        history["eval_acc"] = []
    state = TrainState(total_steps=epochs * math.ceil(n / batch_size), optimizer=opt, history=history)
    _emit(callbacks, "on_train_begin", model, state)
    bar = _ProgressBar(progress, state.total_steps)
    for epoch in range(epochs):
        state.epoch = epoch
        order = rng.permutation(n)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            opt.lr = _lr_at(lr_schedule, base_lr, state.step, state.total_steps)
            idx = order[start : start + batch_size]
            batch_loss, batch_correct = _train_step(model, X[idx], y[idx], idx, loss_fn, callbacks, state, clip_norm)
            total_loss += batch_loss * len(idx)
            correct += batch_correct
            bar.update()
        history["loss"].append(total_loss / n)
        history["train_acc"].append(correct / n)
        if eval_data is not None:
            history["eval_acc"].append(evaluate(model, *eval_data))
        bar.show(epoch=epoch + 1, loss=history["loss"][-1], eval_acc=(history.get("eval_acc") or [None])[-1])
        _emit(callbacks, "on_epoch_end", model, state)
        if state.stop:
            break
    bar.close()
    opt.lr = base_lr
    _emit(callbacks, "on_train_end", model, state)
    return history


class EarlyStopping(Callback):
    """Keep the weights of the epoch that scored best on held-out data (early stopping, with patience).

    After every epoch the model is scored on ``(X, y)`` (a validation split: choosing the epoch is a
    choice). The parameters of the best epoch so far are copied; at the end of training
    (``on_train_end``) they are written back into the model, so ``fit`` returns the best epoch's
    model. With ``patience`` set, training stops once that many epochs in a row have not beaten the
    best score (the budget saved is the point); ties keep the earlier epoch.

    Parameters
    ----------
    X, y : held-out inputs and integer labels
    patience : int, optional
        Epochs without improvement before stopping; None trains every epoch and still restores the best.

    Attributes
    ----------
    scores : list of float, the held-out accuracy after each epoch run
    best_epoch : int, 0-based index of the epoch restored
    """

    def __init__(self, X, y, patience: int | None = None):
        self.X, self.y = _validate_xy(X, y, what="X (held-out)")
        self.patience = None if patience is None else check_int("patience", patience, lo=1)
        self.scores: list = []
        self.best_epoch = -1
        self._best: list | None = None

    def on_train_begin(self, model, state):
        self.scores, self.best_epoch, self._best = [], -1, None

    def on_epoch_end(self, model, state):
        score = evaluate(model, self.X, self.y)
        self.scores.append(score)
        if self._best is None or score > self.scores[self.best_epoch]:
            self.best_epoch = len(self.scores) - 1
            self._best = [{k: v.copy() for k, v in layer.params().items()} for layer in model.layers]
        elif self.patience is not None and len(self.scores) - 1 - self.best_epoch >= self.patience:
            state.stop = True

    def on_train_end(self, model, state):
        if self._best is None:
            return
        for layer, saved in zip(model.layers, self._best):
            for k, v in layer.params().items():
                v[...] = saved[k]


def _seed_dropout(model, seed: int) -> None:
    """Give every layer with its own generator (Dropout) one seeded from ``seed``: reproducible masks."""
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng([seed, i])


def _emit(callbacks, hook: str, model, state) -> None:
    """Call ``hook`` (``"on_step_end"``, ...) on every callback, in order."""
    for cb in callbacks:
        getattr(cb, hook)(model, state)


def _train_step(model, xb, yb, idx, loss_fn, callbacks, state, clip_norm=None):
    """One optimizer step on the batch (xb, yb), rows ``idx`` of the training data.

    Returns the batch's mean loss and its number of correct predictions (argmax of the last axis).
    """
    state.batch_index = idx
    _emit(callbacks, "on_batch_begin", model, state)
    logits = model.forward(xb, training=True)
    loss, dlogits = loss_fn(logits, yb, idx)
    model.backward(dlogits.astype(logits.dtype, copy=False))
    if clip_norm is not None:
        state.grad_norm = clip_grad_norm(model, clip_norm)
    _emit(callbacks, "on_backward_end", model, state)
    state.optimizer.step(model)
    state.step += 1
    _emit(callbacks, "on_step_end", model, state)
    return loss, int((logits.argmax(axis=-1) == yb).sum())


class _ProgressBar:
    """A tqdm bar over the training steps with the latest numbers in its postfix, or nothing at all."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="training", unit="step", leave=True)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def show(self, **numbers) -> None:
        """Put ``name=value`` pairs in the postfix (floats with 4 decimals; None values left out)."""
        if self.bar is None:
            return
        post = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in numbers.items() if v is not None}
        self.bar.set_postfix(post)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate(model, X, y, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on (X, y) as a float in [0, 1]."""
    X, y = _validate_xy(X, y)
    return float((model.predict(X, batch_size) == y).mean())


def fit_lm(
    model,
    tokens: np.ndarray,
    steps: int,
    batch_size: int = 32,
    context: int | None = None,
    lr: float = 1e-3,
    warmup_steps: int = 100,
    final_lr: float | None = None,
    optimizer="adamw",
    weight_decay: float = 0.1,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    val_tokens: np.ndarray | None = None,
    eval_every: int = 250,
    callbacks=(),
    progress: bool = True,
):
    """Train a language model on a token array by next-token prediction; returns the history.

    Each step draws ``batch_size`` windows of ``context`` tokens at random starts
    (:func:`labkit.data.sample_windows` with ``np.random.default_rng(seed)``), feeds BOS plus each
    window shifted by one, and minimises the cross-entropy of the next token at every position. The
    step itself (callbacks, forward, loss, backward, clipping, optimizer) is the one ``fit`` takes.

    Parameters
    ----------
    model : labkit.nn.GPT
        Its ``bos`` id opens every window.
    tokens : ndarray of int, shape (n,)
        The training text as token ids.
    steps : int
        Optimizer steps (each sees ``batch_size · context`` tokens).
    batch_size, context : int
        Windows per step, and their length (default: the model's context).
    lr, warmup_steps, final_lr : learning-rate schedule (:func:`warmup_cosine`): linear warm-up over
        ``warmup_steps`` to ``lr``, then cosine decay to ``final_lr`` (default ``lr / 10``).
    optimizer : {"adamw", "adam", "sgd"} or an optimizer object (then ``lr`` sets only the schedule).
    weight_decay : float
        For a named optimizer; AdamW decays weight matrices and embeddings, not biases or gains.
    clip_norm : float or None
        Clip the gradients' global norm to this value before each step (None: no clipping).
    seed : int
        Seeds the window sampling: the same call gives the same model.
    val_tokens : ndarray of int, optional
        Evaluated every ``eval_every`` steps and after the last (:func:`evaluate_lm`).
    callbacks : sequence of Callback
        As in ``fit``; ``on_epoch_end`` is called after each evaluation (there are no epochs).
    progress : bool
        A tqdm bar over the steps, with the latest training and validation loss.

    Returns
    -------
    dict of lists, one entry per evaluation: ``step`` (steps done), ``loss`` (mean training loss over
    the steps since the previous entry, nats/token), ``lr`` (the rate of the last of those steps),
    ``grad_norm`` (its global gradient norm before clipping, or None) and, with ``val_tokens``, ``val_loss``.
    """
    steps = check_int("steps", steps, lo=0)
    batch_size = check_int("batch_size", batch_size, lo=1)
    context = model.context if context is None else check_int("context", context, lo=1, hi=model.context)
    eval_every = check_int("eval_every", eval_every, lo=1)
    opt = make_optimizer(optimizer, lr, weight_decay)
    lr = check_real("lr", lr, 0.0, lo_open=True)
    schedule = warmup_cosine(lr, warmup_steps, lr / 10 if final_lr is None else final_lr)
    rng = np.random.default_rng(seed)
    _seed_dropout(model, seed)
    loss_fn = lambda logits, yb, idx: cross_entropy(logits, yb)
    history = {"step": [], "loss": [], "lr": [], "grad_norm": []}
    if val_tokens is not None:
        history["val_loss"] = []
    state = TrainState(total_steps=steps, optimizer=opt, history=history)
    _emit(callbacks, "on_train_begin", model, state)
    bar = _ProgressBar(progress, steps)
    losses = []
    for step in range(steps):
        opt.lr = schedule(step, steps)
        xb, yb = sample_windows(tokens, context, batch_size, rng, bos=model.bos)
        losses.append(_train_step(model, xb, yb, None, loss_fn, callbacks, state, clip_norm)[0])
        bar.update()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            history["step"].append(step + 1)
            history["loss"].append(float(np.mean(losses)))
            history["lr"].append(opt.lr)
            history["grad_norm"].append(state.grad_norm)
            losses = []
            if val_tokens is not None:
                history["val_loss"].append(evaluate_lm(model, val_tokens, context))
            bar.show(loss=history["loss"][-1], val_loss=(history.get("val_loss") or [None])[-1])
            _emit(callbacks, "on_epoch_end", model, state)
    bar.close()
    return history


def evaluate_lm(model, tokens: np.ndarray, context: int | None = None, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats per token) of a language model on a token array.

    The tokens are cut into non-overlapping windows of ``context`` tokens, each read after a BOS
    (:func:`labkit.data.lm_windows`; a last stretch shorter than a window is not scored), evaluated in
    batches of ``batch_size`` windows. ``exp`` of it is ``labkit.metrics.perplexity``.
    """
    context = model.context if context is None else check_int("context", context, lo=1, hi=model.context)
    batch_size = check_int("batch_size", batch_size, lo=1)
    inputs, targets = lm_windows(tokens, context, model.bos)
    total = 0.0
    for i in range(0, len(inputs), batch_size):
        loss, _ = cross_entropy(model.forward(inputs[i : i + batch_size]), targets[i : i + batch_size])
        total += loss * len(inputs[i : i + batch_size])
    return total / len(inputs)
