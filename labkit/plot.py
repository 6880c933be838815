"""The course's standard figures. Each function draws on a given or new matplotlib Axes and returns it.

Figures are for looking; the numbers they show are always also computed (and checked) in code.
Other labs add their figures here: histograms, sparsity maps, accuracy–compression curves, Pareto
fronts, latency curves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["sample_grid", "training_curves"]


def sample_grid(X, y, class_names, per_class: int = 8, rng=None, image_shape=(28, 28)):
    """A grid of example images, one row per class.

    Parameters
    ----------
    X : ndarray, shape (n, 784) or (n, 1, 28, 28), values in [0, 1]
    y : ndarray of int, shape (n,)
    per_class : int
        Images per row; the first ``per_class`` of each class unless ``rng`` picks at random.
    """
    n_classes = len(class_names)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * 0.9, n_classes * 0.95))
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if rng is not None:
            idx = rng.permutation(idx)
        for j in range(per_class):
            ax = axes[c, j]
            ax.imshow(X[idx[j]].reshape(image_shape), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def training_curves(history, ax=None, title="training"):
    """Loss (left axis) and accuracy (right axis) per epoch from a ``fit`` history."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, history["train_acc"], "s--", color="tab:orange", label="training accuracy")
    if "eval_acc" in history:
        ax2.plot(epochs, history["eval_acc"], "^-", color="tab:green", label="test accuracy")
    ax2.set_ylabel("accuracy")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    ax.set_title(title)
    return ax
