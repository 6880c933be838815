"""Lab 12's checks accept right answers (by hand and through labkit) and reject wrong ones with their hints."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from labkit import nn
from labkit import quant as Q
from labkit.check import lab12


def test_every_check_rejects_not_implemented():
    def stub(*args):
        raise NotImplementedError()

    for ex in (lab12.round_e4m3, lab12.nf4_quantize, lab12.mx_block, lab12.attend_with_cache):
        assert "not implemented" in ex.verdict(stub)


# --- Exercise 1: E4M3 ------------------------------------------------------------------------------


def test_e4m3_reference_matches_ml_dtypes_and_the_library():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5000) * 2.0 ** rng.uniform(-14, 10, 5000)
    saturated = np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    np.testing.assert_array_equal(lab12.reference_round_e4m3(x), saturated)
    np.testing.assert_array_equal(lab12.reference_round_e4m3(x), Q.round_to_format(x, "e4m3"))
    for case in lab12.round_e4m3.cases():
        np.testing.assert_array_equal(lab12.reference_round_e4m3(*case.args), Q.round_to_format(*case.args, "e4m3"))


def test_e4m3_accepts_right_answers():
    ex = lab12.round_e4m3
    assert ex.passes(lambda x: Q.round_to_format(x, "e4m3"))
    assert ex.passes(lambda x: np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32))


def _grid(x, mbits, min_exp, vmax, rnd=np.rint):
    a = np.abs(x)
    e = np.maximum(np.frexp(a)[1] - 1, min_exp)
    step = np.ldexp(1.0, e - mbits)
    return np.copysign(np.minimum(rnd(a / step) * step, vmax), x)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x: x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64), "saturate"),
        (lambda x: _grid(x, 3, -6, np.inf), "saturate"),
        (lambda x: _grid(x, 3, -6, 240.0), "not 240"),
        (lambda x: _grid(x, 3, -6, 448.0, lambda t: np.floor(t + 0.5)), "ties go to the even"),
        (lambda x: _grid(x, 3, -6, 448.0, np.floor), "truncate"),
        (lambda x: np.where(np.abs(x) < 2.0**-6, 0.0, _grid(x, 3, -6, 448.0)), "subnormals"),
        (lambda x: _grid(x, 2, -14, 57344.0), "E5M2"),
        (lambda x: _grid(x, 3, -7, 448.0), "subnormal step"),
        (lambda x: _grid(x, 3, -6, 448.0).tolist(), "numpy array"),
        (lambda x: _grid(x, 3, -6, 448.0).astype(np.int64), "float array"),
        (lambda x: _grid(x, 3, -6, 448.0).ravel(), "shape"),
    ],
)
def test_e4m3_wrong_answers_get_their_hint(wrong, hint):
    line = lab12.round_e4m3.verdict(wrong)
    assert line.startswith("FAIL: ") and hint in line, line


# --- Exercise 2: NF4 ----------------------------------------------------------------------------------


def test_nf4_table_and_reference_match_the_library():
    np.testing.assert_array_equal(lab12.NF4, Q.NF4_CODE)
    w = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    bq = Q.quantize_blocks(w, "nf4", 64, double_quant=False)
    codes = np.stack([lab12.reference_nf4_quantize(row)[0] for row in w])
    np.testing.assert_array_equal(codes, bq.storage["codes"][0].reshape(4, 64))


def nf4_right(w):
    w = np.asarray(w, np.float64)
    a = np.abs(w).max()
    if a == 0:
        return np.full(w.shape, 7), 0.0
    d = np.abs(w[:, None] / a - Q.NF4_CODE[None, :].astype(np.float64))
    return d.argmin(axis=1), float(a)  # argmin takes the first (lower) index on a tie


def test_nf4_accepts_right_answers():
    assert lab12.nf4_quantize.passes(nf4_right)
    assert lab12.nf4_quantize.passes(lab12.reference_nf4_quantize)


def _nf4_upper_ties(w):
    codes, a = nf4_right(w)
    if a == 0:
        return codes, a
    d = np.abs(np.asarray(w, np.float64)[:, None] / a - Q.NF4_CODE[None, :].astype(np.float64))
    return 15 - d[:, ::-1].argmin(axis=1), a


def _nf4_uniform(w):
    w = np.asarray(w, np.float64)
    a = np.abs(w).max()
    if a == 0:
        return np.full(w.shape, 7), 0.0
    return np.abs(w[:, None] / a - np.linspace(-1, 1, 16)[None, :]).argmin(axis=1), a


def _nf4_minmax(w):
    w = np.asarray(w, np.float64)
    lo, hi = w.min(), w.max()
    if hi == lo:
        return np.full(w.shape, 7), 0.0
    v = 2 * (w - lo) / (hi - lo) - 1
    return np.abs(v[:, None] - Q.NF4_CODE[None, :]).argmin(axis=1), float(np.abs(w).max())


def _nf4_signed_max(w):
    codes, a = nf4_right(w)
    return codes, float(np.max(w))


def _nf4_nan_on_zero(w):
    w = np.asarray(w, np.float64)
    a = np.abs(w).max()
    with np.errstate(invalid="ignore", divide="ignore"):
        v = w / a
    return np.nan_to_num(np.abs(v[:, None] - Q.NF4_CODE[None, :]), nan=1.0).argmin(axis=1), float(a)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_nf4_upper_ties, "lower index"),
        (_nf4_uniform, "evenly spaced"),
        (_nf4_minmax, "don't stretch"),
        (_nf4_signed_max, "largest magnitude"),
        (_nf4_nan_on_zero, "all-zero block"),
        (lambda w: (Q.NF4_CODE[nf4_right(w)[0]], nf4_right(w)[1]), "indices"),
        (lambda w: nf4_right(w)[0], "pair"),
        (lambda w: (nf4_right(w)[0], "1.0"), "float"),
    ],
)
def test_nf4_wrong_answers_get_their_hint(wrong, hint):
    line = lab12.nf4_quantize.verdict(wrong)
    assert line.startswith("FAIL: ") and hint in line, line


# --- Exercise 3: MX block ---------------------------------------------------------------------------------


def test_mx_reference_matches_the_library():
    W = (np.random.default_rng(2).standard_normal((3, 64)) * 3).astype(np.float32)
    bq = Q.quantize_blocks(W, "mxfp4")
    exps = bq.storage["scale_e8m0"][0].astype(int) - 127
    for i in range(3):
        for j in range(2):
            e, el = lab12.reference_mx_block(W[i, 32 * j : 32 * (j + 1)])
            assert e == exps[i, j]
            np.testing.assert_array_equal(el * 2.0**e, bq.dequantize()[i, 32 * j : 32 * (j + 1)])
    np.testing.assert_array_equal(
        lab12._e2m1(np.linspace(-9, 9, 301)),
        np.clip(np.linspace(-9, 9, 301), -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float64),
    )


def mx_right(v):
    v = np.asarray(v, np.float64)
    a = np.abs(v).max()
    e = -127 if a == 0 else int(np.clip(np.floor(np.log2(a)) - 2, -127, 127))
    return e, Q.round_to_format(v / 2.0**e, "e2m1")


def test_mx_accepts_right_answers():
    assert lab12.mx_block.passes(mx_right)
    assert lab12.mx_block.passes(lambda v: (float(mx_right(v)[0]), mx_right(v)[1]))


def _mx_with(efn):
    def f(v):
        v = np.asarray(v, np.float64)
        a = np.abs(v).max()
        e = -127 if a == 0 else int(np.clip(efn(v, a), -127, 127))
        return e, Q.round_to_format(v / 2.0**e, "e2m1")

    return f


def _mx_unclamped(v):
    v = np.asarray(v, np.float64)
    a = np.abs(v).max()
    e = -127 if a == 0 else int(np.floor(np.log2(a)) - 2)
    return e, Q.round_to_format(v / 2.0**e, "e2m1")


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_mx_with(lambda v, a: np.floor(np.log2(a))), "subtract 2"),
        (_mx_with(lambda v, a: np.ceil(np.log2(a)) - 2), "round log2 down"),
        (_mx_with(lambda v, a: np.ceil(np.log2(a / 6))), "max|v|/6"),
        (_mx_with(lambda v, a: np.floor(np.log2(max(v.max(), 1e-300))) - 2), "largest magnitude"),
        (_mx_unclamped, "clamp"),
        (lambda v: (mx_right(v)[0], np.clip(np.asarray(v) / 2.0 ** mx_right(v)[0], -6, 6)), "round the scaled"),
        (lambda v: (mx_right(v)[0], mx_right(v)[1] * 2.0 ** mx_right(v)[0]), "not the decoded"),
        (lambda v: (mx_right(v)[0], lab12._minifloat(v / 2.0 ** mx_right(v)[0], 1, 0, 8.0)), "saturate"),
        (lambda v: (0.5, mx_right(v)[1]), "integer exponent"),
        (lambda v: mx_right(v)[1], "pair"),
    ],
)
def test_mx_wrong_answers_get_their_hint(wrong, hint):
    line = lab12.mx_block.verdict(wrong)
    assert line.startswith("FAIL: ") and hint in line, line


def test_mx_zero_block_hint():
    def zero_exponent_for_zeros(v):
        e, el = mx_right(v)
        return (0 if not np.any(v) else e), el

    assert "all-zero block" in lab12.mx_block.verdict(zero_exponent_for_zeros)


# --- Exercise 4: the KV cache -------------------------------------------------------------------------------


def attend_right(K, V, q, k, v):
    K = np.concatenate([K, k[:, None]], axis=1)
    V = np.concatenate([V, v[:, None]], axis=1)
    y, _ = nn.causal_attention(q[None, :, None, :], K[None], V[None])
    return K, V, y[0, :, 0]


def test_attend_accepts_right_answers():
    assert lab12.attend_with_cache.passes(attend_right)
    assert lab12.attend_with_cache.passes(lab12.reference_attend_with_cache)


def _attend_variant(scale, axis=1, include_new=True, front=False):
    def f(K, V, q, k, v):
        if front:
            Kn, Vn = np.concatenate([k[:, None], K], 1), np.concatenate([v[:, None], V], 1)
        else:
            Kn, Vn = np.concatenate([K, k[:, None]], 1), np.concatenate([V, v[:, None]], 1)
        Ka, Va = (Kn, Vn) if include_new else (K, V)
        if Ka.shape[1] == 0:
            Ka, Va = Kn, Vn
        s = np.einsum("htd,hd->ht", Ka, q) * scale(q)
        p = np.exp(s - s.max(axis=axis, keepdims=True))
        p /= p.sum(axis=axis, keepdims=True)
        return Kn, Vn, np.einsum("ht,htd->hd", p, Va)

    return f


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_attend_variant(lambda q: 1 / np.sqrt(q.shape[1]), include_new=False), "attend after appending"),
        (_attend_variant(lambda q: 1.0), "1/√d_head before"),
        (_attend_variant(lambda q: 1 / np.sqrt(q.size)), "not 1/√d_model"),
        (_attend_variant(lambda q: 1 / np.sqrt(q.shape[1]), axis=0), "over the positions"),
        (_attend_variant(lambda q: 1 / q.shape[1]), "not 1/d_head"),
        (_attend_variant(lambda q: 1 / np.sqrt(q.shape[1]), front=True), "at the end"),
        (lambda K, V, q, k, v: (K, V, attend_right(K, V, q, k, v)[2]), "T + 1 positions"),
        (lambda K, V, q, k, v: attend_right(K, V, q, k, v)[2], "triple"),
    ],
)
def test_attend_wrong_answers_get_their_hint(wrong, hint):
    line = lab12.attend_with_cache.verdict(wrong)
    assert line.startswith("FAIL: ") and hint in line, line
