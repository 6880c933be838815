"""Lab 09 checks: the reference passes for many seeds, the stub fails, and each plausible wrong
answer fails with its own hint. The references also agree with the library the lab uses."""

import math
import sys

import numpy as np
import pytest
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit import prune as P
from labkit import quant as Q
from labkit.check import lab09

EXERCISES = [lab09.obs_prune_one, lab09.wanda_mask, lab09.nm_mask, lab09.quantize_groupwise, lab09.dequantize_groupwise]


def stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.answer_id for e in EXERCISES])
def test_reference_passes_many_seeds_and_stub_fails(ex):
    assert ex.passes(ex.reference)
    for seed in range(25):
        assert ex.evaluate(ex.reference, ex.grading_cases(seed)) is None, seed
    assert "not implemented" in ex.verdict(stub)
    assert "expected a function" in ex.verdict(None)


# --- Exercise 1: OBS -------------------------------------------------------------------------------------


def obs_right(w, H, q):
    Hinv = np.linalg.inv(H)
    w_new = w - w[q] / Hinv[q, q] * Hinv[:, q]
    return w_new, w[q] ** 2 / (2 * Hinv[q, q])


def test_obs_accepts_equivalent_answers():
    ex = lab09.obs_prune_one
    assert ex.passes(obs_right)  # w_new[q] only zero up to rounding, delta_loss a numpy scalar
    assert ex.passes(lambda w, H, q: (obs_right(w, H, q)[0], float(obs_right(w, H, q)[1])))

    def via_solve(w, H, q):  # H⁻¹ e_q by a linear solve
        col = np.linalg.solve(H, np.eye(len(w))[q])
        return w - w[q] / col[q] * col, w[q] ** 2 / (2 * col[q])

    assert ex.passes(via_solve)


def test_obs_wrong_answers_get_their_hint():
    ex = lab09.obs_prune_one

    def only_zero(w, H, q):
        w_new = w.copy()
        w_new[q] = 0
        return w_new, obs_right(w, H, q)[1]

    assert "only set w[" in ex.verdict(only_zero)

    def with_H(w, H, q):
        return w - w[q] / H[q, q] * H[:, q], obs_right(w, H, q)[1]

    assert "inverse" in ex.verdict(with_H)

    def sign(w, H, q):
        Hinv = np.linalg.inv(H)
        return w + w[q] / Hinv[q, q] * Hinv[:, q], obs_right(w, H, q)[1]

    assert "mind the sign" in ex.verdict(sign)

    def no_division(w, H, q):
        Hinv = np.linalg.inv(H)
        return w - w[q] * Hinv[:, q], obs_right(w, H, q)[1]

    assert "divide by [H⁻¹]_qq" in ex.verdict(no_division)
    assert "twice too large" in ex.verdict(lambda w, H, q: (obs_right(w, H, q)[0], 2 * obs_right(w, H, q)[1]))
    assert "Optimal Brain Damage" in ex.verdict(lambda w, H, q: (obs_right(w, H, q)[0], 0.5 * w[q] ** 2 * H[q, q]))
    inv = lambda H, q: np.linalg.inv(H)[q, q]
    assert "don't multiply" in ex.verdict(lambda w, H, q: (obs_right(w, H, q)[0], 0.5 * w[q] ** 2 * inv(H, q)))
    assert "square w_q" in ex.verdict(lambda w, H, q: (obs_right(w, H, q)[0], abs(w[q]) / (2 * inv(H, q))))
    assert "pair" in ex.verdict(lambda w, H, q: obs_right(w, H, q)[0])
    assert "w_new must be a numpy array" in ex.verdict(lambda w, H, q: (list(obs_right(w, H, q)[0]), 0.0))
    every_q = lambda w, H, q: (obs_right(w, H, q)[0], w**2 / (2 * np.diag(np.linalg.inv(H))))  # ΔL of every weight
    assert "delta_loss should be a number" in ex.verdict(every_q)

    def inverse_over_H_qq(w, H, q):  # the column of H⁻¹, divided by H_qq instead of [H⁻¹]_qq
        return w - w[q] / H[q, q] * np.linalg.inv(H)[:, q], obs_right(w, H, q)[1]

    def damped(w, H, q):  # H + I instead of H
        return obs_right(w, H + np.eye(len(w)), q)[0], obs_right(w, H, q)[1]

    assert "not 0: the removed weight must end at exactly 0" in ex.verdict(inverse_over_H_qq)
    assert "w_new is off" in ex.verdict(damped)
    assert "= w_q² / (2 [H⁻¹]_qq)" in ex.verdict(lambda w, H, q: (obs_right(w, H, q)[0], w[q] ** 2 / 2))


def test_obs_delta_loss_is_the_real_error_increase():
    """ΔL = ½ δwᵀ H δw: with H = 2XᵀX this is ‖X δw‖², the increase of the layer's output error."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 7))
    H = 2 * X.T @ X
    w = rng.standard_normal(7)
    w_new, dl = lab09.reference_obs_prune_one(w, H, 2)
    assert w_new[2] == 0.0
    assert np.isclose(dl, np.sum((X @ (w_new - w)) ** 2))
    # and no other vector with w_new[2] = 0 does better
    for _ in range(20):
        other = w_new + rng.standard_normal(7) * 0.05
        other[2] = 0.0
        assert np.sum((X @ (other - w)) ** 2) >= dl


# --- Exercise 2: Wanda -------------------------------------------------------------------------------------


def per_row(score, sparsity):
    k = math.floor(sparsity * score.shape[1])
    mask = np.ones(score.shape, bool)
    np.put_along_axis(mask, np.argsort(score, axis=1, kind="stable")[:, :k], False, axis=1)
    return mask


def wanda_right(W, X, sparsity):
    return per_row(np.abs(W) * np.linalg.norm(X, axis=0), sparsity)


def test_wanda_accepts_equivalent_answers():
    ex = lab09.wanda_mask
    assert ex.passes(wanda_right)
    rms = lambda W, X, s: per_row(np.abs(W) * np.sqrt(np.mean(X**2, axis=0)), s)  # a constant factor
    assert ex.passes(rms)


def test_wanda_wrong_answers_get_their_hint():
    ex = lab09.wanda_mask
    norm = lambda X: np.linalg.norm(X, axis=0)
    assert "|W| alone" in ex.verdict(lambda W, X, s: per_row(np.abs(W), s))
    assert "not its square" in ex.verdict(lambda W, X, s: per_row(np.abs(W) * norm(X) ** 2, s))
    assert "not a mean" in ex.verdict(lambda W, X, s: per_row(np.abs(W) * np.abs(X).mean(axis=0), s))
    assert "exactly the weights to remove" in ex.verdict(lambda W, X, s: ~wanda_right(W, X, s))
    assert "large negative" in ex.verdict(lambda W, X, s: per_row(W * norm(X), s))
    assert "LARGEST" in ex.verdict(lambda W, X, s: per_row(-np.abs(W) * norm(X), s))

    def whole_matrix(W, X, s):
        score = np.abs(W) * norm(X)
        k = math.floor(s * W.shape[1]) * W.shape[0]
        return score > np.sort(score.ravel())[k - 1]

    assert "whole matrix" in ex.verdict(whole_matrix)

    def rounds(W, X, s):
        k = int(np.ceil(s * W.shape[1]))
        score = np.abs(W) * norm(X)
        mask = np.ones(W.shape, bool)
        np.put_along_axis(mask, np.argsort(score, axis=1)[:, :k], False, axis=1)
        return mask

    assert "floor(sparsity · in)" in ex.verdict(rounds)
    assert "boolean" in ex.verdict(lambda W, X, s: wanda_right(W, X, s).astype(int))
    assert "raised" in ex.verdict(lambda W, X, s: per_row(np.abs(W) * np.linalg.norm(X, axis=1), s))

    def per_column(W, X, s):  # each input column removes floor(s · out) weights
        return per_row((np.abs(W) * norm(X)).T, s).T

    def signed_whole_matrix(W, X, s):  # one threshold over the whole matrix, on the signed scores W_ij · ‖X_j‖
        score, k = W * norm(X), math.floor(s * W.shape[1]) * W.shape[0]
        return score > np.sort(score.ravel())[k - 1]

    assert "within each column" in ex.verdict(per_column)
    assert "each row must remove exactly" in ex.verdict(signed_whole_matrix)
    assert "your mask differs" in ex.verdict(lambda W, X, s: per_row(np.abs(W) * np.abs(X).max(axis=0), s))  # max


# --- Exercise 3: N:M ---------------------------------------------------------------------------------------


def nm_right(W, n=2, m=4):
    out, d = W.shape
    g = np.abs(W).reshape(out, d // m, m)
    keep = np.zeros(g.shape, bool)
    np.put_along_axis(keep, np.argsort(-g, axis=2, kind="stable")[:, :, :n], True, axis=2)
    return keep.reshape(out, d)


def test_nm_wrong_answers_get_their_hint():
    ex = lab09.nm_mask
    assert ex.passes(nm_right)
    assert "exactly the weights to remove" in ex.verdict(lambda W, n, m: ~nm_right(W, n, m))
    assert "SMALLEST" in ex.verdict(lambda W, n, m: ~nm_right(W, m - n, m))

    def signed(W, n, m):
        out, d = W.shape
        g = W.reshape(out, d // m, m)
        keep = np.zeros(g.shape, bool)
        np.put_along_axis(keep, np.argsort(-g, axis=2, kind="stable")[:, :, :n], True, axis=2)
        return keep.reshape(out, d)

    assert "large negative" in ex.verdict(signed)
    assert "down the columns" in ex.verdict(lambda W, n, m: nm_right(np.ascontiguousarray(W.T), n, m).T)

    def strided(W, n, m):
        out, d = W.shape
        Wp = W.reshape(out, m, d // m).transpose(0, 2, 1).reshape(out, d)
        return nm_right(Wp, n, m).reshape(out, d // m, m).transpose(0, 2, 1).reshape(out, d)

    assert "strided" in ex.verdict(strided)

    def keeps_m_minus_n(W, n, m):
        return nm_right(W, m - n, m)

    assert "expected exactly" in ex.verdict(keeps_m_minus_n)
    assert "boolean" in ex.verdict(lambda W, n, m: nm_right(W, n, m).astype(np.float32))

    def first_n(W, n, m):  # keeps the first n of each group, without ranking
        keep = np.zeros((W.shape[0], W.shape[1] // m, m), bool)
        keep[:, :, :n] = True
        return keep.reshape(W.shape)

    assert "your mask differs" in ex.verdict(first_n)


def test_nm_wrong_axis_detected_on_a_square_case():
    W = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    hint = lab09.nm_mask.compare(nm_right(W.T).T, nm_right(W), lab09.Case((W, 2, 4)))
    assert "down the columns" in hint


# --- Exercises 4 and 5: group-wise quantization --------------------------------------------------------------


def qg_right(W, bits, gs):
    out, d = W.shape
    g = W.reshape(out, d // gs, gs).astype(np.float64)
    lo, hi = np.minimum(g.min(2), 0), np.maximum(g.max(2), 0)
    qmax = 2**bits - 1
    scale = np.where(hi > lo, (hi - lo) / qmax, 1.0)
    zero = np.clip(np.rint(-lo / scale), 0, qmax)
    q = np.clip(np.rint(g / scale[..., None]) + zero[..., None], 0, qmax)
    return q.reshape(out, d).astype(np.uint8), scale, zero.astype(np.int64)


def test_quantize_groupwise_accepts_float64_scales_and_the_library():
    ex = lab09.quantize_groupwise
    assert ex.passes(qg_right)
    assert ex.passes(lambda W, b, gs: tuple(Q.quantize_groupwise(W, b, gs)))


def test_quantize_groupwise_wrong_answers_get_their_hint():
    ex = lab09.quantize_groupwise

    def no_widen(W, bits, gs):
        out, d = W.shape
        g = W.reshape(out, d // gs, gs).astype(np.float64)
        lo, hi = g.min(2), g.max(2)
        scale = (hi - lo) / (2**bits - 1)
        zero = np.clip(np.rint(-lo / scale), 0, 2**bits - 1)
        q = np.clip(np.rint(g / scale[..., None]) + zero[..., None], 0, 2**bits - 1)
        return q.reshape(out, d).astype(np.uint8), scale, zero.astype(int)

    assert "contain 0" in ex.verdict(no_widen)

    def two_pow_b(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        return q, s * (2**bits - 1) / 2**bits, z

    assert "not 2^" in ex.verdict(two_pow_b)

    def symmetric(W, bits, gs):
        out, d = W.shape
        g = W.reshape(out, d // gs, gs).astype(np.float64)
        s = np.abs(g).max(2) / (2 ** (bits - 1) - 1)
        return qg_right(W, bits, gs)[0], s, np.zeros(s.shape, int)

    assert "symmetric" in ex.verdict(symmetric)

    def per_row(W, bits, gs):
        return qg_right(W, bits, W.shape[1])

    assert "one scale per row" in ex.verdict(per_row)

    def zero_sign(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        return q, s, -z

    assert "positive when" in ex.verdict(zero_sign)

    def round_half_up(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        out, d = W.shape
        g = W.reshape(out, d // gs, gs).astype(np.float64)
        q = np.clip(np.floor(g / s[..., None] + 0.5) + z[..., None], 0, 2**bits - 1)
        return q.reshape(out, d).astype(np.uint8), s, z

    assert "half to even" in ex.verdict(round_half_up)

    def subtract_zero(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        out, d = W.shape
        g = W.reshape(out, d // gs, gs).astype(np.float64)
        q = np.clip(np.rint(g / s[..., None]) - z[..., None], 0, 2**bits - 1)
        return q.reshape(out, d).astype(np.uint8), s, z

    assert "add the zero point" in ex.verdict(subtract_zero)

    def float_q(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        return q.astype(np.float32), s, z

    assert "integer arrays" in ex.verdict(float_q)

    def groups_along_outputs(W, bits, gs):
        q, s, z = qg_right(np.ascontiguousarray(W.T), bits, gs) if W.shape[0] % gs == 0 else (W, W, W)
        return q.T, s.T, z.T

    assert "FAIL" in ex.verdict(groups_along_outputs)
    assert "return a triple" in ex.verdict(lambda W, bits, gs: qg_right(W, bits, gs)[:2])

    def keepdims(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        return q, s[..., None], z[..., None]

    def per_row_range(W, bits, gs):  # the row's range for every group of the row
        q, s, z = qg_right(W, bits, gs)
        lo, hi = np.minimum(W.min(1), 0), np.maximum(W.max(1), 0)
        return q, np.repeat(((hi - lo) / (2**bits - 1))[:, None], s.shape[1], axis=1), z

    def floor_zero(W, bits, gs):
        q, s, z = qg_right(W, bits, gs)
        lo = np.minimum(W.reshape(W.shape[0], -1, gs).min(2), 0)
        return q, s, np.clip(np.floor(-lo / s), 0, 2**bits - 1).astype(int)

    def signed_codes(W, bits, gs):  # codes shifted to a signed range
        q, s, z = qg_right(W, bits, gs)
        return q.astype(np.int64) - 2 ** (bits - 1), s, z

    def codes_with(rounding, sign=1):
        def quantize(W, bits, gs):
            q, s, z = qg_right(W, bits, gs)
            g = W.reshape(W.shape[0], -1, gs).astype(np.float64)
            q = np.clip(rounding(g / s[..., None]) + sign * z[..., None], 0, 2**bits - 1)
            return q.reshape(W.shape).astype(np.uint8), s, z

        return quantize

    assert "should have shape (out, in // group_size)" in ex.verdict(keepdims)
    assert "scale is off" in ex.verdict(per_row_range)
    assert "zero differs" in ex.verdict(floor_zero)
    assert "clamp after adding the zero point" in ex.verdict(signed_codes)
    assert "don't truncate" in ex.verdict(codes_with(np.trunc))
    assert "q differs" in ex.verdict(codes_with(np.rint, sign=0))  # no zero point at all
    hint = lab09.quantize_groupwise.compare(
        groups_along_outputs(np.ones((8, 16), np.float32), 4, 4),
        qg_right(np.ones((8, 16), np.float32), 4, 4),
        lab09.Case((np.ones((8, 16), np.float32), 4, 4)),
    )
    assert "along the outputs" in hint


def dq_right(q, s, z, gs):
    return (np.repeat(s, gs, axis=1) * (q.astype(np.int32) - np.repeat(z, gs, axis=1).astype(np.int32))).astype(
        np.float32
    )


def test_dequantize_groupwise_wrong_answers_get_their_hint():
    ex = lab09.dequantize_groupwise
    assert ex.passes(dq_right)
    assert ex.passes(lambda q, s, z, gs: Q.dequantize_groupwise(q, s, z.astype(np.int64), gs))
    wrap = lambda q, s, z, gs: (np.repeat(s, gs, axis=1) * (q - np.repeat(z, gs, axis=1))).astype(np.float32)
    assert "wrapped around" in ex.verdict(wrap)
    tile = lambda q, s, z, gs: (np.tile(s, gs) * (q.astype(np.int32) - np.tile(z, gs).astype(np.int32))).astype(
        np.float32
    )
    assert "np.tile" in ex.verdict(tile)
    plus = lambda q, s, z, gs: (np.repeat(s, gs, axis=1) * (q.astype(np.int32) + np.repeat(z, gs, axis=1))).astype(
        np.float32
    )
    assert "subtract the zero point" in ex.verdict(plus)
    assert "float32" in ex.verdict(lambda q, s, z, gs: dq_right(q, s, z, gs).astype(np.float64))
    assert "floats" in ex.verdict(lambda q, s, z, gs: q.astype(np.int32) - np.repeat(z, gs, axis=1))
    no_scale = lambda q, s, z, gs: (q.astype(np.int32) - np.repeat(z, gs, axis=1)).astype(np.float32)
    assert "your weights is off" in ex.verdict(no_scale)


# --- the references are the library's functions -----------------------------------------------------------


def test_references_agree_with_the_library():
    rng = np.random.default_rng(1)
    for _ in range(20):
        W = (rng.standard_normal((6, 24)) * rng.uniform(0.01, 3)).astype(np.float32)
        X = rng.standard_normal((30, 24)) * rng.lognormal(0, 1, 24)
        for bits in (2, 3, 4, 8):
            got, ref = Q.quantize_groupwise(W, bits, 8), lab09.reference_quantize_groupwise(W, bits, 8)
            assert all(np.array_equal(a, b) for a, b in zip(got, ref))
            assert np.array_equal(Q.dequantize_groupwise(*got, 8), lab09.reference_dequantize_groupwise(*ref, 8))
        assert np.array_equal(P.wanda_mask(W, X, sparsity=0.5), lab09.reference_wanda_mask(W, X, 0.5))
        assert np.array_equal(P.nm_mask(W, 2, 4), lab09.reference_nm_mask(W, 2, 4))
        H = 2 * X.T @ X + np.eye(24)
        w, q = rng.standard_normal(24), int(rng.integers(24))
        a, da = Q.obs_update(w, np.linalg.inv(H), q)
        b, db = lab09.reference_obs_prune_one(w, H, q)
        assert np.allclose(a, b) and np.isclose(da, db)


def test_pass_line_printed_once(capsys):
    lab09.nm_mask(nm_right)
    assert capsys.readouterr().out == lab09.nm_mask.pass_line + "\n"


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab09)
    assert_every_hint_reached(sys.modules[__name__], lab09)
