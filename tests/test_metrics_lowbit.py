"""labkit.metrics.size_bytes for the lab 09 formats: "2:4" and "int4"/"int4_gNN", counted against the
real arrays of labkit.kernels.NM24 and labkit.quant.quantize_groupwise + pack_int4."""

import numpy as np

from labkit import kernels as K
from labkit.metrics import int4_group_bytes, size_bytes
from labkit.models import lenet5, lenet_300_100
from labkit.prune import nm_mask
from labkit.quant import pack_int4, quantize_groupwise


def test_2_4_bytes_equal_the_nm24_arrays():
    model = lenet_300_100(seed=0)
    expected = 0
    for _, layer in model.weight_layers():
        layer.W = np.where(nm_mask(layer.W, 2, 4), layer.W, 0).astype(np.float32)
        expected += K.nm24_compress(layer.W).nbytes + layer.b.nbytes
    assert size_bytes(model, "2:4") == expected
    assert size_bytes(model, "2:4") < 0.55 * size_bytes(model, "dense_fp32")


def test_2_4_layers_that_are_not_2_4_stay_dense():
    model = lenet5(seed=0)  # conv1 has 25 inputs per output: no 2:4 layout
    total = 0
    for _, layer in model.weight_layers():
        W2 = layer.W.reshape(layer.W.shape[0], -1)
        if W2.shape[1] % 4 == 0:
            W2 = np.where(nm_mask(W2), W2, 0).astype(np.float32)
            layer.W = W2.reshape(layer.W.shape)
            total += K.nm24_compress(W2).nbytes
        else:
            total += W2.nbytes
        total += layer.b.nbytes
    assert size_bytes(model, "2:4") == total
    dense = lenet_300_100(seed=0)  # not sparse at all: every layer dense
    assert size_bytes(dense, "2:4") == size_bytes(dense, "dense_fp32")


def test_int4_bytes_equal_the_packed_arrays():
    for model in (lenet_300_100(seed=0), lenet5(seed=0)):
        for fmt, g in [("int4", None), ("int4_g32", 32), ("int4_g64", 64), ("int4_g128", 128)]:
            expected = 0
            for _, layer in model.weight_layers():
                W2 = layer.W.reshape(layer.W.shape[0], -1)
                q, s, z = quantize_groupwise(W2, 4, g)
                expected += pack_int4(q).nbytes + s.nbytes + pack_int4(z.astype(np.uint8)).nbytes + layer.b.nbytes
            assert size_bytes(model, fmt) == expected == int4_group_bytes(model, g)
    m = lenet_300_100(seed=0)
    assert size_bytes(m, "int4_g128") < size_bytes(m, "int4_g32") < size_bytes(m, "int8")
