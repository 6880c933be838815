"""Sensitivity scan: how much accuracy does each layer lose when it alone is pruned?

Han et al. (2015, Fig. 6) prune one layer at a time at rising sparsity, without retraining, to see
which layers tolerate pruning (the big first Dense layer of an MLP) and which do not (the first conv
layer, the output layer). The scan guides per-layer sparsities.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..train import evaluate
from ..validation import check_sparsity
from .magnitude import _select_layers, magnitude_mask

__all__ = ["sensitivity_scan"]


def sensitivity_scan(model, data, sparsities, layers=None, progress: bool = False) -> dict:
    """Accuracy after magnitude-pruning each layer alone at each sparsity (no retraining).

    Parameters
    ----------
    model : labkit.nn.Sequential — left unchanged (each layer's weights are restored after use)
    data : Dataset (its test split is used) or (X, y)
    sparsities : sequence of floats in [0, 1)
    layers : list of str, optional — weight layers to scan (default all)
    progress : bool — a tqdm bar over the (layer, sparsity) pairs

    Returns
    -------
    dict ``{layer_name: ndarray of accuracies, shape (len(sparsities),)}``
    """
    if isinstance(data, Dataset):
        X, y = data.X_test, data.y_test
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise TypeError(f"data must be a Dataset or an (X, y) pair, got {type(data).__name__}")
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
