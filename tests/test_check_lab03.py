"""Lab 03's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import lab03


def stub(*args):
    raise NotImplementedError()


def szp_right(lo, hi, bits):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, int(np.clip(-np.rint(lo / scale), 0, 2**bits - 1))


def test_scale_zero_point():
    ex = lab03.scale_zero_point
    assert ex.passes(szp_right)
    assert "not implemented" in ex.verdict(stub)

    def no_widening(lo, hi, bits):
        scale = (hi - lo) / (2**bits - 1)
        return scale, int(np.clip(-np.rint(lo / scale), 0, 2**bits - 1))

    assert "contain 0" in ex.verdict(no_widening)
    two_pow_b = lambda lo, hi, b: (szp_right(lo, hi, b)[0] * (2**b - 1) / 2**b, szp_right(lo, hi, b)[1])
    assert "not 2^" in ex.verdict(two_pow_b)
    assert "must be an int" in ex.verdict(lambda lo, hi, b: (szp_right(lo, hi, b)[0], float(szp_right(lo, hi, b)[1])))
    assert "positive when lo < 0" in ex.verdict(lambda lo, hi, b: (szp_right(lo, hi, b)[0], -szp_right(lo, hi, b)[1]))
    # a zero point that is not rounded (truncated instead)
    trunc = lambda lo, hi, b: (szp_right(lo, hi, b)[0], int(-min(lo, 0) / szp_right(lo, hi, b)[0]))
    assert "round(min(lo, 0) / scale)" in ex.verdict(trunc)
    assert "return a pair (scale, zero_point)" in ex.verdict(lambda lo, hi, b: szp_right(lo, hi, b)[0])
    per_end = lambda lo, hi, b: (np.full(2, szp_right(lo, hi, b)[0]), szp_right(lo, hi, b)[1])  # one per range end
    assert "scale must be a number, got ndarray" in ex.verdict(per_end)
    symmetric = lambda lo, hi, b: (max(abs(lo), abs(hi)) / (2 ** (b - 1) - 1), szp_right(lo, hi, b)[1])
    assert "= (max(hi, 0) - min(lo, 0)) / (2^8 - 1)" in ex.verdict(symmetric)


def q_right(x, scale, zp, bits):
    return np.clip(np.rint(x / scale) + zp, 0, 2**bits - 1).astype(np.int64)


def test_quantize():
    ex = lab03.quantize
    assert ex.passes(q_right)
    assert ex.passes(lambda x, s, z, b: q_right(x, s, z, b).astype(np.uint8))
    assert "not implemented" in ex.verdict(stub)
    assert "half to even" in ex.verdict(lambda x, s, z, b: np.clip(np.floor(x / s + 0.5) + z, 0, 2**b - 1).astype(int))
    assert "clamp" in ex.verdict(lambda x, s, z, b: (np.rint(x / s) + z).astype(int))
    assert "don't truncate" in ex.verdict(lambda x, s, z, b: np.clip(np.trunc(x / s) + z, 0, 2**b - 1).astype(int))
    assert "add the zero point" in ex.verdict(lambda x, s, z, b: np.clip(np.rint(x / s) - z, 0, 2**b - 1).astype(int))
    assert "integer" in ex.verdict(lambda x, s, z, b: np.clip(np.rint(x / s) + z, 0, 2**b - 1))
    assert "don't multiply" in ex.verdict(lambda x, s, z, b: np.clip(np.rint(x * s) + z, 0, 2**b - 1).astype(int))
    no_zero_point = lambda x, s, z, b: np.clip(np.rint(x / s), 0, 2**b - 1).astype(int)
    assert "your quantized values differ" in ex.verdict(no_zero_point)
    # Legitimately accepted: dividing in float32 instead of float64. float32
    # x / float32 scale is correctly rounded, so it agrees with float64 on these cases, and it is
    # what a float32 kernel computes; nothing in the exercise asks for float64.
    f32 = lambda x, s, z, b: np.clip(np.rint(x.astype(np.float32) / np.float32(s)) + z, 0, 2**b - 1).astype(np.int64)
    assert ex.passes(f32)


def test_dequantize():
    ex = lab03.dequantize
    assert ex.passes(lambda q, s, z: (s * (q.astype(np.int32) - z)).astype(np.float32))
    assert "not implemented" in ex.verdict(stub)
    assert "wrapped around" in ex.verdict(lambda q, s, z: (s * (q - np.uint8(z))).astype(np.float32))
    assert "subtract the zero point" in ex.verdict(lambda q, s, z: (s * (q.astype(np.int32) + z)).astype(np.float32))
    assert "float32" in ex.verdict(lambda q, s, z: np.float64(s) * (q.astype(np.int32) - z))
    assert "floats" in ex.verdict(lambda q, s, z: q.astype(np.int32) - z)
    no_scale = lambda q, s, z: (q.astype(np.int32) - z).astype(np.float32)
    assert "your dequantized values is off" in ex.verdict(no_scale)


def test_per_channel_scales():
    ex = lab03.per_channel_scales
    right = lambda W, b: np.abs(W).reshape(len(W), -1).max(axis=1) / (2 ** (b - 1) - 1)
    assert ex.passes(right)
    assert "not implemented" in ex.verdict(stub)
    assert "one scale per output channel" in ex.verdict(lambda W, b: np.abs(W).max() / (2 ** (b - 1) - 1))
    assert "whole tensor" in ex.verdict(lambda W, b: np.full(len(W), np.abs(W).max() / (2 ** (b - 1) - 1)))
    assert "absolute" in ex.verdict(lambda W, b: W.reshape(len(W), -1).max(axis=1) / (2 ** (b - 1) - 1))
    assert "not 2^" in ex.verdict(lambda W, b: np.abs(W).reshape(len(W), -1).max(axis=1) / 2 ** (b - 1))
    assert "except axis 0" in ex.verdict(lambda W, b: np.abs(W).reshape(len(W), -1).max(axis=0) / (2 ** (b - 1) - 1))
    column = lambda W, b: np.abs(W).reshape(len(W), -1).max(axis=1, keepdims=True) / (2 ** (b - 1) - 1)
    assert "scales have shape (3, 1), expected (3,)" in ex.verdict(column)
    assert "your scales is off" in ex.verdict(lambda W, b: np.abs(W).reshape(len(W), -1).max(axis=1) / (2**b - 1))


def test_pass_lines_print_once(capsys):
    lab03.scale_zero_point(szp_right)
    assert capsys.readouterr().out == lab03.scale_zero_point.pass_line + "\n"


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab03)
    assert_every_hint_reached(sys.modules[__name__], lab03)
