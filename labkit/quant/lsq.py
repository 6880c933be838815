"""Learned step size quantization (LSQ; Esser et al., ICLR 2020): the step size is trained with the weights.

A uniform quantizer with step size ``s`` and no zero point maps ``v`` to

    v_bar = clamp(round(v / s), -Q_N, Q_P),        v_hat = s · v_bar

(rounding half to even, as everywhere in labkit). Training *through* it needs two gradients.
For ``v`` the straight-through estimator: 1 where ``round(v / s)`` is inside ``[-Q_N, Q_P]``, 0
where it is clipped. For ``s`` LSQ treats the rounding as the identity in the same way and
differentiates what is left (Esser et al., eq. 3):

    d v_hat / d s = round(v / s) - v / s    inside the range,
                  = -Q_N  or  Q_P           where v is clipped below or above.

Inside the range the gradient is the rounding residual: a value close to a transition between
two levels pulls harder on the step size than one that sits on a level. Outside it is the clip
level: a clipped value asks for a larger step. So the step size settles where the loss balances
the rounding error of the many values inside against the clipping error of the few outside —
and, unlike a step recomputed from ``max|v|``, it clips some values.

Two more pieces of the paper: the step's gradient is multiplied by ``g = 1 / sqrt(N · Q_P)``, N
the number of values sharing the step (N_W weights of a layer, or of one output channel here),
so that the step's updates are about as large, relative to the step, as the weights' updates are
relative to the weights under SGD (Adam normalises each parameter's gradient, and then g has
almost no effect); and the step starts at ``2 · mean|v| / sqrt(Q_P)``.

The test that decides "clipped" is made after rounding, ``round(v / s)`` against the integer
range, as in :func:`~labkit.quant.ste_mask` and PyTorch's
``torch._fake_quantize_learnable_per_tensor_affine``; the paper's ``clip(v / s)`` before the
rounding differs only for values within half a step beyond ``Q_P · s``. Signed values use the
course's narrow symmetric range ``Q_N = Q_P = 2^(b-1) - 1`` (lab 04, section 1; the paper's
``Q_N = 2^(b-1)`` adds the one level that has no mirror image).
"""

from __future__ import annotations

import numpy as np

from ..qarith import int_range
from ..validation import check_array, check_axis, check_bits

__all__ = ["lsq_init_step", "lsq_fake_quantize", "lsq_backward", "lsq_grad_scale"]


def _q_range(bits: int, signed: bool) -> tuple[int, int]:
    """``(qmin, qmax)``: the narrow signed range ``±(2^(b-1) - 1)`` or the unsigned ``[0, 2^b - 1]``."""
    return int_range(bits, signed, narrow_range=signed)


def _step_view(x: np.ndarray, step, axis):
    """``step`` as float64, shaped to broadcast against ``x`` (one per index of ``axis``, or one)."""
    step = check_array(step, "step", kind="f", finite=True)
    if np.any(step <= 0):
        raise ValueError(f"step sizes must be positive, got a minimum of {float(step.min())}")
    step = step.astype(np.float64)
    if axis is None:
        if step.size != 1:
            raise ValueError(f"one step size for the whole tensor (axis=None), got {step.size}")
        return step.reshape(())
    axis = check_axis("axis", axis, x.ndim)
    if step.size != x.shape[axis]:
        raise ValueError(f"one step size per index of axis {axis} ({x.shape[axis]}), got {step.size}")
    shape = [1] * x.ndim
    shape[axis] = -1
    return step.reshape(shape)


def _reduce_axes(x: np.ndarray, axis):
    """The axes summed over for one step size: all of them, or all but ``axis``."""
    if axis is None:
        return tuple(range(x.ndim))
    axis = check_axis("axis", axis, x.ndim)
    return tuple(a for a in range(x.ndim) if a != axis)


def lsq_grad_scale(x, bits: int, axis=None, signed: bool = True) -> float:
    """The paper's gradient scale ``g = 1 / sqrt(N · Q_P)``, N the number of values per step size."""
    x = np.asarray(x)
    bits = check_bits(bits, lo=2 if signed else 1)
    n = x.size if axis is None else x.size // x.shape[check_axis("axis", axis, x.ndim)]
    return float(1.0 / np.sqrt(n * _q_range(bits, signed)[1]))


def lsq_init_step(x, bits: int, axis=None, signed: bool = True) -> np.ndarray:
    """The paper's initial step size ``2 · mean|x| / sqrt(Q_P)``, per tensor or per index of ``axis``.

    Parameters
    ----------
    x : float ndarray
        Weights (or a first batch of activations).
    bits : int
        2..16 signed (narrow range, ``Q_P = 2^(b-1) - 1``), 1..16 unsigned (``Q_P = 2^b - 1``).
    axis : int, optional
        One step per index of this axis (per output channel: ``axis=0`` for ``Dense.W`` and
        ``Conv2d.W``); None for one step for the whole tensor.

    Returns
    -------
    float32 ndarray, shape ``()`` or ``(x.shape[axis],)``; all positive (a tensor of zeros gets
    the smallest positive float32 rather than 0).
    """
    x = check_array(x, "x", kind="f", finite=True, non_empty=True)
    bits = check_bits(bits, lo=2 if signed else 1)
    mean_abs = np.abs(x.astype(np.float64)).mean(axis=_reduce_axes(x, axis))
    step = 2.0 * mean_abs / np.sqrt(_q_range(bits, signed)[1])
    return np.maximum(step, np.finfo(np.float32).tiny).astype(np.float32)


def lsq_fake_quantize(x, step, bits: int, axis=None, signed: bool = True) -> np.ndarray:
    """``step · clamp(round(x / step), qmin, qmax)`` in the dtype of ``x`` (the LSQ forward pass)."""
    x = check_array(x, "x", kind="f")
    bits = check_bits(bits, lo=2 if signed else 1)
    s = _step_view(x, step, axis)
    qmin, qmax = _q_range(bits, signed)
    return (s * np.clip(np.rint(x.astype(np.float64) / s), qmin, qmax)).astype(x.dtype)


def lsq_backward(grad_out, x, step, bits: int, axis=None, signed: bool = True, grad_scale=None):
    """Gradients of the LSQ quantizer: with respect to ``x`` (the STE) and to the step size.

    Parameters
    ----------
    grad_out : float ndarray, shape of ``x``
        Gradient of the loss with respect to ``lsq_fake_quantize(x, step, ...)``.
    x, step, bits, axis, signed
        As in :func:`lsq_fake_quantize`.
    grad_scale : float, optional
        Multiplies the step's gradient; default the paper's :func:`lsq_grad_scale`. Pass 1.0 for
        the plain derivative.

    Returns
    -------
    grad_x : ndarray, shape and dtype of ``grad_out``
        ``grad_out`` where ``round(x / step)`` is inside ``[qmin, qmax]``, 0 where clipped.
    grad_step : float64 ndarray, the shape of ``step``
        ``grad_scale · Σ grad_out · d x_hat / d step`` over the values sharing each step.
    """
    x = check_array(x, "x", kind="f")
    grad_out = check_array(grad_out, "grad_out", kind="f")
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out has shape {grad_out.shape}, x has {x.shape}: they must match")
    bits = check_bits(bits, lo=2 if signed else 1)
    step_shape = np.shape(step)
    s = _step_view(x, step, axis)
    qmin, qmax = _q_range(bits, signed)
    v = x.astype(np.float64) / s
    r = np.rint(v)
    below, above = r < qmin, r > qmax
    inside = ~(below | above)
    d_xhat_d_s = np.where(inside, r - v, np.where(below, float(qmin), float(qmax)))
    g = lsq_grad_scale(x, bits, axis, signed) if grad_scale is None else float(grad_scale)
    grad_step = g * (grad_out.astype(np.float64) * d_xhat_d_s).sum(axis=_reduce_axes(x, axis))
    grad_x = np.where(inside, grad_out, grad_out.dtype.type(0))
    return grad_x, np.asarray(grad_step).reshape(step_shape)
