"""Lab 01's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit import prune
from labkit.check import lab01


def stub(*args):
    raise NotImplementedError()


# --- magnitude_mask -----------------------------------------------------------------------------------


def test_magnitude_mask_reference_and_stub():
    ex = lab01.magnitude_mask
    assert ex.passes(prune.magnitude_mask)
    assert ex.passes(
        lambda w, s: (lambda k, o: ~np.isin(np.arange(w.size), o[:k]).reshape(w.shape))(
            int(np.floor(s * w.size)), np.argsort(np.abs(w).ravel(), kind="stable")
        )
    )
    assert "not implemented" in ex.verdict(stub)


def test_magnitude_mask_wrong_answers():
    ex = lab01.magnitude_mask

    def signed(w, s):  # ranks by signed value
        k = int(np.floor(s * w.size))
        keep = np.ones(w.size, bool)
        keep[np.argsort(w.ravel(), kind="stable")[:k]] = False
        return keep.reshape(w.shape)

    def threshold_le(w, s):  # removes every |w| <= the k-th smallest: too many with ties
        k = int(np.floor(s * w.size))
        if k == 0:
            return np.ones(w.shape, bool)
        t = np.sort(np.abs(w).ravel())[k - 1]
        return np.abs(w) > t

    def rounded(w, s):  # round instead of floor
        k = int(round(s * w.size))
        keep = np.ones(w.size, bool)
        keep[np.argsort(np.abs(w).ravel(), kind="stable")[:k]] = False
        return keep.reshape(w.shape)

    def unstable(w, s):  # ties broken by the highest index
        k = int(np.floor(s * w.size))
        a = np.abs(w).ravel()
        order = np.lexsort((-np.arange(a.size), a))
        keep = np.ones(a.size, bool)
        keep[order[:k]] = False
        return keep.reshape(w.shape)

    assert "signed value" in ex.verdict(signed)
    assert "removed 3 of 4 weights, expected 2" in ex.verdict(threshold_le) or "floor" in ex.verdict(threshold_le)
    assert "floor" in ex.verdict(rounded)
    assert "lower flat index" in ex.verdict(unstable)
    assert "True must mean *kept*" in ex.verdict(lambda w, s: ~prune.magnitude_mask(w, s))
    assert "bool" in ex.verdict(lambda w, s: prune.magnitude_mask(w, s).astype(np.float32))
    assert "shape" in ex.verdict(lambda w, s: prune.magnitude_mask(w, s).ravel())


# --- global_masks -------------------------------------------------------------------------------------


def ref_global(ws, s):
    model_like = np.concatenate([w.ravel() for w in ws])
    keep = prune.magnitude_mask(model_like, s)
    return [m.reshape(w.shape) for m, w in zip(np.split(keep, np.cumsum([w.size for w in ws])[:-1]), ws)]


def test_global_masks():
    ex = lab01.global_masks
    assert ex.passes(ref_global)
    assert "not implemented" in ex.verdict(stub)
    assert "layer-wise" in ex.verdict(lambda ws, s: [prune.magnitude_mask(w, s) for w in ws])

    def quantile(ws, s):  # np.quantile threshold: count differs from floor(s·n)
        t = np.quantile(np.abs(np.concatenate([w.ravel() for w in ws])), s)
        return [np.abs(w) > t for w in ws]

    assert "expected floor(0.5 · 7) = 3" in ex.verdict(quantile)

    def per_layer_count(ws, s):  # global threshold but floor(s · n) rounded per layer
        return [prune.magnitude_mask(w, s) for w in ws]

    assert "layer-wise" in ex.verdict(per_layer_count)
    assert "list of" in ex.verdict(lambda ws, s: ref_global(ws, s)[0])
    assert "mask 0 should hold booleans" in ex.verdict(lambda ws, s: [m.astype(float) for m in ref_global(ws, s)])

    def largest_first(ws, s):  # one ranking over all layers, but sorted from the largest |w|
        flat = np.concatenate([w.ravel() for w in ws])
        keep = np.ones(flat.size, bool)
        keep[np.argsort(-np.abs(flat), kind="stable")[: int(np.floor(s * flat.size))]] = False
        return [m.reshape(w.shape) for m, w in zip(np.split(keep, np.cumsum([w.size for w in ws])[:-1]), ws)]

    assert "remove the smallest |w| over all layers" in ex.verdict(largest_first)


# --- masked_momentum_step -----------------------------------------------------------------------------


def test_masked_momentum_step():
    ex = lab01.masked_momentum_step

    def ref(W, dW, v, mask, lr, mom):
        v = (mom * v + dW * mask) * mask
        return (W - lr * v) * mask, v

    assert ex.passes(ref)
    assert "not implemented" in ex.verdict(stub)

    def only_grad(W, dW, v, mask, lr, mom):  # masks the gradient but not the old momentum
        v = mom * v + dW * mask
        return W - lr * v, v

    def no_mask(W, dW, v, mask, lr, mom):
        v = mom * v + dW
        return W - lr * v, v

    def reapply_only(W, dW, v, mask, lr, mom):  # weights fine, velocity keeps pushing
        v = mom * v + dW
        return (W - lr * v) * mask, v

    def wrong_sign(W, dW, v, mask, lr, mom):
        v = (mom * v + dW * mask) * mask
        return (W + lr * v) * mask, v

    assert "velocity still holds momentum" in ex.verdict(only_grad)
    assert "not exactly 0" in ex.verdict(no_mask)
    assert "velocity is not 0" in ex.verdict(reapply_only)
    assert "W_new" in ex.verdict(wrong_sign)
    assert "return the pair (W_new, v_new)" in ex.verdict(lambda *args: ref(*args)[0])
    assert "W_new must be a numpy array, got list" in ex.verdict(lambda *args: (ref(*args)[0].tolist(), ref(*args)[1]))

    def old_velocity(W, dW, v, mask, lr, mom):  # the step is right, but it returns the velocity it started from
        return ref(W, dW, v, mask, lr, mom)[0], v * mask

    assert "v_new" in ex.verdict(old_velocity)


def test_mask_reference_is_the_kit_function_without_numba():
    """The check's reference (float64, numpy path) gives the kit's float32 masks, ties included, and
    calling ``prune.magnitude_mask`` still counts as calling the reference."""
    from labkit.check import lab01
    from labkit.prune import magnitude_mask as kit_mask

    rng = np.random.default_rng(1)
    for i in range(200):
        shape = tuple(int(d) for d in rng.integers(1, 30, rng.integers(1, 4)))
        w = (rng.integers(-3, 4, shape) if i % 2 else rng.standard_normal(shape)).astype(np.float32)
        s = float(rng.choice([0.0, 0.1, 0.5, 0.73, 0.9, 0.99]))
        assert np.array_equal(lab01._mask_ref(w, s), kit_mask(w, s))
    assert kit_mask.__code__ in lab01.magnitude_mask._reference_codes()


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab01)
    assert_every_hint_reached(sys.modules[__name__], lab01)
