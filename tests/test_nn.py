"""labkit.nn: every layer's backward against numerical gradients (float64), shapes, save/load."""

import numpy as np
import pytest

from labkit import nn
from labkit.models import lenet5, lenet_300_100, mlp


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def check_layer(layer, x, rng, training=False):
    """Compare backward() with numerical gradients of sum(forward(x) * r) for input and params."""
    layer.astype(np.float64)
    x = x.astype(np.float64)
    out = layer.forward(x, training)
    r = rng.standard_normal(out.shape)

    def loss():
        if isinstance(layer, nn.Dropout):  # freeze the dropout mask across evaluations
            return float(np.sum(x * layer._keep * r)) if layer._keep is not None else float(np.sum(x * r))
        return float(np.sum(layer.forward(x, training) * r))

    layer.forward(x, training)
    dx = layer.backward(r)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-5, atol=1e-7)
    for name, p in layer.params().items():
        layer.forward(x, training)
        layer.backward(r)
        analytic = layer.grads()[name].copy()
        np.testing.assert_allclose(analytic, numerical_grad(loss, p), rtol=1e-5, atol=1e-7, err_msg=name)


def test_dense_gradients(rng):
    check_layer(nn.Dense(5, 3, rng=rng), rng.standard_normal((4, 5)), rng)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 2), (2, 1)])
def test_conv2d_gradients(rng, stride, padding):
    layer = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, rng=rng)
    layer.b[:] = rng.standard_normal(3)
    check_layer(layer, rng.standard_normal((2, 2, 6, 5)), rng)


def test_maxpool_gradients(rng):
    # distinct values so the max is unique and the function is differentiable at x
    x = rng.permutation(2 * 3 * 4 * 6).reshape(2, 3, 4, 6) / 10.0
    check_layer(nn.MaxPool2d(2), x, rng)


def test_relu_gradients(rng):
    x = rng.standard_normal((3, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    check_layer(nn.ReLU(), x, rng)


def test_dropout_gradients_and_scaling(rng):
    layer = nn.Dropout(0.5, rng=np.random.default_rng(0))
    check_layer(layer, rng.standard_normal((50, 20)), rng, training=True)
    x = np.ones((20000, 1))
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.05  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_flatten_reshape_roundtrip(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    f = nn.Flatten()
    assert f.forward(x).shape == (2, 60)
    np.testing.assert_array_equal(f.backward(f.forward(x)), x)
    r = nn.Reshape((3, 20))
    np.testing.assert_array_equal(r.backward(r.forward(x)), x)


def test_whole_network_gradient(rng):
    model = lenet5(seed=3).astype(np.float64)
    x = rng.random((2, 784))
    y = np.array([1, 7])
    from labkit.train import cross_entropy

    def loss():
        return cross_entropy(model.forward(x), y)[0]

    _, g = cross_entropy(model.forward(x), y)
    model.backward(g)
    W = model["conv2"].W
    analytic = model["conv2"].dW.copy()
    sub = (slice(0, 2), slice(0, 2))  # a corner of the tensor is enough, and fast
    num = numerical_grad(loss, W)
    np.testing.assert_allclose(analytic[sub], num[sub], rtol=1e-4, atol=1e-8)


def test_conv_matches_direct_loop(rng):
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    out = layer.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(out)
    for f in range(3):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                ref[0, f, i, j] = np.sum(xp[0, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * layer.W[f]) + layer.b[f]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_wrong_shapes_name_layer_and_shapes():
    model = lenet_300_100()
    with pytest.raises(ValueError, match=r"fc1.*\(batch, 784\).*\(3, 100\)"):
        model.forward(np.zeros((3, 100), np.float32))
    conv = lenet5()["conv2"]
    with pytest.raises(ValueError, match=r"conv2.*\(2, 3, 14, 14\)"):
        conv.forward(np.zeros((2, 3, 14, 14), np.float32))
    with pytest.raises(TypeError):
        model["fc1"].forward([[0.0] * 784])


def test_names_and_lookup():
    model = lenet5()
    assert [n for n, _ in model.weight_layers()] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    with pytest.raises(KeyError, match="valid names: reshape1, conv1"):
        model["fc9"]


def test_shapes_and_param_counts():
    assert sum(a.size for a in lenet_300_100().parameters().values()) == 266_610
    assert sum(a.size for a in lenet5().parameters().values()) == 61_706
    assert lenet5().shapes()[-1][2] == (10,)


def test_save_load_roundtrip_exact(tmp_path, rng):
    model = lenet5(seed=1)
    model["fc1"].mask = rng.random(model["fc1"].W.shape) > 0.5
    path = nn.save(model, tmp_path / "m.npz", metadata={"note": "x"})
    loaded = nn.load(path)
    for (k, a), (k2, b) in zip(model.parameters().items(), loaded.parameters().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded["fc1"].mask, model["fc1"].mask)
    x = rng.random((4, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), loaded.forward(x))
    assert loaded.metadata == {"note": "x"}
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away


def test_load_rejects_garbage_and_truncation(tmp_path):
    path = nn.save(mlp([4, 3, 2]), tmp_path / "m.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        nn.load(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        nn.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no labkit header"):
        nn.load(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match=".npz"):
        nn.save(mlp([4, 2]), tmp_path / "m.bin")


def test_bad_layer_arguments():
    with pytest.raises(ValueError):
        nn.Dense(0, 3)
    with pytest.raises(ValueError):
        nn.Conv2d(1, 2, 3, padding=-1)
    with pytest.raises(ValueError):
        nn.Dropout(1.0)
