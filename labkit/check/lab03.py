"""Checks for lab 03 (quantization fundamentals): scale and zero point, quantize/dequantize, per-channel scales."""

import numpy as np

from ..quant import dequantize as _dequantize
from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from .answers import array_problem, compare_arrays, show
from .exercise import Case, Exercise
from .hints import Hints, accept

# --- Exercise 1: scale and zero point from a range ------------------------------------------------


def _scale_zero_point(lo, hi, bits):
    s, z = _qparams(np.array([lo, hi], np.float64), bits)
    return float(s), int(z)


def _not_a_pair(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 2:
        return f"return a pair (scale, zero_point), got {type(a.got).__name__}"
    return None


def _zero_point_type(a):
    zp = a.got[1]
    if isinstance(zp, (bool, np.bool_)) or not isinstance(zp, (int, np.integer)):
        if isinstance(zp, (float, np.floating)) and float(zp).is_integer():
            return f"zero_point must be an int (it is an integer of the quantized type), got float {show(zp)}"
        return f"zero_point must be an integer, got {type(zp).__name__} {show(zp)}: round it"
    return None


def _scale_type(a):
    try:
        float(a.got[0])
    except (TypeError, ValueError):
        return f"scale must be a number, got {type(a.got[0]).__name__}"
    return None


def _range_without_zero(a):
    lo, hi, bits = a.args
    s_narrow = (hi - lo) / (2**bits - 1)
    if (lo > 0 or hi < 0) and np.isclose(float(a.got[0]), s_narrow, rtol=1e-5):
        if not np.isclose(s_narrow, a.expected[0], rtol=1e-5):
            return f"widen [{lo}, {hi}] to contain 0 first ([min(lo, 0), max(hi, 0)]): real 0 must be representable"
    return None


def _two_to_the_bits(a):
    bits, scale, s_exp = a.args[2], float(a.got[0]), a.expected[0]
    qmax = 2**bits - 1
    if np.isclose(scale, s_exp * qmax / 2**bits, rtol=1e-5):
        return f"scale is {scale:.6g}, expected {s_exp:.6g}: {bits} bits give 2^{bits} - 1 = {qmax} steps, not 2^{bits}"
    return None


def _wrong_scale(a):
    bits, scale, s_exp = a.args[2], float(a.got[0]), a.expected[0]
    if not np.isclose(scale, s_exp, rtol=1e-5):
        return f"scale is {scale:.6g}, expected {s_exp:.6g} = (max(hi, 0) - min(lo, 0)) / (2^{bits} - 1)"
    return None


def _negated_zero_point(a):
    zp, z_exp = a.got[1], a.expected[1]
    if zp == -z_exp and z_exp != 0:
        return f"zero_point is {zp}, expected {z_exp}: it is qmin - round(lo / scale), positive when lo < 0"
    return None


def _wrong_zero_point(a):
    zp, z_exp, qmax = a.got[1], a.expected[1], 2 ** a.args[2] - 1
    if zp != z_exp:
        return f"zero_point is {zp}, expected {z_exp} = clamp(0 - round(min(lo, 0) / scale), 0, {qmax})"
    return None


def _szp_cases(rng):
    cases = []
    for _ in range(6):
        lo, hi = sorted(rng.uniform(-5, 5, 2).round(3).tolist())
        cases.append(Case((lo, hi, int(rng.choice([2, 4, 8]))), label=f"random range [{lo}, {hi}]"))
    return cases


scale_zero_point = Exercise(
    "scale_zero_point",
    _scale_zero_point,
    fixed_cases=[
        Case((-1.0, 3.0, 8), label="[-1, 3], 8 bits"),
        Case((0.5, 2.0, 8), label="[0.5, 2] does not contain 0"),
        Case((-2.0, -0.5, 4), label="[-2, -0.5], 4 bits"),
        Case((-0.3, 6.0, 3), label="[-0.3, 6], 3 bits"),
    ],
    cases=_szp_cases,
    compare=Hints(
        _not_a_pair,
        _zero_point_type,
        _scale_type,
        _range_without_zero,
        _two_to_the_bits,
        _wrong_scale,
        _negated_zero_point,
        _wrong_zero_point,
    ),
    pass_line="scale_zero_point: correct on 10 ranges (real 0 maps to an exact integer in each)",
)

# --- Exercise 2: quantize and dequantize --------------------------------------------------------


def _quantize_ref(x, scale, zero_point, bits):
    return _quantize(x, scale, zero_point, bits, signed=False).astype(np.int64)


def _codes_form(a):
    return array_problem(
        np.asarray(a.got),
        "your result",
        shape=a.expected.shape,
        shape_note="one integer per input value",
        kinds="iu",
        holds="integers (e.g. .astype(np.uint8))",
    )


def _quantize_variants(a):
    """(codes as int64, float64 quotients x / scale, qmax, zero point) of a quantize answer."""
    x, scale, zp, bits = a.args
    return np.asarray(a.got).astype(np.int64), x.astype(np.float64) / np.float64(scale), 2**bits - 1, zp


@accept
def _float32_division(a):
    """x / scale in float32 is correctly rounded too: it gives the same codes on these cases."""
    x, scale, zp, bits = a.args
    got = np.asarray(a.got).astype(np.int64)
    v32 = (x.astype(np.float32) / np.float32(scale)).astype(np.float64)
    return np.array_equal(got, a.expected) or np.array_equal(got, np.clip(np.rint(v32) + zp, 0, 2**bits - 1))


def _outside_range(a):
    got, _, qmax, _ = _quantize_variants(a)
    if got.min() < 0 or got.max() > qmax:
        return f"values outside [0, {qmax}] (min {got.min()}, max {got.max()}): clamp after adding the zero point"
    return None


def _rounds_half_up(a):
    got, v, qmax, zp = _quantize_variants(a)
    if np.array_equal(got, np.clip(np.floor(v + 0.5) + zp, 0, qmax)):
        return "ties (x / scale = k + 0.5) must round half to even (np.rint), not up: floor(v + 0.5) rounds 2.5 to 3"
    return None


def _truncates(a):
    got, v, qmax, zp = _quantize_variants(a)
    if any(np.array_equal(got, np.clip(f(v) + zp, 0, qmax)) for f in (np.trunc, np.floor)):
        return "round to the nearest integer (np.rint), don't truncate or floor"
    return None


def _subtracts_zero_point(a):
    got, v, qmax, zp = _quantize_variants(a)
    if np.array_equal(got, np.clip(np.rint(v) - zp, 0, qmax)):
        return "add the zero point (q = round(x / scale) + zero_point), don't subtract it"
    return None


def _multiplies_by_scale(a):
    got, _, qmax, zp = _quantize_variants(a)
    x, scale = a.args[:2]
    if np.array_equal(got, np.clip(np.rint(x * np.float64(scale)) + zp, 0, qmax)):
        return "divide by the scale (x / scale), don't multiply"
    return None


def _wrong_codes(a):
    return compare_arrays(_quantize_variants(a)[0], a.expected, "your quantized values")


def _quantize_cases(rng):
    cases = []
    for bits in (8, 4, 2):
        x = rng.normal(0, 2, 40).astype(np.float32)
        s, z = _qparams(x[:20], bits)  # calibrated on half: the rest may fall outside and must clamp
        cases.append(Case((x, s, z, bits), label=f"{bits} bits, 40 values"))
    return cases


quantize = Exercise(
    "quantize",
    _quantize_ref,
    fixed_cases=[
        Case((np.array([0.25, 0.75, 1.25, -0.25, 0.0], np.float32), np.float32(0.5), 3, 8), label="exact ties"),
        Case((np.array([-10.0, 10.0, 0.1], np.float32), np.float32(0.1), 5, 4), label="values to clamp"),
    ],
    cases=_quantize_cases,
    compare=Hints(
        _codes_form,
        _float32_division,
        _outside_range,
        _rounds_half_up,
        _truncates,
        _subtracts_zero_point,
        _multiplies_by_scale,
        _wrong_codes,
    ),
    pass_line="quantize: correct on 5 cases (ties to even, clamping, zero point)",
)


def _dequantize_ref(q, scale, zero_point):
    return _dequantize(q, scale, zero_point)


def _values_form(a):
    return array_problem(np.asarray(a.got), "your result", shape=a.expected.shape, kinds="f", holds="floats (float32)")


def _wrapped_in_uint8(a):
    q, scale, zp = a.args
    got = np.asarray(a.got)
    with np.errstate(over="ignore"):
        wrapped = (np.float64(scale) * (q - np.uint8(zp)).astype(np.float64)).astype(np.float32)
    if not np.allclose(got, a.expected, rtol=1e-6, atol=1e-7) and np.allclose(got, wrapped, rtol=1e-6):
        return "q - zero_point wrapped around in uint8 (e.g. 3 - 5 = 254): convert q to a wider int (np.int32) first"
    return None


def _adds_zero_point(a):
    q, scale, zp = a.args
    if zp and np.allclose(np.asarray(a.got), np.float64(scale) * (q.astype(np.float64) + zp), rtol=1e-6):
        return "subtract the zero point: x = scale * (q - zero_point)"
    return None


def _not_float32(a):
    got = np.asarray(a.got)
    if got.dtype != np.float32 and np.allclose(got, a.expected, rtol=1e-6):
        return f"return float32 (the values are right), got dtype {got.dtype}"
    return None


def _wrong_values(a):
    return compare_arrays(np.asarray(a.got), a.expected, "your dequantized values", rtol=1e-6, atol=1e-7)


def _dequantize_cases(rng):
    cases = []
    for _ in range(3):
        q, scale = rng.integers(0, 256, 50).astype(np.uint8), np.float32(rng.uniform(0.01, 0.2))
        cases.append(Case((q, scale, int(rng.integers(0, 256))), label="random uint8"))
    return cases


dequantize = Exercise(
    "dequantize",
    _dequantize_ref,
    fixed_cases=[Case((np.array([0, 3, 5, 255], np.uint8), np.float32(0.5), 5), label="q below the zero point")],
    cases=_dequantize_cases,
    compare=Hints(_values_form, _wrapped_in_uint8, _adds_zero_point, _not_float32, _wrong_values),
    pass_line="dequantize: correct on 4 cases (float32, no uint8 wrap-around)",
)

# --- Exercise 3: per-channel symmetric scales ---------------------------------------------------


def _per_channel_scales(W, bits):
    return _qparams(W, bits, symmetric=True, axis=0)[0]


@accept
def _scales_match(a):
    return compare_arrays(a.got, a.expected, "your scales", rtol=1e-5, atol=1e-9) is None


def _one_scale(a):
    if np.asarray(a.got).size == 1 and len(a.args[0]) > 1:
        return "return one scale per output channel (shape (out,)), not one for the whole tensor"
    return None


def _reduced_over_axis_0(a):
    W, bits = a.args
    got = np.asarray(a.got)
    col_max = np.abs(W.astype(np.float64)).max(axis=0).ravel() / (2 ** (bits - 1) - 1)
    if got.shape == col_max.shape and np.allclose(got.ravel(), col_max, rtol=1e-5):
        return f"shape {got.shape}: reduce over every axis except axis 0 (the output channels), not over axis 0"
    return None


def _scales_shape(a):
    got = np.asarray(a.got)
    if got.shape != a.expected.shape:
        return f"scales have shape {got.shape}, expected {a.expected.shape} (one per row/output channel)"
    return None


def _channel_max(a):
    return np.abs(a.args[0].astype(np.float64)).reshape(len(a.args[0]), -1).max(axis=1)


def _power_of_two(a):
    bits, half = a.args[1], 2 ** (a.args[1] - 1) - 1
    if np.allclose(np.asarray(a.got), a.memo(_channel_max) / 2 ** (bits - 1), rtol=1e-5):
        return f"divide by 2^{bits - 1} - 1 = {half} (symmetric range ±{half}), not 2^{bits - 1}"
    return None


def _signed_max(a):
    W, bits = a.args
    if np.allclose(np.asarray(a.got), W.reshape(len(W), -1).max(axis=1) / (2 ** (bits - 1) - 1), rtol=1e-5):
        return "use the largest *absolute* value of each channel, max(|W[c]|), not max(W[c])"
    return None


def _tensor_max(a):
    W, bits = a.args
    if np.allclose(np.asarray(a.got), np.full(len(W), a.memo(_channel_max).max() / (2 ** (bits - 1) - 1)), rtol=1e-5):
        return "each channel gets its own max|W[c]|; you used the maximum of the whole tensor"
    return None


def _wrong_scales(a):
    return compare_arrays(np.asarray(a.got), a.expected, "your scales", rtol=1e-5, atol=1e-9)


def _pcs_cases(rng):
    out = []
    for shape in [(6, 10), (4, 3, 3, 3)]:
        W = (rng.standard_normal(shape) * rng.uniform(0.05, 2.0, (shape[0],) + (1,) * (len(shape) - 1))).astype(
            np.float32
        )
        out.append(Case((W, int(rng.choice([4, 8]))), label=f"W of shape {shape}"))
    return out


per_channel_scales = Exercise(
    "per_channel_scales",
    _per_channel_scales,
    fixed_cases=[
        Case((np.array([[0.5, -2.54, 1.0], [0.1, 0.2, -0.05], [3.0, 0.0, 0.0]], np.float32), 8), label="3 × 3"),
    ],
    cases=_pcs_cases,
    compare=Hints(
        _scales_match,
        _one_scale,
        _reduced_over_axis_0,
        _scales_shape,
        _power_of_two,
        _signed_max,
        _tensor_max,
        _wrong_scales,
    ),
    pass_line="per_channel_scales: correct on 3 weight tensors (one max|W[c]| / (2^(b-1) - 1) per channel)",
)
