"""Checks for lab 05 (knowledge distillation): softmax with temperature, the KD loss, its gradient,
and the expected calibration error of a teacher's probabilities.

Each compare function recognises the usual mistakes (a naive softmax that overflows, a forgotten
temperature, KL the wrong way round, a missing ``T^2`` or ``1/n``, bins not weighted by their size,
a confidence of exactly 1 outside the last bin) and names them in the hint.
"""

from __future__ import annotations

import numpy as np

from ..distill import kd_loss, softmax
from ..softmax import log_softmax
from .exercise import Case, Exercise, number_answer

__all__ = ["softmax_T", "kd_loss_value", "kd_loss_grad", "expected_calibration_error"]


# --- exercise 1: softmax with temperature -------------------------------------------------------


def _softmax_ref(z, T):
    return softmax(z, T)


def _as_float_array(got, shape, what):
    if not isinstance(got, np.ndarray):
        return None, f"{what} should be a numpy array, got {type(got).__name__}"
    if got.shape != shape:
        return None, f"{what} has shape {got.shape}, expected {shape} (one probability per logit)"
    if got.dtype.kind != "f":
        return None, f"{what} should hold floats, got dtype {got.dtype}"
    return got.astype(np.float64), None


def _compare_softmax(got, expected, case):
    z, T = case.args
    g, hint = _as_float_array(got, expected.shape, "softmax")
    if hint:
        return hint
    if not np.all(np.isfinite(g)):
        return (
            f"softmax(z, T={T}) has NaN or inf entries: exp overflows for large z / T; "
            "subtract each row's maximum from z before dividing by T and exponentiating"
        )
    if np.allclose(g, expected, rtol=1e-6, atol=1e-9):
        return None
    if np.allclose(g.sum(axis=0), 1.0) and not np.allclose(g.sum(axis=-1), 1.0):
        return "each column sums to 1, not each row: normalise over the last axis (the classes), keepdims=True"
    if T != 1.0 and np.allclose(g, softmax(z, 1.0), rtol=1e-6, atol=1e-9):
        return f"this is the softmax at T = 1, but T = {T}: divide the logits by T before exponentiating"
    if T != 1.0 and np.allclose(g, softmax(z * T, 1.0), rtol=1e-6, atol=1e-9):
        return f"you multiplied the logits by T = {T}; divide them by T (a higher T gives softer probabilities)"
    if not np.allclose(g.sum(axis=-1), 1.0, atol=1e-6):
        return "the probabilities in a row do not sum to 1: divide by the row sum of the exponentials"
    err = np.abs(g - expected)
    i = np.unravel_index(np.argmax(err), err.shape)
    return f"softmax(z, T={T}) is off (at index {tuple(int(j) for j in i)}: got {g[i]:.6g}, expected {expected[i]:.6g})"


def _softmax_cases(rng):
    cases = []
    for n, k, T in [(4, 10, 1.0), (3, 5, 4.0), (6, 10, 0.5), (2, 3, 20.0)]:
        z = (rng.standard_normal((n, k)) * 3).astype(np.float64)
        cases.append(Case((z, T), label=f"random logits {n}x{k}, T={T}"))
    return cases


softmax_T = Exercise(
    "softmax_T",
    _softmax_ref,
    fixed_cases=[
        Case((np.array([[np.log(3.0), 0.0]]), 1.0), label="logits [ln 3, 0] at T=1 -> [3/4, 1/4]"),
        Case((np.array([[2 * np.log(3.0), 0.0], [0.0, 0.0]]), 2.0), label="logits [2 ln 3, 0] at T=2 -> [3/4, 1/4]"),
        Case((np.array([[1000.0, 990.0, -1000.0]]), 1.0), label="large logits (1000)"),
        Case((np.array([[3.0, 1.0, 0.5]]), 0.001), label="tiny temperature T=0.001"),
    ],
    cases=_softmax_cases,
    compare=_compare_softmax,
    pass_line="softmax_T: correct on 8 cases, stable for large logits and tiny T",
)


# --- shared cases for the loss and its gradient -------------------------------------------------


def _kd_cases(rng):
    cases = []
    for n, k, T, alpha in [(5, 10, 4.0, 0.9), (8, 10, 2.0, 0.5), (3, 4, 10.0, 0.7), (6, 10, 1.0, 0.3)]:
        s = rng.standard_normal((n, k)) * 2
        t = rng.standard_normal((n, k)) * 4
        y = rng.integers(0, k, n)
        cases.append(Case((s, t, y, T, alpha), label=f"batch of {n}, {k} classes, T={T}, alpha={alpha}"))
    return cases


def _fixed_kd_cases():
    s = np.array([[0.0, 0.0], [1.0, -1.0]])
    t = np.array([[2 * np.log(3.0), 0.0], [0.0, 0.0]])
    return [
        Case((s[:1], t[:1], np.array([0]), 2.0, 0.5), label="one image: student [0, 0], teacher [2 ln 3, 0], T=2"),
        Case((s, t, np.array([0, 1]), 2.0, 0.5), label="two images, T=2, alpha=0.5"),
        Case(
            (np.array([[1000.0, 0.0, -1000.0]]), np.array([[-1000.0, 0.0, 1000.0]]), np.array([2]), 1.0, 0.5),
            label="large logits (1000)",
        ),  # fmt: skip
    ]


def _log_p(z, T):
    """log softmax(z / T) in float64, as the reference computes it."""
    return log_softmax(np.asarray(z, np.float64), T)


def _variants(s, t, y, T, alpha):
    """Per-row pieces of the loss, for recognising common mistakes."""
    n = len(y)
    ls, lt, l1 = _log_p(s, T), _log_p(t, T), _log_p(s, 1.0)
    pt, ps = np.exp(lt), np.exp(ls)
    kl = (pt * (lt - ls)).sum(axis=1)
    kl_rev = (ps * (ls - lt)).sum(axis=1)
    ce = -l1[np.arange(n), y]
    ce_T = -ls[np.arange(n), y]
    return kl, kl_rev, ce, ce_T


# --- exercise 2: the KD loss --------------------------------------------------------------------


def _kd_value_ref(s, t, y, T, alpha):
    return kd_loss(s, t, y, T, alpha)[0]


def _compare_kd_value(got, expected, case):
    s, t, y, T, alpha = case.args
    if isinstance(got, tuple):
        return "return only the loss (one float) here; the gradient is the next exercise"
    g, problem = number_answer(got, "one number (the batch-averaged loss)")
    if problem:
        return problem
    if not np.isfinite(g):
        return f"the loss is {g}: use a numerically stable log-softmax (subtract the row max) for large logits"
    close = lambda v: abs(g - v) <= 1e-6 * max(1.0, abs(v))
    if close(expected):
        return None
    n = len(y)
    kl, kl_rev, ce, ce_T = _variants(s, t, y, T, alpha)
    wrong = [
        (n * expected, f"you summed over the batch; average over the n = {n} images instead"),
        ((alpha * kl + (1 - alpha) * ce).mean(), f"the soft term lacks the factor T^2 = {T * T:g}"),
        ((alpha * T * kl + (1 - alpha) * ce).mean(),
         f"the soft term is scaled by T; Hinton et al. scale it by T^2 = {T * T:g}"),
        ((alpha * T * T * kl_rev + (1 - alpha) * ce).mean(),
         "KL is the wrong way round: use KL(teacher || student) = sum p_teacher (log p_teacher - log p_student)"),
        ((alpha * T * T * kl + (1 - alpha) * ce_T).mean(),
         "the hard-label cross-entropy must use the student's ordinary softmax (T = 1), not softmax(s / T)"),
        (((1 - alpha) * T * T * kl + alpha * ce).mean(),
         "alpha weights the soft (teacher) term, 1 - alpha the hard labels"),
        ((alpha * T * T * kl).mean(), "the hard-label term (1 - alpha) * CE(y, s) is missing"),
        (((1 - alpha) * ce).mean(), "the soft-target term alpha * T^2 * KL is missing"),
    ]  # fmt: skip
    for value, hint in wrong:
        if close(value):
            return f"loss {g:.6g}, expected {expected:.6g}: {hint}"
    formula = "alpha * T^2 * mean KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * mean CE(y, s)"
    return f"loss {g:.6g}, expected {expected:.6g}: the loss is {formula}"


kd_loss_value = Exercise(
    "kd_loss_value",
    _kd_value_ref,
    fixed_cases=_fixed_kd_cases(),
    cases=_kd_cases,
    compare=_compare_kd_value,
    pass_line="kd_loss_value: correct on 7 batches (hand-computed, random, large logits)",
)


# --- exercise 3: its gradient -------------------------------------------------------------------


def _kd_grad_ref(s, t, y, T, alpha):
    return kd_loss(s, t, y, T, alpha)[1]


def _compare_kd_grad(got, expected, case):
    s, t, y, T, alpha = case.args
    if isinstance(got, tuple):
        return "return only the gradient array of shape (n, k)"
    g, hint = _as_float_array(got, expected.shape, "the gradient")
    if hint:
        return hint
    if not np.all(np.isfinite(g)):
        return "the gradient has NaN or inf entries: compute the softmaxes stably (subtract the row max)"
    if np.allclose(g, expected, rtol=1e-6, atol=1e-10):
        return None
    n = len(y)
    ps, pt = np.exp(_log_p(s, T)), np.exp(_log_p(t, T))
    p1 = np.exp(_log_p(s, 1.0))
    onehot = np.eye(s.shape[1])[y]
    hard = (1 - alpha) * (p1 - onehot) / n
    wrong = [
        (expected * n, f"missing the 1/n of the batch average (n = {n})"),
        (-expected, "the sign is flipped: d/ds of the KL is +T (p_student - p_teacher), of CE is p - onehot(y)"),
        (alpha * T * T * (ps - pt) / n + hard,
         f"the soft part is alpha T (p_s - p_t) / n, not alpha T^2 (p_s - p_t) / n: "
         f"the chain rule through s/T divides by T = {T:g}"),
        (alpha * (ps - pt) / n + hard, f"the soft part lacks the factor T = {T:g}: d/ds [T^2 KL] = T (p_s - p_t)"),
        (alpha * T * (ps - pt) / n, "the hard-label part (1 - alpha)(softmax(s) - onehot(y)) / n is missing"),
        (alpha * T * (ps - pt) / n + (1 - alpha) * (ps - onehot) / n,
         "the hard-label part uses softmax(s / T); it must use the ordinary softmax(s)"),
        (alpha * T * (pt - ps) / n + hard,
         "the soft part is reversed: it is alpha T (p_student - p_teacher) / n, the student's softmax(s/T) first"),
    ]  # fmt: skip
    for value, hint in wrong:
        if np.allclose(g, value, rtol=1e-6, atol=1e-10) and not np.allclose(value, expected, rtol=1e-6, atol=1e-10):
            return hint
    err = np.abs(g - expected)
    i = np.unravel_index(np.argmax(err), err.shape)
    return (
        f"gradient off at index {tuple(int(j) for j in i)}: got {g[i]:.6g}, expected {expected[i]:.6g}; "
        "it is [alpha T (softmax(s/T) - softmax(t/T)) + (1 - alpha)(softmax(s) - onehot(y))] / n"
    )


kd_loss_grad = Exercise(
    "kd_loss_grad",
    _kd_grad_ref,
    fixed_cases=_fixed_kd_cases(),
    cases=_kd_cases,
    compare=_compare_kd_grad,
    pass_line="kd_loss_grad: matches the analytic gradient on 7 batches",
)


# --- exercise 4: expected calibration error -------------------------------------------------------


def _ece_parts(probs, y, n_bins, conf=None):
    """Per-bin share of the images, accuracy and mean confidence (empty bins dropped).

    Bin m (0-based) holds the confidences in ``(m / n_bins, (m + 1) / n_bins]``; a confidence of 0
    goes to the first bin. ``conf`` overrides the confidence (to recognise a wrong one)."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1) if conf is None else conf
    correct = probs.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.digitize(conf, edges[1:-1], right=True)
    share, acc, mean_conf = [], [], []
    for m in range(n_bins):
        in_bin = bins == m
        if in_bin.any():
            share.append(in_bin.mean())
            acc.append(correct[in_bin].mean())
            mean_conf.append(conf[in_bin].mean())
    return np.array(share), np.array(acc), np.array(mean_conf)


def _ece_ref(probs, y, n_bins=15):
    share, acc, conf = _ece_parts(probs, y, n_bins)
    return float((share * np.abs(acc - conf)).sum())


def _compare_ece(got, expected, case):
    probs, y, n_bins = case.args
    if isinstance(got, (np.ndarray, list, tuple)) and np.size(got) > 1:
        return f"return one number (the ECE), got {np.size(got)} values: sum the bins' weighted gaps"
    g, problem = number_answer(got, "one number (the ECE)")
    if problem:
        return problem
    if not np.isfinite(g):
        return f"the ECE is {g}: an empty bin has no accuracy or confidence; skip empty bins"
    close = lambda v: abs(g - v) <= 1e-9 + 1e-6 * abs(v)
    if close(expected):
        return None
    share, acc, conf = _ece_parts(probs, y, n_bins)
    correct = np.asarray(probs).argmax(1) == y
    p_true = np.asarray(probs, np.float64)[np.arange(len(y)), y]
    s_t, a_t, c_t = _ece_parts(probs, y, n_bins, conf=p_true)
    top = np.asarray(probs, np.float64).max(1)
    below_1 = top < 1.0  # an answer that lost the images of confidence exactly 1 (floor(c * M) = M)
    dropped = (
        _ece_ref(np.asarray(probs)[below_1], np.asarray(y)[below_1], n_bins) * below_1.mean() if below_1.any() else 0.0
    )
    wrong = [
        (100 * expected, "the ECE is a fraction in [0, 1], not a percentage"),
        (dropped if not below_1.all() else np.nan,
         "images with confidence exactly 1.0 are missing: they belong to the last bin, ((M-1)/M, 1] "
         "(floor(c * M) gives M for them, one past the last bin)"),
        (np.abs(acc - conf).mean(),
         "weight each bin's gap |acc - conf| by the bin's share of the images, |B_m| / n; don't average over bins"),
        (abs(correct.mean() - np.asarray(probs).max(1).mean()),
         "this is |overall accuracy - mean confidence|, the same as adding the bins' signed gaps: bin the images "
         "by confidence first and take the absolute gap in each bin, not the signed one"),
        ((share * (acc - conf)).sum(), "take the absolute gap |acc(B_m) - conf(B_m)| in each bin, not the signed one"),
        ((share * (conf - acc)).sum(), "take the absolute gap |acc(B_m) - conf(B_m)| in each bin, not the signed one"),
        ((s_t * np.abs(a_t - c_t)).sum(),
         "the confidence of an image is its top probability max_i p_i, not the probability of its true class"),
        (np.abs(acc - conf).sum() / n_bins,
         "weight each bin by its share of the images, not by 1 / n_bins"),
    ]  # fmt: skip
    for value, hint in wrong:
        if close(value) and not close(expected):
            return f"ECE {g:.6g}, expected {expected:.6g}: {hint}"
    return (
        f"ECE {g:.6g}, expected {expected:.6g}: with confidence c = max_i p_i, put each image in bin "
        f"m with c in (m/M, (m+1)/M] (M = {n_bins}), then sum over the non-empty bins |B_m|/n * |acc - mean c|"
    )


def _ece_fixed_cases():
    calibrated = np.tile([0.8, 0.2], (10, 1))
    y8 = np.r_[np.zeros(8, int), np.ones(2, int)]
    y5 = np.r_[np.zeros(5, int), np.ones(5, int)]
    onehot = np.eye(3)[[0, 1, 2, 0]]
    mixed = np.array([[0.95, 0.05], [0.55, 0.45], [0.3, 0.7], [0.62, 0.38], [0.99, 0.01], [0.52, 0.48]])
    return [
        Case((calibrated, y8, 15), label="80 % confidence, 8 of 10 right (ECE 0)"),
        Case((np.tile([0.9, 0.1], (10, 1)), y5, 15), label="90 % confidence, 5 of 10 right (ECE 0.4)"),
        Case((onehot, np.array([0, 1, 1, 0]), 15), label="one-hot probabilities: confidence exactly 1.0 (last bin)"),
        Case((mixed, np.array([0, 1, 1, 0, 0, 0]), 5), label="six images in 5 bins, some bins empty"),
    ]


def _ece_cases(rng):
    cases = []
    for n, k, scale, n_bins in [(200, 10, 3.0, 15), (500, 10, 6.0, 15), (120, 4, 1.5, 10), (60, 10, 4.0, 7)]:
        z = rng.standard_normal((n, k)) * scale
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        # labels agree with the top class 70 % of the time, so bins hold both right and wrong images
        y = np.where(rng.random(n) < 0.7, p.argmax(1), rng.integers(0, k, n))
        cases.append(Case((p, y, n_bins), label=f"{n} images, {k} classes, {n_bins} bins"))
    return cases


expected_calibration_error = Exercise(
    "expected_calibration_error",
    _ece_ref,
    fixed_cases=_ece_fixed_cases(),
    cases=_ece_cases,
    compare=_compare_ece,
    pass_line="expected_calibration_error: correct on 8 cases (hand-computed, one-hot, empty bins, random)",
)
