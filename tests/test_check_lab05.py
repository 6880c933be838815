"""Lab 05's checks pass the reference and fail the stub and plausible wrong answers, with specific hints."""

import sys

import numpy as np
import pytest
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import lab05


def stub(*args):
    raise NotImplementedError()


def _lsm(z, T=1.0):
    u = (z - z.max(axis=-1, keepdims=True)) / T
    return u - np.log(np.exp(u).sum(axis=-1, keepdims=True))


# --- softmax_T ----------------------------------------------------------------------------------


def good_softmax(z, T):
    return np.exp(_lsm(z, T))


def test_softmax_T_passes_reference():
    assert lab05.softmax_T.passes(good_softmax)
    assert lab05.softmax_T.passes(
        lambda z, T: (e := np.exp((z - z.max(1, keepdims=True)) / T)) / e.sum(1, keepdims=True)
    )


def test_softmax_T_fails_stub_and_wrong_answers():
    ex = lab05.softmax_T
    assert "not implemented" in ex.verdict(stub)
    naive = lambda z, T: np.exp(z / T) / np.exp(z / T).sum(axis=1, keepdims=True)
    assert "subtract each row's maximum" in ex.verdict(naive)
    # subtracting the max of z (not of z / T) still overflows at tiny T
    half_stable = lambda z, T: (e := np.exp(z / T - z.max(1, keepdims=True))) / e.sum(1, keepdims=True)
    assert "subtract each row's maximum" in ex.verdict(half_stable)
    assert "at T = 1" in ex.verdict(lambda z, T: good_softmax(z, 1.0))
    assert "multiplied the logits by T" in ex.verdict(lambda z, T: good_softmax(z * T, 1.0))
    wrong_axis = lambda z, T: (e := np.exp((z - z.max()) / T)) / e.sum(axis=0, keepdims=True)
    assert "each column sums to 1" in ex.verdict(wrong_axis)
    assert "sum to 1" in ex.verdict(lambda z, T: np.exp(_lsm(z, T)) * 1.1)
    assert "shape" in ex.verdict(lambda z, T: good_softmax(z, T).ravel())
    assert "numpy array" in ex.verdict(lambda z, T: good_softmax(z, T).tolist())
    assert "softmax(z, T=2.0) is off" in ex.verdict(lambda z, T: good_softmax(z, T * T))  # T squared


# --- kd_loss_value ------------------------------------------------------------------------------


def _parts(s, t, y, T):
    ls, lt, l1 = _lsm(s, T), _lsm(t, T), _lsm(s, 1.0)
    pt, ps = np.exp(lt), np.exp(ls)
    rows = np.arange(len(y))
    return (pt * (lt - ls)).sum(1), (ps * (ls - lt)).sum(1), -l1[rows, y], -ls[rows, y]


def good_value(s, t, y, T, alpha):
    kl, _, ce, _ = _parts(s, t, y, T)
    return float(np.mean(alpha * T * T * kl + (1 - alpha) * ce))


def test_kd_loss_value_passes_reference():
    assert lab05.kd_loss_value.passes(good_value)
    assert lab05.kd_loss_value.passes(lambda *a: np.float32(good_value(*a)))  # float32 rounding is within tolerance


def test_kd_loss_value_fails_stub_and_wrong_answers():
    ex = lab05.kd_loss_value
    assert "not implemented" in ex.verdict(stub)

    def variant(fn):
        return lambda s, t, y, T, alpha: float(np.mean(fn(*_parts(s, t, y, T), T, alpha)))

    assert "average over the n" in ex.verdict(lambda *a: good_value(*a) * len(a[2]))
    assert "lacks the factor T^2" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: a * kl + (1 - a) * ce))
    assert "scaled by T" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: a * T * kl + (1 - a) * ce))
    assert "wrong way round" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: a * T * T * kr + (1 - a) * ce))
    assert "ordinary softmax (T = 1)" in ex.verdict(
        variant(lambda kl, kr, ce, ceT, T, a: a * T * T * kl + (1 - a) * ceT)
    )
    assert "alpha weights the soft" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: (1 - a) * T * T * kl + a * ce))
    assert "hard-label term" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: a * T * T * kl))
    assert "soft-target term" in ex.verdict(variant(lambda kl, kr, ce, ceT, T, a: (1 - a) * ce))
    assert "only the loss" in ex.verdict(lambda *a: (good_value(*a), None))

    def naive(s, t, y, T, alpha):  # log of an unstable softmax: inf/nan for logits of 1000
        ps = np.exp(s / T) / np.exp(s / T).sum(1, keepdims=True)
        pt = np.exp(t / T) / np.exp(t / T).sum(1, keepdims=True)
        p1 = np.exp(s) / np.exp(s).sum(1, keepdims=True)
        kl = (pt * np.log(pt / ps)).sum(1)
        return float(np.mean(alpha * T * T * kl - (1 - alpha) * np.log(p1[np.arange(len(y)), y])))

    assert "stable" in ex.verdict(naive)
    assert "return a float, got str" in ex.verdict(lambda *a: str(good_value(*a)))
    in_bits = variant(lambda kl, kr, ce, ceT, T, a: (a * T * T * kl + (1 - a) * ce) / np.log(2))  # log base 2
    assert "the loss is alpha * T^2 * mean KL" in ex.verdict(in_bits)


# --- kd_loss_grad -------------------------------------------------------------------------------


def good_grad(s, t, y, T, alpha):
    n = len(y)
    ps, pt, p1 = np.exp(_lsm(s, T)), np.exp(_lsm(t, T)), np.exp(_lsm(s, 1.0))
    onehot = np.eye(s.shape[1])[y]
    return (alpha * T * (ps - pt) + (1 - alpha) * (p1 - onehot)) / n


def test_kd_loss_grad_passes_reference():
    assert lab05.kd_loss_grad.passes(good_grad)
    assert lab05.kd_loss_grad.passes(lambda *a: good_grad(*a).astype(np.float32))


def test_kd_loss_grad_fails_stub_and_wrong_answers():
    ex = lab05.kd_loss_grad
    assert "not implemented" in ex.verdict(stub)

    def variant(fn):
        def grad(s, t, y, T, alpha):
            ps, pt, p1 = np.exp(_lsm(s, T)), np.exp(_lsm(t, T)), np.exp(_lsm(s, 1.0))
            onehot = np.eye(s.shape[1])[y]
            return fn(ps, pt, p1, onehot, T, alpha) / len(y)

        return grad

    assert "1/n" in ex.verdict(lambda *a: good_grad(*a) * len(a[2]))
    assert "sign is flipped" in ex.verdict(lambda *a: -good_grad(*a))
    assert "not alpha T^2" in ex.verdict(
        variant(lambda ps, pt, p1, oh, T, a: a * T * T * (ps - pt) + (1 - a) * (p1 - oh))
    )
    assert "lacks the factor T" in ex.verdict(variant(lambda ps, pt, p1, oh, T, a: a * (ps - pt) + (1 - a) * (p1 - oh)))
    assert "hard-label part" in ex.verdict(variant(lambda ps, pt, p1, oh, T, a: a * T * (ps - pt)))
    assert "ordinary softmax(s)" in ex.verdict(
        variant(lambda ps, pt, p1, oh, T, a: a * T * (ps - pt) + (1 - a) * (ps - oh))
    )
    # the KL taken the other way round gives a different, non-trivially wrong gradient
    reversed_kl = variant(lambda ps, pt, p1, oh, T, a: a * T * (pt - ps) + (1 - a) * (p1 - oh))
    assert "soft part is reversed" in ex.verdict(reversed_kl)
    assert "shape" in ex.verdict(lambda *a: good_grad(*a).T)
    assert "only the gradient" in ex.verdict(lambda *a: (0.0, good_grad(*a)))

    def naive(s, t, y, T, alpha):  # softmax without subtracting the max: NaN for logits of 1000
        soft = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)
        with np.errstate(over="ignore", invalid="ignore"):
            return (alpha * T * (soft(s / T) - soft(t / T)) + (1 - alpha) * (soft(s) - np.eye(s.shape[1])[y])) / len(y)

    assert "NaN or inf" in ex.verdict(naive)
    alpha_swapped = variant(lambda ps, pt, p1, oh, T, a: (1 - a) * T * (ps - pt) + a * (p1 - oh))
    assert "gradient off at index" in ex.verdict(alpha_swapped)


# --- expected_calibration_error ---------------------------------------------------------------------


def good_ece(probs, y, n_bins=15):
    conf, correct = probs.max(1), probs.argmax(1) == y
    bins = np.minimum(np.ceil(conf * n_bins).astype(int) - 1, n_bins - 1).clip(0)  # (m/M, (m+1)/M]
    return float(
        sum(
            (bins == m).mean() * abs(correct[bins == m].mean() - conf[bins == m].mean())
            for m in range(n_bins)
            if (bins == m).any()
        )
    )


def _ece_variant(gap, weight=True, conf_of=None):
    def ece(probs, y, n_bins=15):
        conf = probs.max(1) if conf_of is None else conf_of(probs, y)
        correct = probs.argmax(1) == y
        bins = np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
        parts = [
            (b.mean(), gap(correct[b].mean(), conf[b].mean())) for b in (bins == m for m in range(n_bins)) if b.any()
        ]
        return float(sum(w * g for w, g in parts) if weight else np.mean([g for _, g in parts]))

    return ece


def _non_empty_bins(probs, n_bins):
    bins = np.digitize(probs.max(1), np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
    return len(np.unique(bins))


def test_expected_calibration_error_passes_reference():
    ex = lab05.expected_calibration_error
    assert ex.passes(good_ece)
    assert ex.passes(_ece_variant(lambda a, c: abs(a - c)))
    assert ex.passes(lambda *a: np.float32(good_ece(*a)))


def test_expected_calibration_error_hand_cases():
    ref = lab05.expected_calibration_error.reference
    y5 = np.r_[np.zeros(5, int), np.ones(5, int)]
    assert abs(ref(np.tile([0.9, 0.1], (10, 1)), y5, 15) - 0.4) < 1e-12
    assert ref(np.tile([0.8, 0.2], (10, 1)), np.r_[np.zeros(8, int), np.ones(2, int)], 15) < 1e-12
    assert ref(np.eye(3), np.arange(3), 15) == 0.0  # one-hot and right: confidence 1 in the last bin


def test_expected_calibration_error_fails_stub_and_wrong_answers():
    ex = lab05.expected_calibration_error
    assert "not implemented" in ex.verdict(stub)
    assert "weight each bin's gap" in ex.verdict(_ece_variant(lambda a, c: abs(a - c), weight=False))
    assert "not the signed one" in ex.verdict(_ece_variant(lambda a, c: a - c))
    assert "not the signed one" in ex.verdict(_ece_variant(lambda a, c: c - a))
    assert "top probability" in ex.verdict(
        _ece_variant(lambda a, c: abs(a - c), conf_of=lambda p, y: p[np.arange(len(y)), y])
    )
    assert "bin the images by confidence" in ex.verdict(
        lambda p, y, n_bins=15: abs((p.argmax(1) == y).mean() - p.max(1).mean())
    )
    assert "not a percentage" in ex.verdict(lambda *a: 100 * good_ece(*a))
    assert "one number" in ex.verdict(lambda p, y, n_bins=15: np.full(n_bins, good_ece(p, y, n_bins)))
    assert "return a float, got str" in ex.verdict(lambda *a: str(good_ece(*a)))
    per_bin_mean = _ece_variant(lambda a, c: abs(a - c), weight=False)
    equal_weights = lambda p, y, n_bins=15: per_bin_mean(p, y, n_bins) * _non_empty_bins(p, n_bins) / n_bins
    assert "not by 1 / n_bins" in ex.verdict(equal_weights)
    assert "sum over the non-empty bins" in ex.verdict(_ece_variant(lambda a, c: (a - c) ** 2))  # squared gaps

    def floor_bins(probs, y, n_bins=15):  # floor(c * M) sends a confidence of exactly 1 past the last bin
        conf, correct = probs.max(1), probs.argmax(1) == y
        gaps = np.zeros(n_bins)
        bins = np.floor(conf * n_bins).astype(int)
        for m in range(n_bins):
            if (bins == m).any():
                gaps[m] = (bins == m).mean() * abs(correct[bins == m].mean() - conf[bins == m].mean())
        return float(gaps.sum())

    assert "exactly 1.0 are missing" in ex.verdict(floor_bins)

    def nan_bins(probs, y, n_bins=15):  # averages over empty bins too
        conf, correct = probs.max(1), probs.argmax(1) == y
        bins = np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
        with np.errstate(invalid="ignore"):
            return float(
                sum(
                    (bins == m).mean() * abs(np.mean(correct[bins == m]) - np.mean(conf[bins == m]))
                    for m in range(n_bins)
                )
            )

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert "skip empty bins" in ex.verdict(nan_bins)


def test_checks_print_one_line(capsys):
    lab05.softmax_T(good_softmax)
    lab05.kd_loss_value(good_value)
    lab05.kd_loss_grad(good_grad)
    lab05.expected_calibration_error(good_ece)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        lab05.softmax_T.pass_line,
        lab05.kd_loss_value.pass_line,
        lab05.kd_loss_grad.pass_line,
        lab05.expected_calibration_error.pass_line,
    ]
    with pytest.raises(AssertionError, match="^not implemented"):  # a failing check raises its hint
        lab05.kd_loss_grad(stub)
    assert capsys.readouterr().out == ""


def test_cases_depend_only_on_rng():
    for ex in (lab05.softmax_T, lab05.kd_loss_value, lab05.kd_loss_grad, lab05.expected_calibration_error):
        a = ex.cases(np.random.default_rng(7))
        b = ex.cases(np.random.default_rng(7))
        for ca, cb in zip(a, b):
            for x, y in zip(ca.args, cb.args):
                np.testing.assert_array_equal(x, y)


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab05)
    assert_every_hint_reached(sys.modules[__name__], lab05)
