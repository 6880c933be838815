"""When to prune: one-shot, iterative prune → retrain (Han et al. 2015), and gradual AGP (Zhu & Gupta 2017).

* **One-shot**: prune to the final sparsity once, then fine-tune with the mask fixed.
* **Iterative** (Han et al. 2015, §3.3): alternate pruning to a rising sparsity and retraining; each
  retraining lets the survivors compensate before the next cut.
* **Automated gradual pruning** (Zhu & Gupta 2017, *To prune, or not to prune*, eq. 1): starting at
  step ``t0`` and every ``Δt`` steps for ``n`` pruning steps, raise the sparsity to

  .. math:: s_t = s_f + (s_i - s_f)\\left(1 - \\frac{t - t_0}{n\\,\\Delta t}\\right)^3,
     \\qquad t \\in \\{t_0, t_0 + \\Delta t, \\dots, t_0 + n\\Delta t\\},

  pruning fast at first (while there are many redundant weights) and slowly near the end.
  Zhu & Gupta bring **each layer** to ``s_t`` (every layer's weights are masked to its own
  magnitude threshold); :class:`AGPCallback` does that by default (``scope="layer"``) and offers
  one global threshold over all chosen layers as an option (``scope="global"``), which lets the
  layers end at different sparsities whose overall fraction is ``s_t``.
"""

from __future__ import annotations

import numbers

from ..train import evaluate, fit
from ..validation import check_int, check_sparsity
from .magnitude import MaskCallback, global_magnitude_prune, layerwise_magnitude_prune

__all__ = ["agp_sparsity", "AGPCallback", "iterative_prune", "one_shot_prune"]


def agp_sparsity(step: int, s_init: float, s_final: float, t0: int, n_steps: int, dt: int) -> float:
    """Target sparsity of automated gradual pruning at training step ``step`` (Zhu & Gupta 2017, eq. 1).

    Parameters
    ----------
    step : int >= 0
        Training (optimizer) step.
    s_init, s_final : float in [0, 1)
        Sparsity at the first and after the last pruning step.
    t0 : int >= 0
        Step of the first pruning step.
    n_steps : int >= 1
        Number of pruning intervals n (pruning happens at t0, t0 + dt, ..., t0 + n·dt).
    dt : int >= 1
        Steps between pruning steps (Δt).

    Returns
    -------
    float: ``s_init`` before ``t0``; ``s_final`` from ``t0 + n·dt`` on; in between, the formula at
    the most recent pruning step ``t = t0 + floor((step - t0) / dt) · dt`` (the sparsity is only
    raised at pruning steps and stays constant between them).
    """
    step = check_int("step", step, lo=0)
    t0, n_steps, dt = check_int("t0", t0, lo=0), check_int("n_steps", n_steps, lo=1), check_int("dt", dt, lo=1)
    s_i, s_f = check_sparsity(s_init, "s_init"), check_sparsity(s_final, "s_final")
    if step < t0:
        return s_i
    if step >= t0 + n_steps * dt:
        return s_f
    t = t0 + ((step - t0) // dt) * dt
    if t == t0:
        return s_i  # the formula's value, without the rounding of s_f + (s_i - s_f)
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (n_steps * dt)) ** 3


class AGPCallback(MaskCallback):
    """Gradual pruning during ``fit``: at every pruning step of the AGP schedule, re-prune to ``s_t``.

    Between pruning steps it behaves like :class:`MaskCallback` (pruned weights stay at zero). Set
    ``n_steps · dt`` shorter than the training run to leave some steps for recovery at the final
    sparsity, as Zhu & Gupta do.

    Parameters
    ----------
    s_final : float in [0, 1)
    t0, n_steps, dt : int, see :func:`agp_sparsity` (``dt`` in optimizer steps)
    s_init : float, default 0
    layers : list of str, optional — which weight layers to prune (default all)
    scope : "layer" (default) or "global"
        ``"layer"``: every chosen layer is pruned to ``s_t`` by its own magnitude threshold, as in
        Zhu & Gupta 2017. ``"global"``: one magnitude threshold over all chosen layers removes the
        fraction ``s_t`` of their weights together (layers end at different sparsities).

    Attributes
    ----------
    history : list of (step, s_t) at each pruning step
    layer_history : list of (step, {layer_name: sparsity reached}) at each pruning step
    """

    def __init__(self, s_final, t0, n_steps, dt, s_init=0.0, layers=None, scope="layer"):
        agp_sparsity(0, s_init, s_final, t0, n_steps, dt)  # validates the arguments
        if scope not in ("layer", "global"):
            raise ValueError(f'scope must be "layer" (Zhu & Gupta 2017) or "global", got {scope!r}')
        self.s_init, self.s_final = float(s_init), float(s_final)
        self.t0, self.n_steps, self.dt = int(t0), int(n_steps), int(dt)
        self.layers, self.scope = layers, scope
        self.history: list = []  # (step, sparsity) at each pruning step
        self.layer_history: list = []  # (step, {layer: sparsity reached}) at each pruning step

    def _maybe_prune(self, model, step):
        if step < self.t0 or step > self.t0 + self.n_steps * self.dt or (step - self.t0) % self.dt:
            return
        s = agp_sparsity(step, self.s_init, self.s_final, self.t0, self.n_steps, self.dt)
        if self.scope == "layer":
            masks = layerwise_magnitude_prune(model, s, layers=self.layers)
        else:
            masks = global_magnitude_prune(model, s, layers=self.layers)
        self.history.append((step, s))
        self.layer_history.append((step, {name: int((~m).sum()) / max(m.size, 1) for name, m in masks.items()}))

    def on_train_begin(self, model, state):
        super().on_train_begin(model, state)
        self._maybe_prune(model, 0)

    def on_step_end(self, model, state):
        super().on_step_end(model, state)
        self._maybe_prune(model, state.step)


def one_shot_prune(model, data, sparsity, epochs, eval_data=None, layers=None, **fit_kwargs):
    """Prune globally to ``sparsity`` once, then fine-tune ``epochs`` epochs with the mask fixed.

    ``fit_kwargs`` go to :func:`labkit.train.fit` (lr, batch_size, seed, progress, ...).
    Returns ``{"masks", "history", "accuracy"}`` (accuracy on ``eval_data`` if given, else None).
    """
    masks = global_magnitude_prune(model, sparsity, layers=layers)
    fit_kwargs.setdefault("progress", False)
    history = fit(model, data, epochs=epochs, callbacks=[MaskCallback()], **fit_kwargs) if epochs else {}
    acc = evaluate(model, *eval_data) if eval_data is not None else None
    return {"masks": masks, "history": history, "accuracy": acc}


def iterative_prune(model, data, sparsities, epochs_per_step, eval_data=None, layers=None, **fit_kwargs):
    """Han et al.'s iterative schedule: for each sparsity in order, prune globally then retrain.

    Parameters
    ----------
    sparsities : increasing sequence of floats in [0, 1)
    epochs_per_step : int, or a sequence as long as ``sparsities``
        Retraining epochs after each pruning step.

    Returns
    -------
    list of dicts ``{"sparsity", "accuracy_pruned", "accuracy"}`` per step: accuracy right after
    pruning and after retraining (None without ``eval_data``).
    """
    sparsities = [check_sparsity(s) for s in sparsities]
    if not sparsities or any(b < a for a, b in zip(sparsities, sparsities[1:])):
        raise ValueError(f"sparsities must be a non-empty non-decreasing sequence, got {sparsities}")
    if isinstance(epochs_per_step, numbers.Integral):
        epochs_per_step = [int(epochs_per_step)] * len(sparsities)
    epochs_per_step = list(epochs_per_step)
    if len(epochs_per_step) != len(sparsities) or any(e < 0 for e in epochs_per_step):
        raise ValueError(f"epochs_per_step must be >= 0, one per sparsity; got {epochs_per_step}")
    fit_kwargs.setdefault("progress", False)
    seed = fit_kwargs.pop("seed", 0)
    log = []
    for i, (s, e) in enumerate(zip(sparsities, epochs_per_step)):
        global_magnitude_prune(model, s, layers=layers)
        pruned = evaluate(model, *eval_data) if eval_data is not None else None
        if e:
            fit(model, data, epochs=e, callbacks=[MaskCallback()], seed=seed + i, **fit_kwargs)
        acc = evaluate(model, *eval_data) if eval_data is not None else None
        log.append({"sparsity": s, "accuracy_pruned": pruned, "accuracy": acc})
    return log
