"""labkit.quant.minifloat: FP8 / FP4 / E8M0 rounding bit-exact against ml_dtypes, saturation, encode/decode."""

import ml_dtypes
import numpy as np
import pytest
from conftest import skip_or_fail
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labkit.quant.minifloat import (
    ELEMENT_FORMATS,
    bits_to_float,
    float_to_bits,
    format_grid,
    format_info,
    round_to_format,
)

ML = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e2m1": ml_dtypes.float4_e2m1fn,
    "e8m0": ml_dtypes.float8_e8m0fnu,
}
# Where ml_dtypes' (non-saturating) cast and the saturating rounding agree by definition: |x| below the
# first value that rounds past the largest finite one (E2M1 saturates in ml_dtypes too).
AGREE_BELOW = {"e4m3": 464.0, "e5m2": 61440.0, "e2m1": np.inf, "e8m0": 1.5 * 2.0**127}


def ml_round(x, fmt):
    with np.errstate(over="ignore"):
        return np.asarray(x, np.float32).astype(ML[fmt]).astype(np.float32)


def ml_bits(x, fmt):
    return np.asarray(x, np.float32).astype(ML[fmt]).view(np.uint8)


def agreeing(x, fmt):
    x = np.asarray(x, np.float32)
    keep = np.isfinite(x) & (np.abs(x.astype(np.float64)) <= AGREE_BELOW[fmt])
    if fmt == "e8m0":
        keep &= x > 0  # ml_dtypes: 0 and negatives -> NaN (our 0 saturates to 2^-127)
    return x[keep]


def assert_same_bits(ours, theirs, fmt):
    ours, theirs = np.asarray(ours, np.float32), np.asarray(theirs, np.float32)
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))  # signed zeros too
    np.testing.assert_array_equal(float_to_bits(ours, fmt), ml_bits(theirs, fmt))


@pytest.mark.parametrize("fmt", list(ELEMENT_FORMATS))
def test_decode_is_ml_dtypes_on_every_code(fmt):
    n = 1 << format_info(fmt).bits
    codes = np.arange(n, dtype=np.uint8)
    ref = codes.view(ML[fmt]).astype(np.float32)
    ours = bits_to_float(codes, fmt)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(ours[ok].view(np.uint32), ref[ok].view(np.uint32))
    np.testing.assert_array_equal(float_to_bits(ours[ok], fmt), codes[ok])


@pytest.mark.parametrize("fmt", list(ELEMENT_FORMATS))
def test_every_representable_value_is_a_fixed_point(fmt):
    g = format_grid(fmt)
    assert np.all(np.diff(g) > 0)
    np.testing.assert_array_equal(round_to_format(g, fmt), g)
    assert_same_bits(round_to_format(g, fmt), ml_round(g, fmt), fmt)
    assert g.max() == format_info(fmt).max
    expected = {"e4m3": 2 * 126 + 1, "e5m2": 2 * 123 + 1, "e2m1": 15, "e8m0": 255}[fmt]
    assert g.size == expected


@pytest.mark.parametrize("fmt", list(ELEMENT_FORMATS))
def test_midpoints_round_to_even_like_ml_dtypes(fmt):
    g = format_grid(fmt).astype(np.float64)
    mid = ((g[1:] + g[:-1]) / 2).astype(np.float32)
    assert np.array_equal(mid.astype(np.float64), (g[1:] + g[:-1]) / 2)  # the midpoints are exact in float32
    near = np.concatenate([mid, np.nextafter(mid, np.float32(np.inf)), np.nextafter(mid, np.float32(-np.inf))])
    x = agreeing(near, fmt)
    assert x.size > 0.9 * near.size
    assert_same_bits(round_to_format(x, fmt), ml_round(x, fmt), fmt)


def test_ties_go_to_the_even_mantissa():
    # E4M3 around 1: step 1/8; 1 + 1/16 lies between 1.0 (mantissa 000) and 1.125 (001): even is 1.0
    assert round_to_format([1.0625, 1.1875, -1.0625], "e4m3").tolist() == [1.0, 1.25, -1.0]
    # E2M1: 2.5 between 2 (mantissa 0) and 3 (mantissa 1) -> 2; 5 between 4 and 6 -> 4; 0.25 -> 0
    assert round_to_format([2.5, 3.5, 5.0, 0.25, 0.75], "e2m1").tolist() == [2.0, 4.0, 4.0, 0.0, 1.0]
    # E5M2 subnormals: step 2^-16; 1.5 steps -> 2 steps, 2.5 steps -> 2 steps
    s = 2.0**-16
    assert round_to_format([1.5 * s, 2.5 * s], "e5m2").tolist() == [2 * s, 2 * s]
    # E8M0: 1.5 · 2^k is halfway between 2^k and 2^(k+1): rounds up (ml_dtypes does the same)
    assert round_to_format([1.5, 3.0, 1.4999999, 0.75], "e8m0").tolist() == [2.0, 4.0, 1.0, 1.0]


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "e2m1"])
def test_subnormals_and_underflow(fmt):
    spec = format_info(fmt)
    tiny = spec.min_subnormal
    x = np.array([tiny, 2 * tiny, 0.5 * tiny, 0.5000001 * tiny, 0.49 * tiny, 1.5 * tiny, spec.min_normal - tiny])
    x = np.concatenate([x, -x]).astype(np.float32)
    ours = round_to_format(x, fmt)
    assert_same_bits(ours, ml_round(x, fmt), fmt)
    assert ours[2] == 0 and ours[3] == tiny and ours[5] == 2 * tiny  # half the step ties to 0 (even)
    assert np.signbit(ours[9])  # -tiny/2 rounds to -0


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "e2m1"])
def test_overflow_saturates(fmt):
    m = format_info(fmt).max
    x = np.array([m, m * 1.03, m * 1.2, m * 7, 3e38, np.inf], np.float32)
    np.testing.assert_array_equal(round_to_format(x, fmt), np.full(x.shape, m, np.float32))
    np.testing.assert_array_equal(round_to_format(-x, fmt), np.full(x.shape, -m, np.float32))
    assert np.isnan(round_to_format([np.nan], fmt)[0])


def test_ml_dtypes_does_not_saturate_where_we_do():
    # the documented difference: ml_dtypes' E4M3 overflow is NaN, E5M2's is inf
    assert np.isnan(ml_round([465.0], "e4m3")[0]) and round_to_format([465.0], "e4m3")[0] == 448
    assert ml_round([61440.0], "e5m2")[0] == np.inf and round_to_format([61440.0], "e5m2")[0] == 57344
    assert round_to_format([61439.0], "e5m2")[0] == ml_round([61439.0], "e5m2")[0] == 57344


def test_e8m0_special_values():
    x = np.array([0.0, -0.0, 2.0**-140, 2.0**-127, 2.0**127, 2.0**127 * 1.6, np.inf, -1.0, -np.inf, np.nan])
    r = round_to_format(x, "e8m0")
    small, big = np.float32(2.0**-127), np.float32(2.0**127)
    np.testing.assert_array_equal(r[:7], [small, small, small, small, big, big, big])
    assert np.all(np.isnan(r[7:]))
    assert float_to_bits(r, "e8m0").tolist() == [0, 0, 0, 0, 254, 254, 254, 255, 255, 255]


@settings(max_examples=200, deadline=None)
@given(
    fmt=st.sampled_from(list(ELEMENT_FORMATS)),
    x=hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)),
)
def test_random_float32_matches_ml_dtypes(fmt, x):
    xs = agreeing(x, fmt)
    assert_same_bits(round_to_format(xs, fmt), ml_round(xs, fmt), fmt)
    ours = round_to_format(x, fmt)
    m = format_info(fmt).max
    beyond = np.abs(x.astype(np.float64)) > AGREE_BELOW[fmt]
    if fmt != "e8m0":
        np.testing.assert_array_equal(ours[beyond], np.copysign(m, x[beyond]).astype(np.float32))
        assert np.all(np.abs(ours) <= m)
        # nearest: no grid value is closer than the one chosen
        g = format_grid(fmt).astype(np.float64)
        err = np.abs(ours.astype(np.float64) - np.clip(x, -m, m))
        best = np.min(np.abs(g[None, :] - np.clip(x, -m, m)[:, None]), axis=1)
        np.testing.assert_array_equal(err, best)


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(np.float64, st.integers(1, 32), elements=st.floats(-1e6, 1e6)))
def test_float64_inputs_round_once(x):
    # a float64 is rounded directly (no detour through float32, which could round twice)
    ours = round_to_format(x, "e5m2").astype(np.float64)
    g = format_grid("e5m2").astype(np.float64)
    xc = np.clip(x, -57344, 57344)
    best = np.min(np.abs(g[None, :] - xc[:, None]), axis=1)
    np.testing.assert_array_equal(np.abs(ours - xc), best)


def test_bad_input():
    with pytest.raises(ValueError, match="fmt must be"):
        round_to_format([1.0], "e3m4")
    with pytest.raises(TypeError, match="x must be a"):
        round_to_format(["a"], "e4m3")
    with pytest.raises(ValueError, match="grid"):
        float_to_bits([0.3], "e4m3")
    with pytest.raises(ValueError, match="grid"):
        float_to_bits([np.inf], "e4m3")  # E4M3FN has no infinity
    with pytest.raises(ValueError, match="grid"):
        float_to_bits([-2.0], "e8m0")
    with pytest.raises(ValueError, match="no NaN"):
        float_to_bits([np.nan], "e2m1")
    with pytest.raises(ValueError, match=r"codes must be in \[0, 15\]"):
        bits_to_float([16], "e2m1")
    with pytest.raises(TypeError, match="codes must be"):
        bits_to_float([1.0], "e4m3")


def onnx_saturating_cast(x, fmt):
    """ONNX ``Cast(saturate=1)`` (round_mode "nearest" for E8M0), run by onnx's reference evaluator."""
    try:
        from onnx import TensorProto, helper
        from onnx.reference import ReferenceEvaluator
    except ImportError:
        skip_or_fail("LABKIT_REQUIRE_ONNX", "onnx is not installed (extra 'peers')")
    to = {
        "e4m3": TensorProto.FLOAT8E4M3FN,
        "e5m2": TensorProto.FLOAT8E5M2,
        "e2m1": TensorProto.FLOAT4E2M1,
        "e8m0": TensorProto.FLOAT8E8M0,
    }[fmt]
    extra = {"round_mode": "nearest"} if fmt == "e8m0" else {}
    node = helper.make_node("Cast", ["x"], ["y"], to=to, saturate=1, **extra)
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
        [helper.make_tensor_value_info("y", to, [x.size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0].astype(np.float32)


@pytest.mark.parametrize("fmt", list(ELEMENT_FORMATS))
def test_same_as_onnx_saturating_cast(fmt, rng):
    # ONNX's saturating Cast is the same rounding, saturation included (±inf -> ±max for the FP8/FP4 types)
    x = rng.standard_normal(3000) * 10.0 ** rng.integers(-9, 9, 3000)
    g = format_grid(fmt).astype(np.float64)
    x = np.concatenate([x, g, (g[1:] + g[:-1]) / 2, [1e30, -1e30, 0.0, -0.0]]).astype(np.float32)
    if fmt == "e8m0":
        x = np.abs(x)  # ONNX leaves negative E8M0 inputs unspecified
    else:
        x = np.concatenate([x, np.float32([np.inf, -np.inf])])
    ours, theirs = round_to_format(x, fmt), onnx_saturating_cast(x, fmt)
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))
