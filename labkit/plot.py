"""The course's standard figures. Each function draws on a given or new matplotlib Axes and returns it.

Figures are for looking; the numbers they show are always also computed (and checked) in code.
Other labs add their figures here: histograms, sparsity maps, accuracy–compression curves, Pareto
fronts, latency curves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["show", "sample_grid", "training_curves", "error_vs_bits", "accuracy_vs_bits", "quantization_grid"]


def show(fig=None, alt: str = "", *, dpi: int = 100):
    """Display a figure in the notebook with its alternative text, then close it.

    Every lab shows its figures through this helper instead of ``plt.show()``, so that each image
    output carries a description that screen readers, JupyterLab and nbconvert's HTML pick up: the
    PNG's output metadata holds ``{"image/png": {"alt": alt}}`` and the output's ``text/plain``
    is the same text (what nbval compares, so the description is checked like any printed line).

    Parameters
    ----------
    fig : matplotlib Figure, optional
        The figure to show; default: the current figure.
    alt : str
        What the figure shows and what to read from it (not "a plot"), one or two sentences.
        Must not hold raw floats that vary between machines: it is compared by nbval.
    dpi : int
        Resolution of the PNG.
    """
    import base64
    import io

    from IPython.display import display

    if not isinstance(alt, str) or not alt.strip():
        raise ValueError(f"alt must be a non-empty description of the figure, got {alt!r}")
    fig = plt.gcf() if fig is None else fig
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    display({"image/png": png, "text/plain": alt}, raw=True, metadata={"image/png": {"alt": alt}})


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


def error_vs_bits(bits, errors: dict, ax=None, title="quantization error vs bits"):
    """Mean squared quantization error (log scale) against bit width, one line per label.

    Parameters
    ----------
    bits : sequence of int
    errors : {label: sequence of float}, each as long as ``bits``
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for (label, errs), marker in zip(errors.items(), "os^vD<>"):
        ax.semilogy(list(bits), list(errs), marker + "-", label=label)
    ax.set_xlabel("bits")
    ax.set_ylabel("mean squared error")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def accuracy_vs_bits(bits, curves: dict, baseline=None, ax=None, title="accuracy vs bits"):
    """Test accuracy against bit width, one line per label, with the float baseline as a dashed line.

    Parameters
    ----------
    bits : sequence of int
    curves : {label: sequence of accuracies in [0, 1]}
    baseline : float, optional
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for (label, accs), marker in zip(curves.items(), "os^vD<>"):
        ax.plot(list(bits), [100 * a for a in accs], marker + "-", label=label)
    if baseline is not None:
        ax.axhline(100 * baseline, color="gray", ls="--", label="float32")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.invert_xaxis()
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def quantization_grid(x, scale, zero_point, bits, signed=False, ax=None, title="values and quantization levels"):
    """Histogram of ``x`` with the real values of every quantization level marked (few bits only)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ax.hist(np.ravel(x), bins=120, color="tab:blue", alpha=0.7)
    for q in range(qmin, qmax + 1):
        ax.axvline(float(scale) * (q - zero_point), color="tab:red", lw=0.6, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("value")
    ax.set_title(title)
    return ax


# --- pruning figures (labs 01 and 02) -----------------------------------------------------------------

__all__ += ["accuracy_vs_sparsity", "weight_histograms", "sparsity_map", "sensitivity_curves", "latency_bars"]


def accuracy_vs_sparsity(sparsities, curves: dict, baseline=None, ax=None, title="accuracy vs sparsity"):
    """Test accuracy (%) against the fraction of weights removed, one line per label.

    Parameters
    ----------
    sparsities : sequence of float in [0, 1)
    curves : {label: sequence of accuracies in [0, 1]}; labels containing "fine-tuned" are drawn solid,
        the others dashed
    baseline : float, optional — the dense model's accuracy, drawn as a grey line
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = 100 * np.asarray(sparsities, dtype=float)
    for (label, accs), marker in zip(curves.items(), "os^vD<>"):
        ls = "-" if "fine-tuned" in label else "--"
        ax.plot(x, [100 * a for a in accs], marker + ls, label=label)
    if baseline is not None:
        ax.axhline(100 * baseline, color="gray", ls=":", label="dense baseline")
    ax.set_xlabel("weights removed (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def weight_histograms(before: dict, after: dict, bins: int = 100):
    """One panel per layer: the weight distribution before pruning and the surviving non-zeros after.

    Parameters
    ----------
    before, after : {layer_name: weight array}; zeros of ``after`` (pruned) are left out
    """
    names = list(before)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names):
        w0 = np.ravel(before[name])
        w1 = np.ravel(after[name])
        edges = np.linspace(w0.min(), w0.max(), bins + 1)
        ax.hist(w0, bins=edges, color="tab:blue", alpha=0.5, label="before")
        ax.hist(w1[w1 != 0], bins=edges, color="tab:red", alpha=0.7, label="kept after")
        ax.set_yscale("log")
        ax.set_title(f"{name}: {np.count_nonzero(w1):,} of {w1.size:,} kept")
        ax.set_xlabel("weight")
    axes[0].legend()
    fig.tight_layout()
    return fig


def sparsity_map(mask, image_shape=(28, 28), units=None, ax=None, title=None):
    """How many of the first layer's units still look at each input pixel, as an image.

    Parameters
    ----------
    mask : ndarray of bool, shape (units, prod(image_shape)) — a first Dense layer's mask (True = kept)
    units : sequence of int, optional — if given, draw those units' own masks instead, side by side
    """
    mask = np.asarray(mask, dtype=bool)
    if units is not None:
        fig, axes = plt.subplots(1, len(units), figsize=(1.4 * len(units), 1.7))
        for a, u in zip(np.atleast_1d(axes), units):
            a.imshow(mask[u].reshape(image_shape), cmap="Greys", vmin=0, vmax=1)
            a.set_title(f"unit {u}", fontsize=8)
            a.set_xticks([])
            a.set_yticks([])
        fig.tight_layout()
        return fig
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    im = ax.imshow(mask.sum(axis=0).reshape(image_shape), cmap="viridis")
    plt.colorbar(im, ax=ax, label="units connected")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "connections kept per input pixel")
    return ax


def sensitivity_curves(sparsities, scan: dict, baseline=None, ax=None, title="sensitivity: one layer pruned at a time"):
    """Accuracy (%) against sparsity when only one layer is pruned, one line per layer."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = 100 * np.asarray(sparsities, dtype=float)
    for (name, accs), marker in zip(scan.items(), "os^vD<>"):
        ax.plot(x, 100 * np.asarray(accs), marker + "-", label=name)
    if baseline is not None:
        ax.axhline(100 * baseline, color="gray", ls=":", label="dense baseline")
    ax.set_xlabel("weights removed from that layer (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def latency_bars(labels, times_ms: dict, ax=None, title="latency (median)"):
    """Grouped bars: one group per model label, one bar per batch size (``{batch_label: [ms per model]}``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(labels))
    width = 0.8 / max(len(times_ms), 1)
    for i, (batch, ms) in enumerate(times_ms.items()):
        ax.bar(x + (i - (len(times_ms) - 1) / 2) * width, ms, width, label=batch)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms per forward pass")
    ax.set_title(title)
    ax.legend()
    return ax
