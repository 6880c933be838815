"""Checks for lab 01 (magnitude pruning): the mask, the global threshold, a step that keeps zeros."""

from __future__ import annotations

import math

import numpy as np

from ..prune import magnitude_mask as _magnitude_mask
from .exercise import Case, Exercise, compare_arrays, mask_problem

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


def _compare_mask(got, expected, case):
    w, s = case.args
    problem = mask_problem(got, w.shape)
    if problem:
        return problem
    k = math.floor(s * w.size)
    removed = int((~got).sum())
    if np.array_equal(~got, expected) and got.any() and (~got).any() and np.abs(w[~got]).max() > np.abs(w[got]).min():
        return f"your mask is inverted (it marks the {removed} kept weights False): True must mean *kept*"
    if removed != k:
        return (
            f"removed {removed} of {w.size} weights, expected {k}: remove exactly floor(sparsity · size) "
            f"= floor({s} · {w.size})"
        )
    if np.any(got != expected):
        gone, kept = np.abs(w[~got]), np.abs(w[got])
        if gone.size and kept.size and gone.max() > kept.min():
            signed = np.all(w[~got] <= w[got].min()) if kept.size else False
            why = " — you removed by signed value; rank by magnitude |w|" if signed else ""
            return f"removed a weight with |w| = {gone.max():.4g} but kept one with |w| = {kept.min():.4g}{why}"
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
    compare=_compare_mask,
    pass_line="magnitude_mask: exact on 9 weight arrays, including ties and sparsity 0",
)


# --- exercise 2: global masks ----------------------------------------------------------------------


def _global_masks(weights, sparsity):
    flat = np.concatenate([np.ravel(w) for w in weights])
    keep = _mask_ref(flat, sparsity)
    return [m.reshape(w.shape) for m, w in zip(np.split(keep, np.cumsum([w.size for w in weights])[:-1]), weights)]


def _compare_global(got, expected, case):
    weights, s = case.args
    if not isinstance(got, (list, tuple)) or len(got) != len(weights):
        return f"return a list of {len(weights)} masks, one per weight array, got {type(got).__name__}"
    for i, (g, w) in enumerate(zip(got, weights)):
        if not isinstance(g, np.ndarray) or g.shape != w.shape or g.dtype != bool:
            shape = getattr(g, "shape", None)
            return f"mask {i} should be a bool array of shape {w.shape}, got {type(g).__name__} {shape}"
    n = sum(w.size for w in weights)
    removed = sum(int((~g).sum()) for g in got)
    per_layer = [int((~g).sum()) for g in got]
    layerwise = [math.floor(s * w.size) for w in weights]
    if per_layer == layerwise and per_layer != [int((~e).sum()) for e in expected]:
        return (
            f"each layer lost floor({s} · its size) weights ({per_layer}): that is layer-wise pruning; "
            "use one threshold over all layers together"
        )
    if removed != math.floor(s * n):
        return f"removed {removed} of {n} weights in total, expected floor({s} · {n}) = {math.floor(s * n)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        hint = compare_arrays(g, e, f"mask {i}")
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
    compare=_compare_global,
    pass_line="global_masks: one threshold across layers, exact on 4 models",
)


# --- exercise 3: a momentum step that keeps pruned weights at zero ------------------------------------


def _masked_momentum_step(W, dW, v, mask, lr, momentum):
    g = dW * mask
    v = (momentum * v + g) * mask
    W = (W - lr * v) * mask
    return W, v


def _compare_step(got, expected, case):
    W, dW, v, mask, lr, momentum = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return the pair (W_new, v_new), got {type(got).__name__}"
    W_new, v_new = got
    for what, a in (("W_new", W_new), ("v_new", v_new)):
        if not isinstance(a, np.ndarray) or a.shape != W.shape:
            return f"{what} should be an array of shape {W.shape}, got {type(a).__name__} {getattr(a, 'shape', '')}"
    if np.any(W_new[~mask] != 0):
        n = int(np.count_nonzero(W_new[~mask]))
        old_v = np.any(v[~mask] != 0)
        why = (
            ": the velocity still holds momentum from before pruning; zero it (or the update) at pruned positions"
            if old_v
            else ": re-apply the mask after the update"
        )
        return f"{n} pruned weights are not exactly 0 after the step{why}"
    if np.any(v_new[~mask] != 0):
        return "the velocity is not 0 at pruned positions: it would keep pushing pruned weights next step"
    hint = compare_arrays(W_new, expected[0], "W_new")
    if hint:
        return f"{hint}: kept weights follow v = momentum · v + dW, W = W − lr · v"
    return compare_arrays(v_new, expected[1], "v_new")


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
    compare=_compare_step,
    pass_line="masked_momentum_step: pruned weights stay exactly 0, kept ones follow momentum SGD",
)
