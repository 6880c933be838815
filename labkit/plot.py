"""The course's standard figures. Each function draws on a given or new matplotlib Axes and returns it.

Figures are for looking; the numbers they show are always also computed (and checked) in code.
Every figure is shown with :func:`show`, which attaches its alternative text.

Readable by everyone (WCAG 2.1 AA): importing this module sets matplotlib's defaults to
the Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008), ordered so that the first colours have
at least 3:1 contrast against white, and gives every series its own marker *and* line style, so no
series is told apart by colour alone. Text is at least 9 pt and near-black. Axes are ticked at the
values tried (:func:`tick_at`), legends sit outside the axes so they cover nothing (:func:`legend`),
and axes are linear unless a log axis is the point (the axis label then says "log scale").
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler

from .qarith import int_range
from .validation import check_choice

__all__ = [
    "show",
    "COLORS",
    "MARKERS",
    "LINESTYLES",
    "HATCHES",
    "STYLE",
    "apply_style",
    "tick_at",
    "legend",
    "contrast_ratio",
    "sample_grid",
    "training_curves",
    "error_vs_bits",
    "accuracy_vs_bits",
    "quantization_grid",
]

#: Okabe–Ito colours, the ones with >= 3:1 contrast on white first (blue, vermillion, bluish green,
#: black, reddish purple), then the light ones (orange, sky blue, yellow) that rely on marker and style.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#000000", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2))]
HATCHES = ["", "//", "..", "xx", "\\\\", "++", "oo", "--"]
#: Text and reference lines: near-black and a grey with 7:1 contrast on white.
INK, GREY = "#1a1a1a", "#595959"

STYLE = {
    "axes.prop_cycle": cycler(color=COLORS) + cycler(marker=MARKERS) + cycler(linestyle=LINESTYLES),
    "lines.linewidth": 1.8,
    "lines.markersize": 6,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.titlecolor": INK,
    "grid.color": "#b0b0b0",
    "grid.alpha": 0.5,
    "legend.framealpha": 1.0,
    "legend.edgecolor": GREY,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "image.cmap": "viridis",
}


def apply_style() -> None:
    """Make :data:`STYLE` matplotlib's default (done once when ``labkit.plot`` is imported)."""
    mpl.rcParams.update(STYLE)


apply_style()


def contrast_ratio(color_a, color_b="white") -> float:
    """WCAG 2.1 contrast ratio between two colours, from 1 (same) to 21 (black on white)."""

    def luminance(c):
        rgb = np.asarray(mpl.colors.to_rgb(c), dtype=float)
        lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        return float(lin @ [0.2126, 0.7152, 0.0722])

    hi, lo = sorted((luminance(color_a), luminance(color_b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _label(v, fmt=None) -> str:
    if fmt is not None:
        return fmt.format(v) if "{" in fmt else fmt % v
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:g}"


def tick_at(ax, values, axis: str = "x", fmt=None, log=None, min_gap: float = 0.045):
    """Tick ``axis`` at exactly ``values`` (the values tried), labelled plainly (``20``, ``1,000``, ``0.5``).

    Parameters
    ----------
    ax : matplotlib Axes
    values : sequence of float
        The values tried; every one gets a tick mark.
    axis : {"x", "y"}
    fmt : str, optional
        ``"{:.0%}"``-style or ``"%d"``-style format; default: integers with thousands separators,
        other numbers with ``%g``.
    log : bool, optional
        Use a log axis. Default: only if all values are positive and span more than a factor of 50
        (then equal ratios are equally far apart, which is the point; say "log scale" in the label).
    min_gap : float
        Labels closer than this fraction of the axis length to the previous label are left out
        (their tick marks stay), so labels never overlap; the first and last are always labelled.
    """
    check_choice("axis", axis, ("x", "y"))
    vals = sorted({float(v) for v in values})
    if not vals:
        raise ValueError("values must not be empty")
    if log is None:
        log = vals[0] > 0 and vals[-1] / vals[0] > 50
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    pos = np.log10(vals) if log else np.asarray(vals)
    span = float(pos[-1] - pos[0]) or 1.0
    labels, kept = [], []  # kept: indices of labelled values
    for k, p in enumerate(pos):
        keep = not kept or (p - pos[kept[-1]]) / span >= min_gap
        if k == len(pos) - 1 and not keep and len(kept) > 1:
            labels[kept.pop()] = ""  # the last value wins over the label just before it
            keep = True
        labels.append(_label(vals[k], fmt) if keep else "")
        if keep:
            kept.append(k)
    axis_obj = ax.xaxis if axis == "x" else ax.yaxis
    axis_obj.set_major_locator(mpl.ticker.FixedLocator(vals))
    axis_obj.set_major_formatter(mpl.ticker.FixedFormatter(labels))
    axis_obj.set_minor_locator(mpl.ticker.NullLocator())
    return ax


def legend(ax, handles=None, labels=None, where: str = "right", **kwargs):
    """A legend outside the axes, so it covers no data: ``where`` is ``"right"`` or ``"below"``."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if where == "right":
        place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    elif where == "below":
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": min(len(labels), 3) or 1}
    else:
        raise ValueError(f"where must be 'right' or 'below', got {where!r}")
    return ax.legend(handles, labels, **{**place, **kwargs})


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

    if not isinstance(alt, str):
        raise TypeError(f"alt must be a str describing the figure, got {type(alt).__name__}")
    if not alt.strip():
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


def training_curves(history, ax=None, title="training", split="validation"):
    """Loss (left axis) and accuracy (right axis) per epoch from a ``fit`` history, ticked at each epoch.

    ``split`` names the data ``fit(..., eval_data=...)`` monitored (its curve's label): the validation
    split in the labs, which choose on it.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], color=COLORS[0], marker=MARKERS[0], ls=LINESTYLES[0], label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (training loss)")
    ax2 = ax.twinx()
    ax2.plot(
        epochs, history["train_acc"], color=COLORS[1], marker=MARKERS[1], ls=LINESTYLES[1], label="training accuracy"
    )
    if "eval_acc" in history:
        ax2.plot(
            epochs, history["eval_acc"], color=COLORS[2], marker=MARKERS[2], ls=LINESTYLES[2], label=f"{split} accuracy"
        )
    ax2.set_ylabel("accuracy")
    tick_at(ax, epochs, "x", log=False)
    lines = ax.get_lines() + ax2.get_lines()
    legend(ax, lines, [ln.get_label() for ln in lines], where="below")
    ax.set_title(title)
    return ax


def error_vs_bits(bits, errors: dict, ax=None, title="quantization error vs bits"):
    """Mean squared quantization error against bit width, one line per label, ticked at the bits tried.

    The error axis is logarithmic on purpose (each extra bit divides the error by about 4, a straight
    line on a log axis); its label says so.

    Parameters
    ----------
    bits : sequence of int
    errors : {label: sequence of float}, each as long as ``bits``
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, errs in errors.items():
        ax.plot(list(bits), list(errs), label=label)
    ax.set_yscale("log")
    tick_at(ax, bits, "x", log=False)
    ax.set_xlabel("bits")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major")
    legend(ax)
    return ax


def accuracy_vs_bits(bits, curves: dict, baseline=None, ax=None, title="accuracy vs bits", split="validation"):
    """Accuracy against bit width, one line per label, with the float baseline as a grey line.

    Parameters
    ----------
    bits : sequence of int
    curves : {label: sequence of accuracies in [0, 1]}
    baseline : float, optional
    split : str — the data the accuracies were measured on, for the axis label
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, accs in curves.items():
        ax.plot(list(bits), [100 * a for a in accs], label=label)
    if baseline is not None:
        ax.axhline(100 * baseline, color=GREY, ls=(0, (2, 2)), marker="", lw=1.2, label="float32")
    tick_at(ax, bits, "x", log=False)
    ax.set_xlabel("weight bits")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_title(title)
    ax.invert_xaxis()
    ax.grid(True)
    legend(ax)
    return ax


def quantization_grid(x, scale, zero_point, bits, signed=False, ax=None, title="values and quantization levels"):
    """Histogram of ``x`` with the real values of every quantization level marked (few bits only)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    qmin, qmax = int_range(bits, signed)
    ax.hist(np.ravel(x), bins=120, color=COLORS[0], label="values")
    for q in range(qmin, qmax + 1):
        ax.axvline(
            float(scale) * (q - zero_point),
            color=COLORS[1],
            ls="--",
            marker="",
            lw=0.9,
            label="quantization levels" if q == qmin else None,
        )
    ax.set_yscale("log")
    ax.set_xlabel("value")
    ax.set_ylabel("count (log scale)")
    legend(ax)
    ax.set_title(title)
    return ax


# --- pruning figures (labs 01 and 02) -----------------------------------------------------------------

__all__ += ["accuracy_vs_sparsity", "weight_histograms", "sparsity_map", "sensitivity_curves", "latency_bars"]


def accuracy_vs_sparsity(
    sparsities, curves: dict, baseline=None, ax=None, title="accuracy vs sparsity", split="validation"
):
    """Accuracy (%) on ``split`` against the fraction of weights removed, one line per label, ticked at the sparsities.

    Parameters
    ----------
    sparsities : sequence of float in [0, 1)
    curves : {label: sequence of accuracies in [0, 1]}; labels containing "fine-tuned" are drawn solid,
        the others dashed (each also has its own colour and marker)
    baseline : float, optional — the dense model's accuracy, drawn as a grey line
    split : str — the data the accuracies were measured on, for the axis label
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = 100 * np.asarray(sparsities, dtype=float)
    for k, (label, accs) in enumerate(curves.items()):
        ls = "-" if "fine-tuned" in label else "--"
        ax.plot(
            x,
            [100 * a for a in accs],
            color=COLORS[k % len(COLORS)],
            marker=MARKERS[k % len(MARKERS)],
            ls=ls,
            label=label,
        )
    if baseline is not None:
        ax.axhline(100 * baseline, color=GREY, ls=(0, (1, 1.5)), marker="", lw=1.2, label="dense baseline")
    tick_at(ax, x, "x", log=False)
    ax.set_xlabel("weights removed (%)")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_title(title)
    ax.grid(True)
    legend(ax)
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
        ax.hist(w0, bins=edges, color=COLORS[6], label="before")
        ax.hist(w1[w1 != 0], bins=edges, histtype="step", color=COLORS[1], lw=1.6, label="kept after")
        ax.set_yscale("log")
        ax.set_ylabel("count (log scale)")
        ax.set_title(f"{name}: {np.count_nonzero(w1):,} of {w1.size:,} kept")
        ax.set_xlabel("weight")
    legend(axes[-1])
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


def sensitivity_curves(
    sparsities, scan: dict, baseline=None, ax=None, title="sensitivity: one layer pruned at a time", split="validation"
):
    """Accuracy (%) on ``split`` against sparsity when only one layer is pruned, one line per layer."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = 100 * np.asarray(sparsities, dtype=float)
    for name, accs in scan.items():
        ax.plot(x, 100 * np.asarray(accs), label=name)
    if baseline is not None:
        ax.axhline(100 * baseline, color=GREY, ls=(0, (1, 1.5)), marker="", lw=1.2, label="dense baseline")
    tick_at(ax, x, "x", log=False)
    ax.set_xlabel("weights removed from that layer (%)")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_title(title)
    ax.grid(True)
    legend(ax)
    return ax


def latency_bars(labels, times_ms: dict, ax=None, title="latency (median)", log: bool = False, values: bool = True):
    """Grouped bars: one group per model label, one bar per batch size (``{batch_label: [ms per model]}``).

    The axis is linear (so a 2x difference looks like one) unless ``log=True`` is asked for; each
    series has its own colour and hatch, and with ``values`` every bar is labelled with its time.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(labels))
    width = 0.8 / max(len(times_ms), 1)
    for i, (batch, ms) in enumerate(times_ms.items()):
        at = x + (i - (len(times_ms) - 1) / 2) * width
        style = {"color": COLORS[i % len(COLORS)], "hatch": HATCHES[i % len(HATCHES)], "edgecolor": INK, "lw": 0.6}
        bars = ax.bar(at, ms, width, label=batch, **style)
        if values:
            ax.bar_label(bars, labels=[f"{v:.3g}" for v in ms], fontsize=8, padding=2)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=9)
    if log:
        ax.set_yscale("log")
        ax.set_ylabel("ms per forward pass (log scale)")
    else:
        ax.set_ylabel("ms per forward pass")
        ax.set_ylim(0, 1.15 * max((max(ms) for ms in times_ms.values()), default=1))
    ax.set_title(title)
    legend(ax)
    return ax
