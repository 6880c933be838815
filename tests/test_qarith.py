"""labkit.qarith: integer ranges, round-half-to-even-then-clamp, and fixed-point requantization."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labkit import kernels, quant
from labkit.qarith import (
    INT32_MAX,
    INT32_MIN,
    int_dtype,
    int_range,
    quantize_multiplier,
    requantize,
    round_clamp,
    rounding_right_shift,
    saturate_int32,
)


def test_int_range_one_function_one_default():
    assert int_range() == (0, 255)  # unsigned by default, as quant's affine activations
    assert int_range(8, signed=True) == (-128, 127)
    assert int_range(8, True, narrow_range=True) == (-127, 127)
    assert int_range(4, False, narrow_range=True) == (1, 15)
    assert int_range(1) == (0, 1) and int_range(16, True) == (-32768, 32767)
    assert quant.int_range is int_range  # the old public name is the same function
    with pytest.raises(ValueError, match=r"bits must be in \[2, 16\], got 1"):
        int_range(1, narrow_range=True)
    with pytest.raises(TypeError):
        int_range(8, signed="yes")
    assert int_dtype(8, True) is np.int8 and int_dtype(9, False) is np.uint16


@settings(max_examples=200, deadline=None)
@given(
    v=hnp.arrays(np.float64, st.integers(0, 40), elements=st.floats(-1e6, 1e6, allow_nan=False)),
    bits=st.integers(1, 16),
    signed=st.booleans(),
    zp=st.integers(-5, 5),
)
def test_round_clamp_is_rint_then_clip(v, bits, signed, zp):
    qmin, qmax = int_range(bits, signed)
    expected = np.clip(np.rint(v) + zp, qmin, qmax)
    assert np.array_equal(round_clamp(v, qmin, qmax, zp), expected)


def test_round_clamp_ties_go_to_even():
    assert round_clamp(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0]), 0, 255).tolist() == [0, 2, 2, 0, 0, 255]


@settings(max_examples=300, deadline=None)
@given(M=st.floats(1e-9, 2.0**30, exclude_max=True, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_reconstructs_M_within_2_to_minus_31(M):
    M0, n = quantize_multiplier(M)
    M0, n = int(M0), int(n)
    assert 2**30 <= M0 < 2**31
    approx = Fraction(M0, 2 ** (31 + n)) if 31 + n >= 0 else Fraction(M0 * 2 ** -(31 + n))
    assert abs(approx - Fraction(M)) <= Fraction(M) * Fraction(1, 2**31)


@pytest.mark.parametrize("M", [0.0, -1.0, float("nan"), 2.0**30])
def test_quantize_multiplier_rejects_bad_values(M):
    with pytest.raises(ValueError, match="multiplier"):
        quantize_multiplier(M)


@settings(max_examples=200, deadline=None)
@given(
    acc=hnp.arrays(np.int64, st.integers(1, 30), elements=st.integers(INT32_MIN, INT32_MAX)),
    M=st.floats(1e-6, 0.99),
    zp=st.integers(0, 255),
)
def test_requantize_single_is_the_exact_nearest_integer(acc, M, zp):
    M0, n = quantize_multiplier(M)
    got = requantize(acc, M0, n, zp, bits=8, signed=False)
    exact = []
    for a in acc.tolist():
        r = Fraction(a * int(M0), 2 ** (31 + int(n)))
        fl = r.numerator // r.denominator
        rem = r - fl
        near = fl + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else 0)
        exact.append(min(max(near + zp, 0), 255))
    assert got.dtype == np.uint8 and got.tolist() == exact


def test_rounding_right_shift_ties_and_zero_shift():
    assert rounding_right_shift(np.array([2, 6, -2, -6, 3, -3]), 2).tolist() == [0, 2, 0, -2, 1, -1]
    assert rounding_right_shift(np.array([7, -7]), 0).tolist() == [7, -7]


@settings(max_examples=100, deadline=None)
@given(
    acc=hnp.arrays(np.int32, (3, 4), elements=st.integers(-(2**24), 2**24)),
    bias=hnp.arrays(np.int32, (4,), elements=st.integers(-(2**20), 2**20)),
    signed=st.booleans(),
    relu=st.booleans(),
)
def test_kernel_reference_is_qarith_requantize(acc, bias, signed, relu):
    """kernels.requantize_reference is quant's requantize after the saturating bias add."""
    M0, n = quantize_multiplier(np.array([0.003, 0.01, 0.4, 0.0007]))
    zp = -3 if signed else 7
    got = kernels.requantize_reference(acc, bias, M0, n, zp, 8, signed, relu)
    want = quant.requantize(saturate_int32(acc.astype(np.int64) + bias), M0, n, zp, 8, signed, relu)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_requantize_gemmlowp_differs_from_single_only_by_one_step():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**20), 2**20, 5000)
    M0, n = quantize_multiplier(0.0123)
    a = requantize(acc, M0, n, 0, bits=16, signed=True).astype(np.int64)
    b = requantize(acc, M0, n, 0, bits=16, signed=True, rounding="gemmlowp").astype(np.int64)
    assert np.abs(a - b).max() <= 1
    with pytest.raises(ValueError, match="rounding must be 'single' or 'gemmlowp'"):
        requantize(acc, M0, n, 0, rounding="nearest")
