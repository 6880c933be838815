"""Sensitivity scan: how much accuracy does each layer lose when it alone is pruned?

Han et al. (2015, Fig. 6) prune one layer at a time at rising sparsity, without retraining, to see
which layers tolerate pruning (the big first Dense layer of an MLP) and which do not (the first conv
layer, the output layer). The scan guides per-layer sparsities.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..train import evaluate
from ..validation import check_array, check_sparsity
from .magnitude import _select_layers, magnitude_mask

__all__ = ["sensitivity_scan"]


def sensitivity_scan(model, X, y=None, sparsities=None, layers=None, progress: bool = False) -> dict:
    """Accuracy on ``(X, y)`` after magnitude-pruning each layer alone at each sparsity (no retraining).

    The scan guides choices (per-layer sparsities), so score it on a validation split, never on the
    test split: there is no default split on purpose.

    Parameters
    ----------
    model : labkit.nn.Sequential — left unchanged (each layer's weights are restored after use)
    X : ndarray, shape (n, ...) — inputs the model accepts, e.g. ``data.X_val``
    y : ndarray of int, shape (n,) — their labels, e.g. ``data.y_val``
    sparsities : sequence of floats in [0, 1)
    layers : list of str, optional — weight layers to scan (default all)
    progress : bool — a tqdm bar over the (layer, sparsity) pairs

    Returns
    -------
    dict ``{layer_name: ndarray of accuracies, shape (len(sparsities),)}``
    """
    if isinstance(X, Dataset) or isinstance(X, (tuple, list)):
        raise TypeError(
            "sensitivity_scan takes the inputs and labels explicitly: sensitivity_scan(model, X, y, sparsities), "
            f"e.g. (model, data.X_val, data.y_val, ...); got a {type(X).__name__} as X"
        )
    if y is None or sparsities is None:
        raise TypeError("sensitivity_scan(model, X, y, sparsities) needs the labels y and the sparsities to scan")
    X = check_array(X, "X", kind="fiu", non_empty=True)
    y = check_array(y, "y", kind="iu", ndim=1, non_empty=True)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    sparsities = [check_sparsity(s) for s in sparsities]
    if not sparsities:
        raise ValueError("sparsities is empty: give at least one sparsity to scan")
    chosen = _select_layers(model, layers)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chosen) * len(sparsities), desc="sensitivity scan")
    out = {}
    for name, layer in chosen:
        saved = layer.W
        accs = []
        try:
            for s in sparsities:
                layer.W = saved * magnitude_mask(saved, s)
                accs.append(evaluate(model, X, y))
                if bar is not None:
                    bar.update(1)
        finally:
            layer.W = saved
        out[name] = np.array(accs)
    if bar is not None:
        bar.close()
    return out
