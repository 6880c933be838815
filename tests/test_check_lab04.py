"""Lab 04's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import lab04
from labkit.quant import requantize


def stub(*args):
    raise NotImplementedError()


def ste_right(g, x, s, z, bits):
    q = np.rint(x / s) + z
    return np.where((q >= 0) & (q <= 2**bits - 1), g, 0)


def test_ste_backward():
    ex = lab04.ste_backward
    assert ex.passes(ste_right)
    assert "not implemented" in ex.verdict(stub)
    assert "pass every gradient" in ex.verdict(lambda g, x, s, z, b: g)
    assert "true derivative" in ex.verdict(lambda g, x, s, z, b: np.zeros_like(g))
    real_range = lambda g, x, s, z, b: np.where((x >= s * (0 - z)) & (x <= s * (2**b - 1 - z)), g, 0)
    assert "compare after rounding" in ex.verdict(real_range)

    def signed_range(g, x, s, z, b):
        q = np.rint(x / s) + z
        return np.where((q >= -(2 ** (b - 1))) & (q <= 2 ** (b - 1) - 1), g, 0)

    def strict(g, x, s, z, b):
        q = np.rint(x / s) + z
        return np.where((q > 0) & (q < 2**b - 1), g, 0)

    assert "unsigned here" in ex.verdict(signed_range)
    assert "<=, not <" in ex.verdict(strict)
    assert "shape" in ex.verdict(lambda g, x, s, z, b: ste_right(g, x, s, z, b)[:-1])

    def no_zero_point(g, x, s, z, b):  # the code without its zero point
        q = np.rint(x / s)
        return np.where((q >= 0) & (q <= 2**b - 1), g, 0)

    def divided_by_scale(g, x, s, z, b):  # the chain rule through x / s, which the STE leaves out
        return ste_right(g, x, s, z, b) / s

    assert "the zero point is missing" in ex.verdict(no_zero_point)
    assert "your gradient is off" in ex.verdict(divided_by_scale)


def qm_right(M):
    m, e = np.frexp(M)
    M0, n = int(np.rint(m * 2**31)), int(-e)
    return (2**30, n - 1) if M0 == 2**31 else (M0, n)


def test_quantize_multiplier():
    ex = lab04.quantize_multiplier
    assert ex.passes(qm_right)
    assert "not implemented" in ex.verdict(stub)

    def no_carry(M):
        m, e = np.frexp(M)
        return int(np.rint(m * 2**31)), int(-e)

    assert "does not fit int32" in ex.verdict(no_carry)
    assert "off by one" in ex.verdict(lambda M: (qm_right(M)[0], qm_right(M)[1] + 1))
    assert "not in [2^30, 2^31)" in ex.verdict(lambda M: (int(np.rint(M * 2**31)), 0))
    assert "must be an integer" in ex.verdict(lambda M: (float(qm_right(M)[0]), qm_right(M)[1]))

    def truncating(M):
        m, e = np.frexp(M)
        return int(m * 2**31), int(-e)

    assert "don't truncate" in ex.verdict(truncating)
    assert "return a pair" in ex.verdict(lambda M: qm_right(M)[0])

    def exponent_sign(M):  # n = e instead of -e
        m, e = np.frexp(M)
        return int(np.rint(m * 2**31)), int(e)

    assert "so that M ≈ M0 · 2^-(31 + n)" in ex.verdict(exponent_sign)


def rq_right(acc, M0, n, z):
    return requantize(acc, M0, n, z)


def test_requantize():
    ex = lab04.requantize
    assert ex.passes(rq_right)

    # Floating-point answers are rejected: the exercise is integer-only, and the
    # fixed cases put |acc · M0| beyond 2^53 next to rounding ties, where float64 rounds wrongly.
    floats = {
        "issue's float answer": lambda acc, M0, n, z: np.clip(np.rint(acc * (M0 / 2**31) / 2**n) + z, 0, 255).astype(
            np.uint8
        ),
        "float multiplier": lambda acc, M0, n, z: np.clip(np.rint(acc * (M0 * 2.0 ** -(31 + n))) + z, 0, 255).astype(
            np.uint8
        ),
        "int64 product, float division": lambda acc, M0, n, z: np.clip(
            np.rint(acc.astype(np.int64) * M0 / 2.0 ** (31 + n)) + z, 0, 255
        ).astype(np.uint8),
        "float ldexp": lambda acc, M0, n, z: np.clip(
            np.rint(np.ldexp(acc.astype(np.float64) * M0, -(31 + n))) + z, 0, 255
        ).astype(np.int64),
    }
    for name, fn in floats.items():
        v = ex.verdict(fn)
        assert "float64 (53-bit mantissa) cannot hold that product exactly" in v and "integer" in v, (name, v)
    raw = lambda acc, M0, n, z: np.rint(acc * (M0 / 2**31) / 2**n) + z  # the float expression tutorials write
    assert "should hold integers" in ex.verdict(raw)
    assert "not implemented" in ex.verdict(stub)
    prod = lambda acc, M0: acc.astype(np.int64) * M0
    assert "truncates" in ex.verdict(lambda acc, M0, n, z: np.clip((prod(acc, M0) >> (31 + n)) + z, 0, 255))
    half_up = lambda acc, M0, n, z: np.clip(((prod(acc, M0) + (1 << (30 + n))) >> (31 + n)) + z, 0, 255)
    assert "ties must go to even" in ex.verdict(half_up)
    no_zp = lambda acc, M0, n, z: np.clip(np.rint(prod(acc, M0) / 2.0 ** (31 + n)), 0, 255).astype(np.uint8)
    assert "zero point" in ex.verdict(no_zp)
    assert "clamp" in ex.verdict(lambda acc, M0, n, z: np.rint(prod(acc, M0) / 2.0 ** (31 + n)).astype(int) + z)
    assert "integers" in ex.verdict(lambda acc, M0, n, z: np.clip(np.rint(prod(acc, M0) / 2.0 ** (31 + n)) + z, 0, 255))

    def int32_product(acc, M0, n, z):
        with np.errstate(over="ignore"):
            return np.clip(np.rint((acc * np.int32(M0)).astype(np.int64) / 2.0 ** (31 + n)) + z, 0, 255).astype(int)

    def without_n(acc, M0, n, z):  # shifts by 31 only
        return np.clip(((prod(acc, M0) + (1 << 30)) >> 31) + z, 0, 255)

    assert "overflows int32: multiply in int64" in ex.verdict(int32_product)
    assert "your requantized values differ" in ex.verdict(without_n)


def dense_right(q_x, z_x, q_W, q_b, M0, n, z_y, relu):
    acc = (q_x.astype(np.int32) - z_x) @ q_W.T.astype(np.int32) + q_b
    return requantize(acc, M0, n, z_y, relu=relu)


def test_integer_dense():
    ex = lab04.integer_dense
    assert ex.passes(dense_right)
    assert "not implemented" in ex.verdict(stub)
    no_zx = lambda q_x, z_x, q_W, q_b, M0, n, z_y, relu: dense_right(q_x, 0, q_W, q_b, M0, n, z_y, relu)
    assert "input zero point" in ex.verdict(no_zx)
    no_b = lambda q_x, z_x, q_W, q_b, M0, n, z_y, relu: dense_right(q_x, z_x, q_W, 0 * q_b, M0, n, z_y, relu)
    assert "bias" in ex.verdict(no_b)
    no_relu = lambda q_x, z_x, q_W, q_b, M0, n, z_y, relu: dense_right(q_x, z_x, q_W, q_b, M0, n, z_y, False)
    assert "fused ReLU" in ex.verdict(no_relu)

    def uint8_overflow(q_x, z_x, q_W, q_b, M0, n, z_y, relu):  # products in uint8/int8 wrap around
        acc = ((q_x - np.uint8(z_x)).astype(np.int8).astype(np.int32)) @ q_W.T.astype(np.int32) + q_b
        return requantize(acc, M0, n, z_y, relu=relu)

    assert "wrapped around in uint8" in ex.verdict(uint8_overflow)

    def in_uint8(q_x, z_x, q_W, q_b, M0, n, z_y, relu):  # what numpy does without a cast: uint8, then int16
        return requantize((q_x - z_x) @ q_W.T + q_b, M0, n, z_y, relu=relu)

    def widened_late(q_x, z_x, q_W, q_b, M0, n, z_y, relu):  # the cast comes after the subtraction
        return requantize((q_x - z_x).astype(np.int32) @ q_W.T.astype(np.int32) + q_b, M0, n, z_y, relu=relu)

    def one_multiplier(q_x, z_x, q_W, q_b, M0, n, z_y, relu):  # the first channel's (M0, n) for every channel
        acc = (q_x.astype(np.int32) - z_x) @ q_W.T.astype(np.int32) + q_b
        return requantize(acc, M0[0], n[0], z_y, relu=relu)

    for wrapped in (in_uint8, widened_late):
        assert "widen to int32 before subtracting" in ex.verdict(wrapped)
    assert "your layer's output differs" in ex.verdict(one_multiplier)
    assert "should hold integers" in ex.verdict(lambda *args: dense_right(*args).astype(np.float32))


def test_requantize_float64_cases_are_next_to_ties_beyond_2_53():
    from fractions import Fraction

    for case in lab04.requantize.fixed_cases[1:]:
        acc, M0, n, z = case.args
        n_beyond = 0
        for a in acc.tolist():
            exact = Fraction(a * M0, 2 ** (31 + n))
            if abs(a * M0) > 2**53:
                n_beyond += 1
                frac = exact - (exact.numerator // exact.denominator)
                assert abs(frac - Fraction(1, 2)) * 2 ** (31 + n) < 2 ** (n - 14)  # within float64's blur
                assert float(np.rint(a * (M0 / 2**31) / 2**n)) != round(exact)  # float64 rounds wrongly
                assert 0 <= round(exact) + z <= 255  # not hidden by the clamp
        assert n_beyond >= 4


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab04)
    assert_every_hint_reached(sys.modules[__name__], lab04)
