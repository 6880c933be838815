"""Lottery tickets (Frankle & Carbin, ICLR 2019): a pruned network trains well from its *original*
initial values, and worse from a fresh random initialisation with the same mask.

The procedure (their §2, one-shot variant; "rewinding" to an early iteration k > 0 is Frankle et
al. 2020's fix for deeper networks):

1. initialise ``θ0`` and snapshot the weights at step ``k`` (``k = 0``: the initial values);
2. train to ``θ_T``;
3. prune globally by magnitude of ``θ_T``, giving mask ``m``;
4. **ticket**: reset the survivors to their step-``k`` values, ``m ⊙ θ_k``, and retrain with the mask;
5. **control**: the same mask on a fresh random initialisation ``m ⊙ θ'_0``, retrained the same way.
"""

from __future__ import annotations

import numpy as np

from ..train import Callback, evaluate, fit
from .magnitude import MaskCallback, apply_masks, global_magnitude_prune

__all__ = ["SnapshotCallback", "rewind", "random_reinit", "lottery_ticket"]


def _snapshot(model) -> dict:
    return {k: a.copy() for k, a in model.parameters().items()}


class SnapshotCallback(Callback):
    """Keeps a copy of every parameter after optimizer step ``at_step`` (0 = before training)."""

    def __init__(self, at_step: int = 0):
        if at_step < 0:
            raise ValueError(f"at_step must be >= 0, got {at_step}")
        self.at_step = int(at_step)
        self.params: dict | None = None

    def on_train_begin(self, model, state):
        if self.at_step == 0:
            self.params = _snapshot(model)

    def on_step_end(self, model, state):
        if state.step == self.at_step:
            self.params = _snapshot(model)


def rewind(model, masks: dict, params: dict) -> None:
    """Reset ``model``'s parameters to ``params`` (a snapshot), then set and apply ``masks``, in place."""
    own = model.parameters()
    for k, a in own.items():
        if k not in params or params[k].shape != a.shape:
            raise ValueError(f"snapshot lacks {k} of shape {a.shape}")
        a[...] = params[k]
    apply_masks(model, masks)


def random_reinit(model, masks: dict, rng) -> None:
    """Fresh He-normal weights (std sqrt(2 / fan_in)) and zero biases drawn from ``rng``, then the masks, in place."""
    for _, layer in model.weight_layers():
        fan_in = int(np.prod(layer.W.shape[1:]))
        layer.W[...] = rng.standard_normal(layer.W.shape) * np.sqrt(2.0 / fan_in)
        layer.b[...] = 0
    apply_masks(model, masks)


def lottery_ticket(
    build, data, sparsity, epochs, retrain_epochs=None, rewind_step=0, seed=0, eval_data=None, **fit_kwargs
):
    """Run one lottery-ticket experiment: dense training, the rewound ticket and the random-reinit control.

    Parameters
    ----------
    build : callable(seed) -> model, e.g. ``labkit.models.lenet_300_100``
    data : Dataset or (X, y) for training
    sparsity : float in [0, 1) — global fraction of weights removed after dense training
    epochs : int — dense training epochs; ``retrain_epochs`` (default the same) for ticket and control
    rewind_step : int — 0 rewinds to the initial values; k > 0 to the weights after k steps
    seed : int — seeds the initialisation, the data order and the control's re-initialisation
    eval_data : (X, y) — where the three accuracies are measured (required)

    Returns
    -------
    dict with ``dense``, ``ticket``, ``reinit`` accuracies and the ``masks``.
    """
    if eval_data is None:
        raise ValueError("eval_data (X, y) is required to compare the ticket with its control")
    retrain_epochs = epochs if retrain_epochs is None else retrain_epochs
    fit_kwargs.setdefault("progress", False)
    model = build(seed)
    snap = SnapshotCallback(rewind_step)
    fit(model, data, epochs=epochs, seed=seed, callbacks=[snap], **fit_kwargs)
    if snap.params is None:
        raise ValueError(f"rewind_step {rewind_step} is beyond the {epochs}-epoch dense run")
    dense = evaluate(model, *eval_data)
    masks = global_magnitude_prune(model, sparsity)
    ticket = build(seed)
    rewind(ticket, masks, snap.params)
    fit(ticket, data, epochs=retrain_epochs, seed=seed + 1, callbacks=[MaskCallback()], **fit_kwargs)
    control = build(seed)
    random_reinit(control, masks, np.random.default_rng([seed, 7919]))
    fit(control, data, epochs=retrain_epochs, seed=seed + 1, callbacks=[MaskCallback()], **fit_kwargs)
    return {
        "dense": dense,
        "ticket": evaluate(ticket, *eval_data),
        "reinit": evaluate(control, *eval_data),
        "masks": masks,
    }
