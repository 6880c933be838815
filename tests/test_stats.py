"""labkit.stats: exact McNemar against scipy.stats.binomtest, the paired bootstrap, the t-interval
against scipy.stats.t, and the three verdict words on a clear win, a clear loss and a tie."""

import numpy as np
import pytest
import scipy.stats

from labkit.stats import VERDICTS, mcnemar, paired_bootstrap, seed_summary, verdict


def pair(only_a, only_b, both=50, neither=10):
    a = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * neither)
    b = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * neither)
    return a, b


@pytest.mark.parametrize("only_a,only_b", [(10, 2), (2, 10), (5, 5), (0, 7), (1, 0), (30, 18), (100, 80)])
def test_mcnemar_equals_exact_binomial_test(only_a, only_b):
    a, b = pair(only_a, only_b)
    expected = scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar(a, b) == pytest.approx(expected, rel=1e-12)
    assert mcnemar(b, a) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_ignores_concordant_pairs_and_no_disagreement_gives_one():
    a, b = pair(10, 2, both=0, neither=0)
    a2, b2 = pair(10, 2, both=500, neither=300)
    assert mcnemar(a, b) == mcnemar(a2, b2)
    a, b = pair(0, 0)
    assert mcnemar(a, b) == 1.0


def test_paired_bootstrap(rng):
    a, b = pair(40, 10, both=400, neither=50)
    diff, lo, hi = paired_bootstrap(a, b, n_boot=4000, seed=0)
    assert diff == pytest.approx((40 - 10) / 500)
    assert lo < diff < hi and lo > 0
    # close to the normal approximation of the paired difference
    d = a.astype(float) - b.astype(float)
    se = d.std(ddof=0) / np.sqrt(d.size)
    assert lo == pytest.approx(diff - 1.96 * se, abs=0.01) and hi == pytest.approx(diff + 1.96 * se, abs=0.01)
    assert paired_bootstrap(a, b, n_boot=4000, seed=0) == (diff, lo, hi)  # seeded
    assert paired_bootstrap(a, b, n_boot=4000, seed=1) != (diff, lo, hi)
    # the interval comes from resampling pairs, not from each model separately: identical models, width 0
    assert paired_bootstrap(a, a, n_boot=100) == (0.0, 0.0, 0.0)
    _, lo90, hi90 = paired_bootstrap(a, b, n_boot=4000, level=0.9)
    assert lo90 > lo and hi90 < hi


def test_seed_summary_is_the_t_interval():
    v = np.array([0.81, 0.83, 0.80, 0.84])
    mean, std, lo, hi = seed_summary(v)
    assert mean == pytest.approx(v.mean()) and std == pytest.approx(v.std(ddof=1))
    t_lo, t_hi = scipy.stats.t.interval(0.95, 3, loc=v.mean(), scale=scipy.stats.sem(v))
    assert lo == pytest.approx(t_lo, rel=1e-12) and hi == pytest.approx(t_hi, rel=1e-12)
    _, _, lo2, hi2 = seed_summary([1, 2])
    assert (lo2, hi2) == pytest.approx(scipy.stats.t.interval(0.95, 1, loc=1.5, scale=0.5))


def test_verdict_words_on_a_clear_win_a_clear_loss_and_a_tie():
    assert VERDICTS == ("yes", "no", "not resolved at this sample size")
    win = paired_bootstrap(*pair(60, 5, both=300))
    loss = paired_bootstrap(*pair(5, 60, both=300))
    tie = paired_bootstrap(*pair(20, 20, both=300))
    assert verdict(win[1], win[2]) == "yes"
    assert verdict(loss[1], loss[2]) == "no"
    assert verdict(tie[1], tie[2]) == "not resolved at this sample size"
    assert verdict(*seed_summary([0.02, 0.03, 0.025])[2:]) == "yes"
    assert verdict(*seed_summary([-0.02, 0.03, 0.001])[2:]) == "not resolved at this sample size"
    assert verdict(0.0, 0.1) == "not resolved at this sample size"  # 0 inside the closed interval
    assert verdict(-0.1, 0.0) == "not resolved at this sample size"


def test_validation():
    a, b = pair(3, 2)
    with pytest.raises(TypeError, match="boolean"):
        mcnemar(a.astype(int), b)
    with pytest.raises(ValueError, match="same images"):
        mcnemar(a, b[:-1])
    with pytest.raises(ValueError, match="must not be empty"):
        paired_bootstrap(np.array([], bool), np.array([], bool))
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap(a, b, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(a, b, level=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        seed_summary([0.9])
    with pytest.raises(ValueError, match="NaN"):
        seed_summary([0.9, np.nan])
    with pytest.raises(ValueError, match="lo <= hi"):
        verdict(0.2, 0.1)
    with pytest.raises(ValueError, match="finite"):
        verdict(float("nan"), 0.1)
