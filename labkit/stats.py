"""Statistics a learner can read: is model A better than model B, or is it noise?

Two models evaluated on the *same* test images give paired outcomes (per image: A right? B right?).
Only the images where they disagree carry information about which is better:

* :func:`mcnemar` — the exact McNemar test. Under "A and B are equally good", each of the
  ``n_d = b + c`` discordant images (b: only A right, c: only B right) is a fair coin flip, so
  ``b ~ Binomial(n_d, 1/2)``; the two-sided p-value is ``min(1, 2 · P(X <= min(b, c)))``, the same as
  ``scipy.stats.binomtest(b, n_d, 0.5).pvalue`` (the distribution is symmetric).
* :func:`paired_bootstrap` — the accuracy difference ``acc(A) − acc(B)`` with a percentile
  bootstrap interval that resamples images (both models together, so the pairing is kept).
  The per-image difference takes only the values −1, 0, +1, so resampling n images is drawing the
  three counts from a multinomial: that is what is done (exactly the same distribution, and cheap).

Training is random too: a claim about a training method is made over several seeds.

* :func:`seed_summary` — mean, standard deviation (ddof 1) and the Student-t interval of the mean:
  ``mean ± t_{(1+level)/2, k−1} · std / sqrt(k)`` over k seeds.
* :func:`verdict` — the three words every lab uses for an interval of "A − B": **"yes"** (the whole
  interval is above 0), **"no"** (below 0), **"not resolved at this sample size"** (it contains 0).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from .validation import check_array, check_int, check_real

__all__ = ["mcnemar", "paired_bootstrap", "seed_summary", "verdict", "VERDICTS"]

#: the three verdict words, in the order (above 0, below 0, contains 0)
VERDICTS = ("yes", "no", "not resolved at this sample size")


def _check_pair(correct_a, correct_b):
    a = check_array(correct_a, "correct_a (per-image correctness, e.g. pred == y)", kind="b", ndim=1, non_empty=True)
    b = check_array(correct_b, "correct_b (per-image correctness, e.g. pred == y)", kind="b", ndim=1, non_empty=True)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must cover the same images, got lengths {a.size} and {b.size}")
    return a, b


def _check_level(level) -> float:
    return check_real("level", level, 0.0, 1.0, lo_open=True, hi_open=True, what=" (e.g. 0.95)")


def mcnemar(correct_a, correct_b) -> float:
    """Exact two-sided McNemar p-value for "A and B have the same accuracy" on paired outcomes.

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (n,)
        Per-image correctness of models A and B on the same n images.

    Returns
    -------
    p : float in (0, 1]
        1.0 when the models never disagree.

    Examples
    --------
    >>> a = np.array([True] * 10 + [False] * 2)
    >>> b = np.array([False] * 10 + [True] * 2)
    >>> round(mcnemar(a, b), 4)
    0.0386
    """
    a, b = _check_pair(correct_a, correct_b)
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    n_d = only_a + only_b
    if n_d == 0:
        return 1.0
    return float(min(1.0, 2.0 * scipy.stats.binom.cdf(min(only_a, only_b), n_d, 0.5)))


def paired_bootstrap(correct_a, correct_b, n_boot: int = 10_000, level: float = 0.95, seed: int = 0):
    """Accuracy of A minus accuracy of B, with a paired percentile-bootstrap interval.

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (n,)
        Per-image correctness on the same images.
    n_boot : int
        Bootstrap resamples (of n images each, with replacement).
    level : float in (0, 1)
        Coverage of the interval.
    seed : int
        Seed of ``np.random.default_rng``: the same inputs and seed give the same interval.

    Returns
    -------
    diff : float
        ``mean(correct_a) − mean(correct_b)`` (a fraction; × 100 for percentage points).
    lo, hi : float
        The ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the resampled differences.
    """
    a, b = _check_pair(correct_a, correct_b)
    level = _check_level(level)
    n_boot = check_int("n_boot", n_boot, lo=1)
    n = a.size
    d = a.astype(np.int64) - b.astype(np.int64)
    p = np.array([np.count_nonzero(d == -1), np.count_nonzero(d == 0), np.count_nonzero(d == 1)]) / n
    counts = np.random.default_rng(seed).multinomial(n, p, size=int(n_boot))  # (n_boot, 3)
    diffs = (counts[:, 2] - counts[:, 0]) / n
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return float(d.mean()), float(lo), float(hi)


def seed_summary(values, level: float = 0.95):
    """Mean, standard deviation and Student-t interval of the mean over seeds.

    Parameters
    ----------
    values : array_like of float, shape (k,), k >= 2, finite
        One result per seed (e.g. accuracies, or paired differences A − B per seed).
    level : float in (0, 1)

    Returns
    -------
    mean, std, lo, hi : float
        ``std`` with ddof=1; ``lo, hi = mean ∓ t_{(1+level)/2, k−1} · std / sqrt(k)``.
    """
    v = check_array(values, "values (one per seed)", kind="fiu", finite=True)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"seed_summary needs a 1-D array of at least 2 seeds, got shape {v.shape}")
    level = _check_level(level)
    v = v.astype(np.float64)
    k = v.size
    mean, std = float(v.mean()), float(v.std(ddof=1))
    half = float(scipy.stats.t.ppf((1 + level) / 2, k - 1)) * std / np.sqrt(k)
    return mean, std, mean - half, mean + half


def verdict(lo, hi) -> str:
    """``"yes"`` if ``lo > 0``, ``"no"`` if ``hi < 0``, else ``"not resolved at this sample size"``.

    ``(lo, hi)`` is an interval for "A − B" (e.g. from :func:`paired_bootstrap` or
    :func:`seed_summary`), so "yes" answers "is A better than B?".
    """
    lo, hi = check_real("lo", lo), check_real("hi", hi)
    if lo > hi:
        raise ValueError(f"an interval needs lo <= hi, got lo={lo}, hi={hi}")
    if lo > 0:
        return VERDICTS[0]
    if hi < 0:
        return VERDICTS[1]
    return VERDICTS[2]
