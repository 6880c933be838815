"""Checks for lab 08 (a worked example, audited): the tutorial's two functions, fixed.

* ``weight_pruning(W, sparsity)``: unstructured magnitude pruning. Zero the ``floor(sparsity · W.size)``
  entries of smallest ``|w|``; the matrix keeps its shape.
* ``weight_quantization(W, w)``: ``w``-bit affine quantization over the range of W (extended to
  contain 0), with a zero point so that 0 is exactly representable, returned dequantized:
  ``scale = (b − a) / (2^w − 1)``, ``z = round(−a / scale)``,
  ``q = clamp(round(W / scale) + z, 0, 2^w − 1)``, result ``scale · (q − z)`` (float32).
"""

from __future__ import annotations

import math

import numpy as np

from .answers import array_problem, show
from .exercise import Case, Exercise
from .hints import Hints, accept

__all__ = ["weight_pruning", "weight_quantization", "reference_pruning", "reference_quantization"]

TUTORIAL_W = np.array([[1, 0, -1], [0, 1, 0], [-1, 0, 1]])
PRUNED_3X3 = np.array([[0.9, 0, -0.4], [0, 0.35, 0], [-0.7, 0, 0.2]], dtype=np.float32)


def reference_pruning(W, sparsity):
    """Magnitude pruning of a whole array: the ``floor(sparsity · size)`` smallest ``|w|`` become 0."""
    W = np.asarray(W)
    k = math.floor(sparsity * W.size)
    order = np.argsort(np.abs(W).ravel(), kind="stable")  # ties: the earlier entry goes first
    out = W.copy()
    out.ravel()[order[:k]] = 0
    return out


def reference_quantization(W, w):
    """``w``-bit affine quantize–dequantize over [min(W, 0), max(W, 0)] with an exact zero (float32)."""
    W = np.asarray(W, dtype=np.float64)
    a, b = min(float(W.min()), 0.0), max(float(W.max()), 0.0)
    levels = 2**w - 1
    if b == a:  # all zeros: nothing to quantize
        return np.zeros(W.shape, dtype=np.float32)
    scale = np.float32((b - a) / levels)
    z = int(np.clip(np.rint(-a / np.float64(scale)), 0, levels))
    q = np.clip(np.rint(W / np.float64(scale)) + z, 0, levels)
    return (scale * (q - z)).astype(np.float32)


def _matrix_form(a):
    W = a.args[0]
    problem = array_problem(a.got, "your result", kinds="iuf", holds="numbers")
    if problem is None and a.got.shape != np.shape(W):
        return (
            f"returned shape {a.got.shape}, but W has shape {np.shape(W)}: unstructured pruning and quantization "
            "keep the matrix's shape (only structured pruning removes whole rows or columns)"
        )
    return problem


def _survivors_changed(a):
    W, got = a.args[0], a.got
    changed = (got != W) & (got != 0)
    if changed.any():
        i = tuple(int(j) for j in np.argwhere(changed)[0])
        return (
            f"entry {i} is {show(got[i])}, but W has {show(W[i])} there: keep surviving weights unchanged, set "
            "pruned ones to 0"
        )
    return None


def _pruned_a_larger_one(a):
    W, got = a.args[0], a.got
    removed = (got == 0) & (W != 0)  # weights the answer pruned (W's own zeros stay 0 either way)
    kept = got != 0
    if removed.any() and kept.any() and np.abs(W[removed]).max() > np.abs(W[kept]).min():
        big, small = float(np.abs(W[removed]).max()), float(np.abs(W[kept]).min())
        negative = bool(np.all(W[removed][np.abs(W[removed]) > small] < 0))
        why = " — the large ones you pruned are all negative: prune by magnitude |w|, not by signed value"
        return f"you pruned a weight of magnitude {big:.4g} but kept one of magnitude {small:.4g}" + (
            why if negative else ""
        )
    return None


def _zero_count(a):
    W, sparsity = a.args
    n_zero, n_zero_exp = int(np.count_nonzero(a.got == 0)), int(np.count_nonzero(a.expected == 0))
    if n_zero != n_zero_exp:
        k = math.floor(sparsity * W.size)
        return (
            f"{n_zero} entries are 0, expected {n_zero_exp} (sparsity {sparsity} of {W.size} entries: prune exactly "
            f"floor(sparsity · size) = {k} entries, those with the smallest |w|)"
        )
    return None


def _pruning_cases(rng):
    cases = []
    for shape, s in [((4, 5), 0.5), ((8, 3), 0.9), ((1, 10), 0.3), ((6, 6), 0.0), ((5, 4), 1.0), ((30, 20), 0.75)]:
        cases.append(Case((rng.standard_normal(shape).astype(np.float32), s), label=f"{shape} random, sparsity {s}"))
    sparse = rng.standard_normal((7, 9)).astype(np.float32) * (rng.random((7, 9)) < 0.5)
    cases.append(Case((sparse, 0.6), label="(7, 9) already half zeros, sparsity 0.6"))
    return cases


weight_pruning = Exercise(
    "weight_pruning",
    reference_pruning,
    fixed_cases=[
        Case((np.array([[0.3, -0.9, 0.1], [-0.2, 0.8, -0.05]]), 0.5), label="2×3 with large negative weights"),
        Case((TUTORIAL_W.copy(), 0.5), label="the tutorial's 3×3 W, sparsity 0.5"),
    ],
    cases=_pruning_cases,
    compare=Hints(_matrix_form, _survivors_changed, _pruned_a_larger_one, _zero_count),
    pass_line="weight_pruning: magnitude pruning correct on 9 matrices (shape kept, floor(s·n) smallest |w| zeroed)",
)


def _not_finite(a):
    if not np.all(np.isfinite(a.got)):
        return "the result has NaN or inf entries: guard the all-zero matrix (b == a) instead of dividing by 0"
    return None


@accept
def _values_close(a):
    return _core_compare(a.got, a.expected) is None


def _grid(a):
    """The range [a, b] of W extended to 0, the levels 2^w − 1 and the codes of the tutorial's grid."""
    W, w = a.args
    Wf = np.asarray(W, dtype=np.float64)
    lo, hi = min(Wf.min(), 0.0), max(Wf.max(), 0.0)
    levels = 2**w - 1
    q = np.round((Wf - lo) / (hi - lo) * levels) if hi > lo else None
    return lo, hi, levels, q


def _step_b_minus_a(a):
    lo, hi, _, q = a.memo(_grid)
    if q is not None and np.allclose(a.got, q * (hi - lo) + lo):
        return "you dequantize with step (b − a), as the tutorial does; one step is (b − a) / (2^w − 1)"
    return None


def _returns_codes(a):
    q = a.memo(_grid)[3]
    if q is not None and np.allclose(a.got, q):
        return "you returned the integer codes q; return the dequantized values scale · (q − zero_point)"
    return None


def _grid_without_zero(a):
    lo, hi, levels, q = a.memo(_grid)
    if q is None:
        return None
    if np.allclose(a.got, q * (hi - lo) / levels + lo, atol=1e-6) and not np.allclose(a.got, a.expected, atol=1e-6):
        zeros = np.asarray(a.args[0]) == 0
        extra = f" (W's zeros come back as {float(a.got[zeros][0]):.4g})" if zeros.any() else ""
        return (
            "your grid a, a + step, ..., b does not contain 0, so a pruned weight does not stay 0"
            f"{extra}: use a zero point z = round(−a / scale) and return scale · (q − z)"
        )
    return None


def _core_compare(got, expected):
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
        err = np.abs(got.astype(np.float64) - expected)
        i = tuple(int(j) for j in np.unravel_index(np.argmax(err), err.shape))
        return f"entry {i} is {float(got[i]):.6g}, expected {float(expected[i]):.6g}"
    return None


def _wrong_values(a):
    return _core_compare(a.got, a.expected)


def _quantization_cases(rng):
    cases = []
    for shape, w in [((4, 5), 2), ((6, 3), 3), ((5, 5), 4), ((10, 8), 8), ((1, 7), 1)]:
        cases.append(Case((rng.standard_normal(shape).astype(np.float32), w), label=f"{shape} random, {w} bits"))
    pruned = rng.standard_normal((6, 6)).astype(np.float32) * (rng.random((6, 6)) < 0.4)
    cases.append(Case((pruned, 3), label="a pruned (6, 6) matrix, 3 bits"))
    cases.append(Case((np.abs(rng.standard_normal((3, 4))).astype(np.float32) + 0.5, 4), label="all positive, 4 bits"))
    cases.append(Case((np.zeros((2, 3), np.float32), 4), label="all zeros (everything pruned)"))
    return cases


weight_quantization = Exercise(
    "weight_quantization",
    reference_quantization,
    # (not the tutorial's W itself: a range symmetric about 0 puts -a/scale exactly on a rounding tie,
    # where a float64 and a float32 scale legitimately round the zero point differently)
    fixed_cases=[Case((PRUNED_3X3.copy(), 2), label="a pruned 3×3 W, 2 bits")],
    cases=_quantization_cases,
    compare=Hints(
        _matrix_form, _not_finite, _values_close, _step_b_minus_a, _returns_codes, _grid_without_zero, _wrong_values
    ),
    pass_line="weight_quantization: correct on 9 matrices (step (b−a)/(2^w−1), zero point keeps 0 exact)",
)
