"""Magnitude pruning: remove the weights of smallest |w|, layer by layer or with one global threshold.

Han, Pool, Tran & Dally (NeurIPS 2015, *Learning both Weights and Connections for Efficient Neural
Networks*) prune a trained network by magnitude, then retrain the survivors with the pruned
connections held at zero. Here a pruning *mask* is a bool array shaped like the weights, True =
kept; ``layer.mask`` stores it and ``W * mask`` is the pruned weight.

Exactness: ``magnitude_mask(w, s)`` removes exactly ``floor(s · w.size)`` entries. When several
entries share the threshold magnitude, those with the smallest flat (C-order) index go first, so a
mask never depends on the sort algorithm. The global version does the same over the layers taken in
model order (the contract of ``labkit.kernels.global_magnitude_masks``).

Selection never sorts. float32 weights (every labkit model's) go through the compiled radix select
``labkit.kernels.global_magnitude_masks`` (O(n), no concatenated copy; lab 07 times it); other
dtypes use ``np.partition`` (an O(n) introselect) on the concatenated magnitudes. Both give the same
masks (tests/test_prune.py checks it).
"""

from __future__ import annotations

import math

import numpy as np

from ..train import Callback
from ..validation import check_array, check_sparsity

__all__ = [
    "magnitude_mask",
    "global_magnitude_prune",
    "layerwise_magnitude_prune",
    "apply_masks",
    "remove_masks",
    "masks_of",
    "MaskCallback",
    "check_sparsity",
]


def _smallest_k_mask(a: np.ndarray, k: int) -> np.ndarray:
    """Flat bool mask, False at the k smallest entries of the 1-D array ``a`` (ties: lowest index)."""
    keep = np.ones(a.size, dtype=bool)
    if k <= 0:
        return keep
    if k >= a.size:
        keep[:] = False
        return keep
    t = np.partition(a, k - 1)[k - 1]  # the k-th smallest value (1-based)
    below = a < t
    keep[below] = False
    need = k - int(np.count_nonzero(below))
    keep[np.flatnonzero(a == t)[:need]] = False
    return keep


def _keep_masks(arrays: list, k: int) -> list:
    """Bool masks (True = kept), one per array, removing exactly the k smallest |w| over all of them."""
    if arrays and all(a.dtype == np.float32 for a in arrays):
        from ..kernels import global_magnitude_masks  # compiled (numba); imported on first use

        return global_magnitude_masks([np.ascontiguousarray(a) for a in arrays], k)
    flat = np.concatenate([np.abs(a).ravel() for a in arrays])
    keep = _smallest_k_mask(flat, k)
    sizes = [a.size for a in arrays]
    return [part.reshape(a.shape) for a, part in zip(arrays, np.split(keep, np.cumsum(sizes)[:-1]))]


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """The mask that removes the ``floor(sparsity · w.size)`` entries of smallest ``|w|``.

    Parameters
    ----------
    w : ndarray, any shape, finite
    sparsity : float in [0, 1)
        Fraction of entries to remove.

    Returns
    -------
    mask : ndarray of bool, shape ``w.shape``; True = kept. Exactly ``floor(sparsity · w.size)``
        entries are False; among equal magnitudes the lower flat index is removed first.

    Examples
    --------
    >>> magnitude_mask(np.array([0.5, -0.1, 0.3, -2.0]), 0.5)
    array([ True, False, False,  True])
    """
    w = check_array(w, "w", kind="fiu", finite=True, ndarray_only=True)
    s = check_sparsity(sparsity)
    return _keep_masks([w], math.floor(s * w.size))[0]


def _select_layers(model, layers):
    """[(name, layer)] for the named weight layers (all of them if ``layers`` is None)."""
    weight_layers = model.weight_layers()
    if layers is None:
        return weight_layers
    if isinstance(layers, str):
        layers = [layers]
    valid = [n for n, _ in weight_layers]
    out = []
    for name in layers:
        layer = model[name]  # KeyError listing every layer name
        if name not in valid:
            raise ValueError(f"layer {name!r} has no weights to prune; weight layers: {', '.join(valid)}")
        out.append((name, layer))
    if not out:
        raise ValueError("layers is empty: name at least one weight layer")
    return out


def _set_mask(layer, mask: np.ndarray) -> None:
    if mask.shape != layer.W.shape:
        raise ValueError(f"mask for {layer.name} has shape {mask.shape}, the weights have shape {layer.W.shape}")
    layer.mask = mask.astype(bool, copy=False)
    layer.W *= layer.mask


def global_magnitude_prune(model, sparsity: float, layers=None, include_bias: bool = False) -> dict:
    """Prune ``model`` in place with one magnitude threshold across layers.

    The ``floor(sparsity · n)`` weights of smallest ``|w|`` among all ``n`` weights of the chosen
    layers are removed: a layer whose weights are small loses more of them than one whose weights are
    large. Weights already zero (pruned before) are the smallest, so calling this again with a higher
    sparsity continues an iterative schedule.

    Parameters
    ----------
    model : labkit.nn.Sequential
    sparsity : float in [0, 1)
        Fraction of the chosen layers' weights to remove.
    layers : list of str, optional
        Weight-layer names (default: every Dense and Conv2d layer).
    include_bias : bool
        Biases are never pruned (they are few and each one matters); True raises, to say so.

    Returns
    -------
    dict ``{layer_name: mask}``; each layer's ``mask`` is set and its masked weights are zeroed.
    """
    if include_bias:
        raise ValueError("pruning biases is not supported: they are <1% of the parameters; prune weights only")
    s = check_sparsity(sparsity)
    chosen = _select_layers(model, layers)
    for name, layer in chosen:
        check_array(layer.W, f"{name}.W", finite=True)
    weights = [layer.W for _, layer in chosen]
    keeps = _keep_masks(weights, math.floor(s * sum(w.size for w in weights)))
    masks = {}
    for (name, layer), keep in zip(chosen, keeps):
        masks[name] = keep
        _set_mask(layer, keep)
    return masks


def layerwise_magnitude_prune(model, sparsity, layers=None) -> dict:
    """Prune every chosen layer to the same sparsity (or to its own, given a dict), in place.

    Parameters
    ----------
    sparsity : float in [0, 1), or dict ``{layer_name: float}``
        With a dict, only the named layers are pruned (``layers`` is then ignored).

    Returns
    -------
    dict ``{layer_name: mask}``
    """
    if isinstance(sparsity, dict):
        per_layer = {name: check_sparsity(s, f"sparsity[{name!r}]") for name, s in sparsity.items()}
        chosen = _select_layers(model, list(per_layer))
    else:
        s = check_sparsity(sparsity)
        chosen = _select_layers(model, layers)
        per_layer = {name: s for name, _ in chosen}
    masks = {}
    for name, layer in chosen:
        masks[name] = magnitude_mask(layer.W, per_layer[name])
        _set_mask(layer, masks[name])
    return masks


def apply_masks(model, masks: dict | None = None) -> None:
    """Zero the masked weights (``W *= mask``); with ``masks`` given, first set them as the layers' masks."""
    if masks is not None:
        for name, mask in masks.items():
            layer = model[name]
            if "W" not in layer.param_names:
                raise ValueError(f"layer {name!r} has no weights to mask")
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise TypeError(f"mask for {name} must be a bool array (True = kept), got dtype {mask.dtype}")
            _set_mask(layer, mask.copy())
        return
    for _, layer in model.weight_layers():
        if layer.mask is not None:
            _set_mask(layer, layer.mask)


def remove_masks(model) -> None:
    """Forget every layer's mask (the zeros stay; training may then regrow them)."""
    for _, layer in model.weight_layers():
        layer.mask = None


def masks_of(model) -> dict:
    """``{layer_name: mask copy}`` for the layers that hold a mask."""
    return {n: layer.mask.copy() for n, layer in model.weight_layers() if layer.mask is not None}


class MaskCallback(Callback):
    """Keeps pruned weights at exactly zero while training (pass it to ``labkit.train.fit``).

    * ``on_backward_end``: zero the gradients of pruned weights, so the optimizer never sees them;
    * ``on_step_end``: zero the optimizer's state (Adam's moments, SGD's velocity) at pruned
      positions, then re-apply the masks. Without this, momentum accumulated *before* pruning
      would keep moving a pruned weight away from zero.
    """

    def on_train_begin(self, model, state):
        apply_masks(model)  # also validates the mask shapes before the first step

    def on_backward_end(self, model, state):
        for _, layer in model.weight_layers():
            if layer.mask is not None:
                layer.dW *= layer.mask

    def on_step_end(self, model, state):
        opt_state = getattr(state.optimizer, "state", {}) or {}
        for name, layer in model.weight_layers():
            if layer.mask is None:
                continue
            slot = opt_state.get(f"{name}.W")
            arrays = slot if isinstance(slot, tuple) else (slot,)
            for a in arrays:
                if isinstance(a, np.ndarray) and a.shape == layer.mask.shape:
                    a *= layer.mask
            layer.W *= layer.mask
