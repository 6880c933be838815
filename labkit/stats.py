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
* :func:`seed_image_bootstrap` — the claim a lab makes about a training method: "A beats B" over
  seeds *and* over test images. Each of k seeds trains A and B and tests them on the same n images,
  so the result has two sources of noise — which seeds were drawn and which images were drawn — and
  a t-interval over the k per-seed differences sees only the first (all k runs share one test set).
  The two-level bootstrap redraws both; see its docstring for how, and tests/test_stats.py for its
  coverage on simulated experiments.
* :func:`verdict` — the three words every lab uses for an interval of "A − B": **"yes"** (the whole
  interval is above 0), **"no"** (below 0), **"not resolved at this sample size"** (it contains 0).

Many verdicts in one lab are a *family*: at 95 % each, one in twenty true ties comes out "yes" or
"no" by chance. :func:`holm` adjusts a family's p-values (Holm 1979: controls the chance of any false
verdict in the family at α, uniformly more powerful than Bonferroni), and :func:`family_verdicts`
turns adjusted p-values into the verdict words.

Language models are compared on held-out text: :func:`window_bootstrap` and
:func:`paired_window_bootstrap` resample the evaluation windows (each a block of tokens scored by its
mean negative log-likelihood) to give perplexity intervals.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from .validation import check_array, check_int, check_real

__all__ = [
    "mcnemar",
    "paired_bootstrap",
    "seed_summary",
    "seed_image_bootstrap",
    "seed_image_pvalue",
    "holm",
    "family_verdicts",
    "window_bootstrap",
    "paired_window_bootstrap",
    "paired_window_pvalue",
    "verdict",
    "VERDICTS",
]

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


def _check_seed_image(correct_a, correct_b):
    what = "(per-seed, per-image correctness or score, shape (seeds, images), e.g. preds == y)"
    a = check_array(correct_a, f"correct_a {what}", kind="bfiu", ndim=2, non_empty=True, finite=True)
    b = check_array(correct_b, f"correct_b {what}", kind="bfiu", ndim=2, non_empty=True, finite=True)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must cover the same seeds and images, got {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"a claim over seeds needs at least 2 seeds (rows), got {a.shape[0]}")
    return a, b


def _seed_image_replicates(a, b, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` bootstrap replicates of mean(a − b) over seeds and images (see seed_image_bootstrap)."""
    d = a.astype(np.float64) - b.astype(np.float64)  # (k, n); for correctness the values -1, 0, +1
    k, n = d.shape
    # The image-by-seed interaction (residual mean square of the two-way layout): the part of the
    # between-seed spread that image noise alone puts into k per-seed means on n images.
    residual = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
    ms_interaction = float((residual**2).sum() / ((k - 1) * max(n - 1, 1)))
    # Resampling n images is drawing how many times each distinct column of d (its k outcomes) recurs.
    columns, counts = np.unique(d, axis=1, return_counts=True)
    rng = np.random.default_rng(seed)
    per_seed = np.empty((n_boot, k))  # each seed on the same redrawn images
    chunk = max(1, 2_000_000 // columns.shape[1])  # real-valued scores can have n distinct columns: bound the memory
    for start in range(0, n_boot, chunk):
        redraw = rng.multinomial(n, counts / n, size=min(chunk, n_boot - start))  # (replicates, distinct columns)
        per_seed[start : start + len(redraw)] = redraw @ columns.T / n
    seed_var = np.maximum(per_seed.var(axis=1, ddof=1) - ms_interaction / n, 0.0)
    seed_effect = np.sqrt(seed_var / k) * rng.standard_t(k - 1, size=n_boot)
    return per_seed.mean(axis=1) + seed_effect


def seed_image_bootstrap(correct_a, correct_b, n_boot: int = 10_000, level: float = 0.95, seed: int = 0):
    """Accuracy of A minus B over seeds and test images, with a two-level bootstrap interval.

    Seed s trains A and B (same seed, same data order) and tests both on the same n images. The
    interval is for the difference a new seed would give on new images from the same source:

    1. **Images.** Each replicate redraws n images with replacement — the same draw for every
       seed and both models, so every pairing is kept — and recomputes the k per-seed differences.
    2. **Seeds.** With k = 3–5 seeds, a percentile resample of the seeds has only a handful of
       distinct outcomes (10 for k = 3) and its interval covers far less than ``level`` when seeds
       differ (tests/test_stats.py measures it). So the seed level is redrawn as Student's t with
       k − 1 degrees of freedom, scaled by the spread of the per-seed differences net of the part
       image noise already explains (the image-by-seed interaction of the two-way layout).

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (k, n), k >= 2
        ``correct_a[s, i]``: did model A of seed s classify test image i correctly. Real-valued
        per-image scores are taken too (the difference is then a difference of mean scores): the
        midpoint of two fixed models, ``(correct_p + correct_q) / 2``, makes "A ends above the
        midpoint of P and Q" a claim; a per-image measurement (a logit's spread, a confidence)
        compares two methods by its mean. Scores with many distinct values cost more: the image
        redraw then has up to n categories.
    n_boot : int
        Bootstrap replicates.
    level : float in (0, 1)
        Coverage of the interval.
    seed : int
        Seed of ``np.random.default_rng``: the same inputs and seed give the same interval.

    Returns
    -------
    diff : float
        ``mean(correct_a) − mean(correct_b)`` over all seeds and images (a fraction).
    lo, hi : float
        The ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the replicates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> hard = rng.random(2000) < 0.15                      # images both methods tend to miss
    >>> a = ~hard & (rng.random((3, 2000)) < 0.97)          # A: 3 seeds
    >>> b = ~hard & (rng.random((3, 2000)) < 0.95)          # B: 3 seeds, 2 pp worse where it can be right
    >>> diff, lo, hi = seed_image_bootstrap(a, b, n_boot=2000)
    >>> verdict(lo, hi)
    'yes'
    """
    a, b = _check_seed_image(correct_a, correct_b)
    level = _check_level(level)
    n_boot = check_int("n_boot", n_boot, lo=1)
    replicates = _seed_image_replicates(a, b, n_boot, check_int("seed", seed, lo=0))
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def _two_sided_p(replicates: np.ndarray) -> float:
    """Percentile-bootstrap p-value of "the difference is 0": twice the smaller tail beyond 0."""
    below, above = np.mean(replicates <= 0), np.mean(replicates >= 0)
    return float(min(1.0, 2.0 * min(below, above)))


def seed_image_pvalue(correct_a, correct_b, n_boot: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of "A and B are equally accurate", from :func:`seed_image_bootstrap`'s replicates.

    Its interval at ``level`` excludes 0 exactly when this p-value is below ``1 − level`` (up to
    the resolution ``1 / n_boot``): feed these to :func:`holm` for a family of training claims.
    """
    a, b = _check_seed_image(correct_a, correct_b)
    n_boot = check_int("n_boot", n_boot, lo=1)
    return _two_sided_p(_seed_image_replicates(a, b, n_boot, check_int("seed", seed, lo=0)))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    Sort the m p-values ascending, multiply the i-th smallest (i = 0, 1, ...) by ``m − i``, carry the
    running maximum (an adjusted p-value never falls below the one before it), cap at 1. Rejecting
    where the adjusted p-value is below α keeps the chance of *any* false rejection in the family
    at most α (Holm 1979).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    array([0.03, 0.06, 0.06])
    """
    p = check_array(pvalues, "pvalues (one per verdict of the family)", kind="fiu", ndim=1, finite=True)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"p-values lie in [0, 1], got values from {p.min()} to {p.max()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order].astype(np.float64))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def family_verdicts(diffs, pvalues, alpha: float = 0.05) -> list:
    """The verdict word of each comparison of a family, after Holm's adjustment.

    Parameters
    ----------
    diffs : array_like of float, shape (m,)
        Each comparison's estimate of "A − B" (its sign decides "yes" or "no").
    pvalues : array_like of float, shape (m,)
        Each comparison's two-sided p-value (:func:`mcnemar`, :func:`seed_image_pvalue`, ...).
    alpha : float in (0, 1)
        The family-wise error rate.

    Returns
    -------
    list of str
        ``"yes"`` / ``"no"`` where the Holm-adjusted p-value is below ``alpha`` (by the sign of the
        difference), otherwise ``"not resolved at this sample size"``.
    """
    d = check_array(diffs, "diffs (one per comparison)", kind="fiu", ndim=1, finite=True)
    adjusted = holm(pvalues)
    if adjusted.size != d.size:
        raise ValueError(f"one p-value per difference: got {d.size} differences and {adjusted.size} p-values")
    alpha = check_real("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True, what=" (e.g. 0.05)")
    words = []
    for diff, p in zip(d, adjusted):
        if p < alpha and diff > 0:
            words.append(VERDICTS[0])
        elif p < alpha and diff < 0:
            words.append(VERDICTS[1])
        else:
            words.append(VERDICTS[2])
    return words


def _check_windows(nll, name: str) -> np.ndarray:
    what = f"{name} (mean negative log-likelihood per window, nats per token)"
    return check_array(nll, what, kind="fiu", ndim=1, finite=True, non_empty=True).astype(np.float64)


def window_bootstrap(nll, n_boot: int = 10_000, level: float = 0.95, seed: int = 0):
    """Perplexity over held-out windows, with a percentile-bootstrap interval that resamples windows.

    Parameters
    ----------
    nll : array_like of float, shape (w,)
        Mean negative log-likelihood (nats per token) of each of w windows of equal length, e.g.
        ``labkit.metrics.window_nll(model, tokens, context)``.

    Returns
    -------
    ppl, lo, hi : float
        ``exp(mean(nll))`` and the interval's ends.
    """
    x = _check_windows(nll, "nll")
    level = _check_level(level)
    n_boot = check_int("n_boot", n_boot, lo=1)
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    lo, hi = np.exp(np.quantile(x[idx].mean(axis=1), [(1 - level) / 2, (1 + level) / 2]))
    return float(np.exp(x.mean())), float(lo), float(hi)


def _paired_windows(nll_a, nll_b):
    a, b = _check_windows(nll_a, "nll_a"), _check_windows(nll_b, "nll_b")
    if a.shape != b.shape:
        raise ValueError(f"nll_a and nll_b must score the same windows, got {a.size} and {b.size} windows")
    return a, b


def _paired_window_replicates(a, b, n_boot: int, seed: int) -> np.ndarray:
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    return np.exp(a[idx].mean(axis=1)) - np.exp(b[idx].mean(axis=1))


def paired_window_bootstrap(nll_a, nll_b, n_boot: int = 10_000, level: float = 0.95, seed: int = 0):
    """Perplexity of A minus perplexity of B on the same windows, with a paired bootstrap interval.

    The windows are resampled together for both models (the pairing is kept: a hard passage is hard
    for both). A negative difference means A predicts the text better.

    Returns
    -------
    diff, lo, hi : float
        ``exp(mean(nll_a)) − exp(mean(nll_b))`` and the interval's ends.
    """
    a, b = _paired_windows(nll_a, nll_b)
    level = _check_level(level)
    n_boot = check_int("n_boot", n_boot, lo=1)
    replicates = _paired_window_replicates(a, b, n_boot, seed)
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(np.exp(a.mean()) - np.exp(b.mean())), float(lo), float(hi)


def paired_window_pvalue(nll_a, nll_b, n_boot: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of "A and B have the same perplexity", from :func:`paired_window_bootstrap`'s replicates."""
    a, b = _paired_windows(nll_a, nll_b)
    return _two_sided_p(_paired_window_replicates(a, b, check_int("n_boot", n_boot, lo=1), seed))
