"""The quantization figures in labkit.plot draw what they are given."""

import matplotlib.pyplot as plt
import numpy as np

from labkit import plot


def test_error_vs_bits_draws_one_line_per_label():
    ax = plot.error_vs_bits([2, 4, 8], {"a": [1e-2, 1e-3, 1e-5], "b": [2e-2, 2e-3, 2e-5]})
    assert [ln.get_label() for ln in ax.get_lines()] == ["a", "b"]
    assert ax.get_yscale() == "log" and list(ax.get_lines()[0].get_xdata()) == [2, 4, 8]
    plt.close("all")


def test_accuracy_vs_bits_in_percent_with_baseline():
    ax = plot.accuracy_vs_bits([8, 4, 2], {"per-channel": [0.88, 0.87, 0.3]}, baseline=0.879)
    line = ax.get_lines()[0]
    assert np.allclose(line.get_ydata(), [88.0, 87.0, 30.0])
    assert ax.get_lines()[-1].get_label() == "float32" and ax.xaxis_inverted()
    plt.close("all")


def test_quantization_grid_marks_every_level():
    ax = plot.quantization_grid(np.linspace(-1, 1, 100), 0.5, 2, bits=2)
    levels = sorted(round(ln.get_xdata()[0], 6) for ln in ax.get_lines())
    assert levels == [-1.0, -0.5, 0.0, 0.5]
    plt.close("all")
