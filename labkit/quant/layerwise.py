"""Compressing a model layer by layer on calibration data, and the options of the quantization methods.

:func:`compress_layerwise` runs one method over the weight layers of a model, in order, each layer
seeing the outputs of the layers before it *after* their compression (as GPTQ and SparseGPT do). A
method is a typed options object with a ``compress(W, X, layer)`` method; here the calibrated
quantizers, :class:`RTNOptions`, :class:`GPTQOptions` and :class:`AWQOptions`, and in
:mod:`labkit.prune.oneshot` the pruning ones. An option the method does not have is a ``TypeError``
when the options are made: nothing is dropped silently.

>>> from labkit import models
>>> model = models.mlp([6, 4, 2], seed=0)
>>> calib = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
>>> new, info = compress_layerwise(model, calib, GPTQOptions(bits=3))
>>> sorted(info), bool(info["fc1"]["error"] >= 0)
(['fc1', 'fc2'], True)
>>> GPTQOptions(bits=3, gird=10)
Traceback (most recent call last):
TypeError: GPTQOptions.__init__() got an unexpected keyword argument 'gird'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..validation import check_bits, renamed
from .awq import awq_quantize
from .gptq import gptq_quantize
from .groupwise import dequantize_groupwise, quantize_groupwise

__all__ = ["compress_layerwise", "layer_inputs", "Compressed", "RTNOptions", "GPTQOptions", "AWQOptions"]


@dataclass(frozen=True)
class Compressed:
    """What a method did to one layer: the new weights (out, in), its mask (pruning) and anything else to report."""

    W: np.ndarray
    mask: np.ndarray | None = None
    extra: dict | None = None


def _check_quantizer(options) -> None:
    if options.bits is None:
        raise ValueError(f"{type(options).__name__} needs bits=, the weight bits (2..8)")
    check_bits(options.bits, lo=2)


@dataclass(frozen=True)
class RTNOptions:
    """Round to nearest, per group of ``group_size`` inputs (None: per row) (:func:`quantize_groupwise`)."""

    bits: int | None = None
    group_size: int | None = None
    symmetric: bool = False

    def __post_init__(self):
        _check_quantizer(self)

    def compress(self, W, X, layer) -> Compressed:
        q, s, z = quantize_groupwise(W, self.bits, self.group_size, self.symmetric)
        return Compressed(dequantize_groupwise(q, s, z, self.group_size))


@dataclass(frozen=True)
class GPTQOptions:
    """GPTQ (:func:`labkit.quant.gptq_quantize`): ``damp``, ``block`` and ``act_order`` as there."""

    bits: int | None = None
    group_size: int | None = None
    symmetric: bool = False
    damp: float = 0.01
    block: int = 128
    act_order: bool = False

    def __post_init__(self):
        _check_quantizer(self)

    def compress(self, W, X, layer) -> Compressed:
        result = gptq_quantize(W, X, self.bits, self.group_size, self.symmetric, self.damp, self.block, self.act_order)
        return Compressed(result.W_hat)


@dataclass(frozen=True)
class AWQOptions:
    """AWQ (:func:`labkit.quant.awq_quantize`): the ``grid`` of exponents α searched. A convolution gets one
    scale per input channel (foldable into the layer before), a Dense one per input."""

    bits: int | None = None
    group_size: int | None = None
    symmetric: bool = False
    grid: int = 20

    def __post_init__(self):
        _check_quantizer(self)

    def compress(self, W, X, layer) -> Compressed:
        channel_size = layer.kernel_size**2 if isinstance(layer, nn.Conv2d) else 1
        r = awq_quantize(W, X, self.bits, self.group_size, self.grid, self.symmetric, channel_size)
        return Compressed(r.W_hat, extra={"alpha": r.alpha})


def layer_inputs(layer, x: np.ndarray) -> np.ndarray:
    """The rows a weight layer multiplies by ``W``ᵀ: ``x`` for Dense, im2col patches for Conv2d.

    Returns
    -------
    ndarray, shape (n, in) for Dense; (n · H_out · W_out, in_c · k · k) for Conv2d (the column order
    of ``Conv2d.W.reshape(out_c, -1)``).
    """
    if isinstance(layer, nn.Dense):
        return x
    if isinstance(layer, nn.Conv2d):
        return nn.im2col(x, layer.kernel_size, layer.stride, layer.padding)[0]
    raise TypeError(f"layer_inputs supports Dense and Conv2d, got {type(layer).__name__}")


def _check_calibration(calib) -> np.ndarray:
    x = np.asarray(calib)
    if x.dtype.kind != "f" or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"calib must be a non-empty float array (n, ...), got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("calib contains NaN or inf values; expected finite calibration images")
    return x


def _layers_to_compress(model, layers) -> set:
    names = [nm for nm, _ in model.weight_layers()]
    todo = set(names if layers is None else layers)
    unknown = todo - set(names)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; weight layers are {names}")
    return todo


def compress_layerwise(model, calib=None, method=None, layers=None, sequential: bool = True, *, X_calib=None):
    """Compress every weight layer of ``model`` one-shot, in order, on calibration inputs.

    Parameters
    ----------
    model : labkit.nn.Sequential
        Left unchanged; a compressed copy is returned.
    calib : ndarray, shape (n, *model.input_shape)
        Calibration images from the **training** split (128–1,024 are typical). (``X_calib`` is its
        deprecated name.)
    method : options object
        Its ``compress(W, X, layer)`` compresses one layer's weights ``W`` (out, in) given the layer's
        calibration inputs ``X`` (n, in): :class:`RTNOptions`, :class:`GPTQOptions`,
        :class:`AWQOptions`, or the pruning options of :mod:`labkit.prune.oneshot`.
    layers : list of str, optional
        The weight layers to compress (default: all Dense and Conv2d layers).
    sequential : bool
        True (the papers' way): each layer's calibration inputs are the outputs of the layers before
        it *after* compression. False: inputs of the float model.

    Returns
    -------
    new_model : Sequential
        A pruning method stores each layer's ``mask``; a quantizer puts the dequantized float32
        weights in ``layer.W``.
    info : dict
        ``{layer_name: {"error": mean squared output error on the calibration inputs, "mask"
        (pruning), and the method's extras, e.g. "alpha" (AWQ)}}``.
    """
    calib = renamed("compress_layerwise", "X_calib", X_calib, "calib", calib)
    if not callable(getattr(method, "compress", None)):
        raise TypeError(f"method must be an options object with compress(W, X, layer), got {type(method).__name__}")
    x = _check_calibration(calib)
    new = model.copy()
    todo = _layers_to_compress(new, layers)
    info = {}
    for layer, orig in zip(new.layers, model.layers):
        if getattr(layer, "name", None) in todo:
            info[layer.name] = _compress_layer(layer, x, method)
        x = layer.forward(x) if sequential else orig.forward(x)
    return new, info


def _compress_layer(layer, x, method) -> dict:
    """Compress ``layer`` in place on its inputs ``x``; its entry of ``info``."""
    X2 = np.ascontiguousarray(layer_inputs(layer, x), dtype=np.float32)
    W2 = layer.W.reshape(layer.W.shape[0], -1)
    done = method.compress(W2, X2, layer)
    D = X2.astype(np.float64) @ (done.W.astype(np.float64) - W2).T
    layer.W = done.W.reshape(layer.W.shape).astype(layer.W.dtype)
    entry = {"error": float(np.mean(np.sum(D**2, axis=1)))}
    if done.mask is not None:
        layer.mask = done.mask.reshape(layer.W.shape)
        entry["mask"] = layer.mask
    entry.update(done.extra or {})
    return entry
