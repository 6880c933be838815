"""Checks for lab 09 (compression without retraining): OBS, Wanda, N:M masks, group-wise quantization.

Conventions shared by every exercise (and by ``labkit.quant`` / ``labkit.prune``):

* a layer's weights ``W`` are (out, in); its calibration inputs ``X`` are (n, in), one input per row,
  as ``Dense.forward`` sees them; the layer's Hessian is ``H = 2 Xᵀ X`` (in × in), the Hessian of
  the output error ``‖X wᵀ − X ŵᵀ‖²`` of one output row ``w``;
* masks are boolean, ``True`` = kept;
* quantization rounds half to even (``np.rint``), then clamps.

The references below are written out in full (they are the answers the lab derives); the library
functions the lab uses afterwards (``labkit.prune.wanda_mask``, ``nm_mask``,
``labkit.quant.quantize_groupwise``) compute the same thing at scale.
"""

from __future__ import annotations

import math

import numpy as np

from .exercise import Case, Exercise, compare_arrays, mask_problem

__all__ = [
    "obs_prune_one",
    "wanda_mask",
    "nm_mask",
    "quantize_groupwise",
    "dequantize_groupwise",
    "reference_obs_prune_one",
    "reference_wanda_mask",
    "reference_nm_mask",
    "reference_quantize_groupwise",
    "reference_dequantize_groupwise",
]


def _spd_hessian(rng, n, d, spread=1.5):
    """H = 2 XᵀX of correlated calibration inputs X (n, d), plus a 1 % damping: symmetric positive definite."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    X = rng.standard_normal((n, d)) @ mix * rng.lognormal(0.0, spread / 2, d)
    H = 2.0 * X.T @ X
    H += 0.01 * np.mean(np.diag(H)) * np.eye(d)
    return H


# --- Exercise 1: the Optimal Brain Surgeon update for one weight ---------------------------------------


def reference_obs_prune_one(w, H, q):
    """Remove weight ``q`` of the row ``w`` (d,) and move the others to compensate (Hassibi & Stork 1993).

    ``δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q]``, so ``w_q + δw_q = 0``, at the lowest possible increase of
    the error ``½ δwᵀ H δw``, which is ``w_q² / (2 [H⁻¹]_qq)``. Returns ``(w_new, delta_loss)``.
    """
    w = np.asarray(w, dtype=np.float64)
    Hinv = np.linalg.inv(np.asarray(H, dtype=np.float64))
    d = Hinv[q, q]
    w_new = w - (w[q] / d) * Hinv[:, q]
    w_new[q] = 0.0  # exactly, not up to rounding
    return w_new, float(w[q] ** 2 / (2.0 * d))


def _compare_obs(got, expected, case):
    w, H, q = case.args
    w = np.asarray(w, np.float64)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (w_new, delta_loss), got {type(got).__name__}"
    w_new, dl = got
    if not isinstance(w_new, np.ndarray):
        return f"w_new should be a numpy array, got {type(w_new).__name__}"
    if w_new.shape != w.shape:
        return f"w_new has shape {w_new.shape}, expected {w.shape} (the whole row, weight q set to 0)"
    try:
        dl = float(dl)
    except (TypeError, ValueError):
        return f"delta_loss should be a number, got {type(dl).__name__}"
    w_exp, dl_exp = expected
    Hinv = np.linalg.inv(H)
    tol = dict(rtol=1e-5, atol=1e-8 * max(1.0, float(np.abs(w).max())))
    w_ok = np.allclose(w_new, w_exp, **tol)
    if not w_ok:
        just_zeroed = w.copy()
        just_zeroed[q] = 0.0
        if abs(w_new[q] - 2 * w[q]) < 1e-6 * max(1.0, abs(w[q])) and w[q] != 0:
            return f"w_new[{q}] is 2·w_q instead of 0: the update is δw = −(w_q / [H⁻¹]_qq) H⁻¹[:, q] (mind the sign)"
        if np.allclose(w_new, just_zeroed, **tol):
            return (
                f"you only set w[{q}] to 0 (magnitude pruning): OBS also moves the other weights, "
                "δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q], to cancel the error the removal causes"
            )
        with_H = w - (w[q] / H[q, q]) * H[:, q]
        if np.allclose(w_new, with_H, **tol):
            return (
                "you used H where the update needs its inverse: δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q], "
                "H⁻¹ = np.linalg.inv(H)"
            )
        if np.allclose(w_new, w - w[q] * Hinv[:, q], **tol):
            return "divide by [H⁻¹]_qq: δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q] (then w_new[q] is exactly 0)"
        if abs(w_new[q]) > 1e-6 * max(1.0, abs(w[q])):
            return f"w_new[{q}] is {w_new[q]:.4g}, not 0: the removed weight must end at exactly 0"
        return compare_arrays(w_new, w_exp, "w_new", **tol)
    if np.isclose(dl, dl_exp, rtol=1e-5, atol=1e-12):
        return None
    d = Hinv[q, q]
    if np.isclose(dl, w[q] ** 2 / d, rtol=1e-5):
        return "delta_loss is twice too large: the error is ½ δwᵀ H δw, so ΔL = w_q² / (2 [H⁻¹]_qq)"
    if np.isclose(dl, 0.5 * w[q] ** 2 * H[q, q], rtol=1e-5):
        return (
            "that is Optimal Brain Damage's diagonal saliency ½ w_q² H_qq; OBS lets the other weights move, "
            "so ΔL = w_q² / (2 [H⁻¹]_qq)"
        )
    if np.isclose(dl, 0.5 * w[q] ** 2 * d, rtol=1e-5):
        return "divide by [H⁻¹]_qq, don't multiply: ΔL = w_q² / (2 [H⁻¹]_qq)"
    if np.isclose(dl, abs(w[q]) / (2 * d), rtol=1e-5):
        return "square w_q: ΔL = w_q² / (2 [H⁻¹]_qq)"
    return f"delta_loss is {dl:.6g}, expected {dl_exp:.6g} = w_q² / (2 [H⁻¹]_qq)"


def _obs_cases(rng):
    cases = []
    for n, d in [(40, 6), (64, 10), (30, 4)]:
        H = _spd_hessian(rng, n, d)
        w = rng.standard_normal(d)
        q = int(rng.integers(d))
        cases.append(Case((w, H, q), label=f"correlated inputs, d = {d}, q = {q}"))
    return cases


obs_prune_one = Exercise(
    "obs_prune_one",
    reference_obs_prune_one,
    fixed_cases=[
        Case((np.array([0.8, -1.0, 2.0]), np.diag([2.0, 1.0, 4.0]), 0), label="diagonal H: nothing to compensate"),
        Case((np.array([1.0, 1.0]), np.array([[2.0, 1.8], [1.8, 2.0]]), 1), label="two strongly correlated inputs"),
    ],
    cases=_obs_cases,
    compare=_compare_obs,
    pass_line="obs_prune_one: δw and ΔL = w_q²/(2[H⁻¹]_qq) correct on 5 rows (w_q ends at exactly 0)",
)

# --- Exercise 2: the Wanda score and mask -----------------------------------------------------------


def _kept_per_row(score, k):
    """True except at the k lowest scores of each row (ties: the earlier entry goes first)."""
    mask = np.ones(score.shape, dtype=bool)
    if k:
        order = np.argsort(score, axis=1, kind="stable")
        np.put_along_axis(mask, order[:, :k], False, axis=1)
    return mask


def reference_wanda_mask(W, X, sparsity):
    """Wanda (Sun et al. 2024): score ``|W_ij| · ‖X_:,j‖₂``; in each output row remove the
    ``floor(sparsity · in)`` lowest scores. Returns a bool mask (out, in), True = kept."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.sqrt(np.sum(np.asarray(X, dtype=np.float64) ** 2, axis=0))
    return _kept_per_row(np.abs(W) * norms, math.floor(sparsity * W.shape[1]))


def _compare_wanda(got, expected, case):
    W, X, sparsity = case.args
    problem = mask_problem(got, W.shape)
    if problem:
        return problem
    if np.array_equal(got, expected):
        return None
    k = math.floor(sparsity * W.shape[1])
    if np.array_equal(got, ~expected):
        return (
            "your mask keeps exactly the weights to remove: True marks a KEPT weight, and the LARGEST scores "
            "are kept (each row removes its lowest ones)"
        )
    absW = np.abs(W.astype(np.float64))
    Xf = X.astype(np.float64)
    norms = np.linalg.norm(Xf, axis=0)
    score = absW * norms
    removed = (~got).sum(axis=1)
    if np.all(removed == removed[0]) and removed[0] != k:
        return (
            f"each row removes {int(removed[0])} weights, expected floor(sparsity · in) = "
            f"floor({sparsity} · {W.shape[1]}) = {k}"
        )
    if np.count_nonzero(~got) == W.shape[0] * k and not np.all(removed == k):
        t = np.sort(score.ravel())[W.shape[0] * k - 1]
        if np.array_equal(got, score > t):
            return (
                "you compared the scores of the whole matrix; Wanda compares within each output row "
                f"(each row removes exactly {k} of its {W.shape[1]} weights)"
            )
        if np.array_equal(got.T, _kept_per_row(score.T, math.floor(sparsity * W.shape[0]))):
            return "you ranked within each column (input); Wanda ranks within each output row (axis 1 of W)"
        return f"rows remove {sorted(set(removed.tolist()))} weights, but each row must remove exactly {k}"
    if np.array_equal(got, _kept_per_row(absW, k)):
        return "you ranked by |W| alone (magnitude pruning): Wanda's score is |W_ij| · ‖X_:,j‖₂, the input norm matters"
    if np.array_equal(got, _kept_per_row(absW * norms**2, k)):
        return "use the norm ‖X_:,j‖₂ = sqrt(Σ_n X_nj²), not its square"
    if np.array_equal(got, _kept_per_row(absW * np.abs(Xf).mean(axis=0), k)) or np.array_equal(
        got, _kept_per_row(absW * np.abs(Xf.mean(axis=0)), k)
    ):
        return "use the L2 norm of each input column, ‖X_:,j‖₂ = sqrt(Σ_n X_nj²), not a mean"
    if np.array_equal(got, _kept_per_row(W.astype(np.float64) * norms, k)):
        return "rank by |W_ij| · ‖X_:,j‖₂: a large negative weight matters as much as a large positive one"
    if np.array_equal(got, _kept_per_row(-score, k)):
        return "you removed the LARGEST scores; remove the lowest ones"
    return compare_arrays(got, expected, "your mask")


def _wanda_cases(rng):
    cases = []
    for out, d, n, s in [(6, 10, 32, 0.55), (8, 16, 24, 0.5), (5, 12, 40, 0.75)]:
        W = rng.standard_normal((out, d))
        X = rng.standard_normal((n, d)) * rng.lognormal(0.0, 1.0, d)  # inputs of very different sizes
        cases.append(Case((W, X, s), label=f"W {W.shape}, X {X.shape}, sparsity {s}"))
    return cases


wanda_mask = Exercise(
    "wanda_mask",
    reference_wanda_mask,
    fixed_cases=[
        Case(
            (
                np.array([[1.0, -2.0, 0.5, 3.0], [0.2, 0.1, -0.4, 0.3]]),
                np.array([[1.0, 0.1, 2.0, 0.1], [1.0, 0.1, -2.0, 0.1]]),
                0.5,
            ),
            label="2×4, inputs 1 and 3 nearly silent",
        ),
        Case(
            (np.random.default_rng(9).standard_normal((4, 8)), np.ones((5, 8)), 0.5),
            label="X all ones: Wanda equals magnitude per row",
        ),
    ],  # fmt: skip
    cases=_wanda_cases,
    compare=_compare_wanda,
    pass_line="wanda_mask: |W|·‖X_j‖₂ ranked per output row, correct on 5 layers",
)

# --- Exercise 3: the N:M mask -----------------------------------------------------------------------


def reference_nm_mask(W, n=2, m=4):
    """Keep the ``n`` largest ``|w|`` of every ``m`` consecutive weights along the input axis (axis 1).

    ``W`` is (out, in) with ``in`` divisible by ``m``; ties keep the earlier weight.
    """
    W = np.asarray(W)
    out, d = W.shape
    groups = np.abs(W.astype(np.float64)).reshape(out, d // m, m)
    order = np.argsort(-groups, axis=2, kind="stable")
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :, :n], True, axis=2)
    return mask.reshape(out, d)


def _compare_nm(got, expected, case):
    W, n, m = case.args
    problem = mask_problem(got, W.shape)
    if problem:
        return problem
    if np.array_equal(got, expected):
        return None
    out, d = W.shape
    if np.array_equal(got, ~expected):
        return (
            f"your mask keeps exactly the weights to remove: True marks a KEPT weight, and each group keeps its "
            f"{n} largest |w|, not the SMALLEST"
        )
    if out % m == 0 and np.array_equal(got.T, reference_nm_mask(W.T, n, m)):
        return (
            f"your groups run down the columns (consecutive outputs); {n}:{m} groups are {m} consecutive "
            "weights along the input axis, within one row: W.reshape(out, in // m, m)"
        )
    strided = reference_nm_mask(W.reshape(out, m, d // m).transpose(0, 2, 1).reshape(out, d), n, m)
    if np.array_equal(got, strided.reshape(out, d // m, m).transpose(0, 2, 1).reshape(out, d)):
        return f"your groups are strided (w[j], w[j + in/{m}], ...); a group is {m} CONSECUTIVE weights"
    kept = got.reshape(out, d // m, m).sum(axis=2)
    if not np.all(kept == n):
        r, g = (int(i) for i in np.argwhere(kept != n)[0])
        return (
            f"row {r}, group {g} (inputs {g * m}..{g * m + m - 1}) keeps {int(kept[r, g])} weights, "
            f"expected exactly {n}"
        )
    if np.array_equal(got, ~reference_nm_mask(W, m - n, m)):  # the n smallest = all but the m - n largest
        return f"you kept the {n} SMALLEST |w| of each group; keep the largest"
    signed = W.astype(np.float64).reshape(out, d // m, m)
    order = np.argsort(-signed, axis=2, kind="stable")
    by_value = np.zeros(signed.shape, dtype=bool)
    np.put_along_axis(by_value, order[:, :, :n], True, axis=2)
    if np.array_equal(got, by_value.reshape(out, d)):
        return "rank by |w|: a large negative weight matters as much as a large positive one"
    return compare_arrays(got, expected, "your mask")


def _nm_cases(rng):
    cases = []
    for out, d, n, m in [(3, 8, 2, 4), (5, 12, 2, 4), (4, 8, 1, 4), (2, 16, 4, 8)]:
        W = rng.standard_normal((out, d)).astype(np.float32)
        cases.append(Case((W, n, m), label=f"W {W.shape}, {n}:{m}"))
    return cases


nm_mask = Exercise(
    "nm_mask",
    reference_nm_mask,
    fixed_cases=[
        Case(
            (
                np.round(np.random.default_rng(4).standard_normal((4, 8)), 2).astype(np.float32)
                + 0.001 * np.arange(8, dtype=np.float32),
                2,
                4,
            ),
            label="4×8, 2:4",
        ),
        Case((np.array([[0.1, -0.9, 0.5, 0.2, 0.3, 0.0, -0.4, 0.8]], np.float32), 2, 4), label="one row of 8, 2:4"),
    ],
    cases=_nm_cases,
    compare=_compare_nm,
    pass_line="nm_mask: exactly n of every m consecutive weights kept (largest |w|), correct on 6 matrices",
)

# --- Exercises 4 and 5: group-wise quantization -----------------------------------------------------------


def reference_quantize_groupwise(W, bits, group_size, _float32_scale=True):
    """Asymmetric ``bits``-bit quantization with one scale and zero point per group of ``group_size``
    consecutive inputs in each row. Each group's range is widened to contain 0 (real 0 stays exact):

    ``lo = min(w, 0)``, ``hi = max(w, 0)``, ``scale = (hi − lo) / (2^b − 1)`` (1 if hi = lo),
    ``zero = clamp(rint(−lo / scale), 0, 2^b − 1)``, ``q = clamp(rint(w / scale) + zero, 0, 2^b − 1)``.

    Returns ``(q, scale, zero)``: q uint8 (out, in), scale float32 (out, in // group_size),
    zero uint8 (out, in // group_size).
    """
    W = np.asarray(W, dtype=np.float64)
    out, d = W.shape
    qmax = 2**bits - 1
    g = W.reshape(out, d // group_size, group_size)
    lo, hi = np.minimum(g.min(axis=2), 0.0), np.maximum(g.max(axis=2), 0.0)
    scale = np.where(hi > lo, (hi - lo) / qmax, 1.0)
    if _float32_scale:
        scale = scale.astype(np.float32)
    s = scale.astype(np.float64)
    zero = np.clip(np.rint(-lo / s), 0, qmax)
    q = np.clip(np.rint(g / s[..., None]) + zero[..., None], 0, qmax)
    return q.reshape(out, d).astype(np.uint8), scale.astype(np.float32), zero.astype(np.uint8)


def _compare_qgroup(got, expected, case):
    W, bits, gs = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return a triple (q, scale, zero), got {type(got).__name__}"
    q, scale, zero = (np.asarray(v) for v in got)
    q_exp, s_exp, z_exp = expected
    out, d = W.shape
    if q.shape != q_exp.shape:
        return f"q has shape {q.shape}, expected {q_exp.shape} (one integer per weight)"
    if scale.shape != s_exp.shape or zero.shape != z_exp.shape:
        per_row = (out,), (out, 1)
        if scale.shape in per_row:
            return (
                f"scale has shape {scale.shape}: that is one scale per row; group-wise means one per group of "
                f"{gs} consecutive inputs in each row, shape (out, in // group_size) = {s_exp.shape}"
            )
        if scale.shape == (out // gs, d) if out % gs == 0 else False:
            return (
                f"scale has shape {scale.shape}: your groups run along the outputs; groups are {gs} consecutive "
                f"INPUTS of one row, shape (out, in // group_size) = {s_exp.shape}"
            )
        return (
            f"scale and zero should have shape (out, in // group_size) = {s_exp.shape}, "
            f"got {scale.shape} and {zero.shape}"
        )
    if q.dtype.kind not in "iu" or zero.dtype.kind not in "iu":
        return f"q and zero must be integer arrays (e.g. np.uint8), got dtypes {q.dtype} and {zero.dtype}"
    qmax = 2**bits - 1
    Wf = W.astype(np.float64)
    g = Wf.reshape(out, d // gs, gs)
    alt = reference_quantize_groupwise(W, bits, gs, _float32_scale=False)  # a float64 scale is fine too
    scale_ok = np.allclose(scale, s_exp, rtol=1e-6, atol=0)
    if not scale_ok:
        lo_n, hi_n = g.min(axis=2), g.max(axis=2)
        if np.allclose(scale, (hi_n - lo_n) / qmax, rtol=1e-5) and not np.allclose((hi_n - lo_n) / qmax, s_exp):
            return "widen each group's range to contain 0 (lo = min(w, 0), hi = max(w, 0)): real 0 must stay exact"
        if np.allclose(scale, s_exp * qmax / 2**bits, rtol=1e-5):
            return f"{bits} bits give 2^{bits} − 1 = {qmax} steps, not 2^{bits}: scale = (hi − lo) / {qmax}"
        if np.allclose(scale, np.abs(g).max(axis=2) / (2 ** (bits - 1) - 1), rtol=1e-5):
            return (
                "that is a symmetric scale; this exercise is asymmetric: scale = (hi − lo) / (2^b − 1) "
                "with a zero point"
            )
        return compare_arrays(scale, s_exp, "scale", rtol=1e-6, atol=0)
    if not (np.array_equal(zero, z_exp) or np.array_equal(zero, alt[2])):
        if np.array_equal(-zero.astype(np.int64), z_exp.astype(np.int64)) or np.all(zero == 0) and np.any(z_exp):
            return "zero = clamp(rint(−lo / scale), 0, 2^b − 1): positive when the group has negative weights"
        return compare_arrays(zero.astype(np.int64), z_exp.astype(np.int64), "zero")
    if np.array_equal(q, q_exp) or np.array_equal(q, alt[0]):
        return None
    if q.min() < 0 or q.max() > qmax:
        return f"q has values outside [0, {qmax}] (min {q.min()}, max {q.max()}): clamp after adding the zero point"
    s = s_exp.astype(np.float64)[..., None]
    z = z_exp.astype(np.float64)[..., None]
    if np.array_equal(q, np.clip(np.floor(g / s + 0.5) + z, 0, qmax).reshape(out, d)):
        return "ties (w / scale = k + 0.5) round half to even (np.rint), not up"
    if np.array_equal(q, np.clip(np.rint(g / s) - z, 0, qmax).reshape(out, d)):
        return "add the zero point: q = rint(w / scale) + zero"
    if np.array_equal(q, np.clip(np.trunc(g / s) + z, 0, qmax).reshape(out, d)):
        return "round to the nearest integer (np.rint), don't truncate"
    return compare_arrays(q.astype(np.int64), q_exp.astype(np.int64), "q")


def _qgroup_cases(rng):
    cases = []
    for out, d, bits, gs in [(3, 16, 4, 8), (4, 24, 3, 8), (2, 32, 4, 16), (5, 8, 2, 4), (3, 12, 8, 4)]:
        W = (rng.standard_normal((out, d)) * rng.lognormal(0, 0.7, (out, d // gs)).repeat(gs, axis=1)).astype(
            np.float32
        )
        cases.append(Case((W, bits, gs), label=f"W {W.shape}, {bits} bits, groups of {gs}"))
    pos = np.abs(rng.standard_normal((2, 8))).astype(np.float32) + 0.5
    cases.append(Case((pos, 4, 4), label="all-positive groups, 4 bits"))
    return cases


quantize_groupwise = Exercise(
    "quantize_groupwise",
    reference_quantize_groupwise,
    fixed_cases=[
        Case((np.array([[0.0, 3.0, 0.5, 2.5, -0.2, 0.1, 0.05, -0.1]], np.float32), 2, 4), label="ties, 2 bits"),
    ],
    cases=_qgroup_cases,
    compare=_compare_qgroup,
    pass_line="quantize_groupwise: q, scale and zero correct for 7 layers (groups along the input axis)",
)


def reference_dequantize_groupwise(q, scale, zero, group_size):
    """``scale_g · (q − zero_g)`` as float32 (out, in); each scale covers ``group_size`` consecutive columns."""
    s = np.repeat(np.asarray(scale, np.float32), group_size, axis=1)
    z = np.repeat(np.asarray(zero).astype(np.int32), group_size, axis=1)
    return (s * (np.asarray(q).astype(np.int32) - z)).astype(np.float32)


def _compare_dqgroup(got, expected, case):
    q, scale, zero, gs = case.args
    if not isinstance(got, np.ndarray):
        return f"return a numpy array, got {type(got).__name__}"
    if got.shape != expected.shape:
        return f"result has shape {got.shape}, expected {expected.shape} (one value per weight)"
    if got.dtype.kind != "f":
        return f"return floats (float32), got dtype {got.dtype}"
    tol = dict(rtol=1e-6, atol=1e-7)
    if np.allclose(got, expected, **tol):
        return None if got.dtype == np.float32 else f"return float32 (the values are right), got {got.dtype}"
    s = scale.astype(np.float64)
    qi, zi = q.astype(np.int64), zero.astype(np.int64)
    with np.errstate(over="ignore"):
        wrapped = np.repeat(s, gs, axis=1) * (q - np.repeat(zero, gs, axis=1)).astype(np.float64)
    if np.allclose(got, wrapped, **tol):
        return "q − zero wrapped around in uint8 (3 − 5 = 254): convert q and zero to a wider int (np.int32) first"
    if q.shape[1] // gs > 1 and np.allclose(got, np.tile(s, gs) * (qi - np.tile(zi, gs)), **tol):
        return (
            f"each scale covers {gs} CONSECUTIVE columns: expand with np.repeat(scale, group_size, axis=1), not np.tile"
        )
    if np.allclose(got, np.repeat(s, gs, axis=1) * (qi + np.repeat(zi, gs, axis=1)), **tol):
        return "subtract the zero point: w = scale · (q − zero)"
    return compare_arrays(got, expected, "your weights", **tol)


def _dqgroup_cases(rng):
    cases = []
    for out, d, bits, gs in [(3, 16, 4, 8), (4, 24, 3, 8), (2, 12, 8, 4)]:
        W = rng.standard_normal((out, d)).astype(np.float32) * np.float32(rng.uniform(0.05, 2))
        q, s, z = reference_quantize_groupwise(W, bits, gs)
        cases.append(Case((q, s, z, gs), label=f"q {q.shape}, groups of {gs}"))
    return cases


dequantize_groupwise = Exercise(
    "dequantize_groupwise",
    reference_dequantize_groupwise,
    fixed_cases=[
        Case(
            (
                np.array([[0, 3, 5, 15, 2, 2, 9, 1]], np.uint8),
                np.array([[0.5, 0.25]], np.float32),
                np.array([[5, 2]], np.uint8),
                4,
            ),
            label="q below the zero point, 2 groups",
        ),
    ],  # fmt: skip
    cases=_dqgroup_cases,
    compare=_compare_dqgroup,
    pass_line="dequantize_groupwise: scale · (q − zero) per group, float32, correct on 4 layers",
)
