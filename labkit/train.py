"""Training: the cross-entropy loss, SGD and Adam, and a ``fit`` loop with callbacks.

``fit`` is deliberately small. What later labs need plugs in through two hooks:

* ``callbacks``: objects with any of ``on_train_begin``, ``on_batch_begin``, ``on_backward_end``
  (gradients computed, weights not yet updated), ``on_step_end`` (after the optimizer step),
  ``on_epoch_end`` (setting ``state.stop`` ends training after this epoch) and ``on_train_end``.
  Pruning re-applies masks in ``on_step_end``; quantization-aware training swaps fake-quantized
  weights in ``on_batch_begin`` and restores the float ones in ``on_backward_end``.
* ``loss_fn(logits, y_batch, batch_index) -> (loss, dlogits)``: knowledge distillation looks the
  teacher's logits up by ``batch_index`` (the rows of the training set in this batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .data import Dataset
from .softmax import log_softmax
from .validation import check_int

__all__ = [
    "cross_entropy",
    "log_softmax",
    "SGD",
    "Adam",
    "Callback",
    "EarlyStopping",
    "TrainState",
    "fit",
    "evaluate",
    "make_optimizer",
]


def cross_entropy(logits: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of integer labels and its gradient with respect to the logits.

    Parameters
    ----------
    logits : ndarray, shape (n, k)
    y : ndarray of int, shape (n,), values in [0, k)

    Returns
    -------
    loss : float
    dlogits : ndarray, shape (n, k) — ``(softmax(logits) - onehot(y)) / n``
    """
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy expects logits (n, k) and labels (n,), got {logits.shape} and {y.shape}")
    n, k = logits.shape
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must be in [0, {k}), got values in [{y.min()}, {y.max()}]")
    logp = log_softmax(logits)
    loss = -logp[np.arange(n), y].mean()
    grad = np.exp(logp)
    grad[np.arange(n), y] -= 1.0
    return float(loss), grad / n


class _Optimizer:
    """Updates every parameter of a model in place from the gradients of the last backward pass."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state: dict = {}
        self.t = 0

    def step(self, model) -> None:
        self.t += 1
        for layer in model.layers:
            grads = layer.grads()
            for name, param in layer.params().items():
                g = grads[name]
                if self.weight_decay and name == "W":  # decay weights, not biases
                    g = g + self.weight_decay * param
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
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
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


def make_optimizer(optimizer, lr, weight_decay=0.0):
    """An optimizer instance from a name (``"adam"``, ``"sgd"``) or pass one through."""
    if isinstance(optimizer, _Optimizer):
        return optimizer
    if optimizer == "adam":
        return Adam(lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return SGD(lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam', 'sgd' or an optimizer object")


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
):
    """Train ``model`` with mini-batches; returns the history.

    Parameters
    ----------
    model : labkit.nn.Sequential
    data : Dataset or (X, y)
        Training examples; a Dataset's test split is *not* used for training.
    epochs, lr, batch_size : training budget and step size.
    optimizer : {"adam", "sgd"} or an optimizer object (then ``lr`` is ignored).
    seed : int
        Seeds the shuffling and every Dropout layer, so a run is reproducible.
    callbacks : sequence of Callback
    progress : bool
        Show a tqdm progress bar over the epochs (loss in the postfix).
    loss_fn : callable, optional
        ``loss_fn(logits, y_batch, batch_index) -> (loss, dlogits)``; default cross-entropy.
    lr_schedule : None, "cosine" or callable(step, total_steps) -> lr
    eval_data : (X, y), optional
        Evaluated after each epoch into ``history["eval_acc"]``.

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
    for i, layer in enumerate(model.layers):  # reproducible dropout masks
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng([seed, i])
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
            batch_loss, batch_correct = _train_step(
                model, X, y, order[start : start + batch_size], loss_fn, callbacks, state
            )
            total_loss += batch_loss
            correct += batch_correct
            bar.update()
        history["loss"].append(total_loss / n)
        history["train_acc"].append(correct / n)
        if eval_data is not None:
            history["eval_acc"].append(evaluate(model, *eval_data))
        bar.epoch_done(epoch, history)
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


def _emit(callbacks, hook: str, model, state) -> None:
    """Call ``hook`` (``"on_step_end"``, ...) on every callback, in order."""
    for cb in callbacks:
        getattr(cb, hook)(model, state)


def _train_step(model, X, y, idx, loss_fn, callbacks, state):
    """One optimizer step on the rows ``idx``; returns (loss · batch size, correct predictions)."""
    state.batch_index = idx
    _emit(callbacks, "on_batch_begin", model, state)
    logits = model.forward(X[idx], training=True)
    loss, dlogits = loss_fn(logits, y[idx], idx)
    model.backward(dlogits.astype(logits.dtype, copy=False))
    _emit(callbacks, "on_backward_end", model, state)
    state.optimizer.step(model)
    state.step += 1
    _emit(callbacks, "on_step_end", model, state)
    return loss * len(idx), int((logits.argmax(axis=1) == y[idx]).sum())


class _ProgressBar:
    """A tqdm bar over the training steps with the epoch's loss in its postfix, or nothing at all."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="training", unit="step", leave=True)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def epoch_done(self, epoch: int, history: dict) -> None:
        if self.bar is None:
            return
        post = {"epoch": epoch + 1, "loss": f"{history['loss'][-1]:.4f}"}
        if "eval_acc" in history:
            post["eval_acc"] = f"{history['eval_acc'][-1]:.4f}"
        self.bar.set_postfix(post)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate(model, X, y, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on (X, y) as a float in [0, 1]."""
    X, y = _validate_xy(X, y)
    return float((model.predict(X, batch_size) == y).mean())
