"""Second-order weight quantization: the Optimal Brain Surgeon step and GPTQ.

A layer ``y = x Wᵀ`` with calibration inputs ``X`` (n, in) is compressed row by row: a row ``w``
(one output unit) is replaced by ``ŵ`` so that the output error on the calibration data,

    E(ŵ) = mean over samples of (x·ŵ − x·w)² = ½ (ŵ − w) H (ŵ − w)ᵀ,   H = 2 XᵀX / n  (in × in),

stays small. ``H`` is the same for every row (it depends on the inputs only). The 1/n makes ``E`` a
mean rather than a sum; it rescales ``H`` and leaves every update below unchanged.

**Optimal Brain Surgeon** (Hassibi & Stork 1993; OBQ, Frantar & Alistarh 2022). Forcing one weight
``w_q`` to a value ``t`` (0 to prune it, ``quant(w_q)`` to quantize it) and letting every other
weight of the row move to absorb the change, the best move and its cost are

    δ = −(w_q − t) / [H⁻¹]_qq · H⁻¹[q, :],      ΔE = (w_q − t)² / (2 [H⁻¹]_qq).

After the step ``w_q`` is fixed; the inverse Hessian of the remaining weights is ``H⁻¹`` with row
and column q eliminated by one Gauss step (:func:`obs_eliminate`).

**GPTQ** (Frantar, Ashkboos, Hoefler & Alistarh, ICLR 2023, Algorithm 1) quantizes the columns in
a fixed order (left to right) for all rows at once. Then the inverse Hessians needed at step j,
those of the columns j.. after eliminating 0..j−1, are exactly the rows of the upper Cholesky
factor ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``): ``[H⁻¹_{j:}]_{jj} = U_jj²`` and its row j is
``U_jj · U[j, j:]``. So the step for column j is ``err = (w_j − quant(w_j)) / U_jj`` and
``W[:, j:] −= err ⊗ U[j, j:]``. Lazy batches: inside a block of ``block`` columns the updates are
applied at once to the block only; the columns right of the block get all of the block's errors in
one matrix product ``W[:, i2:] −= Err · U[i1:i2, i2:]`` (same result, fewer memory passes).

Details as in the authors' code (github.com/IST-DASLab/gptq): dead inputs (``H_jj = 0``, an input
that is zero on every calibration sample) get ``H_jj = 1`` and their weights are set to 0; the
Hessian is dampened by ``damp · mean(diag H)`` on the diagonal; per-row quantization parameters
(``group_size=None``) come from the original row; with groups, each group's parameters are taken
when the algorithm reaches the group's first column, from the weights as updated so far (here
exactly, including the pending updates of the current block, so the result does not depend on
``block``). With ``act_order`` the columns go in order of decreasing ``H_jj`` and the group
parameters are fixed from the original weights (the code's ``static_groups``), so groups stay
contiguous in the original column order and the stored format is unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from ..qarith import int_range, round_clamp
from ..validation import check_bits, check_int, check_matrix, check_real
from .groupwise import check_group_size, dequantize_groupwise, group_index, groupwise_params

__all__ = [
    "hessian",
    "prepare_hessian",
    "obs_update",
    "obs_eliminate",
    "obq_quantize_row",
    "gptq_quantize",
    "GPTQResult",
    "layer_output_error",
    "check_calibration_inputs",
]


class GPTQResult(NamedTuple):
    """What :func:`gptq_quantize` returns (unpacks as ``W_hat, q, scale, zero_point``).

    Attributes
    ----------
    W_hat : ndarray of float32, shape (out, in)
        The dequantized weights ``scale · (q − zero_point)``, ready to put in ``Dense.W``.
    q : ndarray of integers, shape (out, in)
        uint8/uint16 (affine) or int8/int16 (symmetric).
    scale : ndarray of float32, shape (out, G)
    zero_point : ndarray of int64, shape (out, G)
        ``G = ceil(in / group_size)`` (1 without groups); see :mod:`labkit.quant.groupwise`.
    """

    W_hat: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray


def check_calibration_inputs(X, n_in: int, name: str = "X") -> np.ndarray:
    """Calibration inputs: a finite real array of shape (n >= 1, n_in), one row per sample."""
    return check_matrix(X, name, n_cols=n_in, rows="n >= 1")


def hessian(X) -> np.ndarray:
    """``H = 2 XᵀX / n`` (in × in, float64): the Hessian of the mean squared output error of a row.

    Parameters
    ----------
    X : ndarray, shape (n, in)
        The layer's inputs on n calibration samples (for a ``Conv2d``, the im2col patches).
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, in), got {getattr(X, 'shape', type(X).__name__)}")
    X = check_calibration_inputs(X, X.shape[1])
    Xd = X.astype(np.float64)
    return 2.0 * (Xd.T @ Xd) / X.shape[0]


def prepare_hessian(W, H, damp: float = 0.01):
    """Dead inputs, dampening and the upper Cholesky factor of ``H⁻¹`` (the GPTQ/SparseGPT set-up).

    Parameters
    ----------
    W : ndarray, shape (out, in)
    H : ndarray, shape (in, in), symmetric positive semi-definite (from :func:`hessian`)
    damp : float >= 0
        ``damp · mean(diag H)`` is added to the diagonal (after dead inputs get ``H_jj = 1``).

    Returns
    -------
    W : ndarray of float64, shape (out, in)
        A copy with the columns of dead inputs set to 0.
    U : ndarray of float64, shape (in, in)
        Upper triangular with ``H⁻¹ = UᵀU``.
    dead : ndarray of bool, shape (in,)
    """
    W = np.array(W, dtype=np.float64)
    H = np.array(H, dtype=np.float64)
    damp = check_real("damp", damp, 0.0, what=" (a fraction of mean(diag H))")
    n_in = W.shape[1]
    if H.shape != (n_in, n_in):
        raise ValueError(f"H must be ({n_in}, {n_in}) for W of shape {W.shape}, got {H.shape}")
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(n_in)] += damp * np.mean(np.diag(H))
    try:
        c = scipy.linalg.cho_factor(H, lower=True)
        Hinv = scipy.linalg.cho_solve(c, np.eye(n_in))
        U = scipy.linalg.cholesky((Hinv + Hinv.T) / 2, lower=False)
    except np.linalg.LinAlgError as e:
        raise ValueError(
            f"the dampened Hessian is not positive definite (damp={damp}); use damp > 0 or more calibration samples"
        ) from e
    return W, U, dead


def obs_update(w, H_inv, q: int, target: float = 0.0):
    """One Optimal Brain Surgeon step: set weight ``q`` to ``target`` and fix up the others.

    Parameters
    ----------
    w : ndarray, shape (in,) or (out, in)
        One row (or several rows sharing ``H_inv``).
    H_inv : ndarray, shape (in, in)
        The inverse Hessian of the weights still free (``H⁻¹``).
    q : int
        Index of the weight to fix.
    target : float or ndarray of shape (out,)
        Its new value: 0 to prune it, ``quant(w_q)`` to quantize it.

    Returns
    -------
    w_new : ndarray of float64, same shape as ``w``
        ``w − (w_q − target) / [H⁻¹]_qq · H⁻¹[q, :]``; ``w_new[..., q] == target`` exactly.
    delta_loss : float or ndarray of shape (out,)
        ``(w_q − target)² / (2 [H⁻¹]_qq)``: the increase of ``½ δw H δwᵀ`` (the mean squared output
        error when ``H = 2XᵀX/n``).

    Examples
    --------
    >>> H_inv = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> obs_update(np.array([1.0, 2.0]), H_inv, 0)[0]
    array([0. , 1.5])
    """
    w = np.asarray(w, dtype=np.float64)
    H_inv = np.asarray(H_inv, dtype=np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] == 0:
        raise ValueError(f"w must be a row (in,) or rows (out, in), got shape {w.shape}")
    n_in = w.shape[-1]
    if H_inv.shape != (n_in, n_in):
        raise ValueError(f"H_inv must be ({n_in}, {n_in}) for w of shape {w.shape}, got {H_inv.shape}")
    q = check_int("q", q, 0, n_in - 1, what=" (an index of w)")
    d = H_inv[q, q]
    if not d > 0:
        raise ValueError(f"[H_inv]_qq must be positive, got {d} (was weight {q} already eliminated?)")
    target = np.asarray(target, dtype=np.float64)
    diff = w[..., q] - target
    w_new = w - (diff / d)[..., None] * H_inv[q, :]
    w_new[..., q] = target
    return w_new, diff**2 / (2.0 * d)


def obs_eliminate(H_inv, q: int) -> np.ndarray:
    """The inverse Hessian of the weights left after fixing weight ``q``: one Gauss elimination step.

    ``H⁻¹ − H⁻¹[:, q] H⁻¹[q, :] / [H⁻¹]_qq``; row and column q become 0.
    """
    H_inv = np.asarray(H_inv, dtype=np.float64)
    if H_inv.ndim != 2 or H_inv.shape[0] != H_inv.shape[1]:
        raise ValueError(f"H_inv must be square, got shape {H_inv.shape}")
    q = check_int("q", q, 0, H_inv.shape[0] - 1, what=" (an index of H_inv)")
    d = H_inv[q, q]
    if not d > 0:
        raise ValueError(f"[H_inv]_qq must be positive, got {d}")
    out = H_inv - np.outer(H_inv[:, q], H_inv[q, :]) / d
    out[q, :] = 0.0
    out[:, q] = 0.0
    return out


def _quant_column(w, s, z, qmin, qmax):
    """Round-to-nearest of a column with per-row scale/zero point: (integers, dequantized float64)."""
    q = round_clamp(w / s, qmin, qmax, z)
    return q, s * (q - z)


def obq_quantize_row(w, H, bits: int, scale: float, zero_point: int, symmetric: bool = False, damp: float = 0.01):
    """Optimal Brain Quantization of one row: greedily quantize the weight whose OBS cost is smallest.

    The plain OBS loop the lab derives first (O(in³) per row; GPTQ fixes the order to make it fast).

    Parameters
    ----------
    w : ndarray, shape (in,)
    H : ndarray, shape (in, in)
        ``2XᵀX/n`` (dampened and dead inputs handled as in :func:`prepare_hessian`).
    bits, scale, zero_point, symmetric
        The row's quantization grid ``scale · (q − zero_point)``.

    Returns
    -------
    w_hat : ndarray of float64, shape (in,)
        Every entry on the grid.
    order : ndarray of int64, shape (in,)
        The order in which the weights were quantized.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"w must be one row (in,), got shape {w.shape}")
    bits = check_bits(bits, lo=1 + bool(symmetric))
    qmin, qmax = int_range(bits, signed=bool(symmetric), narrow_range=bool(symmetric))
    Wp, U, _ = prepare_hessian(w[None, :], H, damp)
    w = Wp[0]
    H_inv = U.T @ U
    s, z = float(np.float32(scale)), float(zero_point)
    free = np.ones(w.size, dtype=bool)
    order = []
    for _ in range(w.size):
        _, target = _quant_column(w, s, z, qmin, qmax)
        cost = np.where(free, (w - target) ** 2 / np.where(free, np.diag(H_inv), 1.0), np.inf)
        j = int(np.argmin(cost))
        w, _ = obs_update(w, H_inv, j, target[j])
        H_inv = obs_eliminate(H_inv, j)
        free[j] = False
        order.append(j)
    return w, np.asarray(order, dtype=np.int64)


def _activation_order(W, H, damp):
    """GPTQ's act-order: the columns by decreasing H_jj (dead inputs count as 1, as in the authors' code),
    and the weights and the Cholesky factor U rebuilt in that order."""
    d = np.diag(H).copy()
    d[d == 0] = 1.0
    perm = np.argsort(-d, kind="stable")
    Wd, U, _ = prepare_hessian(W[:, perm], H[np.ix_(perm, perm)], damp)
    return perm, Wd, U


def gptq_quantize(
    W,
    X,
    bits: int,
    group_size=None,
    symmetric: bool = False,
    damp: float = 0.01,
    block: int = 128,
    act_order: bool = False,
) -> GPTQResult:
    """GPTQ (Frantar et al. 2023, Algorithm 1): quantize the columns of ``W`` in order, each time
    spreading the rounding error over the columns not yet quantized through the inverse Hessian.

    Parameters
    ----------
    W : ndarray, shape (out, in), finite
        ``Dense.W`` (or ``Conv2d.W`` reshaped to (out_c, in_c·k·k)).
    X : ndarray, shape (n, in)
        The layer's inputs on calibration samples from the training split (im2col patches for a
        convolution). ``H = 2XᵀX/n``.
    bits : int
        1..16 (2..16 symmetric).
    group_size : int or None
        Columns per quantization group (None: one scale per row).
    symmetric : bool
        Signed symmetric grid (zero point 0) instead of the unsigned affine one.
    damp : float
        Dampening, a fraction of ``mean(diag H)`` added to the diagonal.
    block : int
        Columns per lazy batch (changes the speed, not the result beyond float64 rounding).
    act_order : bool
        Quantize the columns in order of decreasing ``H_jj`` (groups then use static parameters).

    Returns
    -------
    GPTQResult
        ``(W_hat, q, scale, zero_point)`` in the format of :func:`quantize_groupwise`;
        ``W_hat == dequantize_groupwise(q, scale, zero_point, group_size)``.
    """
    W = check_matrix(W)
    bits = check_bits(bits, lo=1 + bool(symmetric))
    out, n_in = W.shape
    X = check_calibration_inputs(X, n_in)
    g = check_group_size(group_size, n_in)
    block = check_int("block", block, lo=1, what=" (columns per lazy batch)")
    H = hessian(X)
    Wd, U, _ = prepare_hessian(W, H, damp)
    qmin, qmax = int_range(bits, signed=bool(symmetric), narrow_range=bool(symmetric))
    gi = group_index(n_in, g)
    n_groups = int(gi[-1]) + 1
    scale = np.zeros((out, n_groups), np.float32)
    zp = np.zeros((out, n_groups), np.int64)
    static = group_size is None or act_order
    if static:  # parameters from the (dead-zeroed) original weights
        scale, zp = groupwise_params(Wd, bits, g, symmetric)
    perm = np.arange(n_in)
    if act_order:
        perm, Wd, U = _activation_order(W, H, damp)
    Q = np.zeros((out, n_in), np.float64)  # integers, in the processing order
    Wq = Wd.copy()
    for i1 in range(0, n_in, block):
        i2 = min(i1 + block, n_in)
        W1 = Wq[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            j = i1 + i
            col = perm[j]
            if not static and col % g == 0:  # first column of a group: its parameters, up to date
                j_end = min(j + g, n_in)
                inside = W1[:, i : min(j_end, i2) - i1]
                outside = Wq[:, i2:j_end] - Err1[:, :i] @ U[i1:j, i2:j_end] if j_end > i2 else inside[:, :0]
                s_g, z_g = groupwise_params(np.concatenate([inside, outside], axis=1), bits, None, symmetric)
                scale[:, gi[col]], zp[:, gi[col]] = s_g[:, 0], z_g[:, 0]
            s = scale[:, gi[col]].astype(np.float64)
            z = zp[:, gi[col]].astype(np.float64)
            q, w_hat = _quant_column(W1[:, i], s, z, qmin, qmax)
            Q[:, j] = q
            err = (W1[:, i] - w_hat) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            Err1[:, i] = err
        Wq[:, i2:] -= Err1 @ U[i1:i2, i2:]
    inv = np.argsort(perm)
    Q = Q[:, inv]
    dtype = (np.int8 if bits <= 8 else np.int16) if symmetric else (np.uint8 if bits <= 8 else np.uint16)
    q = Q.astype(dtype)
    return GPTQResult(dequantize_groupwise(q, scale, zp, g), q, scale, zp)


def layer_output_error(W, W_hat, X) -> float:
    """Mean over samples of ``‖x (Ŵ − W)ᵀ‖²``: the calibration loss GPTQ, SparseGPT and AWQ minimise."""
    W = check_matrix(W)
    W_hat = check_matrix(W_hat, "W_hat")
    if W_hat.shape != W.shape:
        raise ValueError(f"W_hat must have the shape of W {W.shape}, got {W_hat.shape}")
    X = check_calibration_inputs(X, W.shape[1])
    D = X.astype(np.float64) @ (W_hat.astype(np.float64) - W.astype(np.float64)).T
    return float(np.mean(np.sum(D**2, axis=1)))
