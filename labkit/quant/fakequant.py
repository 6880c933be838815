"""Fake quantization with the straight-through estimator (STE), range observers, and QAT.

Quantization-aware training (Jacob et al. 2018, §3; Krishnamoorthi 2018, §3.2) keeps float
weights and trains them *through* the quantizer: the forward pass sees
``fake_quantize(w) = dequantize(quantize(w))``, and the backward pass treats the rounding as the
identity (Bengio et al. 2013's straight-through estimator) inside the clipping range and as a
constant outside it:

    d fake_quantize(x) / dx = 1  if qmin <= round(x / scale) + zero_point <= qmax,  else 0

(the rule of ``torch.fake_quantize_per_tensor_affine``). ``QATCallback`` applies it to the
weights through ``labkit.train.fit``'s hooks; ``FakeQuant`` is a layer that applies it to
activations, with its range tracked by an observer during training.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..train import Callback
from ..validation import check_array, check_axis, check_bits, show
from .affine import (
    QParams,
    _params_from_range,
    _resolve,
    dequantize,
    int_range,
    qparams,
    quantize,
)
from .lsq import lsq_fake_quantize, lsq_grad_scale, lsq_init_step

__all__ = [
    "ste_mask",
    "fake_quantize_backward",
    "MinMaxObserver",
    "MovingAverageObserver",
    "QATCallback",
    "FakeQuant",
    "fake_quantize_weights",
]


def ste_mask(
    x,
    scale,
    zero_point=None,
    bits: int | None = None,
    signed: bool | None = None,
    axis=None,
    narrow_range: bool | None = None,
) -> np.ndarray:
    """Boolean mask, shape of ``x``: True where the STE passes the gradient (inside the clipping range).

    The range is :func:`~labkit.quant.int_range` ``(bits, signed, narrow_range)``, the same that
    :func:`~labkit.quant.quantize` clamps to; a :class:`~labkit.quant.QParams` may stand for
    ``scale`` and supplies the rest (a symmetric quantizer: narrow range).
    """
    scale, zero_point, bits, signed, narrow_range = _resolve(scale, zero_point, bits, signed, narrow_range, "ste_mask")
    x = np.asarray(x)
    s, z = _params_view(x, scale, zero_point, axis)
    qmin, qmax = int_range(bits, signed, narrow_range)
    q = np.rint(x.astype(np.float64) / s) + z
    return (q >= qmin) & (q <= qmax)


def _params_view(x, scale, zero_point, axis):
    scale = np.asarray(scale, dtype=np.float32).astype(np.float64)
    zp = np.asarray(zero_point, dtype=np.int64)
    if axis is None:
        return scale.reshape(()), zp.reshape(())
    axis = check_axis("axis", axis, x.ndim)
    shape = [1] * x.ndim
    shape[axis] = -1
    return scale.reshape(shape), zp.reshape(shape)


def fake_quantize_backward(
    grad_out,
    x,
    scale,
    zero_point=None,
    bits: int | None = None,
    signed: bool | None = None,
    axis=None,
    narrow_range: bool | None = None,
):
    """STE gradient of ``fake_quantize`` with respect to ``x``: ``grad_out`` where inside the range, 0 elsewhere.

    Parameters
    ----------
    grad_out : ndarray, same shape as x
        Gradient of the loss with respect to ``fake_quantize(x)``.
    x : ndarray
        The input of the forward pass.
    """
    grad_out = np.asarray(grad_out)
    if grad_out.shape != np.shape(x):
        raise ValueError(f"grad_out has shape {grad_out.shape}, x has {np.shape(x)}: they must match")
    mask = ste_mask(x, scale, zero_point, bits, signed, axis, narrow_range)
    return np.where(mask, grad_out, grad_out.dtype.type(0))


class MinMaxObserver:
    """Tracks the running minimum and maximum of everything it sees (range always contains 0)."""

    def __init__(self):
        self.lo, self.hi = 0.0, 0.0
        self.seen = False

    def observe(self, x) -> None:
        x = check_array(x, "observed activations", finite=True)
        if x.size == 0:
            return
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        self.seen = True

    def qparams(
        self, bits: int = 8, symmetric: bool = False, signed: bool | None = None, narrow_range: bool | None = None
    ):
        """:class:`~labkit.quant.QParams` (unpacks as ``scale, zero_point``) for the observed range;
        ``narrow_range`` defaults to ``symmetric``, as in :func:`~labkit.quant.qparams`."""
        if not self.seen:
            raise ValueError("the observer has seen no data yet: run calibration batches first")
        signed = bool(symmetric) if signed is None else bool(signed)
        narrow = bool(symmetric) if narrow_range is None else bool(narrow_range)
        bits = check_bits(bits, lo=1 + bool(symmetric or narrow))
        s, z = _params_from_range(np.array([self.lo]), np.array([self.hi]), bits, symmetric, signed, narrow)
        return QParams(np.float32(s[0]), int(z[0]), bits, signed, narrow, symmetric)


class MovingAverageObserver(MinMaxObserver):
    """Exponential moving average of each batch's min and max (Jacob et al. 2018, §3: EMA over batches).

    ``lo <- (1 - c) lo + c min(batch)`` (the first batch sets it), c = ``averaging_constant``
    (0.01 as in PyTorch's MovingAverageMinMaxObserver).
    """

    def __init__(self, averaging_constant: float = 0.01):
        super().__init__()
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], got {show(averaging_constant)}")
        self.c = float(averaging_constant)

    def observe(self, x) -> None:
        x = check_array(x, "observed activations", finite=True)
        if x.size == 0:
            return
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        if not self.seen:
            self.lo, self.hi, self.seen = lo, hi, True
        else:
            self.lo += self.c * (lo - self.lo)
            self.hi += self.c * (hi - self.hi)


def _weight_qparams(W, bits, per_channel):
    return qparams(W, bits, symmetric=True, axis=0 if per_channel else None)


def fake_quantize_weights(model, bits: int = 8, per_channel: bool = True, layers=None):
    """A copy of ``model`` whose weights are replaced by their symmetric ``bits``-bit fake-quantized values.

    This is post-training, weight-only quantization: the copy computes in float with exactly the
    values an integer kernel would see. Biases stay float.
    """
    bits = check_bits(bits, lo=2)
    out = model.copy()
    for name, layer in out.weight_layers():
        if layers is not None and name not in layers:
            continue
        s, z = _weight_qparams(layer.W, bits, per_channel)
        axis = 0 if per_channel else None
        layer.W = dequantize(quantize(layer.W, s, z, bits, True, axis, narrow_range=True), s, z, axis)
    return out


class QATCallback(Callback):
    """Quantization-aware training of the weights with the straight-through estimator.

    ``on_batch_begin``: keep each float weight array as a shadow and swap in its fake-quantized
    copy (symmetric, narrow range, ``bits``, per output channel by default), so forward and
    backward see the quantized weights. ``on_backward_end``: put the float shadow back and zero
    the gradient of weights outside the clipping range (the STE), so the optimizer updates the
    float weights. After ``fit`` the model holds float weights; :meth:`quantized` gives the copy
    whose weights are on the trained grid.

    Two ways to set the step size ``s`` (the scale):

    * ``step_size="learned"`` (default): learned step size quantization (Esser et al. 2020,
      :mod:`labkit.quant.lsq`). Each step starts at ``2 · mean|W| / sqrt(Q_P)`` and is trained by
      ``fit``'s own optimizer, at its learning rate, from the LSQ gradient scaled by
      ``1 / sqrt(N · Q_P)``. The loss trades rounding against clipping, so some weights *are*
      clipped, and the STE gives them no gradient.
    * ``step_size="max"``: ``s = max|W| / Q_P`` recomputed from the float weights at every batch.
      The range then always covers every weight: nothing is ever clipped, and the STE reduces to
      the identity. Kept as the baseline LSQ is compared with.

    Parameters
    ----------
    bits : int, 2..16
    per_channel : bool
        One step size per output channel (axis 0 of ``W``) or one per layer.
    layers : iterable of str, optional
        Names of the weight layers to quantize (default: all).
    step_size : {"learned", "max"}

    Attributes
    ----------
    steps : {layer_name: float32 ndarray}
        The step sizes, shape ``(out,)`` per channel or ``()``; learned ones persist across ``fit``
        calls (a second ``fit`` continues from them).
    clipped_fraction : list of float
        Per training batch, the fraction of the quantized weights whose code was clipped.
    """

    STEP_SIZES = ("learned", "max")

    def __init__(self, bits: int = 4, per_channel: bool = True, layers=None, step_size: str = "learned"):
        self.bits = check_bits(bits, lo=2)
        self.per_channel = bool(per_channel)
        self.layers = None if layers is None else set(layers)
        if step_size not in self.STEP_SIZES:
            raise ValueError(f"step_size must be one of {self.STEP_SIZES}, got {step_size!r}")
        self.step_size = step_size
        self._qmax = 2 ** (self.bits - 1) - 1  # the narrow signed range: codes -qmax .. qmax
        self.steps: dict = {}
        self.clipped_fraction: list = []
        self._shadow: dict = {}
        self._step_grads: dict = {}

    @property
    def _axis(self):
        return 0 if self.per_channel else None

    def _targets(self, model):
        return [(n, layer) for n, layer in model.weight_layers() if self.layers is None or n in self.layers]

    def _step_for(self, name, W):
        if self.step_size == "max":
            return _weight_qparams(W, self.bits, self.per_channel)[0]
        return self.steps[name]

    def on_train_begin(self, model, state):
        names = {n for n, _ in model.weight_layers()}
        if self.layers is not None and not self.layers <= names:
            unknown = sorted(self.layers - names)
            raise ValueError(f"QATCallback: unknown layers {unknown}; weight layers are {sorted(names)}")
        if self.step_size == "learned":
            for name, layer in self._targets(model):
                if name not in self.steps:
                    self.steps[name] = lsq_init_step(layer.W, self.bits, self._axis)

    def on_batch_begin(self, model, state):
        clipped, total = 0, 0
        for name, layer in self._targets(model):
            W = layer.W
            s = self._step_for(name, W)
            # lsq_fake_quantize and lsq_backward in one pass: W / s is computed once per batch
            s64 = np.asarray(s, np.float64).reshape((-1,) + (1,) * (W.ndim - 1) if self.per_channel else ())
            v = W.astype(np.float64) / s64
            codes = np.clip(np.rint(v), -self._qmax, self._qmax)
            inside = np.abs(np.rint(v)) <= self._qmax
            self._shadow[name] = (W, inside, np.where(inside, codes - v, codes))  # the last: d W_hat / d s
            layer.W = (s64 * codes).astype(W.dtype)
            clipped += int(inside.size - np.count_nonzero(inside))
            total += inside.size
        self.clipped_fraction.append(clipped / max(total, 1))

    def on_backward_end(self, model, state):
        for name, layer in self._targets(model):
            W, inside, d_what_d_s = self._shadow.pop(name)
            if self.step_size == "learned":
                axes = tuple(range(1, W.ndim)) if self.per_channel else None
                g = lsq_grad_scale(W, self.bits, self._axis)
                self._step_grads[name] = g * (layer.dW.astype(np.float64) * d_what_d_s).sum(axis=axes)
            layer.W = W
            layer.dW = np.where(inside, layer.dW, layer.dW.dtype.type(0))

    def on_step_end(self, model, state):
        for name, grad in self._step_grads.items():
            step = self.steps[name]
            state.optimizer.update(f"{name}.lsq_step", step, grad)
            np.maximum(step, np.finfo(np.float32).tiny, out=step)  # a step size stays positive
        self._step_grads.clear()

    def quantized(self, model):
        """A copy of ``model`` whose quantized layers hold their fake-quantized weights.

        With learned step sizes the grid is the trained one (``step · clamp(round(W / step))``);
        with ``"max"`` it is :func:`fake_quantize_weights`' grid, ``max|W| / Q_P``.
        """
        if self.step_size == "max":
            return fake_quantize_weights(model, self.bits, self.per_channel, layers=self.layers)
        missing = [n for n, _ in self._targets(model) if n not in self.steps]
        if missing:
            raise ValueError(f"QATCallback: no learned step size for {missing}: train with this callback first")
        out = model.copy()
        for name, layer in self._targets(out):
            layer.W = lsq_fake_quantize(layer.W, self.steps[name], self.bits, self._axis)
        return out


class FakeQuant(nn.Layer):
    """Fake-quantizes activations: ``dequantize(quantize(x))`` forward, the STE backward.

    In training mode the observer (moving average of min/max) sees each batch first; with
    ``frozen`` set the range stays fixed. Before any data is seen the layer is the identity.

    Parameters
    ----------
    bits : int, 1..16
    signed : bool
        Unsigned (affine uint) by default, the type of post-ReLU activations.
    averaging_constant : float
        Of the moving-average observer.
    """

    def __init__(self, bits: int = 8, signed: bool = False, averaging_constant: float = 0.01):
        self.bits = check_bits(bits)
        self.signed = bool(signed)
        self.averaging_constant = float(averaging_constant)
        self.observer = MovingAverageObserver(averaging_constant)
        self.frozen = False

    def forward(self, x, training=False):
        if training and not self.frozen:
            self.observer.observe(x)
        if not self.observer.seen:
            self._mask = None
            return x
        s, z = self.observer.qparams(self.bits, signed=self.signed)
        self._mask = ste_mask(x, s, z, self.bits, self.signed)
        return dequantize(quantize(x, s, z, self.bits, self.signed), s, z).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return grad_out if self._mask is None else np.where(self._mask, grad_out, grad_out.dtype.type(0))

    def config(self):
        return {"bits": self.bits, "signed": self.signed, "averaging_constant": self.averaging_constant}
