"""AWQ: activation-aware weight quantization (Lin et al., MLSys 2024).

Not all weights matter alike: an input channel j whose activations are large multiplies every
error in column j of ``W`` by a large ``x_j``. AWQ protects those channels without mixed precision:
scale column j up by ``s_j > 1`` before quantizing (its relative rounding error shrinks) and divide
the input by ``s_j`` (the float function is unchanged):

    y = x Wᵀ = (x · diag(s)⁻¹) (W · diag(s))ᵀ   ≈   (x · diag(s)⁻¹) Q(W · diag(s))ᵀ.

The scales are ``s = s_X^α`` with ``s_X[j] = mean over samples of |X_j|`` (the average activation
magnitude), normalised by ``sqrt(max(s)·min(s))`` as in the authors' code; α is chosen on a grid
``{0, 1/grid, …, (grid−1)/grid}`` to minimise the layer's output error on the calibration inputs

    ‖(Q(W·diag(s))·diag(s)⁻¹ − W) Xᵀ‖²   (α = 0 is plain round-to-nearest).

The ``1/s`` is folded into whatever produces the layer's input: the rows of the previous ``Dense``
or the output channels of the previous ``Conv2d`` (through ReLU, max-pooling and dropout, which
commute with a positive per-feature scale), see :func:`fold_awq_scales`. (The authors' code also
searches a weight clipping range after scaling; that step is not reproduced here.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import nn
from ..validation import check_bits, check_int, check_matrix
from .gptq import check_calibration_inputs
from .groupwise import check_group_size, dequantize_groupwise, quantize_groupwise

__all__ = ["activation_scale", "awq_scales", "awq_search", "awq_quantize", "AWQResult", "fold_awq_scales"]


class AWQResult(NamedTuple):
    """What :func:`awq_search` / :func:`awq_quantize` return.

    Attributes
    ----------
    W_hat : ndarray of float32, shape (out, in)
        ``Q(W·diag(s))·diag(s)⁻¹``: the quantized layer as seen from its unscaled input.
    scales : ndarray of float32, shape (in,)
        ``s``; multiply ``W``'s columns by it and divide the layer's input by it.
    alpha : float
        The chosen exponent.
    errors : ndarray of float64, shape (grid,)
        Mean squared output error for each α on the grid.
    """

    W_hat: np.ndarray
    scales: np.ndarray
    alpha: float
    errors: np.ndarray


def activation_scale(X, channel_size: int = 1) -> np.ndarray:
    """``s_X[j] = mean |X[:, j]|`` (shape (in,), float64); with ``channel_size`` c, the mean is taken
    over each run of c consecutive columns and repeated (one scale per Conv2d input channel)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, in), got {getattr(X, 'shape', type(X).__name__)}")
    X = check_calibration_inputs(X, X.shape[1])
    channel_size = check_int("channel_size", channel_size, lo=1)
    if X.shape[1] % channel_size:
        raise ValueError(f"channel_size {channel_size} does not divide the {X.shape[1]} input columns")
    a = np.mean(np.abs(X.astype(np.float64)), axis=0)
    a = a.reshape(-1, channel_size).mean(axis=1)
    return np.repeat(a, channel_size)


def awq_search(W, X, bits: int, group_size=None, grid: int = 20, symmetric: bool = False, channel_size: int = 1):
    """Search α on the grid; return the best scales, the quantized weights and every error.

    Parameters
    ----------
    W : ndarray, shape (out, in)
    X : ndarray, shape (n, in)
        Calibration inputs of the layer (training split).
    bits, group_size, symmetric
        The group-wise round-to-nearest quantizer (:func:`quantize_groupwise`).
    grid : int >= 1
        Number of α values, ``α = i / grid`` for i in 0..grid−1.
    channel_size : int
        Columns sharing one scale (k·k for a Conv2d, so the scale can fold into a channel).

    Returns
    -------
    AWQResult
        The smallest error wins; ties keep the smaller α.
    """
    W = check_matrix(W)
    bits = check_bits(bits, lo=1 + bool(symmetric))
    X = check_calibration_inputs(X, W.shape[1])
    g = check_group_size(group_size, W.shape[1])
    grid = check_int("grid", grid, lo=1, what=" (number of α values)")
    s_x = activation_scale(X, channel_size)
    Xd = X.astype(np.float64)
    Wd = W.astype(np.float64)
    Y = Xd @ Wd.T
    best, errors = None, np.zeros(grid)
    for i in range(grid):
        alpha = i / grid
        s = np.maximum(s_x**alpha, 1e-4)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        q, sc, zp = quantize_groupwise((Wd * s).astype(np.float32), bits, g, symmetric)
        W_hat = (dequantize_groupwise(q, sc, zp, g).astype(np.float64) / s).astype(np.float32)
        errors[i] = np.mean(np.sum((Xd @ W_hat.T.astype(np.float64) - Y) ** 2, axis=1))
        if best is None or errors[i] < errors[best[0]]:
            best = (i, W_hat, s)
    i, W_hat, s = best
    return AWQResult(W_hat, s, i / grid, errors)


def awq_scales(
    W, X, bits: int, group_size=None, grid: int = 20, symmetric: bool = False, channel_size: int = 1
) -> np.ndarray:
    """AWQ's per-input-channel scales ``s = s_X^α`` (float32, shape (in,)), α searched on ``grid``.

    See :func:`awq_search` for the parameters; this returns its ``scales`` only.
    """
    return awq_search(W, X, bits, group_size, grid, symmetric, channel_size).scales


def awq_quantize(
    W, X, bits: int, group_size=None, grid: int = 20, symmetric: bool = False, channel_size: int = 1
) -> AWQResult:
    """Same as :func:`awq_search` (named for the model-level driver)."""
    return awq_search(W, X, bits, group_size, grid, symmetric, channel_size)


_COMMUTES = (nn.ReLU, nn.MaxPool2d, nn.Dropout)


def fold_awq_scales(model, layer: str, scales) -> nn.Sequential:
    """A copy of ``model`` with ``W[:, j] *= s_j`` in ``layer`` and ``1/s`` folded into the layer before.

    The previous weight layer (reached through ReLU / MaxPool2d / Dropout only) divides its output
    units (Dense rows, or Conv2d output channels, then ``scales`` must be constant over each channel's
    k·k columns) and biases by ``s``, so the float function of the model is unchanged.

    Raises
    ------
    ValueError
        If ``layer`` is the first layer (fold ``1/s`` into the input instead: ``x / s``), if a layer
        that does not commute with scaling (e.g. Flatten after a Conv2d) sits in between, or if the
        scales are not positive or not shaped ``(in,)``.
    """
    new = model.copy()
    target = new[layer]
    if not isinstance(target, (nn.Dense, nn.Conv2d)):
        raise TypeError(f"layer {layer!r} is a {type(target).__name__}; AWQ scales apply to Dense/Conv2d")
    W2 = target.W.reshape(target.W.shape[0], -1)
    s = np.asarray(scales, dtype=np.float64)
    if s.shape != (W2.shape[1],) or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"scales must be positive and finite with shape ({W2.shape[1]},), got shape {s.shape}")
    idx = [ly.name for ly in new.layers].index(layer)
    prev = None
    for ly in reversed(new.layers[:idx]):
        if isinstance(ly, (nn.Dense, nn.Conv2d)):
            prev = ly
            break
        if not isinstance(ly, _COMMUTES):
            raise ValueError(
                f"cannot fold 1/s into the layer before {layer!r}: {type(ly).__name__} {ly.name!r} is in between "
                "(only ReLU, MaxPool2d and Dropout commute with a per-feature scale)"
            )
    if prev is None:
        raise ValueError(f"{layer!r} has no weight layer before it: divide the model's input by the scales instead")
    if isinstance(target, nn.Conv2d):
        per = s.reshape(target.in_channels, -1)
        if not np.all(per == per[:, :1]):
            raise ValueError("for a Conv2d, scales must be constant over each input channel's k·k columns")
        s_out = per[:, 0]
    else:
        s_out = s
    if s_out.size != prev.W.shape[0]:
        raise ValueError(f"{prev.name!r} has {prev.W.shape[0]} outputs but {layer!r} takes {s_out.size} inputs")
    shape = (-1,) + (1,) * (prev.W.ndim - 1)
    prev.W = (prev.W / s_out.reshape(shape)).astype(prev.W.dtype)
    prev.b = (prev.b / s_out).astype(prev.b.dtype)
    target.W = (W2 * s[None, :]).reshape(target.W.shape).astype(target.W.dtype)
    return new
