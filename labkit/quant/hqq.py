"""HQQ: half-quadratic quantization, no calibration data (Badri & Shaji 2023).

Round-to-nearest takes each group's grid from its min and max and never asks whether another zero
point would fit the weights better. HQQ fits the zero point of each group so that the de-quantized
weights match the float ones under a *sparsity-promoting* loss ``‖W − Q⁻¹(Q(W))‖_p^p`` with
``p < 1``: a few large errors (on outlier weights) cost little, so the zero point serves the bulk of
the weights. With ``s`` the inverse step (codes ``W_q = round(W·s + z)``
clamped to ``[0, 2^b − 1]``, weights back as ``(W_q − z)/s``), half-quadratic splitting introduces
``W_e ≈ W − Q⁻¹(Q(W))`` and alternates two closed-form steps (the authors' write-up,
mobiusml.github.io/hqq_blog):

    W_e ← shrink_p(W − (W_q − z)/s, β)                    (the error the loss forgives)
    z   ← mean over the group of  W_q − (W − W_e)·s        (the zero point that fits the rest)
    β   ← κ·β

with the generalised soft-thresholding operator

    shrink_p(x, β) = sign(x) · max(|x| − |x|^(p−1) / β, 0)

(for ``p = 1`` it is soft thresholding, the proximal operator of ``|x|/β``). The scale stays at its
min-max value; the zero point is a float (not rounded to an integer).

This follows the reference code (github.com/mobiusml/hqq, ``hqq/core/optimize.py``): the min-max
start ``s = (2^b − 1)/(max − min)``, ``z = −min·s``, the defaults ``p = 0.7``, ``β = 10``,
``κ = 1.01``, 20 iterations, and early stopping on the mean absolute error ``mean|W − (W_q − z)/s|``
over the whole tensor: the loop stops at the first iteration that does not lower it and keeps the
zero point of the best one (``optimize_weights_proximal_v2`` with ``early_stop``; the library's
default ``_legacy`` variant returns the zero point one step past the best). Here the zero point of
the last update is looked at too, so with early stopping the result is always the best one seen.
Groups are runs of ``group_size`` consecutive weights of a row (the reference's ``axis=1``); a last,
shorter group is allowed. Differences: the computation is in float64 rather than float16/32, and a constant group
(``max = min``) gets ``s = 1`` instead of the reference's clamp ``s ≤ 2·10^4`` (a float16 guard that
would also bite on groups whose range is below ``(2^b − 1)/(2·10^4)``).

HQQ stores ``scale`` and ``zero`` next to the codes (16 bits each in float16, as
``bits_per_weight("int4_g64")`` counts: 4.5 bits per weight at 4 bits, group 64).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..qarith import round_clamp
from ..validation import check_bits, check_bool, check_int, check_matrix, check_real
from .groupwise import check_group_size

__all__ = ["HQQResult", "shrink_lp", "hqq_quantize"]


class HQQResult(NamedTuple):
    """What :func:`hqq_quantize` returns.

    Attributes
    ----------
    W_hat : ndarray of float32, shape (out, in)
        ``scale · (q − zero)`` per group: the weights the codes stand for.
    q : ndarray of uint8, shape (out, in)
        Codes in ``[0, 2^bits − 1]``.
    scale : ndarray of float32, shape (out, G)
        The step of each group (``1/s``; the reference code stores it inverted the same way).
    zero : ndarray of float32, shape (out, G)
        The optimised (float) zero point of each group, in code units.
    errors : ndarray of float64, shape (updates made + 1,)
        ``mean|W − W_r|`` after 0, 1, 2, ... zero-point updates (``errors[0]``: the min-max start).
        With early stopping the last entry is the first that did not improve (unless every one did).
    """

    W_hat: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    errors: np.ndarray


def shrink_lp(x, beta: float, lp_norm: float = 0.7) -> np.ndarray:
    """HQQ's generalised soft-thresholding: ``sign(x) · max(|x| − |x|^(p−1) / β, 0)``.

    Parameters
    ----------
    x : array_like of float, any shape
    beta : float > 0
        The half-quadratic penalty weight; larger β shrinks less.
    lp_norm : float in (0, 1]
        ``p``; ``p = 1`` is soft thresholding by ``1/β`` (the proximal operator of ``|x|/β``).
        For ``p < 1`` every ``|x| <= β^(−1/(2−p))`` becomes 0 (0 itself included).

    Returns
    -------
    ndarray of float64, shape of ``x``
    """
    x = np.asarray(x, dtype=np.float64)
    beta = check_real("beta", beta, 0.0, lo_open=True)
    p = check_real("lp_norm", lp_norm, 0.0, 1.0, lo_open=True)
    a = np.abs(x)
    if p == 1.0:
        return np.sign(x) * np.maximum(a - 1.0 / beta, 0.0)
    with np.errstate(divide="ignore"):  # 0^(p−1) = inf: shrunk to 0, as it should be
        return np.sign(x) * np.maximum(a - a ** (p - 1.0) / beta, 0.0)


def hqq_quantize(
    W,
    bits: int = 4,
    group_size=64,
    *,
    lp_norm: float = 0.7,
    beta: float = 10.0,
    kappa: float = 1.01,
    iters: int = 20,
    early_stop: bool = True,
    tol: float = 0.0,
) -> HQQResult:
    """Quantize ``W`` group-wise with HQQ's optimised zero points (no calibration data).

    Parameters
    ----------
    W : ndarray, shape (out, in), finite
        A ``Dense.W``; groups run along ``in``.
    bits : int
        1..8; codes in ``[0, 2^bits − 1]``.
    group_size : int or None
        Consecutive weights of a row sharing a scale and zero point (64 is HQQ's usual; None = per row).
    lp_norm, beta, kappa : float
        ``p`` in (0, 1], the starting β > 0 and its growth factor κ >= 1 (reference defaults).
    iters : int >= 1
        Most iterations.
    early_stop : bool
        Stop at the first iteration whose mean absolute error is not below the best so far by more
        than ``tol``, and keep the best zero point (the reference's ``early_stop``). False: run every
        iteration and keep the last.
    tol : float >= 0

    Returns
    -------
    HQQResult
        ``(W_hat, q, scale, zero, errors)``.

    Raises
    ------
    TypeError, ValueError
        ``W`` not a finite 2-D real array; bits, group_size or the optimiser's parameters out of range.
    """
    W = check_matrix(W)
    bits = check_bits(bits, lo=1, hi=8)
    g = check_group_size(group_size, W.shape[1])
    p = check_real("lp_norm", lp_norm, 0.0, 1.0, lo_open=True)
    beta = check_real("beta", beta, 0.0, lo_open=True)
    kappa = check_real("kappa", kappa, 1.0)
    iters = check_int("iters", iters, lo=1)
    early_stop = check_bool("early_stop", early_stop)
    tol = check_real("tol", tol, 0.0)

    Wd = W.astype(np.float64)
    qmax = (1 << bits) - 1
    starts = np.arange(0, W.shape[1], g)
    counts = np.diff(np.append(starts, W.shape[1]))
    gi = np.arange(W.shape[1]) // g
    lo = np.minimum.reduceat(Wd, starts, axis=1)
    hi = np.maximum.reduceat(Wd, starts, axis=1)
    s = np.where(hi > lo, qmax / np.where(hi > lo, hi - lo, 1.0), 1.0)  # inverse step
    z = -lo * s

    def codes(z):
        return round_clamp(Wd * s[:, gi] + z[:, gi], 0, qmax)

    errors, best, z_best = [], np.inf, z
    for i in range(iters + 1):  # iters updates, each followed by a look at its error
        W_q = codes(z)
        W_r = (W_q - z[:, gi]) / s[:, gi]
        err = float(np.mean(np.abs(Wd - W_r)))
        errors.append(err)
        if early_stop:
            if best - err > tol:
                best, z_best = err, z
            else:
                z = z_best
                break
        if i == iters:
            break
        W_e = shrink_lp(Wd - W_r, beta, p)
        z = np.add.reduceat(W_q - (Wd - W_e) * s[:, gi], starts, axis=1) / counts
        beta *= kappa
    q = codes(z)
    scale, zero = (1.0 / s).astype(np.float32), z.astype(np.float32)
    W_hat = (scale.astype(np.float64)[:, gi] * (q - zero.astype(np.float64)[:, gi])).astype(np.float32)
    return HQQResult(W_hat, q.astype(np.uint8), scale, zero, np.array(errors))
