"""Convolution (im2col + one matmul) and max pooling over (batch, channels, height, width).

:func:`im2col` is the one im2col of the kit: the float convolution, the integer engine's convolution
(padding with the input's zero point) and the calibrated one-shot methods (a convolution's inputs as
rows) all call it.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_int
from .layer import Layer, _check_input


def im2col(x, kernel_size: int, stride: int = 1, padding: int = 0, pad_value=0) -> tuple:
    """The windows a convolution multiplies by its weights, one per row.

    Parameters
    ----------
    x : ndarray, shape (n, c, h, w)
    kernel_size, stride, padding : int
        Square windows of ``kernel_size``; ``padding`` cells of ``pad_value`` on each side (a quantized
        input pads with its zero point, which is real 0).

    Returns
    -------
    cols : ndarray, shape (n · ho · wo, c · k · k), dtype of ``x``
        Row ``(i, y, z)`` is the window of image i at output position (y, z), channel-major: the column
        order of ``W.reshape(out_c, -1)``.
    (n, ho, wo) : the batch and the output's height and width.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cols, (n, ho, wo) = im2col(x, 2, stride=2)
    >>> cols.tolist(), (n, ho, wo)
    ([[0.0, 1.0, 4.0, 5.0], [2.0, 3.0, 6.0, 7.0], [8.0, 9.0, 12.0, 13.0], [10.0, 11.0, 14.0, 15.0]], (1, 2, 2))
    """
    k, s, p = kernel_size, stride, padding
    if p:
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    # windows: (n, c, ho, wo, k, k) as a view; then one copy into the im2col matrix
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k), (n, ho, wo)


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
        p = self.padding
        cols, (n, ho, wo) = im2col(x, self.kernel_size, self.stride, p)
        out = cols @ self.W.reshape(self.out_channels, -1).T + self.b
        self._cache = (x.shape, (n, c, h + 2 * p, w + 2 * p), cols)
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
