"""Checks for lab 01 (magnitude pruning): the mask, the global threshold, a step that keeps zeros."""

from __future__ import annotations

import math

import numpy as np

from ..prune import magnitude_mask as _magnitude_mask
from .answers import array_problem, compare_arrays, mask_form
from .exercise import Case, Exercise
from .hints import Hints

# --- exercise 1: magnitude_mask ------------------------------------------------------------------


def _mask_ref(w, sparsity):
    """``labkit.prune.magnitude_mask`` on a float64 copy of ``w`` (exact for float32 weights).

    For float32 weights the kit uses a numba kernel, whose first call in a process costs ~1.5 s of
    CPU (loading numba and its cache) in the kernel and again in the grader; on float64 it takes the
    numpy path, which keeps the same tie rule. Same masks, so the check is unchanged; and a student
    calling ``prune.magnitude_mask`` is still calling the reference (one public function delegated to).
    """
    w = np.asarray(w)
    return _magnitude_mask(w.astype(np.float64) if w.dtype == np.float32 else w, sparsity)


def _inverted(a):
    w, got = a.args[0], a.got
    if np.array_equal(~got, a.expected) and got.any() and (~got).any() and np.abs(w[~got]).max() > np.abs(w[got]).min():
        return f"your mask is inverted (it marks the {int((~got).sum())} kept weights False): True must mean *kept*"
    return None


def _removed_count(a):
    w, s = a.args
    k, removed = math.floor(s * w.size), int((~a.got).sum())
    if removed != k:
        return (
            f"removed {removed} of {w.size} weights, expected {k}: remove exactly floor(sparsity · size) "
            f"= floor({s} · {w.size})"
        )
    return None


def _kept_a_smaller_one(a):
    w, got = a.args[0], a.got
    gone, kept = np.abs(w[~got]), np.abs(w[got])
    if gone.size and kept.size and gone.max() > kept.min():
        signed = np.all(w[~got] <= w[got].min())
        why = " — you removed by signed value; rank by magnitude |w|" if signed else ""
        return f"removed a weight with |w| = {gone.max():.4g} but kept one with |w| = {kept.min():.4g}{why}"
    return None


def _tie_order(a):
    if np.any(a.got != a.expected):
        return (
            "the right magnitudes are removed, but among equal |w| the lower flat index must go first "
            "(e.g. a stable argsort of |w|.ravel(), or np.partition plus a tie rule)"
        )
    return None


def _mask_cases(rng):
    cases = []
    for shape, s in [((10, 13), 0.5), ((300,), 0.9), ((6, 3, 5, 5), 0.73), ((4, 7), 0.25)]:
        cases.append(Case((rng.standard_normal(shape).astype(np.float32), s), label=f"shape {shape}, sparsity {s}"))
    ints = rng.integers(-3, 4, (8, 8)).astype(np.float32)  # many ties
    cases.append(Case((ints, 0.6), label="many equal magnitudes, sparsity 0.6"))
    return cases


magnitude_mask = Exercise(
    "magnitude_mask",
    _mask_ref,
    fixed_cases=[
        Case((np.array([0.5, -0.1, 0.3, -2.0], np.float32), 0.5), label="[0.5, -0.1, 0.3, -2.0], sparsity 0.5"),
        Case((np.array([3.0, -1.0, 2.0, 0.5, -4.0], np.float32), 0.0), label="sparsity 0 keeps everything"),
        Case((np.array([1.0, -1.0, 1.0, 1.0], np.float32), 0.5), label="ties: [1, -1, 1, 1], sparsity 0.5"),
        Case((np.arange(1, 8, dtype=np.float32), 0.5), label="7 weights, sparsity 0.5: floor(3.5) = 3"),
    ],
    cases=_mask_cases,
    compare=Hints(mask_form, _inverted, _removed_count, _kept_a_smaller_one, _tie_order),
    pass_line="magnitude_mask: exact on 9 weight arrays, including ties and sparsity 0",
)


# --- exercise 2: global masks ----------------------------------------------------------------------


def _global_masks(weights, sparsity):
    flat = np.concatenate([np.ravel(w) for w in weights])
    keep = _mask_ref(flat, sparsity)
    return [m.reshape(w.shape) for m, w in zip(np.split(keep, np.cumsum([w.size for w in weights])[:-1]), weights)]


def _not_a_list(a):
    weights = a.args[0]
    if not isinstance(a.got, (list, tuple)) or len(a.got) != len(weights):
        return f"return a list of {len(weights)} masks, one per weight array, got {type(a.got).__name__}"
    return None


def _masks_form(a):
    problems = (
        array_problem(g, f"mask {i}", shape=w.shape, kinds="b", holds="booleans (True = kept)")
        for i, (g, w) in enumerate(zip(a.got, a.args[0]))
    )
    return next((p for p in problems if p), None)


def _layerwise(a):
    weights, s = a.args
    per_layer = [int((~g).sum()) for g in a.got]
    if per_layer == [math.floor(s * w.size) for w in weights] and per_layer != [int((~e).sum()) for e in a.expected]:
        return (
            f"each layer lost floor({s} · its size) weights ({per_layer}): that is layer-wise pruning; "
            "use one threshold over all layers together"
        )
    return None


def _total_removed(a):
    weights, s = a.args
    n, removed = sum(w.size for w in weights), sum(int((~g).sum()) for g in a.got)
    if removed != math.floor(s * n):
        return f"removed {removed} of {n} weights in total, expected floor({s} · {n}) = {math.floor(s * n)}"
    return None


def _wrong_weights_removed(a):
    hints = (compare_arrays(g, e, f"mask {i}") for i, (g, e) in enumerate(zip(a.got, a.expected)))
    hint = next((h for h in hints if h), None)
    if hint:
        return (
            f"{hint}: remove the smallest |w| over all layers; among ties, the earlier layer and then the "
            "lower flat index go first"
        )
    return None


def _global_cases(rng):
    cases = []
    for s in (0.5, 0.9, 0.95):
        ws = [
            (rng.standard_normal((30, 40)) * 0.05).astype(np.float32),
            (rng.standard_normal((12, 30)) * 0.2).astype(np.float32),
            (rng.standard_normal((5, 12)) * 0.5).astype(np.float32),
        ]
        cases.append(Case((ws, s), label=f"3 layers of different scales, sparsity {s}"))
    return cases


global_masks = Exercise(
    "global_masks",
    _global_masks,
    fixed_cases=[
        Case(
            ([np.array([[0.1, -0.2], [0.3, 0.05]], np.float32), np.array([[2.0, -1.0, 0.5]], np.float32)], 0.5),
            label="two small layers, sparsity 0.5",
        )
    ],
    cases=_global_cases,
    compare=Hints(_not_a_list, _masks_form, _layerwise, _total_removed, _wrong_weights_removed),
    pass_line="global_masks: one threshold across layers, exact on 4 models",
)


# --- exercise 3: a momentum step that keeps pruned weights at zero ------------------------------------


def _masked_momentum_step(W, dW, v, mask, lr, momentum):
    g = dW * mask
    v = (momentum * v + g) * mask
    W = (W - lr * v) * mask
    return W, v


def _not_a_pair(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 2:
        return f"return the pair (W_new, v_new), got {type(a.got).__name__}"
    return None


def _pair_form(a):
    problems = (array_problem(g, what, shape=a.args[0].shape) for what, g in zip(("W_new", "v_new"), a.got))
    return next((p for p in problems if p), None)


def _pruned_weights_move(a):
    W_new, v, mask = a.got[0], a.args[2], a.args[3]
    if np.any(W_new[~mask] != 0):
        n = int(np.count_nonzero(W_new[~mask]))
        why = (
            ": the velocity still holds momentum from before pruning; zero it (or the update) at pruned positions"
            if np.any(v[~mask] != 0)
            else ": re-apply the mask after the update"
        )
        return f"{n} pruned weights are not exactly 0 after the step{why}"
    return None


def _velocity_not_masked(a):
    if np.any(a.got[1][~a.args[3]] != 0):
        return "the velocity is not 0 at pruned positions: it would keep pushing pruned weights next step"
    return None


def _kept_weights_step(a):
    hint = compare_arrays(a.got[0], a.expected[0], "W_new")
    return f"{hint}: kept weights follow v = momentum · v + dW, W = W − lr · v" if hint else None


def _velocity_values(a):
    return compare_arrays(a.got[1], a.expected[1], "v_new")


def _step_cases(rng):
    cases = []
    for shape in [(6, 5), (20, 30), (4, 3, 3, 3)]:
        W = rng.standard_normal(shape).astype(np.float32)
        mask = rng.random(shape) > 0.7
        W *= mask
        dW = rng.standard_normal(shape).astype(np.float32)
        v = rng.standard_normal(shape).astype(np.float32)  # momentum from before pruning: non-zero everywhere
        cases.append(Case((W, dW, v, mask, 0.1, 0.9), label=f"shape {shape}, velocity from dense training"))
    return cases


masked_momentum_step = Exercise(
    "masked_momentum_step",
    _masked_momentum_step,
    fixed_cases=[
        Case(
            (
                np.array([1.0, 0.0, -2.0], np.float32),
                np.array([0.5, 0.5, 0.5], np.float32),
                np.zeros(3, np.float32),
                np.array([True, False, True]),
                0.1,
                0.9,
            ),
            label="3 weights, the middle one pruned, zero velocity",
        )
    ],
    cases=_step_cases,
    compare=Hints(
        _not_a_pair, _pair_form, _pruned_weights_move, _velocity_not_masked, _kept_weights_step, _velocity_values
    ),
    pass_line="masked_momentum_step: pruned weights stay exactly 0, kept ones follow momentum SGD",
)
