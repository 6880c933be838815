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
from .answers import array_problem, number_answer
from .exercise import Case, Exercise
from .hints import Hints, accept

__all__ = ["softmax_T", "kd_loss_value", "kd_loss_grad", "expected_calibration_error"]


# --- exercise 1: softmax with temperature -------------------------------------------------------


def _softmax_ref(z, T):
    return softmax(z, T)


def _probabilities_form(a):
    return array_problem(
        a.got, "softmax", shape=a.expected.shape, shape_note="one probability per logit", kinds="f", holds="floats"
    )


def _overflows(a):
    if not np.all(np.isfinite(a.got)):
        return (
            f"softmax(z, T={a.args[1]}) has NaN or inf entries: exp overflows for large z / T; "
            "subtract each row's maximum from z before dividing by T and exponentiating"
        )
    return None


@accept
def _probabilities_close(a):
    return np.allclose(a.got.astype(np.float64), a.expected, rtol=1e-6, atol=1e-9)


def _columns_sum_to_one(a):
    g = a.got.astype(np.float64)
    if np.allclose(g.sum(axis=0), 1.0) and not np.allclose(g.sum(axis=-1), 1.0):
        return "each column sums to 1, not each row: normalise over the last axis (the classes), keepdims=True"
    return None


def _temperature_ignored(a):
    z, T = a.args
    if T != 1.0 and np.allclose(a.got.astype(np.float64), softmax(z, 1.0), rtol=1e-6, atol=1e-9):
        return f"this is the softmax at T = 1, but T = {T}: divide the logits by T before exponentiating"
    return None


def _temperature_multiplied(a):
    z, T = a.args
    if T != 1.0 and np.allclose(a.got.astype(np.float64), softmax(z * T, 1.0), rtol=1e-6, atol=1e-9):
        return f"you multiplied the logits by T = {T}; divide them by T (a higher T gives softer probabilities)"
    return None


def _rows_do_not_sum_to_one(a):
    if not np.allclose(a.got.astype(np.float64).sum(axis=-1), 1.0, atol=1e-6):
        return "the probabilities in a row do not sum to 1: divide by the row sum of the exponentials"
    return None


def _wrong_probabilities(a):
    g = a.got.astype(np.float64)
    err = np.abs(g - a.expected)
    i = np.unravel_index(np.argmax(err), err.shape)
    at = tuple(int(j) for j in i)
    return f"softmax(z, T={a.args[1]}) is off (at index {at}: got {g[i]:.6g}, expected {a.expected[i]:.6g})"


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
    compare=Hints(
        _probabilities_form,
        _overflows,
        _probabilities_close,
        _columns_sum_to_one,
        _temperature_ignored,
        _temperature_multiplied,
        _rows_do_not_sum_to_one,
        _wrong_probabilities,
    ),
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
        ),
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


def _pieces(a):
    """Per-row KL(teacher || student), KL the other way, CE at T = 1 and CE at T of the case."""
    return _variants(*a.args)


def _loss_near(a, value) -> bool:
    g = number_answer(a.got)[0]
    return abs(g - value) <= 1e-6 * max(1.0, abs(value))


def _loss_mistake(name, value_of, why):
    """A detector named ``name``: the loss equals ``value_of(s, t, y, T, alpha, kl, kl_rev, ce, ce_T)``, a
    known mistake; its hint is ``why(s, t, y, T, alpha)``."""

    def detector(a):
        return why(*a.args) if _loss_near(a, value_of(*a.args, *a.memo(_pieces))) else None

    detector.__name__ = detector.__qualname__ = name
    return detector


def _loss_tuple(a):
    return (
        "return only the loss (one float) here; the gradient is the next exercise" if isinstance(a.got, tuple) else None
    )


def _loss_not_a_number(a):
    return number_answer(a.got, "one number (the batch-averaged loss)")[1]


def _loss_not_finite(a):
    g = number_answer(a.got)[0]
    return (
        None
        if np.isfinite(g)
        else f"the loss is {g}: use a numerically stable log-softmax (subtract the row max) for large logits"
    )


@accept
def _loss_close(a):
    return _loss_near(a, a.expected)


def _with_loss(mistake):
    """``mistake``, its hint prefixed with the loss found and the loss expected."""

    def detector(a):
        hint = mistake(a)
        return None if hint is None else f"loss {number_answer(a.got)[0]:.6g}, expected {a.expected:.6g}: {hint}"

    detector.__name__ = detector.__qualname__ = mistake.__name__
    return detector


_LOSS_MISTAKES = [
    _loss_mistake(
        "_summed_over_batch",
        lambda s, t, y, T, alpha, *p: len(y) * kd_loss(s, t, y, T, alpha)[0],
        lambda s, t, y, T, alpha: f"you summed over the batch; average over the n = {len(y)} images instead",
    ),
    _loss_mistake(
        "_no_T_squared",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: (alpha * kl + (1 - alpha) * ce).mean(),
        lambda s, t, y, T, alpha: f"the soft term lacks the factor T^2 = {T * T:g}",
    ),
    _loss_mistake(
        "_scaled_by_T",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: (alpha * T * kl + (1 - alpha) * ce).mean(),
        lambda s, t, y, T, alpha: f"the soft term is scaled by T; Hinton et al. scale it by T^2 = {T * T:g}",
    ),
    _loss_mistake(
        "_reversed_kl",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: (alpha * T * T * kl_rev + (1 - alpha) * ce).mean(),
        lambda *_: (
            "KL is the wrong way round: use KL(teacher || student) = sum p_teacher (log p_teacher - log p_student)"
        ),
    ),
    _loss_mistake(
        "_hard_term_at_T",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: (alpha * T * T * kl + (1 - alpha) * ce_T).mean(),
        lambda *_: "the hard-label cross-entropy must use the student's ordinary softmax (T = 1), not softmax(s / T)",
    ),
    _loss_mistake(
        "_alpha_swapped",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: ((1 - alpha) * T * T * kl + alpha * ce).mean(),
        lambda *_: "alpha weights the soft (teacher) term, 1 - alpha the hard labels",
    ),
    _loss_mistake(
        "_no_hard_term",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: (alpha * T * T * kl).mean(),
        lambda *_: "the hard-label term (1 - alpha) * CE(y, s) is missing",
    ),
    _loss_mistake(
        "_no_soft_term",
        lambda s, t, y, T, alpha, kl, kl_rev, ce, ce_T: ((1 - alpha) * ce).mean(),
        lambda *_: "the soft-target term alpha * T^2 * KL is missing",
    ),
]


def _wrong_loss(a):
    formula = "alpha * T^2 * mean KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * mean CE(y, s)"
    return f"the loss is {formula}"


kd_loss_value = Exercise(
    "kd_loss_value",
    _kd_value_ref,
    fixed_cases=_fixed_kd_cases(),
    cases=_kd_cases,
    compare=Hints(
        _loss_tuple,
        _loss_not_a_number,
        _loss_not_finite,
        _loss_close,
        *(_with_loss(m) for m in _LOSS_MISTAKES),
        _with_loss(_wrong_loss),
    ),
    pass_line="kd_loss_value: correct on 7 batches (hand-computed, random, large logits)",
)


# --- exercise 3: its gradient -------------------------------------------------------------------


def _kd_grad_ref(s, t, y, T, alpha):
    return kd_loss(s, t, y, T, alpha)[1]


def _grad_tuple(a):
    return "return only the gradient array of shape (n, k)" if isinstance(a.got, tuple) else None


def _grad_form(a):
    return array_problem(a.got, "the gradient", shape=a.expected.shape, kinds="f", holds="floats")


def _grad_not_finite(a):
    if not np.all(np.isfinite(a.got)):
        return "the gradient has NaN or inf entries: compute the softmaxes stably (subtract the row max)"
    return None


def _grad_near(a, value) -> bool:
    return bool(np.allclose(a.got.astype(np.float64), value, rtol=1e-6, atol=1e-10))


@accept
def _grad_close(a):
    return _grad_near(a, a.expected)


def _probs(a):
    """softmax(s/T), softmax(t/T), softmax(s), onehot(y), and the hard part (1 - alpha)(p1 - onehot) / n."""
    s, t, y, T, alpha = a.args
    ps, pt, p1 = np.exp(_log_p(s, T)), np.exp(_log_p(t, T)), np.exp(_log_p(s, 1.0))
    onehot = np.eye(s.shape[1])[y]
    return ps, pt, p1, onehot, (1 - alpha) * (p1 - onehot) / len(y)


def _grad_mistake(name, value_of, why):
    def detector(a):
        value = value_of(a, *a.memo(_probs))
        return why(*a.args) if _grad_near(a, value) and not _grad_near(a, a.expected) else None

    detector.__name__ = detector.__qualname__ = name
    return detector


_GRAD_MISTAKES = [
    _grad_mistake(
        "_no_one_over_n",
        lambda a, *p: a.expected * len(a.args[2]),
        lambda s, t, y, T, alpha: f"missing the 1/n of the batch average (n = {len(y)})",
    ),
    _grad_mistake(
        "_sign_flipped",
        lambda a, *p: -a.expected,
        lambda *_: "the sign is flipped: d/ds of the KL is +T (p_student - p_teacher), of CE is p - onehot(y)",
    ),
    _grad_mistake(
        "_soft_T_squared",
        lambda a, ps, pt, p1, oh, hard: a.args[4] * a.args[3] ** 2 * (ps - pt) / len(a.args[2]) + hard,
        lambda s, t, y, T, alpha: (
            "the soft part is alpha T (p_s - p_t) / n, not alpha T^2 (p_s - p_t) / n: "
            f"the chain rule through s/T divides by T = {T:g}"
        ),
    ),
    _grad_mistake(
        "_soft_without_T",
        lambda a, ps, pt, p1, oh, hard: a.args[4] * (ps - pt) / len(a.args[2]) + hard,
        lambda s, t, y, T, alpha: f"the soft part lacks the factor T = {T:g}: d/ds [T^2 KL] = T (p_s - p_t)",
    ),
    _grad_mistake(
        "_no_hard_part",
        lambda a, ps, pt, p1, oh, hard: a.args[4] * a.args[3] * (ps - pt) / len(a.args[2]),
        lambda *_: "the hard-label part (1 - alpha)(softmax(s) - onehot(y)) / n is missing",
    ),
    _grad_mistake(
        "_hard_part_at_T",
        lambda a, ps, pt, p1, oh, hard: (
            (a.args[4] * a.args[3] * (ps - pt) + (1 - a.args[4]) * (ps - oh)) / len(a.args[2])
        ),
        lambda *_: "the hard-label part uses softmax(s / T); it must use the ordinary softmax(s)",
    ),
    _grad_mistake(
        "_soft_part_reversed",
        lambda a, ps, pt, p1, oh, hard: a.args[4] * a.args[3] * (pt - ps) / len(a.args[2]) + hard,
        lambda *_: (
            "the soft part is reversed: it is alpha T (p_student - p_teacher) / n, the student's softmax(s/T) first"
        ),
    ),
]


def _wrong_gradient(a):
    g = a.got.astype(np.float64)
    err = np.abs(g - a.expected)
    i = np.unravel_index(np.argmax(err), err.shape)
    return (
        f"gradient off at index {tuple(int(j) for j in i)}: got {g[i]:.6g}, expected {a.expected[i]:.6g}; "
        "it is [alpha T (softmax(s/T) - softmax(t/T)) + (1 - alpha)(softmax(s) - onehot(y))] / n"
    )


kd_loss_grad = Exercise(
    "kd_loss_grad",
    _kd_grad_ref,
    fixed_cases=_fixed_kd_cases(),
    cases=_kd_cases,
    compare=Hints(_grad_tuple, _grad_form, _grad_not_finite, _grad_close, *_GRAD_MISTAKES, _wrong_gradient),
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


def _several_values(a):
    if isinstance(a.got, (np.ndarray, list, tuple)) and np.size(a.got) > 1:
        return f"return one number (the ECE), got {np.size(a.got)} values: sum the bins' weighted gaps"
    return None


def _ece_not_a_number(a):
    return number_answer(a.got, "one number (the ECE)")[1]


def _ece_not_finite(a):
    g = number_answer(a.got)[0]
    return None if np.isfinite(g) else f"the ECE is {g}: an empty bin has no accuracy or confidence; skip empty bins"


def _ece_near(a, value) -> bool:
    g = number_answer(a.got)[0]
    return abs(g - value) <= 1e-9 + 1e-6 * abs(value)


@accept
def _ece_close(a):
    return _ece_near(a, a.expected)


def _bins(a):
    """Per-bin (share, accuracy, confidence), and the same with the true class's probability as confidence."""
    probs, y, n_bins = a.args
    p_true = np.asarray(probs, np.float64)[np.arange(len(y)), y]
    return _ece_parts(probs, y, n_bins), _ece_parts(probs, y, n_bins, conf=p_true)


def _without_confidence_one(a):
    """The ECE of an answer that lost the images of confidence exactly 1 (floor(c · M) = M), or NaN if none."""
    probs, y, n_bins = a.args
    below_1 = np.asarray(probs, np.float64).max(1) < 1.0
    if below_1.all():
        return np.nan
    return (
        _ece_ref(np.asarray(probs)[below_1], np.asarray(y)[below_1], n_bins) * below_1.mean() if below_1.any() else 0.0
    )


def _ece_mistake(name, value_of, why):
    def detector(a):
        return (
            f"ECE {number_answer(a.got)[0]:.6g}, expected {a.expected:.6g}: {why}"
            if _ece_near(a, value_of(a))
            else None
        )

    detector.__name__ = detector.__qualname__ = name
    return detector


def _overall_gap(a):
    probs, y, _ = a.args
    return abs((np.asarray(probs).argmax(1) == y).mean() - np.asarray(probs).max(1).mean())


_ECE_MISTAKES = [
    _ece_mistake("_percentage", lambda a: 100 * a.expected, "the ECE is a fraction in [0, 1], not a percentage"),
    _ece_mistake(
        "_confidence_one_missing",
        _without_confidence_one,
        "images with confidence exactly 1.0 are missing: they belong to the last bin, ((M-1)/M, 1] "
        "(floor(c * M) gives M for them, one past the last bin)",
    ),
    _ece_mistake(
        "_mean_over_bins",
        lambda a: np.abs(a.memo(_bins)[0][1] - a.memo(_bins)[0][2]).mean(),
        "weight each bin's gap |acc - conf| by the bin's share of the images, |B_m| / n; don't average over bins",
    ),
    _ece_mistake(
        "_overall_gap",
        _overall_gap,
        "this is |overall accuracy - mean confidence|, the same as adding the bins' signed gaps: bin the images "
        "by confidence first and take the absolute gap in each bin, not the signed one",
    ),
    _ece_mistake(
        "_signed_gap",
        lambda a: (a.memo(_bins)[0][0] * (a.memo(_bins)[0][1] - a.memo(_bins)[0][2])).sum(),
        "take the absolute gap |acc(B_m) - conf(B_m)| in each bin, not the signed one",
    ),
    _ece_mistake(
        "_signed_gap_reversed",
        lambda a: (a.memo(_bins)[0][0] * (a.memo(_bins)[0][2] - a.memo(_bins)[0][1])).sum(),
        "take the absolute gap |acc(B_m) - conf(B_m)| in each bin, not the signed one",
    ),
    _ece_mistake(
        "_true_class_confidence",
        lambda a: (a.memo(_bins)[1][0] * np.abs(a.memo(_bins)[1][1] - a.memo(_bins)[1][2])).sum(),
        "the confidence of an image is its top probability max_i p_i, not the probability of its true class",
    ),
    _ece_mistake(
        "_bins_weighted_equally",
        lambda a: np.abs(a.memo(_bins)[0][1] - a.memo(_bins)[0][2]).sum() / a.args[2],
        "weight each bin by its share of the images, not by 1 / n_bins",
    ),
]


def _wrong_ece(a):
    return (
        f"ECE {number_answer(a.got)[0]:.6g}, expected {a.expected:.6g}: with confidence c = max_i p_i, put each "
        f"image in bin m with c in (m/M, (m+1)/M] (M = {a.args[2]}), then sum over the non-empty bins "
        "|B_m|/n * |acc - mean c|"
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
    compare=Hints(_several_values, _ece_not_a_number, _ece_not_finite, _ece_close, *_ECE_MISTAKES, _wrong_ece),
    pass_line="expected_calibration_error: correct on 8 cases (hand-computed, one-hot, empty bins, random)",
)
