"""Structured pruning: remove whole neurons (Dense rows) or channels (Conv2d filters) so the network
really shrinks.

A mask with 90% zeros still multiplies by every zero in a dense matmul; removing a unit removes a row
of its layer's weights, its bias, and the matching input column(s) of the next weight layer, so every
later matmul is smaller. Units are ranked by the norm of their incoming weights, as Li et al. (ICLR
2017, *Pruning Filters for Efficient ConvNets*) rank filters by the sum of their absolute weights
(ℓ1); ℓ2 is the other common choice.

Each ``prune_*`` function returns a **new** model (the input is untouched) whose outputs equal those
of the same-shaped model with the removed units masked out (:func:`mask_units`): exactly in real
arithmetic, to float32 rounding in practice.

**A removed unit's bias.** A ReLU unit whose incoming weights are all zero (say, a weight mask
removed them but kept its bias) is not silent: it outputs the constant ``relu(b_j)``, which the next
layer multiplies by its column ``W2[:, j]``. Removing such a unit *outright* would drop that
constant. So, by default (``bias="fold"``), shrinking adds ``W2[:, removed] @ relu(b1[removed])``
(for a channel: ``relu(b_c)`` times the sum of the next layer's weights it feeds) to the next
layer's bias, for every removed unit whose incoming weights are all zero: the shrunk model then
equals the masked model it came from. A removed unit with non-zero incoming weights has no
constant output; it is removed outright (weights, bias, and the next layer's columns), as
:func:`mask_units` does by default. ``bias="drop"`` removes every unit outright.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU, Sequential
from ..validation import check_sparsity, renamed
from .magnitude import _smallest_k_mask

__all__ = ["unit_importance", "units_to_keep", "prune_neurons", "prune_channels", "mask_units"]

# layers that act on each unit (channel) separately, so a removed unit stays removed through them
_PER_UNIT = (ReLU, Dropout, MaxPool2d)


def unit_importance(W: np.ndarray, norm: str = "l1") -> np.ndarray:
    """Importance of each output unit: the ℓ1 or ℓ2 norm of its incoming weights.

    Parameters
    ----------
    W : ndarray, shape (out, in) for Dense or (out_c, in_c, k, k) for Conv2d
    norm : {"l1", "l2"}

    Returns
    -------
    ndarray, shape (out,), float64
    """
    if not isinstance(W, np.ndarray) or W.ndim < 2:
        raise ValueError(f"W must be a weight array of shape (out, ...), got {getattr(W, 'shape', type(W).__name__)}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or inf values; unit norms need finite weights")
    rows = W.reshape(W.shape[0], -1).astype(np.float64)
    if norm == "l1":
        return np.abs(rows).sum(axis=1)
    if norm == "l2":
        return np.sqrt((rows * rows).sum(axis=1))
    raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")


def units_to_keep(W: np.ndarray, sparsity: float | None = None, norm: str = "l1", *, amount=None) -> np.ndarray:
    """Sorted indices of the units kept when ``floor(sparsity · out)`` of smallest norm are removed.

    Ties in the norm are broken by index (the lower index is removed first), as in ``magnitude_mask``.
    ``sparsity`` is the fraction of units removed (``amount`` is its deprecated name).
    """
    a = check_sparsity(renamed("units_to_keep", "amount", amount, "sparsity", sparsity))
    imp = unit_importance(W, norm)
    return np.flatnonzero(_smallest_k_mask(imp, math.floor(a * imp.size)))


def _pair(model: Sequential, layer: str, kind):
    """Index of ``layer`` and of the next weight layer, checking that only per-unit layers (and, for a
    conv, one Flatten) sit between them. Returns (i, j, flatten_hw) with flatten_hw = spatial size
    per channel if a Flatten sits between (else None)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a labkit.nn.Sequential, got {type(model).__name__}")
    target = model[layer]  # KeyError lists the valid names
    if not isinstance(target, kind):
        fn = "prune_neurons" if isinstance(target, Dense) else "prune_channels"
        raise ValueError(f"{layer!r} is a {type(target).__name__}, not a {kind.__name__}; use {fn} for it")
    i = model.layers.index(target)
    flatten_hw = None
    for j in range(i + 1, len(model.layers)):
        nxt = model.layers[j]
        if isinstance(nxt, (Dense, Conv2d)):
            if isinstance(target, Dense) and not isinstance(nxt, Dense):
                raise ValueError(f"{layer!r} feeds {nxt.name!r} ({type(nxt).__name__}); expected a Dense layer")
            return i, j, flatten_hw
        if isinstance(nxt, Flatten) and isinstance(target, Conv2d) and flatten_hw is None:
            if model.input_shape is None:
                raise ValueError("the model needs an input_shape to find the spatial size at its Flatten layer")
            shape_in = dict((n, s_in) for n, s_in, _ in model.shapes())[nxt.name]
            flatten_hw = int(np.prod(shape_in[1:]))
            continue
        if not isinstance(nxt, _PER_UNIT):
            raise ValueError(
                f"cannot remove units of {layer!r}: {nxt.name!r} ({type(nxt).__name__}) "
                "mixes units before the next weight layer"
            )
    last = [n for n, _ in model.weight_layers()][-1]
    raise ValueError(f"{layer!r} is the output layer ({last}); its units are the classes and cannot be removed")


def _input_columns(keep: np.ndarray, flatten_hw) -> np.ndarray:
    """Input indices of the next layer fed by the kept units (a channel feeds hw Flatten columns)."""
    if flatten_hw is None:
        return keep
    return (keep[:, None] * flatten_hw + np.arange(flatten_hw)[None, :]).ravel()


def _constant_output(model, i, j, b):
    """What a unit with zero incoming weights and bias ``b`` emits into layer ``j``: ``b`` passed
    through the per-unit layers between (ReLU clips it; max-pooling and dropout at inference keep a
    constant)."""
    c = b.copy()
    for layer in model.layers[i + 1 : j]:
        if isinstance(layer, ReLU):
            c = np.maximum(c, 0)
    return c


def _fold(model, i, j, hw, drop, bias):
    """Bias change of layer ``j`` that replaces the dropped units' constant outputs (float64, (out,))."""
    a, b = model.layers[i], model.layers[j]
    out = np.zeros(b.b.shape, np.float64)
    if bias == "drop" or drop.size == 0:
        return out
    rows = a.W.reshape(a.W.shape[0], -1)
    if a.mask is not None:
        rows = np.where(a.mask.reshape(rows.shape), rows, 0)
    dead = drop[~np.any(rows[drop] != 0, axis=1)]  # removed units with all-zero incoming weights
    c = _constant_output(model, i, j, a.b[dead].astype(np.float64))
    dead, c = dead[c != 0], c[c != 0]
    if dead.size == 0:
        return out
    if isinstance(b, Dense):
        cols = _input_columns(dead, hw)
        values = np.repeat(c, 1 if hw is None else hw)
        return b.W[:, cols].astype(np.float64) @ values
    if b.padding:
        raise ValueError(
            f"cannot fold the constant outputs relu(b) of removed channels {dead.tolist()} of {a.name!r} into "
            f"{b.name!r}: its zero padding makes their contribution vary near the border; "
            'use bias="drop" to remove them outright'
        )
    return b.W[:, dead].astype(np.float64).sum(axis=(2, 3)) @ c


def _check_bias(bias):
    if bias not in ("fold", "drop"):
        raise ValueError(f'bias must be "fold" (keep a removed unit\'s constant relu(b)) or "drop", got {bias!r}')


def _shrink(model, layer, sparsity, norm, kind, keep=None, bias="fold"):
    _check_bias(bias)
    i, j, hw = _pair(model, layer, kind)
    new = model.copy()
    a, b = new.layers[i], new.layers[j]
    if keep is None:
        keep = units_to_keep(a.W if a.mask is None else np.where(a.mask, a.W, 0), sparsity, norm)
    cols = _input_columns(keep, hw)
    shift = _fold(new, i, j, hw, np.setdiff1d(np.arange(a.W.shape[0]), keep), bias)
    if isinstance(a, Dense):
        a2 = Dense(a.in_features, len(keep))
    else:
        a2 = Conv2d(a.in_channels, len(keep), a.kernel_size, a.stride, a.padding)
    a2.W, a2.b = np.ascontiguousarray(a.W[keep]), a.b[keep].copy()
    a2.mask = None if a.mask is None else a.mask[keep].copy()
    if isinstance(b, Dense):
        b2 = Dense(len(cols), b.out_features)
    else:
        b2 = Conv2d(len(keep), b.out_channels, b.kernel_size, b.stride, b.padding)
    b2.W, b2.b = np.ascontiguousarray(b.W[:, cols]), (b.b + shift).astype(b.b.dtype)
    b2.mask = None if b.mask is None else np.ascontiguousarray(b.mask[:, cols])
    layers = list(new.layers)
    layers[i], layers[j] = a2, b2
    out = Sequential(layers, input_shape=new.input_shape)
    if hasattr(model, "metadata"):
        out.metadata = dict(model.metadata)
    return out


def prune_neurons(
    model, layer: str, sparsity: float | None = None, norm: str = "l1", bias: str = "fold", *, amount=None
) -> Sequential:
    """A new, smaller model without the ``floor(sparsity · out)`` neurons of Dense ``layer`` of smallest norm.

    Removes those rows of ``layer.W`` and ``layer.b`` (and of its mask) and the matching columns of
    the next Dense layer. ``model`` itself is not changed.

    Parameters
    ----------
    model : labkit.nn.Sequential
    layer : str — a hidden Dense layer (not the output layer)
    sparsity : float in [0, 1) — fraction of its neurons to remove (``amount`` is its deprecated name)
    norm : {"l1", "l2"} — importance of a neuron = norm of its incoming (unmasked) weights (row of W)
    bias : {"fold", "drop"}
        ``"fold"`` (default): a removed neuron whose incoming weights are all zero still emitted
        ``relu(b_j)``; ``W2[:, j] · relu(b_j)`` is added to the next layer's bias, so the shrunk
        model equals the masked one. Removed neurons with non-zero weights are removed outright.
        ``"drop"``: every removed neuron is removed outright (its constant output is lost).
    """
    sparsity = renamed("prune_neurons", "amount", amount, "sparsity", sparsity)
    return _shrink(model, layer, sparsity, norm, Dense, bias=bias)


def prune_channels(
    model, layer: str, sparsity: float | None = None, norm: str = "l1", bias: str = "fold", *, amount=None
) -> Sequential:
    """A new, smaller model without the ``floor(sparsity · out_channels)`` filters of Conv2d ``layer`` of smallest
    norm (``sparsity``: the fraction removed; ``amount`` is its deprecated name).

    Removes those filters (``W[c]``, ``b[c]``) and the matching input channels of the next Conv2d, or,
    when a Flatten comes first (LeNet-5's conv2 → fc1), the ``h·w`` columns of the next Dense layer
    that each removed channel fed.

    ``bias``: as in :func:`prune_neurons`; a removed channel with an all-zero filter emitted the
    constant ``relu(b_c)`` at every position, folded as ``relu(b_c) · Σ W2[:, c]`` into the next
    layer's bias (the next conv must have no zero padding for that to be exact; it raises otherwise).
    """
    sparsity = renamed("prune_channels", "amount", amount, "sparsity", sparsity)
    return _shrink(model, layer, sparsity, norm, Conv2d, bias=bias)


def mask_units(
    model, layer: str, sparsity: float | None = None, norm: str = "l1", keep_bias: bool = False, *, amount=None
) -> Sequential:
    """A copy of ``model`` with the same units as :func:`prune_neurons`/:func:`prune_channels` would
    remove zeroed instead: same shapes, same outputs as the shrunk model (``amount`` is the deprecated
    name of ``sparsity``).

    ``keep_bias=False`` (default): the units are removed outright — their incoming weights, their
    bias and the next layer's input columns are zeroed. ``keep_bias=True``: only the incoming
    weights are zeroed (as a weight mask does), so each such unit still emits ``relu(b)``; shrinking
    this model with the default ``bias="fold"`` keeps that constant in the next layer's bias.
    """
    sparsity = renamed("mask_units", "amount", amount, "sparsity", sparsity)
    kind = Dense if isinstance(model[layer], Dense) else Conv2d
    i, j, hw = _pair(model, layer, kind)
    new = model.copy()
    a, b = new.layers[i], new.layers[j]
    keep = units_to_keep(a.W if a.mask is None else np.where(a.mask, a.W, 0), sparsity, norm)
    drop = np.setdiff1d(np.arange(a.W.shape[0]), keep)
    a.W[drop] = 0
    if not keep_bias:
        a.b[drop] = 0
        b.W[:, _input_columns(drop, hw)] = 0
    return new
