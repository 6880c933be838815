"""Neural-network layers in plain numpy, with explicit forward and backward passes.

Every layer is a small object with ``forward(x, training)`` and ``backward(grad_out)``. A layer
with parameters keeps them as plain attributes (``Dense.W`` of shape (out, in), ``Dense.b`` of
shape (out,)) and their gradients beside them (``dW``, ``db``) after a backward pass. Pruning and
quantization act on those arrays directly; nothing is hidden in global state.

``Sequential`` chains layers, names them (``fc1``, ``conv1``, ``relu1``, ...), and saves/loads a
whole model as one ``.npz`` file (architecture as JSON plus the arrays), written atomically.

Shapes: a Dense layer takes (batch, in_features); convolution and pooling take
(batch, channels, height, width). Default dtype float32.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .atomic import write_with
from .validation import check_int, check_real

__all__ = [
    "Layer",
    "Dense",
    "Conv2d",
    "MaxPool2d",
    "ReLU",
    "Dropout",
    "Flatten",
    "Reshape",
    "Sequential",
    "save",
    "load",
    "LAYER_TYPES",
]


class Layer:
    """Base class. Subclasses set ``param_names`` (e.g. ``("W", "b")``) if they have parameters."""

    param_names: tuple = ()
    name: str = ""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def params(self) -> dict:
        """The layer's parameter arrays by name (the arrays themselves, not copies)."""
        return {p: getattr(self, p) for p in self.param_names}

    def grads(self) -> dict:
        """Gradients from the last backward pass, by parameter name."""
        return {p: getattr(self, "d" + p) for p in self.param_names}

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one sample's output given one sample's input shape (no batch axis)."""
        return tuple(input_shape)

    def macs(self, input_shape: tuple) -> int:
        """Multiply-accumulates for one sample."""
        return 0

    def config(self) -> dict:
        """Constructor arguments, so ``type(layer)(**layer.config())`` rebuilds the architecture."""
        return {}

    def astype(self, dtype) -> Layer:
        for p in self.param_names:
            setattr(self, p, getattr(self, p).astype(dtype))
        return self

    def __call__(self, x, training=False):
        return self.forward(x, training)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _check_input(layer: Layer, x: np.ndarray, expected: str, ok) -> None:
    """Raise a clear error unless x is an ndarray for which ``ok(x)`` holds."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer.name or type(layer).__name__}: expected a numpy array, got {type(x).__name__}")
    if not ok(x):
        raise ValueError(
            f"{layer.name or type(layer).__name__} ({layer!r}) expects input of shape {expected}, got {x.shape}"
        )


class Dense(Layer):
    """Fully connected layer: ``y = x @ W.T + b``.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator, optional
        Initialisation uses He-normal weights (std = sqrt(2 / in_features)) and zero bias.

    Attributes
    ----------
    W : ndarray, shape (out_features, in_features)
    b : ndarray, shape (out_features,)
    mask : ndarray of bool, same shape as W, or None
        Storage for a pruning mask (True = kept); ``labkit.prune`` sets and enforces it.
    """

    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, rng=None, dtype=np.float32):
        in_features = check_int("in_features", in_features, lo=1)
        out_features = check_int("out_features", out_features, lo=1)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_features, self.out_features = in_features, out_features
        self.W = (rng.standard_normal((out_features, in_features)) * np.sqrt(2.0 / in_features)).astype(dtype)
        self.b = np.zeros(out_features, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.mask = None

    def forward(self, x, training=False):
        _check_input(self, x, f"(batch, {self.in_features})", lambda x: x.ndim == 2 and x.shape[1] == self.in_features)
        self._x = x
        return x @ self.W.T + self.b

    def backward(self, grad_out):
        self.dW = grad_out.T @ self._x
        self.db = grad_out.sum(axis=0)
        return grad_out @ self.W

    def output_shape(self, input_shape):
        return (self.out_features,)

    def macs(self, input_shape):
        return self.in_features * self.out_features

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}


class Conv2d(Layer):
    """2-D convolution (cross-correlation, as in every framework) computed by im2col + one matmul.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
    stride, padding : int
    rng : numpy.random.Generator, optional

    Attributes
    ----------
    W : ndarray, shape (out_channels, in_channels, kernel_size, kernel_size)
    b : ndarray, shape (out_channels,)
    mask : ndarray of bool or None, pruning mask storage (see ``Dense``)
    """

    param_names = ("W", "b")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float32):
        in_channels, out_channels = (
            check_int("in_channels", in_channels, lo=1),
            check_int("out_channels", out_channels, lo=1),
        )
        kernel_size, stride = check_int("kernel_size", kernel_size, lo=1), check_int("stride", stride, lo=1)
        padding = check_int("padding", padding, lo=0)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.W = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
        self.b = np.zeros(out_channels, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.mask = None

    def _out_hw(self, h, w):
        k, s, p = self.kernel_size, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def forward(self, x, training=False):
        ok = lambda x: x.ndim == 4 and x.shape[1] == self.in_channels and min(self._out_hw(*x.shape[2:])) >= 1
        _check_input(
            self, x, f"(batch, {self.in_channels}, H, W) with H, W >= {self.kernel_size - 2 * self.padding}", ok
        )
        n, c, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        ho, wo = self._out_hw(h, w)
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        # windows: (n, c, ho, wo, k, k) as a view; then one copy into the im2col matrix
        windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
        out = cols @ self.W.reshape(self.out_channels, -1).T + self.b
        self._cache = (x.shape, xp.shape, cols)
        return out.reshape(n, ho, wo, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, grad_out):
        x_shape, xp_shape, cols = self._cache
        n, c, h, w = x_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        f, ho, wo = grad_out.shape[1:]
        g = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, f)
        self.dW = (g.T @ cols).reshape(self.W.shape)
        self.db = g.sum(axis=0)
        dcols = (g @ self.W.reshape(f, -1)).reshape(n, ho, wo, c, k, k)
        dxp = np.zeros(xp_shape, dtype=grad_out.dtype)
        for i in range(k):  # col2im: scatter each kernel offset back (k*k strided adds)
            for j in range(k):
                dxp[:, :, i : i + s * ho : s, j : j + s * wo : s] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        return dxp[:, :, p : p + h, p : p + w] if p else dxp

    def output_shape(self, input_shape):
        _, h, w = input_shape
        return (self.out_channels, *self._out_hw(h, w))

    def macs(self, input_shape):
        _, ho, wo = self.output_shape(input_shape)
        return self.out_channels * ho * wo * self.in_channels * self.kernel_size**2

    def config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
        }


class MaxPool2d(Layer):
    """Non-overlapping max pooling (stride = kernel_size); H and W must divide by kernel_size.

    The gradient goes to the first maximum of each window (as ``np.argmax`` picks it).
    """

    def __init__(self, kernel_size: int = 2):
        self.kernel_size = check_int("kernel_size", kernel_size, lo=1)

    def forward(self, x, training=False):
        k = self.kernel_size
        ok = lambda x: x.ndim == 4 and x.shape[2] % k == 0 and x.shape[3] % k == 0
        _check_input(self, x, f"(batch, C, H, W) with H and W divisible by {k}", ok)
        n, c, h, w = x.shape
        win = x.reshape(n, c, h // k, k, w // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // k, w // k, k * k)
        self._arg = win.argmax(axis=-1)
        self._shape = x.shape
        return np.take_along_axis(win, self._arg[..., None], axis=-1)[..., 0]

    def backward(self, grad_out):
        n, c, h, w = self._shape
        k = self.kernel_size
        win = np.zeros((n, c, h // k, w // k, k * k), dtype=grad_out.dtype)
        np.put_along_axis(win, self._arg[..., None], grad_out[..., None], axis=-1)
        return win.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, h // self.kernel_size, w // self.kernel_size)

    def config(self):
        return {"kernel_size": self.kernel_size}


class ReLU(Layer):
    """max(x, 0); the gradient at exactly 0 is taken as 0."""

    def forward(self, x, training=False):
        self._pos = x > 0
        return np.where(self._pos, x, x.dtype.type(0))

    def backward(self, grad_out):
        return np.where(self._pos, grad_out, grad_out.dtype.type(0))


class Dropout(Layer):
    """Inverted dropout: in training, zero each activation with probability ``p`` and scale the rest by 1/(1-p).

    Randomness comes from ``rng`` (seeded); ``fit`` re-seeds it from its own seed.
    """

    def __init__(self, p: float = 0.5, rng=None):
        self.p = check_real("p", p, 0.0, 1.0, hi_open=True, what=" (the dropout probability)")
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self._keep = None
            return x
        self._keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self._keep

    def backward(self, grad_out):
        return grad_out if self._keep is None else grad_out * self._keep

    def config(self):
        return {"p": self.p}


class Flatten(Layer):
    """(batch, ...) → (batch, prod(...))."""

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        return grad_out.reshape(self._shape)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Reshape(Layer):
    """(batch, ...) → (batch, *shape); lets a conv net take flat (batch, 784) images."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x, training=False):
        ok = lambda x: x.ndim >= 1 and int(np.prod(x.shape[1:])) == int(np.prod(self.shape))
        _check_input(self, x, f"(batch, ...) with {int(np.prod(self.shape))} values per sample", ok)
        self._shape = x.shape
        return x.reshape((x.shape[0], *self.shape))

    def backward(self, grad_out):
        return grad_out.reshape(self._shape)

    def output_shape(self, input_shape):
        return self.shape

    def config(self):
        return {"shape": list(self.shape)}


LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Conv2d, MaxPool2d, ReLU, Dropout, Flatten, Reshape)}
_PREFIX = {"Dense": "fc", "Conv2d": "conv", "MaxPool2d": "pool", "ReLU": "relu", "Dropout": "drop",
           "Flatten": "flatten", "Reshape": "reshape"}  # fmt: skip


class Sequential:
    """A chain of layers, each named ``fc1``, ``conv1``, ``relu1``, ... in order of appearance.

        Parameters
        ----------
        layers : sequence of Layer
        input_shape : tuple, optional
            One sample's input shape, e.g. (784,); used for MACs and summaries.

        Examples
        --------
        >>> from labkit.nn import Sequential, Dense, ReLU
        >>> import numpy as np

    from .atomic import write_with
    from .validation import check_int, check_real
        >>> net = Sequential([Dense(4, 3), ReLU(), Dense(3, 2)], input_shape=(4,))
        >>> net.forward(np.ones((5, 4), np.float32)).shape
        (5, 2)
        >>> [name for name, _ in net.named_layers()]
        ['fc1', 'relu1', 'fc2']
    """

    def __init__(self, layers, input_shape=None):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._name_layers()

    def _name_layers(self):
        counts: dict = {}
        for layer in self.layers:
            kind = type(layer).__name__
            counts[kind] = counts.get(kind, 0) + 1
            layer.name = f"{_PREFIX.get(kind, kind.lower())}{counts[kind]}"

    # --- access -----------------------------------------------------------------------------
    def named_layers(self):
        """List of (name, layer) in order."""
        return [(layer.name, layer) for layer in self.layers]

    @property
    def layer_names(self):
        return [layer.name for layer in self.layers]

    def weight_layers(self):
        """(name, layer) for the layers with weights (Dense and Conv2d), in order."""
        return [(n, layer) for n, layer in self.named_layers() if "W" in layer.param_names]

    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; valid names: {', '.join(self.layer_names)}")

    def parameters(self) -> OrderedDict:
        """``{"fc1.W": array, "fc1.b": array, ...}`` (the arrays themselves)."""
        return OrderedDict((f"{layer.name}.{p}", a) for layer in self.layers for p, a in layer.params().items())

    # --- computation --------------------------------------------------------------------------
    def forward(self, x, training=False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def predict_logits(self, X, batch_size=1000):
        """Logits for X in batches (inference mode); shape (n, n_classes)."""
        X = np.asarray(X)
        if X.shape[0] == 0:
            raise ValueError("predict on an empty array: X has 0 samples")
        return np.concatenate([self.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])

    def predict(self, X, batch_size=1000):
        """Predicted class indices, shape (n,)."""
        return self.predict_logits(X, batch_size).argmax(axis=1)

    # --- bookkeeping --------------------------------------------------------------------------
    def copy(self) -> Sequential:
        """A deep copy (weights, masks and all)."""
        return copy.deepcopy(self)

    def astype(self, dtype) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def shapes(self):
        """[(name, input_shape, output_shape)] per layer for one sample; needs ``input_shape``."""
        if self.input_shape is None:
            raise ValueError("this model has no input_shape; pass input_shape= to Sequential")
        rows, shape = [], self.input_shape
        for layer in self.layers:
            out = layer.output_shape(shape)
            rows.append((layer.name, shape, out))
            shape = out
        return rows

    def architecture(self) -> dict:
        return {
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers],
        }

    def __repr__(self):
        lines = [f"Sequential(input_shape={self.input_shape})"]
        for layer in self.layers:
            lines.append(f"  {layer.name:<9} {layer!r}")
        return "\n".join(lines)


def save(model: Sequential, path, dtype=None, metadata: dict | None = None) -> Path:
    """Save a model (architecture + parameters + masks) to one ``.npz`` file, atomically.

    Parameters
    ----------
    dtype : numpy dtype, optional
        Store parameters in this dtype (e.g. float16 to halve a shipped teacher); loading
        converts back to float32.
    metadata : dict, optional
        JSON-serialisable facts to keep with the weights (training command, accuracy, ...).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"model files end in .npz, got {path.name!r}")
    arrays = {}
    for layer in model.layers:
        for p, a in layer.params().items():
            arrays[f"{layer.name}.{p}"] = a if dtype is None else a.astype(dtype)
        if getattr(layer, "mask", None) is not None:
            arrays[f"{layer.name}.mask"] = layer.mask
    header = {"format": "labkit-model", "version": 1, "architecture": model.architecture(), "metadata": metadata or {}}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_with(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def load(path, dtype=np.float32) -> Sequential:
    """Load a model written by :func:`save`. Raises ValueError for a file that is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise ValueError(f"{path} is not a readable labkit model file ({type(exc).__name__}: {exc})") from exc
    if "__header__" not in data:
        raise ValueError(f"{path} has no labkit header; was it written by labkit.nn.save?")
    header = json.loads(bytes(data["__header__"]).decode())
    if header.get("format") != "labkit-model" or header.get("version", 0) > 1:
        raise ValueError(f"{path}: unsupported model format {header.get('format')!r} version {header.get('version')!r}")
    arch = header["architecture"]
    layers = [LAYER_TYPES[spec["type"]](**spec["config"]) for spec in arch["layers"]]
    model = Sequential(layers, input_shape=arch["input_shape"])
    for layer in model.layers:
        for p in layer.param_names:
            key = f"{layer.name}.{p}"
            if key not in data:
                raise ValueError(f"{path} lacks parameter {key}")
            arr = data[key].astype(dtype)
            if arr.shape != getattr(layer, p).shape:
                raise ValueError(f"{path}: {key} has shape {arr.shape}, architecture says {getattr(layer, p).shape}")
            setattr(layer, p, arr)
        if f"{layer.name}.mask" in data:
            layer.mask = data[f"{layer.name}.mask"].astype(bool)
    model.metadata = header.get("metadata", {})
    return model
