"""Lab 02's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit import prune
from labkit.check import lab02


def stub(*args):
    raise NotImplementedError()


def test_neuron_importance():
    ex = lab02.neuron_importance

    def ref(W, norm):
        return np.abs(W).sum(axis=1) if norm == "l1" else np.sqrt((W.astype(np.float64) ** 2).sum(axis=1))

    assert ex.passes(ref)
    assert ex.passes(lambda W, norm: np.linalg.norm(W, ord=1 if norm == "l1" else 2, axis=1))
    assert "not implemented" in ex.verdict(stub)
    assert "row" in ex.verdict(lambda W, norm: np.abs(W).sum(axis=0) if norm == "l1" else np.sqrt((W**2).sum(0)))
    assert "square root" in ex.verdict(lambda W, norm: np.abs(W).sum(1) if norm == "l1" else (W**2).sum(1))
    assert "ℓ1" in ex.verdict(lambda W, norm: np.abs(W).sum(axis=1))
    assert "|w|" in ex.verdict(lambda W, norm: W.sum(axis=1) if norm == "l1" else np.sqrt((W**2).sum(1)))
    assert "must be a numpy array, got list" in ex.verdict(lambda W, norm: list(ref(W, norm)))
    assert "one norm per neuron" in ex.verdict(lambda W, norm: ref(W, norm)[:, None])
    assert "importance (l1) is off" in ex.verdict(lambda W, norm: np.abs(W).max(axis=1))  # the max norm


def test_remove_neurons():
    ex = lab02.remove_neurons
    assert ex.passes(lambda W1, b1, W2, keep: (W1[keep], b1[keep], W2[:, keep]))
    assert "not implemented" in ex.verdict(stub)
    assert "columns" in ex.verdict(lambda W1, b1, W2, keep: (W1[keep], b1[keep], W2[keep]))
    assert "biases" in ex.verdict(lambda W1, b1, W2, keep: (W1[keep], b1, W2[:, keep]))
    assert "in order" in ex.verdict(lambda W1, b1, W2, keep: (W1[keep[::-1]], b1[keep[::-1]], W2[:, keep[::-1]]))
    assert "keep the rows of W1 and b1" in ex.verdict(lambda W1, b1, W2, keep: (W1[:, keep], b1[keep], W2[:, keep]))
    assert "return the triple" in ex.verdict(lambda W1, b1, W2, keep: (W1[keep], W2[:, keep]))
    assert "W1_new must be a numpy array" in ex.verdict(
        lambda W1, b1, W2, keep: (W1[keep].tolist(), b1[keep], W2[:, keep])
    )


def test_agp_sparsity():
    ex = lab02.agp_sparsity
    assert ex.passes(prune.agp_sparsity)

    def plain(step, s_i, s_f, t0, n, dt):  # the textbook formula, clamped, with the pruning-step floor
        if step < t0:
            return s_i
        t = min(t0 + (step - t0) // dt * dt, t0 + n * dt)
        return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3

    assert ex.passes(plain)
    assert "not implemented" in ex.verdict(stub)

    def no_floor(step, s_i, s_f, t0, n, dt):
        if step < t0:
            return s_i
        if step >= t0 + n * dt:
            return s_f
        return s_f + (s_i - s_f) * (1 - (step - t0) / (n * dt)) ** 3

    def linear(step, s_i, s_f, t0, n, dt):
        if step < t0:
            return s_i
        t = min(t0 + (step - t0) // dt * dt, t0 + n * dt)
        return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))

    def unclamped(step, s_i, s_f, t0, n, dt):
        t = t0 + (step - t0) // dt * dt
        return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3

    def ignores_t0(step, s_i, s_f, t0, n, dt):
        t = min(step // dt * dt, n * dt)
        return s_f + (s_i - s_f) * (1 - t / (n * dt)) ** 3

    assert "last pruning step" in ex.verdict(no_floor)
    assert "cube" in ex.verdict(linear)
    assert "before t0" in ex.verdict(unclamped) or "stays s_final" in ex.verdict(unclamped)
    assert "before t0 the sparsity is s_init" in ex.verdict(ignores_t0)
    assert "float" in ex.verdict(lambda *a: "0.5")

    def keeps_pruning(step, s_i, s_f, t0, n, dt):  # the floor to pruning steps, but no end to the schedule
        if step < t0:
            return s_i
        t = t0 + (step - t0) // dt * dt
        return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3

    def squared(step, s_i, s_f, t0, n, dt):  # a square where the schedule has a cube
        if step < t0:
            return s_i
        t = min(t0 + (step - t0) // dt * dt, t0 + n * dt)
        return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 2

    assert "after the last pruning step" in ex.verdict(keeps_pruning)
    assert "expected 0.7875: s_t = s_f + (s_i − s_f)" in ex.verdict(squared)


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab02)
    assert_every_hint_reached(sys.modules[__name__], lab02)
