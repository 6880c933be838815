"""labkit.metrics: counts, sparsity, MACs and byte sizes."""

import numpy as np
import pytest

from labkit import metrics, models


def test_counts_and_sparsity():
    m = models.lenet_300_100()
    assert metrics.count_params(m) == 266_610
    assert metrics.count_params(m, weights_only=True) == 784 * 300 + 300 * 100 + 100 * 10
    assert metrics.sparsity(m) == 0.0
    m["fc1"].W[:, :392] = 0
    assert metrics.count_nonzero(m, weights_only=True) == 266_200 - 300 * 392
    assert metrics.layer_sparsity(m)["fc1"] == pytest.approx(0.5)


def test_macs():
    assert metrics.macs(models.lenet_300_100()) == 266_200
    # conv1 6*28*28*25 + conv2 16*10*10*150 + fc 400*120 + 120*84 + 84*10
    assert metrics.macs(models.lenet5()) == 117_600 + 240_000 + 48_000 + 10_080 + 840
    m = models.lenet_300_100()
    m["fc1"].W[::2] = 0
    assert metrics.macs(m, skip_zeros=True) == 266_200 - 150 * 784


def test_size_bytes():
    m = models.lenet_300_100()
    assert metrics.size_bytes(m) == 4 * 266_610
    assert metrics.size_bytes(m, "int8") == 266_200 + 4 * (300 + 100 + 10) * 2
    m["fc1"].W[:] = 0
    # CSR of an empty fc1: just its 301 row pointers and 300 biases
    expected_csr = 4 * 301 + 4 * 300 + (8 * 30_000 + 4 * 101 + 4 * 100) + (8 * 1000 + 4 * 11 + 4 * 10)
    assert metrics.size_bytes(m, "csr") == expected_csr
    with pytest.raises(ValueError, match="unknown size format 'zip'; known:"):
        metrics.size_bytes(m, "zip")


def test_accuracy():
    assert metrics.accuracy([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        metrics.accuracy(np.array([]), np.array([]))
