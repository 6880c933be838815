"""SmoothQuant: move the activations' outliers into the weights (Xiao et al., ICML 2023).

In a transformer a few input channels j of a linear layer carry activations far larger than the
rest, on every token. A per-tensor (or per-token) activation scale set by those channels leaves the
others a handful of integer levels. The weights have no such outliers. SmoothQuant divides each
input channel by ``s_j`` and multiplies the matching weight column by it, which leaves the product
unchanged,

    Y = X Wᵀ = (X · diag(s)⁻¹) (W · diag(s))ᵀ,

with the migration strength α choosing how much of the difficulty moves (the paper's §4):

    s_j = max|X_j|^α / max|W_j|^(1−α),

``max|X_j|`` over calibration tokens and ``max|W_j|`` over the output channels of ``W`` (over every
matrix that reads the same input, e.g. the query, key and value projections after one LayerNorm).
α = 0.5 balances the two maxima (``max|X_j|/s_j = max|W_j|·s_j``). A channel whose activation or
weight maximum is 0 has nothing to balance and gets ``s_j = 1`` (the authors' code clamps both maxima
at 1e-5 instead, which divides a dead channel's LayerNorm weight by up to 1e5).

The ``1/s`` is never computed at run time: it is folded into what produces ``X``.

* A LayerNorm ``y = γ ⊙ n + β`` (pre-LN: in front of the attention's q/k/v and of the MLP's first
  layer): ``γ ← γ / s``, ``β ← β / s`` (:func:`fold_smoothquant_layernorm`).
* A linear layer ``X = Z W_pᵀ + b_p`` with nothing non-linear between: its rows, ``W_p ← diag(s)⁻¹ W_p``,
  ``b_p ← b_p / s`` (:func:`fold_smoothquant_linear`). In attention this is the value projection in
  front of the output projection: attention mixes tokens, not channels, so ``P (V diag(s)⁻¹) =
  (P V) diag(s)⁻¹`` (channels of one head scale together, any s works). Not through GELU: it is not
  homogeneous (``GELU(x/s) ≠ GELU(x)/s``), so the MLP's second layer cannot be smoothed offline.

Both return new arrays; the float output is unchanged up to rounding (``tests/test_quant_smoothquant.py``).
"""

from __future__ import annotations

import numpy as np

from ..validation import check_array, check_fraction, check_matrix

__all__ = ["smoothquant_scales", "fold_smoothquant_layernorm", "fold_smoothquant_linear"]


def _weights(W, name="W"):
    """One (out, in) matrix or a list/tuple of them sharing ``in``, as a list and a flag."""
    single = isinstance(W, np.ndarray)
    mats = [W] if single else list(W) if isinstance(W, (list, tuple)) else None
    if not mats:
        raise TypeError(
            f"{name} must be a 2-D numpy array (out, in) or a non-empty list of them, got {type(W).__name__}"
        )
    mats = [check_matrix(m, f"{name}[{i}]" if not single else name) for i, m in enumerate(mats)]
    n_in = mats[0].shape[1]
    for i, m in enumerate(mats):
        if m.shape[1] != n_in:
            raise ValueError(
                f"{name}[{i}] has {m.shape[1]} input columns, {name}[0] has {n_in}: they must share one input"
            )
    return mats, single


def _scales(s, n):
    s = check_array(s, "s", kind="fiu", ndim=1, finite=True)
    if s.shape != (n,) or np.any(s <= 0):
        raise ValueError(f"s must hold {n} positive scales (one per input channel), got shape {s.shape}")
    return s.astype(np.float64)


def smoothquant_scales(x_absmax, W, alpha: float = 0.5) -> np.ndarray:
    """The per-input-channel smoothing factors ``s_j = max|X_j|^α / max|W_j|^(1−α)``.

    Parameters
    ----------
    x_absmax : array_like, shape (in,)
        ``max |X[:, j]|`` of the layer's input over calibration tokens (non-negative, finite).
    W : ndarray (out, in), or a list of them with the same ``in``
        The weights reading that input; ``max|W_j|`` is taken over all their rows.
    alpha : float in [0, 1]
        Migration strength. 1: ``s_j = max|X_j|``, every smoothed activation channel has maximum 1
        (all of the activations' range moves into the weights); 0: ``s_j = 1/max|W_j|``, every
        smoothed weight column has maximum 1; 0.5 equalises the two.

    Returns
    -------
    ndarray of float32, shape (in,), positive; 1 where ``max|X_j|`` or ``max|W_j|`` is 0.

    Raises
    ------
    TypeError, ValueError
        Shapes that do not match, negative or non-finite maxima, α outside [0, 1].
    """
    mats, _ = _weights(W)
    n_in = mats[0].shape[1]
    a = check_array(x_absmax, "x_absmax", kind="fiu", ndim=1, finite=True)
    if a.shape != (n_in,):
        raise ValueError(f"x_absmax must have shape ({n_in},) (one maximum per input channel of W), got {a.shape}")
    if np.any(a < 0):
        raise ValueError("x_absmax must be non-negative (maxima of |X|)")
    alpha = check_fraction("alpha", alpha)
    w = np.max([np.abs(m.astype(np.float64)).max(axis=0) for m in mats], axis=0)
    a = a.astype(np.float64)
    live = (a > 0) & (w > 0)
    s = np.ones(n_in)
    s[live] = a[live] ** alpha / w[live] ** (1.0 - alpha)
    return s.astype(np.float32)


def _scale_columns(mats, s, single):
    out = [(m.astype(np.float64) * s).astype(m.dtype if m.dtype.kind == "f" else np.float32) for m in mats]
    return out[0] if single else out


def fold_smoothquant_layernorm(gamma, beta, W, s):
    """Fold ``diag(s)⁻¹`` into a LayerNorm and ``diag(s)`` into the linear layer(s) it feeds.

    Parameters
    ----------
    gamma, beta : array_like, shape (in,)
        The LayerNorm's weight and bias.
    W : ndarray (out, in), or a list of them
        Every linear layer reading the LayerNorm's output.
    s : array_like, shape (in,), positive
        From :func:`smoothquant_scales`.

    Returns
    -------
    (gamma / s, beta / s, W · diag(s))
        New arrays (the inputs are left alone), ``W`` in the form it was given (array or list), each
        in its own float dtype.
    """
    mats, single = _weights(W)
    n = mats[0].shape[1]
    s = _scales(s, n)
    out = []
    for name, v in (("gamma", gamma), ("beta", beta)):
        v = check_array(v, name, kind="fiu", ndim=1, finite=True)
        if v.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like W's input, got {v.shape}")
        out.append((v.astype(np.float64) / s).astype(v.dtype if v.dtype.kind == "f" else np.float32))
    return out[0], out[1], _scale_columns(mats, s, single)


def fold_smoothquant_linear(W_prev, b_prev, W, s):
    """Fold ``diag(s)⁻¹`` into the rows of the linear layer that produces the input, ``diag(s)`` into ``W``.

    Only valid when nothing non-linear sits between the two layers (see the module docstring:
    the value projection before the attention's output projection qualifies, the MLP's GELU does not).

    Parameters
    ----------
    W_prev : ndarray, shape (in, k)
        The producing layer (its ``in`` outputs are ``W``'s inputs).
    b_prev : array_like, shape (in,), or None
    W : ndarray (out, in), or a list of them
    s : array_like, shape (in,), positive

    Returns
    -------
    (diag(s)⁻¹ W_prev, b_prev / s (or None), W · diag(s))
    """
    mats, single = _weights(W)
    n = mats[0].shape[1]
    s = _scales(s, n)
    W_prev = check_matrix(W_prev, "W_prev", rows="in", cols="k")
    if W_prev.shape[0] != n:
        raise ValueError(f"W_prev must have {n} rows (one per input channel of W), got shape {W_prev.shape}")
    dtype = W_prev.dtype if W_prev.dtype.kind == "f" else np.float32
    new_prev = (W_prev.astype(np.float64) / s[:, None]).astype(dtype)
    new_b = None
    if b_prev is not None:
        b = check_array(b_prev, "b_prev", kind="fiu", ndim=1, finite=True)
        if b.shape != (n,):
            raise ValueError(f"b_prev must have shape ({n},), got {b.shape}")
        new_b = (b.astype(np.float64) / s).astype(b.dtype if b.dtype.kind == "f" else np.float32)
    return new_prev, new_b, _scale_columns(mats, s, single)
