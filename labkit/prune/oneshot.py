"""One-shot pruning without retraining: n:m masks, Wanda and SparseGPT.

All three act on a weight matrix ``W`` (out, in) — ``Dense.W``, or ``Conv2d.W`` reshaped to
(out_c, in_c·k·k) — and return masks with True = kept (the convention of :mod:`.magnitude`).

* **n:m sparsity** (Mishra et al. 2021, NVIDIA's 2:4): in every run of ``m`` consecutive weights
  along the input dimension exactly ``n`` are kept, the ``n`` of largest score (``|w|`` by default).
  Ties keep the lower index.
* **Wanda** (Sun, Liu, Bair & Kolter, ICLR 2024): score ``S_ij = |W_ij| · ‖X_j‖₂`` (the norm of input
  feature j over the calibration samples), compared *within each output row*: every row loses the
  same ``floor(sparsity · in)`` weights of smallest score (ties: lower index first), or n:m groups.
* **SparseGPT** (Frantar & Alistarh, ICML 2023): the GPTQ sweep of :mod:`labkit.quant.gptq` with
  "set to 0" instead of "round": the mask of each block of ``block`` columns is chosen by the OBS
  saliency ``w_j² / U_jj²`` over the whole (out × block) slab, ``U`` the upper Cholesky factor of
  ``H⁻¹`` (the authors' code divides by the square of its diagonal; ``U_jj² = [H_F⁻¹]_jj``, the inverse
  Hessian of the columns F not yet fixed, so this is OBS's ``w² / [H⁻¹]_jj``), then each pruned
  weight's error is spread over the columns to its right. The reconstruction is sequential: a kept
  weight left of a pruned one is already fixed, so for a fixed mask the result equals the exact
  least-squares reconstruction (:func:`reconstruct`) when every pruned weight of a row comes before
  its kept ones, and approximates it otherwise.

Each pruning method has a typed options object (:class:`MagnitudeOptions`, :class:`WandaOptions`,
:class:`SparseGPTOptions`) that :func:`labkit.quant.compress_layerwise` runs layer by layer on
calibration images, each layer seeing the outputs of the layers before it *after* their compression,
as GPTQ and SparseGPT do; :func:`compress_layerwise` here also takes a method's name and options
(RTN, GPTQ and AWQ from ``labkit.quant`` among them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quant.gptq import check_calibration_inputs, hessian, prepare_hessian
from ..quant.layerwise import AWQOptions, Compressed, GPTQOptions, RTNOptions, layer_inputs
from ..quant.layerwise import compress_layerwise as _compress_layerwise
from ..validation import check_int, check_matrix, check_sparsity, renamed

__all__ = [
    "nm_mask",
    "wanda_scores",
    "wanda_mask",
    "sparsegpt_prune",
    "reconstruct",
    "layer_inputs",
    "compress_layerwise",
    "METHODS",
    "MagnitudeOptions",
    "WandaOptions",
    "SparseGPTOptions",
]


def _check_nm(n, m, n_in: int | None = None) -> tuple[int, int]:
    n, m = check_int("n", n), check_int("m", m)
    if not 0 < n <= m:
        raise ValueError(f"n:m sparsity needs 0 < n <= m (keep n of every m), got n={n}, m={m}")
    if n_in is not None and n_in % m:
        raise ValueError(
            f"n:m sparsity needs the input dimension to be a multiple of m={m}, got {n_in} inputs "
            f"({n_in % m} left over)"
        )
    return n, m


def _as_rows(W, what: str = "W") -> np.ndarray:
    """W (out, ...) → a finite 2-D (out, in) view."""
    if not isinstance(W, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (out, in), got {type(W).__name__}")
    if W.ndim < 2:
        raise ValueError(f"{what} must have at least 2 dimensions (out, in, ...), got shape {W.shape}")
    return check_matrix(W.reshape(W.shape[0], -1), what)


def nm_mask(W, n: int = 2, m: int = 4, scores=None) -> np.ndarray:
    """Keep exactly ``n`` of every ``m`` consecutive weights along the input dimension.

    Parameters
    ----------
    W : ndarray, shape (out, in) or (out_c, in_c, k, k); ``in`` (or in_c·k·k) a multiple of m
    n, m : int
        Keep n of every m (2:4 for NVIDIA's sparse tensor cores).
    scores : ndarray shaped like W, optional
        What to keep the largest of; default ``|W|`` (Wanda passes its scores).

    Returns
    -------
    mask : ndarray of bool, shape ``W.shape``; True = kept, ties keep the lower index.

    Examples
    --------
    >>> nm_mask(np.array([[0.1, -3.0, 2.0, 0.5]]))
    array([[False,  True,  True, False]])
    """
    W2 = _as_rows(W)
    n, m = _check_nm(n, m, W2.shape[1])
    S = np.abs(W2) if scores is None else _as_rows(np.asarray(scores), "scores")
    if S.shape != W2.shape:
        raise ValueError(f"scores must have the shape of W {W.shape}, got {np.shape(scores)}")
    groups = S.reshape(W2.shape[0], -1, m).astype(np.float64)
    order = np.argsort(-groups, axis=2, kind="stable")  # largest first, lower index first on ties
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :, :n], True, axis=2)
    return mask.reshape(W.shape)


def wanda_scores(W, X) -> np.ndarray:
    """``|W_ij| · ‖X_j‖₂``, shape (out, in) (float64): weight magnitude times input-feature norm."""
    W2 = _as_rows(W)
    X = check_calibration_inputs(X, W2.shape[1])
    norms = np.sqrt(np.sum(X.astype(np.float64) ** 2, axis=0))
    return np.abs(W2.astype(np.float64)) * norms[None, :]


def _rowwise_prune_mask(S: np.ndarray, sparsity: float) -> np.ndarray:
    """Each row loses its floor(sparsity · in) smallest scores (ties: lower index first)."""
    k = math.floor(sparsity * S.shape[1])
    order = np.argsort(S, axis=1, kind="stable")
    mask = np.ones(S.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :k], False, axis=1)
    return mask


def _sparsity_or_nm(sparsity, n, m, n_in):
    if (sparsity is None) == (n is None and m is None):
        raise ValueError(
            f"give either sparsity=... or n=..., m=... (not both, not neither), got {sparsity=}, {n=}, {m=}"
        )
    if sparsity is not None:
        return check_sparsity(sparsity), None, None
    if n is None or m is None:
        raise ValueError(f"n:m sparsity needs both n and m, got {n=}, {m=}")
    return None, *_check_nm(n, m, n_in)


def wanda_mask(W, X, sparsity=None, n=None, m=None) -> np.ndarray:
    """Wanda's mask: prune the smallest ``|W_ij| · ‖X_j‖₂`` of each output row (or n:m groups).

    Parameters
    ----------
    W : ndarray, shape (out, in) (or a Conv2d weight; in = in_c·k·k)
    X : ndarray, shape (n_samples, in)
        The layer's calibration inputs.
    sparsity : float in [0, 1), or None
        Every row loses ``floor(sparsity · in)`` weights.
    n, m : int, or None
        n:m mode instead (keep the n largest scores of every m consecutive inputs).

    Returns
    -------
    mask : ndarray of bool, shape ``W.shape``; True = kept.
    """
    W2 = _as_rows(W)
    sparsity, n, m = _sparsity_or_nm(sparsity, n, m, W2.shape[1])
    S = wanda_scores(W2, X)
    if sparsity is None:
        return nm_mask(W2, n, m, scores=S).reshape(W.shape)
    return _rowwise_prune_mask(S, sparsity).reshape(W.shape)


def _smallest_k(flat: np.ndarray, k: int) -> np.ndarray:
    """Bool array, True at the k smallest entries (ties: lower index)."""
    out = np.zeros(flat.size, dtype=bool)
    out[np.argsort(flat, kind="stable")[:k]] = True
    return out


def sparsegpt_prune(W, X, sparsity=None, n=None, m=None, damp: float = 0.01, block: int = 128, mask=None):
    """SparseGPT: prune ``W`` one-shot and reconstruct the kept weights through ``H⁻¹``.

    Parameters
    ----------
    W : ndarray, shape (out, in), finite
    X : ndarray, shape (n_samples, in)
        Calibration inputs of the layer (training split).
    sparsity : float in [0, 1), or None
        In each block of ``block`` columns, ``floor(sparsity · out · width)`` weights are pruned, the
        smallest saliency ``w_j² / U_jj²`` over the whole slab (rows may differ; the layer's total is exact
        when ``block`` divides ``in``).
    n, m : int, or None
        n:m mode: in every m consecutive columns, each row keeps the n of largest saliency,
        chosen when the sweep reaches the group. ``block`` must be a multiple of m.
    damp, block
        As in :func:`labkit.quant.gptq_quantize`.
    mask : ndarray of bool (out, in), optional
        A fixed mask (True = kept) instead of choosing one: only the reconstruction runs.

    Returns
    -------
    W_new : ndarray of float32, shape (out, in)
        Pruned and reconstructed weights (exact zeros where the mask is False).
    mask : ndarray of bool, shape (out, in); True = kept.
    """
    W = check_matrix(W)
    out, n_in = W.shape
    X = check_calibration_inputs(X, n_in)
    block = check_int("block", block, lo=1, what=" (columns per lazy batch)")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != W.shape:
            raise ValueError(f"mask must be a bool array of shape {W.shape}, got {mask.dtype} {mask.shape}")
        if sparsity is not None or n is not None or m is not None:
            raise ValueError("give either a fixed mask or sparsity / n:m, not both")
        prune = ~mask
    else:
        sparsity, n, m = _sparsity_or_nm(sparsity, n, m, n_in)
        if m is not None and block % m:
            raise ValueError(f"block ({block}) must be a multiple of m ({m}) in n:m mode")
        prune = np.zeros(W.shape, dtype=bool)
    Wd, U, _ = prepare_hessian(W, hessian(X), damp)
    for i1 in range(0, n_in, block):
        i2 = min(i1 + block, n_in)
        W1 = Wd[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        if mask is None and sparsity is not None:  # adaptive mask of the whole slab
            sal = W1**2 / np.diag(U1)[None, :] ** 2
            k = math.floor(sparsity * sal.size)
            prune[:, i1:i2] = _smallest_k(sal.ravel(), k).reshape(sal.shape)
        for i in range(i2 - i1):
            if mask is None and m is not None and i % m == 0:
                sal = W1[:, i : i + m] ** 2 / np.diag(U1)[None, i : i + m] ** 2
                keep = nm_mask(sal, n, m, scores=sal)
                prune[:, i1 + i : i1 + i + m] = ~keep
            w = W1[:, i]
            target = np.where(prune[:, i1 + i], 0.0, w)
            err = (w - target) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            W1[:, i] = target
            Err1[:, i] = err
        Wd[:, i1:i2] = W1
        Wd[:, i2:] -= Err1 @ U[i1:i2, i2:]
    keep = ~prune
    return np.where(keep, Wd, 0.0).astype(np.float32), keep


def reconstruct(W, X, mask, damp: float = 0.0) -> np.ndarray:
    """The exact least-squares reconstruction for a fixed mask, row by row (the optimum SparseGPT approximates).

    Minimises ``(ŵ − w) H (ŵ − w)ᵀ`` with ``ŵ = 0`` off the mask, ``H = 2XᵀX/n + damp·mean(diag)·I``:
    ``ŵ_K = w_K + H_KK⁻¹ H_KP w_P`` on the kept set K (P the pruned set). O(out · in³): small layers.
    """
    W = check_matrix(W)
    X = check_calibration_inputs(X, W.shape[1])
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != W.shape:
        raise ValueError(f"mask must be a bool array of shape {W.shape}, got {mask.dtype} {mask.shape}")
    H = hessian(X)
    H[np.diag_indices_from(H)] += float(damp) * np.mean(np.diag(H))
    out = np.zeros(W.shape, np.float64)
    for r in range(W.shape[0]):
        K, P = mask[r], ~mask[r]
        w = W[r].astype(np.float64)
        if K.any():
            out[r, K] = w[K] + np.linalg.lstsq(H[np.ix_(K, K)], H[np.ix_(K, P)] @ w[P], rcond=None)[0]
    return out.astype(np.float32)


# ---------------------------------------------------------------- the methods' options, and the driver


def _check_pruner(options) -> None:
    if options.sparsity is None and options.n is None and options.m is None:
        raise ValueError(f"{type(options).__name__} needs sparsity= or n=, m=")


@dataclass(frozen=True)
class MagnitudeOptions:
    """Magnitude pruning: ``sparsity`` layer-wise (``per_row``: every row loses the same count), or n:m."""

    sparsity: float | None = None
    n: int | None = None
    m: int | None = None
    per_row: bool = False

    def __post_init__(self):
        _check_pruner(self)

    def compress(self, W, X, layer) -> Compressed:
        from .magnitude import magnitude_mask

        if self.sparsity is None:
            mask = nm_mask(W, self.n if self.n is not None else 2, self.m if self.m is not None else 4)
        elif self.per_row:
            mask = _rowwise_prune_mask(np.abs(W), check_sparsity(self.sparsity))
        else:
            mask = magnitude_mask(W, self.sparsity)
        return Compressed(np.where(mask, W, 0).astype(np.float32), mask)


@dataclass(frozen=True)
class WandaOptions:
    """Wanda (:func:`wanda_mask`): ``sparsity`` per output row, or n:m."""

    sparsity: float | None = None
    n: int | None = None
    m: int | None = None

    def __post_init__(self):
        _check_pruner(self)

    def compress(self, W, X, layer) -> Compressed:
        mask = wanda_mask(W, X, self.sparsity, self.n, self.m)
        return Compressed(np.where(mask, W, 0).astype(np.float32), mask)


@dataclass(frozen=True)
class SparseGPTOptions:
    """SparseGPT (:func:`sparsegpt_prune`): ``sparsity`` or n:m, ``damp`` and ``block`` as there."""

    sparsity: float | None = None
    n: int | None = None
    m: int | None = None
    damp: float = 0.01
    block: int = 128

    def __post_init__(self):
        _check_pruner(self)

    def compress(self, W, X, layer) -> Compressed:
        W_new, mask = sparsegpt_prune(W, X, self.sparsity, self.n, self.m, damp=self.damp, block=self.block)
        return Compressed(W_new, mask)


#: the methods :func:`compress_layerwise` knows by name, and the options class of each (its fields are the
#: method's keyword arguments)
METHODS = {
    "magnitude": MagnitudeOptions,
    "wanda": WandaOptions,
    "sparsegpt": SparseGPTOptions,
    "rtn": RTNOptions,
    "gptq": GPTQOptions,
    "awq": AWQOptions,
}


def compress_layerwise(
    model, calib=None, method=None, layers=None, sequential: bool = True, *, X_calib=None, **options
):
    """Compress every weight layer of ``model`` one-shot, in order, on calibration inputs.

    ``method`` is a name of :data:`METHODS` with the method's ``options`` as keyword arguments (an
    option the method does not have is a ``TypeError``), e.g. ``compress_layerwise(model, calib,
    "gptq", bits=3, group_size=64)``, or an options object, ``compress_layerwise(model, calib,
    GPTQOptions(bits=3, group_size=64))``. Pruning stores each layer's ``mask``; quantization puts the
    dequantized float32 weights in ``layer.W``. Everything else is :func:`labkit.quant.compress_layerwise`
    (``calib``, ``layers``, ``sequential``, the returned ``(new_model, info)``); ``X_calib`` is the
    deprecated name of ``calib``.
    """
    calib = renamed("compress_layerwise", "X_calib", X_calib, "calib", calib)
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        method = METHODS[method](**options)
    elif options:
        raise TypeError(f"give the options in the options object, not as keyword arguments: {sorted(options)}")
    return _compress_layerwise(model, calib, method, layers, sequential)
