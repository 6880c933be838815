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

The model-level driver :func:`compress_layerwise` runs any of these (and RTN, GPTQ, AWQ from
``labkit.quant``) layer by layer on calibration images, each layer seeing the outputs of the
layers before it *after* their compression, as GPTQ and SparseGPT do.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn import Conv2d, Dense
from ..quant.gptq import check_calibration_inputs, hessian, prepare_hessian
from ..validation import check_int, check_matrix, check_sparsity

__all__ = [
    "nm_mask",
    "wanda_scores",
    "wanda_mask",
    "sparsegpt_prune",
    "reconstruct",
    "layer_inputs",
    "compress_layerwise",
    "METHODS",
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


# ---------------------------------------------------------------- model-level driver


def layer_inputs(layer, x: np.ndarray) -> np.ndarray:
    """The rows a weight layer multiplies by ``W``ᵀ: ``x`` for Dense, im2col patches for Conv2d.

    Returns
    -------
    ndarray, shape (n, in) for Dense; (n · H_out · W_out, in_c · k · k) for Conv2d (the column order
    of ``Conv2d.W.reshape(out_c, -1)``).
    """
    if isinstance(layer, Dense):
        return x
    if isinstance(layer, Conv2d):
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, layer.in_channels * k * k)
    raise TypeError(f"layer_inputs supports Dense and Conv2d, got {type(layer).__name__}")


#: the methods :func:`compress_layerwise` knows, and the keyword arguments each takes
METHODS = {
    "magnitude": "sparsity (per_row=False: layer-wise) | n, m",
    "wanda": "sparsity | n, m",
    "sparsegpt": "sparsity | n, m, damp, block",
    "rtn": "bits, group_size, symmetric",
    "gptq": "bits, group_size, symmetric, damp, block, act_order",
    "awq": "bits, group_size, symmetric, grid",
}


def _compress_matrix(method, W2, X2, kw):
    """(W_new (out, in) float32, mask or None, extra info) for one layer."""
    from ..quant.awq import awq_quantize
    from ..quant.gptq import gptq_quantize
    from ..quant.groupwise import dequantize_groupwise, quantize_groupwise
    from .magnitude import magnitude_mask

    if method == "magnitude":
        if kw.get("sparsity") is None:
            mask = nm_mask(W2, kw.get("n", 2), kw.get("m", 4))
        elif kw.get("per_row", False):
            mask = _rowwise_prune_mask(np.abs(W2), check_sparsity(kw["sparsity"]))
        else:
            mask = magnitude_mask(W2, kw["sparsity"])
        return np.where(mask, W2, 0).astype(np.float32), mask, None
    if method == "wanda":
        mask = wanda_mask(W2, X2, kw.get("sparsity"), kw.get("n"), kw.get("m"))
        return np.where(mask, W2, 0).astype(np.float32), mask, None
    if method == "sparsegpt":
        opts = {k: kw[k] for k in ("sparsity", "n", "m", "damp", "block") if k in kw}
        W_new, mask = sparsegpt_prune(W2, X2, **opts)
        return W_new, mask, None
    if method == "rtn":
        gs, sym = kw.get("group_size"), kw.get("symmetric", False)
        q, s, z = quantize_groupwise(W2, kw["bits"], gs, sym)
        return dequantize_groupwise(q, s, z, gs), None, None
    if method == "gptq":
        opts = {k: kw[k] for k in ("group_size", "symmetric", "damp", "block", "act_order") if k in kw}
        return gptq_quantize(W2, X2, kw["bits"], **opts).W_hat, None, None
    if method == "awq":
        opts = {k: kw[k] for k in ("symmetric", "grid", "channel_size") if k in kw}
        r = awq_quantize(W2, X2, kw["bits"], kw.get("group_size"), **opts)
        return r.W_hat, None, {"alpha": r.alpha}
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def compress_layerwise(model, X_calib, method: str, layers=None, sequential: bool = True, **kwargs):
    """Compress every weight layer of ``model`` one-shot, in order, on calibration inputs.

    Parameters
    ----------
    model : labkit.nn.Sequential
        Left unchanged; a compressed copy is returned.
    X_calib : ndarray, shape (n, *model.input_shape)
        Calibration images from the **training** split (128–1,024 are typical).
    method : {"magnitude", "wanda", "sparsegpt", "rtn", "gptq", "awq"}
    layers : list of str, optional
        The weight layers to compress (default: all Dense and Conv2d layers).
    sequential : bool
        True (the papers' way): each layer's calibration inputs are the outputs of the layers before
        it *after* compression. False: inputs of the float model.
    **kwargs
        The method's options (see :data:`METHODS`): ``sparsity=`` or ``n=, m=`` for pruning (pruning
        stores ``layer.mask``); ``bits=, group_size=, symmetric=`` and ``damp``, ``block``,
        ``act_order``, ``grid`` for quantization (the dequantized float32 weights go in ``layer.W``).

    Returns
    -------
    new_model : Sequential
    info : dict
        ``{layer_name: {"error": mean squared output error on the calibration inputs, "mask"
        (pruning), "alpha" (awq)}}``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if method in ("rtn", "gptq", "awq") and "bits" not in kwargs:
        raise ValueError(f"method {method!r} needs bits=")
    if method in ("magnitude", "wanda", "sparsegpt") and kwargs.get("sparsity") is None and "n" not in kwargs:
        raise ValueError(f"method {method!r} needs sparsity= or n=, m=")
    x = np.asarray(X_calib)
    if x.dtype.kind != "f" or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"X_calib must be a non-empty float array (n, ...), got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("X_calib contains NaN or inf values; expected finite calibration images")
    new = model.copy()
    names = [nm for nm, _ in new.weight_layers()]
    todo = set(names if layers is None else layers)
    unknown = todo - set(names)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; weight layers are {names}")
    info = {}
    for layer, orig in zip(new.layers, model.layers):
        if getattr(layer, "name", None) in todo:
            X2 = np.ascontiguousarray(layer_inputs(layer, x), dtype=np.float32)
            W2 = layer.W.reshape(layer.W.shape[0], -1)
            kw = dict(kwargs)
            if method == "awq" and isinstance(layer, Conv2d):
                kw["channel_size"] = layer.kernel_size**2  # one scale per input channel (foldable)
            W_new, mask, extra = _compress_matrix(method, W2, X2, kw)
            D = X2.astype(np.float64) @ (W_new.astype(np.float64) - W2).T
            layer.W = W_new.reshape(layer.W.shape).astype(layer.W.dtype)
            entry = {"error": float(np.mean(np.sum(D**2, axis=1)))}
            if mask is not None:
                layer.mask = mask.reshape(layer.W.shape)
                entry["mask"] = layer.mask
            if extra:
                entry.update(extra)
            info[layer.name] = entry
        x = layer.forward(x) if sequential else orig.forward(x)
    return new, info
