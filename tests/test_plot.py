"""labkit.plot: colour-blind-safe defaults, series told apart without colour, readable text, ticks at
the values tried, legends that cover nothing, linear latency axes, and figures shown with alt text."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _ticks(ax, axis="x"):
    a = ax.xaxis if axis == "x" else ax.yaxis
    return [float(t) for t in a.get_majorticklocs()], [t.get_text() for t in a.get_majorticklabels()]


def _legend_covers_nothing(ax):
    fig = ax.figure
    fig.canvas.draw()
    leg = ax.get_legend()
    assert leg is not None, "no legend"
    r = fig.canvas.get_renderer()
    lb = leg.get_window_extent(r)
    for a in fig.axes:
        assert not lb.overlaps(a.get_window_extent(r)), "the legend lies over an axes"


def _series(ax):
    return [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]


def test_palette_contrast_and_cycle():
    assert plot.contrast_ratio("black") == pytest.approx(21.0)
    assert plot.contrast_ratio("white") == pytest.approx(1.0)
    assert plot.contrast_ratio("#767676") == pytest.approx(4.54, abs=0.02)  # WCAG's AA grey
    assert all(plot.contrast_ratio(c) >= 3.0 for c in plot.COLORS[:5])  # non-text contrast, 1.4.11
    assert plot.contrast_ratio(plot.INK) >= 7 and plot.contrast_ratio(plot.GREY) >= 4.5
    n = len(plot.COLORS)
    assert len(set(plot.COLORS)) == len(set(plot.MARKERS)) == len(set(map(str, plot.LINESTYLES))) == n
    cyc = list(plt.rcParams["axes.prop_cycle"])
    assert [c["color"] for c in cyc] == plot.COLORS and [c["marker"] for c in cyc] == plot.MARKERS


def test_plain_plots_get_distinct_colour_marker_and_style():
    _, ax = plt.subplots()
    for k in range(6):
        ax.plot([0, 1], [k, k + 1], label=str(k))
    keys = [(ln.get_color(), ln.get_marker(), str(ln._unscaled_dash_pattern)) for ln in ax.get_lines()]
    for i in range(3):
        assert len({k[i] for k in keys}) == 6, f"series share a {('colour', 'marker', 'line style')[i]}"


def test_text_is_large_and_dark_enough():
    ax = plot.accuracy_vs_sparsity([0.0, 0.5, 0.9], {"one-shot": [0.9, 0.88, 0.7], "fine-tuned": [0.9, 0.9, 0.86]}, 0.9)
    fig = ax.figure
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]
    assert texts
    for t in texts:
        assert t.get_fontsize() >= 8, (t.get_text(), t.get_fontsize())
        assert plot.contrast_ratio(t.get_color()) >= 4.5, (t.get_text(), t.get_color())


def test_tick_at_marks_every_value_and_labels_plainly():
    _, ax = plt.subplots()
    ax.plot([0.5, 20], [0, 1])
    plot.tick_at(ax, [0.5, 1, 2, 5, 10, 20])
    assert ax.get_xscale() == "linear"  # a factor of 40: linear unless asked
    _, ax = plt.subplots()
    ax.plot([250, 20000], [0, 1])
    plot.tick_at(ax, [250, 1000, 4000, 20000])
    locs, labels = _ticks(ax)
    assert ax.get_xscale() == "log" and locs == [250, 1000, 4000, 20000]
    assert labels == ["250", "1,000", "4,000", "20,000"]
    _, ax = plt.subplots()
    plot.tick_at(ax, [0.5, 1, 2, 5, 20], log=True)
    assert _ticks(ax)[1] == ["0.5", "1", "2", "5", "20"]
    with pytest.raises(ValueError, match="axis"):
        plot.tick_at(ax, [1, 2], axis="z")
    with pytest.raises(ValueError, match="empty"):
        plot.tick_at(ax, [])


def test_tick_at_leaves_out_labels_that_would_overlap():
    _, ax = plt.subplots()
    values = [0, 50, 80, 90, 95, 98, 99]
    plot.tick_at(ax, values)
    locs, labels = _ticks(ax)
    assert locs == values  # every value tried keeps its tick mark
    assert labels[0] == "0" and labels[-1] == "99" and labels[1] == "50"
    shown = [v for v, lab in zip(values, labels) if lab]
    assert all(b - a >= 0.045 * 99 for a, b in zip(shown, shown[1:]))
    assert "" in labels


def test_curve_functions_tick_at_the_values_tried_and_keep_legends_off_the_data():
    s = [0.0, 0.5, 0.8, 0.9]
    ax = plot.accuracy_vs_sparsity(s, {"one-shot": [0.9, 0.89, 0.8, 0.6], "fine-tuned": [0.9, 0.9, 0.88, 0.86]}, 0.9)
    assert _ticks(ax)[0] == [0, 50, 80, 90]
    lines = _series(ax)
    assert len({(ln.get_marker(), ln.get_color()) for ln in lines[:2]}) == 2
    _legend_covers_nothing(ax)
    ax = plot.sensitivity_curves(s, {"fc1": [0.9, 0.9, 0.89, 0.85], "fc2": [0.9, 0.88, 0.8, 0.5]}, 0.9)
    assert _ticks(ax)[0] == [0, 50, 80, 90]
    _legend_covers_nothing(ax)
    bits = [2, 3, 4, 8]
    ax = plot.accuracy_vs_bits(bits, {"per-tensor": [0.5, 0.8, 0.88, 0.9], "per-channel": [0.6, 0.85, 0.89, 0.9]}, 0.9)
    assert sorted(_ticks(ax)[0]) == bits
    _legend_covers_nothing(ax)
    ax = plot.error_vs_bits(bits, {"weights": [1e-2, 3e-3, 8e-4, 3e-6]})
    assert sorted(_ticks(ax)[0]) == bits and ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    _legend_covers_nothing(ax)
    hist = {"loss": [1.0, 0.6, 0.5], "train_acc": [0.7, 0.8, 0.85], "eval_acc": [0.69, 0.78, 0.8]}
    ax = plot.training_curves(hist)
    assert _ticks(ax)[0] == [1, 2, 3]
    _legend_covers_nothing(ax)


def test_latency_bars_linear_unless_asked_and_every_series_hatched_differently():
    times = {"batch 1": [2.0, 1.0], "batch 256": [40.0, 18.0]}
    ax = plot.latency_bars(["dense", "pruned"], times)
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    hatches = {p.get_hatch() for p in ax.patches}
    assert len(hatches) == 2
    _legend_covers_nothing(ax)
    assert any(t.get_text() == "18" for t in ax.texts)  # bars are labelled with their values
    assert plot.latency_bars(["dense", "pruned"], times, log=True).get_yscale() == "log"


def test_other_figures_still_draw(monkeypatch):
    rng = np.random.default_rng(0)
    w = {"fc1": rng.normal(size=(20, 30)), "fc2": rng.normal(size=(10, 20))}
    kept = {k: np.where(np.abs(v) > 1, v, 0.0) for k, v in w.items()}
    fig = plot.weight_histograms(w, kept)
    _legend_covers_nothing(fig.axes[-1])
    ax = plot.quantization_grid(rng.normal(size=500), 0.5, 4, 3)
    _legend_covers_nothing(ax)
    mask = rng.random((5, 784)) > 0.5
    assert plot.sparsity_map(mask) is not None and plot.sparsity_map(mask, units=[0, 1]) is not None


def test_show_attaches_alt_text(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    plot.show(fig, alt="a rising line from 0 to 1")
    ((obj, kw),) = shown
    assert obj["text/plain"] == "a rising line from 0 to 1" and obj["image/png"]
    assert kw["metadata"] == {"image/png": {"alt": "a rising line from 0 to 1"}} and kw["raw"] is True
    assert not plt.fignum_exists(fig.number)  # closed: nothing else is displayed
    for bad in ("", "   ", None):  # None is the wrong type: TypeError, as everywhere in labkit
        with pytest.raises(TypeError if bad is None else ValueError, match="alt"):
            plot.show(plt.figure(), alt=bad)


def test_accuracy_plots_name_the_split_they_show():
    """The labs choose on validation: the accuracy axes say validation unless told the split."""
    s, bits = [0.0, 0.5], [4, 8]
    assert plot.accuracy_vs_sparsity(s, {"a": [0.9, 0.8]}).get_ylabel() == "validation accuracy (%)"
    assert plot.sensitivity_curves(s, {"fc1": [0.9, 0.8]}, split="test").get_ylabel() == "test accuracy (%)"
    assert plot.accuracy_vs_bits(bits, {"a": [0.8, 0.9]}).get_ylabel() == "validation accuracy (%)"
    ax = plot.training_curves({"loss": [1.0, 0.5], "train_acc": [0.7, 0.8], "eval_acc": [0.6, 0.7]})
    assert "validation accuracy" in [ln.get_label() for ln in ax.figure.axes[1].get_lines()]
