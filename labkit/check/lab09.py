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

from .answers import array_problem, compare_arrays, mask_form
from .exercise import Case, Exercise
from .hints import Hints, accept

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


def _wrong_row(detector):
    """``detector``, asked only when w_new differs from the reference's row."""

    def wrapped(a):
        return None if _row_near(a, a.expected[0]) else detector(a)

    wrapped.__name__ = wrapped.__qualname__ = detector.__name__
    return wrapped


def _not_a_pair(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 2:
        return f"return a pair (w_new, delta_loss), got {type(a.got).__name__}"
    return None


def _row_form(a):
    w = a.args[0]
    return array_problem(a.got[0], "w_new", shape=np.shape(w), shape_note="the whole row, weight q set to 0")


def _delta_loss_type(a):
    try:
        float(a.got[1])
    except (TypeError, ValueError):
        return f"delta_loss should be a number, got {type(a.got[1]).__name__}"
    return None


def _obs(a):
    """(w as float64, H⁻¹, q, the tolerance for w_new) of an OBS case."""
    w, H, q = a.args
    w = np.asarray(w, np.float64)
    return w, np.linalg.inv(H), q, dict(rtol=1e-5, atol=1e-8 * max(1.0, float(np.abs(w).max())))


def _row_near(a, row) -> bool:
    return bool(np.allclose(a.got[0], row, **a.memo(_obs)[3]))


@_wrong_row
def _sign_flipped(a):
    w, _, q, _ = a.memo(_obs)
    if abs(a.got[0][q] - 2 * w[q]) < 1e-6 * max(1.0, abs(w[q])) and w[q] != 0:
        return f"w_new[{q}] is 2·w_q instead of 0: the update is δw = −(w_q / [H⁻¹]_qq) H⁻¹[:, q] (mind the sign)"
    return None


@_wrong_row
def _only_zeroed(a):
    w, _, q, _ = a.memo(_obs)
    just_zeroed = w.copy()
    just_zeroed[q] = 0.0
    if _row_near(a, just_zeroed):
        return (
            f"you only set w[{q}] to 0 (magnitude pruning): OBS also moves the other weights, "
            "δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q], to cancel the error the removal causes"
        )
    return None


@_wrong_row
def _H_for_its_inverse(a):
    w, H, q = a.args[0], a.args[1], a.args[2]
    if _row_near(a, np.asarray(w, np.float64) - (w[q] / H[q, q]) * H[:, q]):
        return (
            "you used H where the update needs its inverse: δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q], H⁻¹ = np.linalg.inv(H)"
        )
    return None


@_wrong_row
def _no_division(a):
    w, Hinv, q, _ = a.memo(_obs)
    if _row_near(a, w - w[q] * Hinv[:, q]):
        return "divide by [H⁻¹]_qq: δw = −(w_q / [H⁻¹]_qq) · H⁻¹[:, q] (then w_new[q] is exactly 0)"
    return None


@_wrong_row
def _removed_not_zero(a):
    w, _, q, _ = a.memo(_obs)
    if abs(a.got[0][q]) > 1e-6 * max(1.0, abs(w[q])):
        return f"w_new[{q}] is {a.got[0][q]:.4g}, not 0: the removed weight must end at exactly 0"
    return None


@_wrong_row
def _wrong_row_values(a):
    return compare_arrays(a.got[0], a.expected[0], "w_new", **a.memo(_obs)[3])


@accept
def _delta_loss_close(a):
    return bool(np.isclose(float(a.got[1]), a.expected[1], rtol=1e-5, atol=1e-12))


def _loss_is(a, value) -> bool:
    return bool(np.isclose(float(a.got[1]), value, rtol=1e-5))


def _twice_the_loss(a):
    w, Hinv, q, _ = a.memo(_obs)
    if _loss_is(a, w[q] ** 2 / Hinv[q, q]):
        return "delta_loss is twice too large: the error is ½ δwᵀ H δw, so ΔL = w_q² / (2 [H⁻¹]_qq)"
    return None


def _brain_damage(a):
    w, H, q = a.memo(_obs)[0], a.args[1], a.args[2]
    if _loss_is(a, 0.5 * w[q] ** 2 * H[q, q]):
        return (
            "that is Optimal Brain Damage's diagonal saliency ½ w_q² H_qq; OBS lets the other weights move, "
            "so ΔL = w_q² / (2 [H⁻¹]_qq)"
        )
    return None


def _multiplied_by_inverse(a):
    w, Hinv, q, _ = a.memo(_obs)
    if _loss_is(a, 0.5 * w[q] ** 2 * Hinv[q, q]):
        return "divide by [H⁻¹]_qq, don't multiply: ΔL = w_q² / (2 [H⁻¹]_qq)"
    return None


def _not_squared(a):
    w, Hinv, q, _ = a.memo(_obs)
    if _loss_is(a, abs(w[q]) / (2 * Hinv[q, q])):
        return "square w_q: ΔL = w_q² / (2 [H⁻¹]_qq)"
    return None


def _wrong_delta_loss(a):
    return f"delta_loss is {float(a.got[1]):.6g}, expected {a.expected[1]:.6g} = w_q² / (2 [H⁻¹]_qq)"


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
    compare=Hints(
        _not_a_pair,
        _row_form,
        _delta_loss_type,
        _sign_flipped,
        _only_zeroed,
        _H_for_its_inverse,
        _no_division,
        _removed_not_zero,
        _wrong_row_values,
        _delta_loss_close,
        _twice_the_loss,
        _brain_damage,
        _multiplied_by_inverse,
        _not_squared,
        _wrong_delta_loss,
    ),
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


def _inverted(a):
    if np.array_equal(a.got, ~a.expected):
        return (
            "your mask keeps exactly the weights to remove: True marks a KEPT weight, and the LARGEST scores "
            "are kept (each row removes its lowest ones)"
        )
    return None


def _wanda(a):
    """(|W|, X, the column norms ‖X_:,j‖₂, the scores, k = floor(sparsity · in), weights each row removed)."""
    W, X, sparsity = a.args
    absW, Xf = np.abs(W.astype(np.float64)), X.astype(np.float64)
    norms = np.linalg.norm(Xf, axis=0)
    return absW, Xf, norms, absW * norms, math.floor(sparsity * W.shape[1]), (~a.got).sum(axis=1)


def _same_count_wrong_k(a):
    removed, k = a.memo(_wanda)[5], a.memo(_wanda)[4]
    W, _, sparsity = a.args
    if np.all(removed == removed[0]) and removed[0] != k:
        return (
            f"each row removes {int(removed[0])} weights, expected floor(sparsity · in) = "
            f"floor({sparsity} · {W.shape[1]}) = {k}"
        )
    return None


def _uneven_rows(a) -> bool:
    """The right total, but not the same count in every row."""
    removed, k = a.memo(_wanda)[5], a.memo(_wanda)[4]
    return np.count_nonzero(~a.got) == a.args[0].shape[0] * k and not np.all(removed == k)


def _whole_matrix(a):
    score, k = a.memo(_wanda)[3], a.memo(_wanda)[4]
    if _uneven_rows(a) and np.array_equal(a.got, score > np.sort(score.ravel())[a.args[0].shape[0] * k - 1]):
        return (
            "you compared the scores of the whole matrix; Wanda compares within each output row "
            f"(each row removes exactly {k} of its {a.args[0].shape[1]} weights)"
        )
    return None


def _per_column(a):
    W, _, sparsity = a.args
    score = a.memo(_wanda)[3]
    if _uneven_rows(a) and np.array_equal(a.got.T, _kept_per_row(score.T, math.floor(sparsity * W.shape[0]))):
        return "you ranked within each column (input); Wanda ranks within each output row (axis 1 of W)"
    return None


def _rows_remove_different_counts(a):
    removed, k = a.memo(_wanda)[5], a.memo(_wanda)[4]
    if _uneven_rows(a):
        return f"rows remove {sorted(set(removed.tolist()))} weights, but each row must remove exactly {k}"
    return None


def _ranked_by(a, score) -> bool:
    return np.array_equal(a.got, _kept_per_row(score, a.memo(_wanda)[4]))


def _magnitude_alone(a):
    if _ranked_by(a, a.memo(_wanda)[0]):
        return "you ranked by |W| alone (magnitude pruning): Wanda's score is |W_ij| · ‖X_:,j‖₂, the input norm matters"
    return None


def _squared_norm(a):
    absW, _, norms = a.memo(_wanda)[:3]
    return "use the norm ‖X_:,j‖₂ = sqrt(Σ_n X_nj²), not its square" if _ranked_by(a, absW * norms**2) else None


def _mean_for_norm(a):
    absW, Xf = a.memo(_wanda)[:2]
    if _ranked_by(a, absW * np.abs(Xf).mean(axis=0)) or _ranked_by(a, absW * np.abs(Xf.mean(axis=0))):
        return "use the L2 norm of each input column, ‖X_:,j‖₂ = sqrt(Σ_n X_nj²), not a mean"
    return None


def _signed_weights(a):
    norms = a.memo(_wanda)[2]
    if _ranked_by(a, a.args[0].astype(np.float64) * norms):
        return "rank by |W_ij| · ‖X_:,j‖₂: a large negative weight matters as much as a large positive one"
    return None


def _wrong_mask(a):
    return compare_arrays(a.got, a.expected, "your mask")


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
    ],
    cases=_wanda_cases,
    compare=Hints(
        mask_form,
        _inverted,
        _same_count_wrong_k,
        _whole_matrix,
        _per_column,
        _rows_remove_different_counts,
        _magnitude_alone,
        _squared_norm,
        _mean_for_norm,
        _signed_weights,
        _wrong_mask,
    ),
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


def _nm_inverted(a):
    W, n, m = a.args
    if np.array_equal(a.got, ~a.expected):
        return (
            f"your mask keeps exactly the weights to remove: True marks a KEPT weight, and each group keeps its "
            f"{n} largest |w|, not the SMALLEST"
        )
    return None


def _groups_down_columns(a):
    W, n, m = a.args
    if W.shape[0] % m == 0 and np.array_equal(a.got.T, reference_nm_mask(W.T, n, m)):
        return (
            f"your groups run down the columns (consecutive outputs); {n}:{m} groups are {m} consecutive "
            "weights along the input axis, within one row: W.reshape(out, in // m, m)"
        )
    return None


def _strided_groups(a):
    W, n, m = a.args
    out, d = W.shape
    strided = reference_nm_mask(W.reshape(out, m, d // m).transpose(0, 2, 1).reshape(out, d), n, m)
    if np.array_equal(a.got, strided.reshape(out, d // m, m).transpose(0, 2, 1).reshape(out, d)):
        return f"your groups are strided (w[j], w[j + in/{m}], ...); a group is {m} CONSECUTIVE weights"
    return None


def _group_count(a):
    W, n, m = a.args
    out, d = W.shape
    kept = a.got.reshape(out, d // m, m).sum(axis=2)
    if not np.all(kept == n):
        r, g = (int(i) for i in np.argwhere(kept != n)[0])
        return (
            f"row {r}, group {g} (inputs {g * m}..{g * m + m - 1}) keeps {int(kept[r, g])} weights, "
            f"expected exactly {n}"
        )
    return None


def _by_signed_value(a):
    W, n, m = a.args
    out, d = W.shape
    signed = W.astype(np.float64).reshape(out, d // m, m)
    by_value = np.zeros(signed.shape, dtype=bool)
    np.put_along_axis(by_value, np.argsort(-signed, axis=2, kind="stable")[:, :, :n], True, axis=2)
    if np.array_equal(a.got, by_value.reshape(out, d)):
        return "rank by |w|: a large negative weight matters as much as a large positive one"
    return None


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
    compare=Hints(
        mask_form,
        _nm_inverted,
        _groups_down_columns,
        _strided_groups,
        _group_count,
        _by_signed_value,
        _wrong_mask,
    ),
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


def _not_a_triple(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 3:
        return f"return a triple (q, scale, zero), got {type(a.got).__name__}"
    return None


def _qsz(a):
    """The answer's (q, scale, zero) as arrays."""
    return tuple(np.asarray(v) for v in a.got)


def _q_shape(a):
    q, q_exp = _qsz(a)[0], a.expected[0]
    return f"q has shape {q.shape}, expected {q_exp.shape} (one integer per weight)" if q.shape != q_exp.shape else None


def _scales_shape_differs(a) -> bool:
    _, scale, zero = _qsz(a)
    return scale.shape != a.expected[1].shape or zero.shape != a.expected[2].shape


def _one_scale_per_row(a):
    gs, s_exp = a.args[2], a.expected[1]
    scale = _qsz(a)[1]
    if _scales_shape_differs(a) and scale.shape in ((a.args[0].shape[0],), (a.args[0].shape[0], 1)):
        return (
            f"scale has shape {scale.shape}: that is one scale per row; group-wise means one per group of "
            f"{gs} consecutive inputs in each row, shape (out, in // group_size) = {s_exp.shape}"
        )
    return None


def _groups_along_outputs(a):
    (out, d), gs, s_exp = a.args[0].shape, a.args[2], a.expected[1]
    scale = _qsz(a)[1]
    if _scales_shape_differs(a) and out % gs == 0 and scale.shape == (out // gs, d):
        return (
            f"scale has shape {scale.shape}: your groups run along the outputs; groups are {gs} consecutive "
            f"INPUTS of one row, shape (out, in // group_size) = {s_exp.shape}"
        )
    return None


def _scales_shape(a):
    _, scale, zero = _qsz(a)
    if _scales_shape_differs(a):
        return (
            f"scale and zero should have shape (out, in // group_size) = {a.expected[1].shape}, "
            f"got {scale.shape} and {zero.shape}"
        )
    return None


def _integer_codes(a):
    q, _, zero = _qsz(a)
    if q.dtype.kind not in "iu" or zero.dtype.kind not in "iu":
        return (
            f"q and zero must be integer arrays (e.g. np.uint8, as the reference returns them), got dtypes "
            f"{q.dtype} and {zero.dtype}: a zero point is an integer, even when it is stored in a float"
        )
    return None


def _groups(a):
    """The weights as float64 groups (out, in // gs, gs), qmax, and the answer a float64 scale gives."""
    W, bits, gs = a.args
    out, d = W.shape
    alt = reference_quantize_groupwise(W, bits, gs, _float32_scale=False)  # a float64 scale is fine too
    return W.astype(np.float64).reshape(out, d // gs, gs), 2**bits - 1, alt


def _wrong_scale(detector):
    """``detector``, asked only when the scales differ from the reference's."""

    def wrapped(a):
        return None if np.allclose(_qsz(a)[1], a.expected[1], rtol=1e-6, atol=0) else detector(a)

    wrapped.__name__ = wrapped.__qualname__ = detector.__name__
    return wrapped


@_wrong_scale
def _range_without_zero(a):
    g, qmax, _ = a.memo(_groups)
    lo_n, hi_n = g.min(axis=2), g.max(axis=2)
    if np.allclose(_qsz(a)[1], (hi_n - lo_n) / qmax, rtol=1e-5) and not np.allclose(
        (hi_n - lo_n) / qmax, a.expected[1]
    ):
        return "widen each group's range to contain 0 (lo = min(w, 0), hi = max(w, 0)): real 0 must stay exact"
    return None


@_wrong_scale
def _two_to_the_bits(a):
    bits, qmax = a.args[1], a.memo(_groups)[1]
    if np.allclose(_qsz(a)[1], a.expected[1] * qmax / 2**bits, rtol=1e-5):
        return f"{bits} bits give 2^{bits} − 1 = {qmax} steps, not 2^{bits}: scale = (hi − lo) / {qmax}"
    return None


@_wrong_scale
def _symmetric_scale(a):
    g, bits = a.memo(_groups)[0], a.args[1]
    if np.allclose(_qsz(a)[1], np.abs(g).max(axis=2) / (2 ** (bits - 1) - 1), rtol=1e-5):
        return "that is a symmetric scale; this exercise is asymmetric: scale = (hi − lo) / (2^b − 1) with a zero point"
    return None


@_wrong_scale
def _wrong_scales(a):
    return compare_arrays(_qsz(a)[1], a.expected[1], "scale", rtol=1e-6, atol=0)


def _right_zero(a) -> bool:
    zero = _qsz(a)[2]
    return np.array_equal(zero, a.expected[2]) or np.array_equal(zero, a.memo(_groups)[2][2])


def _zero_sign(a):
    zero, z_exp = _qsz(a)[2], a.expected[2]
    if _right_zero(a):
        return None
    if np.array_equal(-zero.astype(np.int64), z_exp.astype(np.int64)) or np.all(zero == 0) and np.any(z_exp):
        return "zero = clamp(rint(−lo / scale), 0, 2^b − 1): positive when the group has negative weights"
    return None


def _wrong_zero(a):
    return (
        None if _right_zero(a) else compare_arrays(_qsz(a)[2].astype(np.int64), a.expected[2].astype(np.int64), "zero")
    )


@accept
def _right_codes(a):
    q = _qsz(a)[0]
    return np.array_equal(q, a.expected[0]) or np.array_equal(q, a.memo(_groups)[2][0])


def _codes_outside(a):
    q, qmax = _qsz(a)[0], a.memo(_groups)[1]
    if q.min() < 0 or q.max() > qmax:
        return f"q has values outside [0, {qmax}] (min {q.min()}, max {q.max()}): clamp after adding the zero point"
    return None


def _codes_are(a, rounding, sign=1) -> bool:
    """q equals clamp(rounding(w / scale) + sign · zero) with the reference's scale and zero."""
    g, qmax, _ = a.memo(_groups)
    s, z = a.expected[1].astype(np.float64)[..., None], a.expected[2].astype(np.float64)[..., None]
    return np.array_equal(_qsz(a)[0], np.clip(rounding(g / s) + sign * z, 0, qmax).reshape(a.args[0].shape))


def _codes_half_up(a):
    if _codes_are(a, lambda v: np.floor(v + 0.5)):
        return "ties (w / scale = k + 0.5) round half to even (np.rint), not up"
    return None


def _codes_zero_subtracted(a):
    return "add the zero point: q = rint(w / scale) + zero" if _codes_are(a, np.rint, sign=-1) else None


def _codes_truncated(a):
    return "round to the nearest integer (np.rint), don't truncate" if _codes_are(a, np.trunc) else None


def _wrong_codes(a):
    return compare_arrays(_qsz(a)[0].astype(np.int64), a.expected[0].astype(np.int64), "q")


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
    compare=Hints(
        _not_a_triple,
        _q_shape,
        _one_scale_per_row,
        _groups_along_outputs,
        _scales_shape,
        _integer_codes,
        _range_without_zero,
        _two_to_the_bits,
        _symmetric_scale,
        _wrong_scales,
        _zero_sign,
        _wrong_zero,
        _right_codes,
        _codes_outside,
        _codes_half_up,
        _codes_zero_subtracted,
        _codes_truncated,
        _wrong_codes,
    ),
    pass_line="quantize_groupwise: q, scale and zero correct for 7 layers (groups along the input axis)",
)


def reference_dequantize_groupwise(q, scale, zero, group_size):
    """``scale_g · (q − zero_g)`` as float32 (out, in); each scale covers ``group_size`` consecutive columns."""
    s = np.repeat(np.asarray(scale, np.float32), group_size, axis=1)
    z = np.repeat(np.asarray(zero).astype(np.int32), group_size, axis=1)
    return (s * (np.asarray(q).astype(np.int32) - z)).astype(np.float32)


def _weights_form(a):
    return array_problem(
        a.got,
        "your result",
        shape=a.expected.shape,
        shape_note="one value per weight",
        kinds="f",
        holds="floats (float32)",
    )


def _weights_near(a, value) -> bool:
    return bool(np.allclose(a.got, value, rtol=1e-6, atol=1e-7))


def _float64_weights(a):
    if _weights_near(a, a.expected) and a.got.dtype != np.float32:
        return f"return float32 (the values are right), got {a.got.dtype}"
    return None


@accept
def _weights_close(a):
    return _weights_near(a, a.expected)


def _dq(a):
    """scale as float64, q and zero as int64, and the group size."""
    q, scale, zero, gs = a.args
    return scale.astype(np.float64), q.astype(np.int64), zero.astype(np.int64), gs


def _dq_wrapped(a):
    q, _, zero, _ = a.args
    s, _, _, gs = a.memo(_dq)
    with np.errstate(over="ignore"):
        wrapped = np.repeat(s, gs, axis=1) * (q - np.repeat(zero, gs, axis=1)).astype(np.float64)
    if _weights_near(a, wrapped):
        return "q − zero wrapped around in uint8 (3 − 5 = 254): convert q and zero to a wider int (np.int32) first"
    return None


def _dq_tiled(a):
    s, qi, zi, gs = a.memo(_dq)
    if qi.shape[1] // gs > 1 and _weights_near(a, np.tile(s, gs) * (qi - np.tile(zi, gs))):
        return (
            f"each scale covers {gs} CONSECUTIVE columns: expand with np.repeat(scale, group_size, axis=1), not np.tile"
        )
    return None


def _dq_zero_added(a):
    s, qi, zi, gs = a.memo(_dq)
    if _weights_near(a, np.repeat(s, gs, axis=1) * (qi + np.repeat(zi, gs, axis=1))):
        return "subtract the zero point: w = scale · (q − zero)"
    return None


def _wrong_weights(a):
    return compare_arrays(a.got, a.expected, "your weights", rtol=1e-6, atol=1e-7)


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
    ],
    cases=_dqgroup_cases,
    compare=Hints(
        _weights_form, _float64_weights, _weights_close, _dq_wrapped, _dq_tiled, _dq_zero_added, _wrong_weights
    ),
    pass_line="dequantize_groupwise: scale · (q − zero) per group, float32, correct on 4 layers",
)
