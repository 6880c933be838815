"""Checks for lab 02 (structured pruning and schedules): neuron importance, removing neurons, AGP."""

from __future__ import annotations

import numpy as np

from ..prune import agp_sparsity as _agp_sparsity
from ..prune import unit_importance
from .answers import array_problem, compare_arrays, number_answer
from .exercise import Case, Exercise
from .hints import Hints, accept

# --- exercise 1: neuron importance -----------------------------------------------------------------


def _neuron_importance(W, norm):
    return unit_importance(W, norm)


def _not_an_array(a):
    return array_problem(a.got, "the importance")


def _one_per_column(a):
    W = a.args[0]
    if a.got.shape == (W.shape[1],) and W.shape[0] != W.shape[1]:
        return f"got {W.shape[1]} values, one per input column: a neuron's weights are a *row* of W (out, in)"
    return None


def _importance_shape(a):
    W = a.args[0]
    if a.got.shape != a.expected.shape:
        return f"got shape {a.got.shape}, expected ({W.shape[0]},): one norm per neuron (row of W)"
    return None


def _is_variant(a, norm: str, rows_of) -> bool:
    """The answer, asked for ``norm``, equals ``rows_of(W)`` (a wrong norm) instead."""
    W, asked = a.args
    return asked == norm and np.allclose(a.got, rows_of(W.astype(np.float64)), rtol=1e-4)


def _squared_l2(a):
    if _is_variant(a, "l2", lambda W: (W * W).sum(axis=1)):
        return "that is the squared ℓ2 norm: take the square root"
    return None


def _l1_for_l2(a):
    if _is_variant(a, "l2", lambda W: np.abs(W).sum(axis=1)):
        return "norm='l2' asks for sqrt(sum w²), you returned the ℓ1 norm"
    return None


def _signed_sum(a):
    if _is_variant(a, "l1", lambda W: W.sum(axis=1)):
        return "the ℓ1 norm sums |w|, not w: negative weights matter as much as positive ones"
    return None


def _importance_values(a):
    return compare_arrays(a.got, a.expected, f"importance ({a.args[1]})", rtol=1e-4, atol=1e-6)


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
    compare=Hints(
        _not_an_array, _one_per_column, _importance_shape, _squared_l2, _l1_for_l2, _signed_sum, _importance_values
    ),
    pass_line="neuron_importance: l1 and l2 row norms correct on 6 matrices",
)


# --- exercise 2: remove neurons from a pair of Dense layers -------------------------------------------


def _remove_neurons(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2[:, keep]


def _not_a_triple(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 3:
        return f"return the triple (W1_new, b1_new, W2_new), got {type(a.got).__name__}"
    return None


def _triple_form(a):
    problems = (array_problem(g, what) for what, g in zip(("W1_new", "b1_new", "W2_new"), a.got))
    return next((p for p in problems if p), None)


def _rows_of_W2(a):
    W2, keep = a.args[2], a.args[3]
    if a.got[2].shape == (len(keep), W2.shape[1]) and W2.shape[0] != len(keep):
        return "W2_new has rows removed: the next layer's *columns* (its inputs) belong to the removed neurons"
    return None


def _biases_kept(a):
    b1, keep = a.args[1], a.args[3]
    if a.got[1].shape == b1.shape and len(keep) != b1.size:
        return f"b1_new still has {b1.size} entries: remove the removed neurons' biases too"
    return None


def _wrong_entries(a):
    hints = (
        compare_arrays(g, e, what, exact=True) for what, g, e in zip(("W1_new", "b1_new", "W2_new"), a.got, a.expected)
    )
    hint = next((h for h in hints if h), None)
    return f"{hint}: keep the rows of W1 and b1 and the columns of W2 listed in keep, in order" if hint else None


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
    compare=Hints(_not_a_triple, _triple_form, _rows_of_W2, _biases_kept, _wrong_entries),
    pass_line="remove_neurons: rows of W1, b1 and columns of W2 removed correctly on 4 layer pairs",
)


# --- exercise 3: the AGP schedule ---------------------------------------------------------------------


def _agp_call(a):
    step, s_i, s_f, t0, n, dt = a.args
    return f"agp_sparsity({step}, {s_i}, {s_f}, t0={t0}, n_steps={n}, dt={dt}) = {number_answer(a.got)[0]:.6g}"


def _not_one_float(a):
    return number_answer(a.got, "one float")[1]


@accept
def _within_1e9(a):
    return abs(number_answer(a.got)[0] - a.expected) <= 1e-9


def _before_t0(a):
    step, s_i, _, t0, _, _ = a.args
    return f"{_agp_call(a)}: before t0 the sparsity is s_init = {s_i}" if step < t0 else None


def _after_the_window(a):
    step, _, s_f, t0, n, dt = a.args
    if step >= t0 + n * dt:
        return f"{_agp_call(a)}: after the last pruning step (t0 + n·dt = {t0 + n * dt}) it stays s_final = {s_f}"
    return None


def _between_steps(a):
    step, s_i, s_f, t0, n, dt = a.args
    t = t0 + (step - t0) // dt * dt
    smooth = s_f + (s_i - s_f) * (1 - (step - t0) / (n * dt)) ** 3
    if abs(number_answer(a.got)[0] - smooth) <= 1e-9 and t != step:
        return (
            f"{_agp_call(a)}: between pruning steps the sparsity stays at its value at the last pruning "
            f"step t = {t} (t0 + floor((step − t0)/dt)·dt)"
        )
    return None


def _linear(a):
    step, s_i, s_f, t0, n, dt = a.args
    t = t0 + (step - t0) // dt * dt
    if abs(number_answer(a.got)[0] - (s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)))) <= 1e-9:
        return f"{_agp_call(a)} follows a straight line; Zhu & Gupta's schedule uses the cube (1 − (t−t0)/(nΔt))³"
    return None


def _wrong_sparsity(a):
    return f"{_agp_call(a)}, expected {a.expected:.6g}: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³"


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
    compare=Hints(_not_one_float, _within_1e9, _before_t0, _after_the_window, _between_steps, _linear, _wrong_sparsity),
    pass_line="agp_sparsity: matches Zhu & Gupta's cubic schedule at 11 steps, inside and outside the window",
)
