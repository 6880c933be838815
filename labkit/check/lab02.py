"""Checks for lab 02 (structured pruning and schedules): neuron importance, removing neurons, AGP."""

from __future__ import annotations

import numpy as np

from ..prune import agp_sparsity as _agp_sparsity
from ..prune import unit_importance
from .exercise import Case, Exercise, compare_arrays, number_answer

# --- exercise 1: neuron importance -----------------------------------------------------------------


def _neuron_importance(W, norm):
    return unit_importance(W, norm)


def _compare_importance(got, expected, case):
    W, norm = case.args
    if not isinstance(got, np.ndarray):
        return f"return a numpy array of {W.shape[0]} norms, got {type(got).__name__}"
    if got.shape == (W.shape[1],) and W.shape[0] != W.shape[1]:
        return f"got {W.shape[1]} values, one per input column: a neuron's weights are a *row* of W (out, in)"
    if got.shape != expected.shape:
        return f"got shape {got.shape}, expected ({W.shape[0]},): one norm per neuron (row of W)"
    rows = W.astype(np.float64)
    if norm == "l2" and np.allclose(got, (rows * rows).sum(axis=1), rtol=1e-4):
        return "that is the squared ℓ2 norm: take the square root"
    if norm == "l2" and np.allclose(got, np.abs(rows).sum(axis=1), rtol=1e-4):
        return "norm='l2' asks for sqrt(sum w²), you returned the ℓ1 norm"
    if norm == "l1" and np.allclose(got, rows.sum(axis=1), rtol=1e-4):
        return "the ℓ1 norm sums |w|, not w: negative weights matter as much as positive ones"
    return compare_arrays(got, expected, f"importance ({norm})", rtol=1e-4, atol=1e-6)


def _importance_cases(rng):
    return [
        Case((rng.standard_normal((n_out, n_in)).astype(np.float32), norm), label=f"W ({n_out}, {n_in}), {norm}")
        for n_out, n_in, norm in [(30, 78, "l1"), (30, 78, "l2"), (10, 100, "l2"), (7, 5, "l1")]
    ]


neuron_importance = Exercise(
    "neuron_importance",
    _neuron_importance,
    fixed_cases=[
        Case((np.array([[3.0, -4.0, 0.0], [1.0, 1.0, -1.0]], np.float32), "l1"), label="[[3, -4, 0], [1, 1, -1]], l1"),
        Case((np.array([[3.0, -4.0, 0.0], [1.0, 1.0, -1.0]], np.float32), "l2"), label="[[3, -4, 0], [1, 1, -1]], l2"),
    ],
    cases=_importance_cases,
    compare=_compare_importance,
    pass_line="neuron_importance: l1 and l2 row norms correct on 6 matrices",
)


# --- exercise 2: remove neurons from a pair of Dense layers -------------------------------------------


def _remove_neurons(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2[:, keep]


def _compare_remove(got, expected, case):
    W1, b1, W2, keep = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return the triple (W1_new, b1_new, W2_new), got {type(got).__name__}"
    W1n, b1n, W2n = got
    for what, g in zip(("W1_new", "b1_new", "W2_new"), got):
        if not isinstance(g, np.ndarray):
            return f"{what} should be an array, got {type(g).__name__}"
    if isinstance(W2n, np.ndarray) and W2n.shape == (len(keep), W2.shape[1]) and W2.shape[0] != len(keep):
        return "W2_new has rows removed: the next layer's *columns* (its inputs) belong to the removed neurons"
    if isinstance(b1n, np.ndarray) and b1n.shape == b1.shape and len(keep) != b1.size:
        return f"b1_new still has {b1.size} entries: remove the removed neurons' biases too"
    for what, g, e in zip(("W1_new", "b1_new", "W2_new"), got, expected):
        hint = compare_arrays(g, e, what, exact=True)
        if hint:
            return f"{hint}: keep the rows of W1 and b1 and the columns of W2 listed in keep, in order"
    return None


def _remove_cases(rng):
    cases = []
    for n_in, n_hid, n_out in [(20, 12, 5), (784, 30, 10), (6, 4, 9)]:
        keep = np.sort(rng.choice(n_hid, size=n_hid // 2, replace=False))
        cases.append(
            Case(
                (
                    rng.standard_normal((n_hid, n_in)).astype(np.float32),
                    rng.standard_normal(n_hid).astype(np.float32),
                    rng.standard_normal((n_out, n_hid)).astype(np.float32),
                    keep,
                ),
                label=f"{n_in} → {n_hid} → {n_out}, keep {len(keep)}",
            )
        )
    return cases


remove_neurons = Exercise(
    "remove_neurons",
    _remove_neurons,
    fixed_cases=[
        Case(
            (
                np.arange(12, dtype=np.float32).reshape(4, 3),
                np.array([0.1, 0.2, 0.3, 0.4], np.float32),
                np.arange(20, dtype=np.float32).reshape(5, 4),
                np.array([0, 2]),
            ),
            label="3 → 4 → 5, keep neurons 0 and 2",
        )
    ],
    cases=_remove_cases,
    compare=_compare_remove,
    pass_line="remove_neurons: rows of W1, b1 and columns of W2 removed correctly on 4 layer pairs",
)


# --- exercise 3: the AGP schedule ---------------------------------------------------------------------


def _compare_agp(got, expected, case):
    step, s_i, s_f, t0, n, dt = case.args
    got, problem = number_answer(got, "one float")
    if problem:
        return problem
    if abs(got - expected) <= 1e-9:
        return None
    where = f"agp_sparsity({step}, {s_i}, {s_f}, t0={t0}, n_steps={n}, dt={dt})"
    if step < t0:
        return f"{where} = {got:.6g}: before t0 the sparsity is s_init = {s_i}"
    if step >= t0 + n * dt:
        return f"{where} = {got:.6g}: after the last pruning step (t0 + n·dt = {t0 + n * dt}) it stays s_final = {s_f}"
    t = t0 + (step - t0) // dt * dt
    frac = (step - t0) / (n * dt)
    if abs(got - (s_f + (s_i - s_f) * (1 - frac) ** 3)) <= 1e-9 and t != step:
        return (
            f"{where} = {got:.6g}: between pruning steps the sparsity stays at its value at the last pruning "
            f"step t = {t} (t0 + floor((step − t0)/dt)·dt)"
        )
    lin = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))
    if abs(got - lin) <= 1e-9:
        return f"{where} = {got:.6g} follows a straight line; Zhu & Gupta's schedule uses the cube (1 − (t−t0)/(nΔt))³"
    return f"{where} = {got:.6g}, expected {expected:.6g}: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³"


def _agp_cases(rng):
    cases = []
    for _ in range(6):
        s_i = float(rng.choice([0.0, 0.05, 0.2]))
        s_f = float(np.round(rng.uniform(0.5, 0.98), 2))
        t0, n, dt = int(rng.integers(0, 50)), int(rng.integers(2, 12)), int(rng.integers(3, 40))
        step = int(rng.integers(0, t0 + n * dt + 30))
        cases.append(Case((step, s_i, s_f, t0, n, dt), label=f"step {step}"))
    return cases


agp_sparsity = Exercise(
    "agp_sparsity",
    _agp_sparsity,
    fixed_cases=[
        Case((5, 0.0, 0.9, 10, 4, 25), label="before t0"),
        Case((60, 0.0, 0.9, 10, 4, 25), label="on the pruning step t = 60"),
        Case((72, 0.0, 0.9, 10, 4, 25), label="between pruning steps 60 and 85"),
        Case((110, 0.0, 0.9, 10, 4, 25), label="on the last pruning step"),
        Case((500, 0.0, 0.9, 10, 4, 25), label="long after the window"),
    ],
    cases=_agp_cases,
    compare=_compare_agp,
    pass_line="agp_sparsity: matches Zhu & Gupta's cubic schedule at 11 steps, inside and outside the window",
)
