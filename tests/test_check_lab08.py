"""Lab 08 checks: the reference passes; the stub, the tutorial's own code and plausible fixes that
are still wrong all fail with a specific hint."""

import math
import sys

import numpy as np
import pytest
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import FAIL, lab08


def stub(*args):
    raise NotImplementedError()


# --- the tutorial's code, verbatim (section 5.2) -----------------------------------------------


def tutorial_pruning(W, theta):
    sorted_indices = np.argsort(W.flatten())
    theta_indices = int(theta * len(W.flatten()))
    W_pruned = W.copy()
    W_pruned[sorted_indices[theta_indices:], :] = 0
    return W_pruned


def tutorial_quantization(W, w):
    a = W.min()
    b = W.max()
    Q = (W - a) / (b - a) * (2**w - 1)
    Q = np.round(Q)
    return Q * (b - a) + a


# --- plausible wrong fixes ---------------------------------------------------------------------


def prune_by_signed_value(W, sparsity):
    out = W.copy()
    out.ravel()[np.argsort(W.ravel(), kind="stable")[: math.floor(sparsity * W.size)]] = 0
    return out


def prune_keeps_smallest(W, sparsity):
    out = W.copy()
    out.ravel()[np.argsort(np.abs(W).ravel(), kind="stable")[math.floor(sparsity * W.size) :]] = 0
    return out


def prune_rounds_count(W, sparsity):
    out = W.copy()
    out.ravel()[np.argsort(np.abs(W).ravel(), kind="stable")[: round(sparsity * W.size + 0.5)]] = 0
    return out


def prune_then_shrink(W, sparsity):
    out = lab08.reference_pruning(W, sparsity)
    return out[np.any(out != 0, axis=1)]  # "W' in R^{m' x n'}": drop empty rows


def prune_by_threshold(W, sparsity):  # threshold = the quantile: removes every tie at the threshold too
    return np.where(np.abs(W) > np.quantile(np.abs(W), sparsity), W, 0)


def quant_fixed_step_no_zero_point(W, w):
    a, b = W.min(), W.max()
    if b == a:
        return np.zeros_like(W, dtype=np.float32)
    q = np.round((W - a) / (b - a) * (2**w - 1))
    return (q * (b - a) / (2**w - 1) + a).astype(np.float32)


def quant_returns_codes(W, w):
    a, b = min(W.min(), 0), max(W.max(), 0)
    return np.round((W - a) / (b - a) * (2**w - 1))


def quant_no_guard(W, w):
    a, b = min(W.min(), 0.0), max(W.max(), 0.0)
    scale = (b - a) / (2**w - 1)
    z = np.round(-a / scale)
    return (scale * (np.clip(np.round(W / scale) + z, 0, 2**w - 1) - z)).astype(np.float32)


def prune_loses_signs(W, sparsity):  # |W| kept instead of W
    return np.abs(lab08.reference_pruning(W, sparsity))


def quant_symmetric(W, w):  # a symmetric grid ±max|W| instead of the affine one over [a, b]
    amax = float(np.abs(W).max())
    if amax == 0:
        return np.zeros(np.shape(W), np.float32)
    scale = amax / (2 ** (w - 1) - 1) if w > 1 else amax
    return (scale * np.clip(np.rint(W / scale), -(2 ** (w - 1)), 2 ** (w - 1) - 1)).astype(np.float32)


def run(ex, fn, capsys):
    line = ex.verdict(fn)
    assert "\n" not in line and capsys.readouterr().out == ""  # the student's output is swallowed
    return line == ex.pass_line, line


def test_check_cell_prints_one_line(capsys):
    assert lab08.weight_pruning(lab08.reference_pruning) is None
    assert capsys.readouterr().out == lab08.weight_pruning.pass_line + "\n"


@pytest.mark.parametrize(
    "ex, ref",
    [(lab08.weight_pruning, lab08.reference_pruning), (lab08.weight_quantization, lab08.reference_quantization)],
)
def test_reference_passes(ex, ref, capsys):
    ok, line = run(ex, ref, capsys)
    assert ok and line == ex.pass_line


@pytest.mark.parametrize("ex", [lab08.weight_pruning, lab08.weight_quantization])
def test_stub_fails(ex, capsys):
    ok, line = run(ex, stub, capsys)
    assert not ok and line.startswith(FAIL) and "not implemented" in line


def test_tutorial_pruning_raises_index_error(capsys):
    ok, line = run(lab08.weight_pruning, tutorial_pruning, capsys)
    assert not ok and "IndexError" in line


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (prune_by_signed_value, "not by signed value"),
        (prune_keeps_smallest, "pruned a weight of magnitude"),
        (prune_rounds_count, "floor(sparsity · size)"),
        (prune_then_shrink, "keep the matrix's shape"),
        (prune_loses_signs, "keep surviving weights unchanged"),
    ],
)
def test_wrong_pruning_fails(fn, phrase, capsys):
    ok, line = run(lab08.weight_pruning, fn, capsys)
    assert not ok and line.startswith(FAIL) and phrase in line, line


def test_threshold_pruning_fails_on_ties(capsys):
    ok, line = run(lab08.weight_pruning, prune_by_threshold, capsys)
    assert not ok and "tutorial's 3×3" in line  # the tutorial W has ties: 4 zeros and five |w| = 1


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (tutorial_quantization, "step (b − a)"),
        (quant_fixed_step_no_zero_point, "does not contain 0"),
        (quant_returns_codes, "integer codes"),
        (quant_no_guard, "NaN"),
        (lambda W, w: lab08.reference_quantization(W, w).tolist(), "must be a numpy array"),
        (quant_symmetric, "expected"),
    ],
)
def test_wrong_quantization_fails(fn, phrase, capsys):
    ok, line = run(lab08.weight_quantization, fn, capsys)
    assert not ok and line.startswith(FAIL) and phrase in line, line


def test_reference_values_on_the_tutorial_matrix():
    W = lab08.TUTORIAL_W
    np.testing.assert_array_equal(lab08.reference_pruning(W, 0.5), W)  # the 4 zeros go first
    np.testing.assert_array_equal(lab08.reference_pruning(W, 5 / 9), [[0, 0, -1], [0, 1, 0], [-1, 0, 1]])
    q = lab08.reference_quantization(W.astype(np.float32), 2)  # float32 scale 2/3 (a hair above), zero point 1
    np.testing.assert_allclose(q, np.float32(2 / 3) * W, rtol=1e-6)  # -1 / scale = -1.4999999 rounds to -1
    assert np.all(q[W == 0] == 0)


def test_reference_quantization_matches_labkit_quant(rng):
    quant = pytest.importorskip("labkit.quant")
    for bits in (2, 3, 5, 8):
        W = rng.standard_normal((9, 7)).astype(np.float32) * (rng.random((9, 7)) < 0.6)
        scale, zp = quant.qparams(W, bits=bits)
        expected = quant.dequantize(quant.quantize(W, scale, zp, bits=bits), scale, zp)
        np.testing.assert_allclose(lab08.reference_quantization(W, bits), expected, rtol=1e-6, atol=1e-7)


def test_reference_pruning_matches_labkit_prune(rng):
    prune = pytest.importorskip("labkit.prune")
    for s in (0.0, 0.3, 0.9):
        W = rng.standard_normal((20, 30)).astype(np.float32)
        np.testing.assert_array_equal(lab08.reference_pruning(W, s), W * prune.magnitude_mask(W, s))


@pytest.mark.parametrize("seed", range(200))
def test_reference_passes_every_grader_seed(seed):
    # regression: an all-positive 1-bit case made the correct answer look like the tutorial's
    # step (b − a) and the grader rejected the solution for some seeds
    for ex in (lab08.weight_pruning, lab08.weight_quantization):
        assert ex.evaluate(ex.reference, ex.grading_cases(seed)) is None, (ex.answer_id, seed)


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab08)
    assert_every_hint_reached(sys.modules[__name__], lab08)
