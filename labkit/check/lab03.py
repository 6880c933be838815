"""Checks for lab 03 (quantization fundamentals): scale and zero point, quantize/dequantize, per-channel scales."""

import numpy as np

from ..quant import dequantize as _dequantize
from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from .exercise import Case, Exercise, compare_arrays, integer_array_problem

# --- Exercise 1: scale and zero point from a range ------------------------------------------------


def _scale_zero_point(lo, hi, bits):
    s, z = _qparams(np.array([lo, hi], np.float64), bits)
    return float(s), int(z)


def _compare_szp(got, expected, case):
    lo, hi, bits = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (scale, zero_point), got {type(got).__name__}"
    scale, zp = got
    if isinstance(zp, (bool, np.bool_)) or not isinstance(zp, (int, np.integer)):
        if isinstance(zp, (float, np.floating)) and float(zp).is_integer():
            return f"zero_point must be an int (it is an integer of the quantized type), got float {zp!r}"
        return f"zero_point must be an integer, got {type(zp).__name__} {zp!r}: round it"
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        return f"scale must be a number, got {type(scale).__name__}"
    s_exp, z_exp = expected
    qmax = 2**bits - 1
    if lo > 0 or hi < 0:
        s_narrow = (hi - lo) / qmax
        if np.isclose(scale, s_narrow, rtol=1e-5) and not np.isclose(s_narrow, s_exp, rtol=1e-5):
            return f"widen [{lo}, {hi}] to contain 0 first ([min(lo, 0), max(hi, 0)]): real 0 must be representable"
    if np.isclose(scale, s_exp * qmax / 2**bits, rtol=1e-5):
        return f"scale is {scale:.6g}, expected {s_exp:.6g}: {bits} bits give 2^{bits} - 1 = {qmax} steps, not 2^{bits}"
    if not np.isclose(scale, s_exp, rtol=1e-5):
        return f"scale is {scale:.6g}, expected {s_exp:.6g} = (max(hi, 0) - min(lo, 0)) / (2^{bits} - 1)"
    if zp == -z_exp and z_exp != 0:
        return f"zero_point is {zp}, expected {z_exp}: it is qmin - round(lo / scale), positive when lo < 0"
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
    compare=_compare_szp,
    pass_line="scale_zero_point: correct on 10 ranges (real 0 maps to an exact integer in each)",
)

# --- Exercise 2: quantize and dequantize --------------------------------------------------------


def _quantize_ref(x, scale, zero_point, bits):
    return _quantize(x, scale, zero_point, bits, signed=False).astype(np.int64)


def _compare_quantize(got, expected, case):
    x, scale, zp, bits = case.args
    got = np.asarray(got)
    problem = integer_array_problem(
        got, expected.shape, "one integer per input value", "integers (e.g. .astype(np.uint8))"
    )
    if problem:
        return problem
    got = got.astype(np.int64)
    v = x.astype(np.float64) / np.float64(scale)
    qmax = 2**bits - 1
    v32 = (x.astype(np.float32) / np.float32(scale)).astype(np.float64)  # float32 division is fine too
    if np.array_equal(got, expected) or np.array_equal(got, np.clip(np.rint(v32) + zp, 0, qmax)):
        return None
    if got.min() < 0 or got.max() > qmax:
        return f"values outside [0, {qmax}] (min {got.min()}, max {got.max()}): clamp after adding the zero point"
    if np.array_equal(got, np.clip(np.floor(v + 0.5) + zp, 0, qmax)):
        return "ties (x / scale = k + 0.5) must round half to even (np.rint), not up: floor(v + 0.5) rounds 2.5 to 3"
    if np.array_equal(got, np.clip(np.trunc(v) + zp, 0, qmax)) or np.array_equal(
        got, np.clip(np.floor(v) + zp, 0, qmax)
    ):
        return "round to the nearest integer (np.rint), don't truncate or floor"
    if np.array_equal(got, np.clip(np.rint(v) - zp, 0, qmax)):
        return "add the zero point (q = round(x / scale) + zero_point), don't subtract it"
    if np.array_equal(got, np.clip(np.rint(x * np.float64(scale)) + zp, 0, qmax)):
        return "divide by the scale (x / scale), don't multiply"
    return compare_arrays(got, expected, "your quantized values")


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
    compare=_compare_quantize,
    pass_line="quantize: correct on 5 cases (ties to even, clamping, zero point)",
)


def _dequantize_ref(q, scale, zero_point):
    return _dequantize(q, scale, zero_point)


def _compare_dequantize(got, expected, case):
    q, scale, zp = case.args
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"result has shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind != "f":
        return f"return floats (float32), got dtype {got.dtype}"
    with np.errstate(over="ignore"):
        wrapped = (np.float64(scale) * (q - np.uint8(zp)).astype(np.float64)).astype(np.float32)
    if not np.allclose(got, expected, rtol=1e-6, atol=1e-7) and np.allclose(got, wrapped, rtol=1e-6):
        return "q - zero_point wrapped around in uint8 (e.g. 3 - 5 = 254): convert q to a wider int (np.int32) first"
    if np.allclose(got, np.float64(scale) * (q.astype(np.float64) + zp), rtol=1e-6) and zp:
        return "subtract the zero point: x = scale * (q - zero_point)"
    if got.dtype != np.float32:
        if np.allclose(got, expected, rtol=1e-6):
            return f"return float32 (the values are right), got dtype {got.dtype}"
    return compare_arrays(got, expected, "your dequantized values", rtol=1e-6, atol=1e-7)


def _dequantize_cases(rng):
    return [
        Case((rng.integers(0, 256, 50).astype(np.uint8), np.float32(rng.uniform(0.01, 0.2)), int(rng.integers(0, 256))),
             label="random uint8") for _ in range(3)
    ]  # fmt: skip


dequantize = Exercise(
    "dequantize",
    _dequantize_ref,
    fixed_cases=[Case((np.array([0, 3, 5, 255], np.uint8), np.float32(0.5), 5), label="q below the zero point")],
    cases=_dequantize_cases,
    compare=_compare_dequantize,
    pass_line="dequantize: correct on 4 cases (float32, no uint8 wrap-around)",
)

# --- Exercise 3: per-channel symmetric scales ---------------------------------------------------


def _per_channel_scales(W, bits):
    return _qparams(W, bits, symmetric=True, per_channel_axis=0)[0]


def _compare_pcs(got, expected, case):
    W, bits = case.args
    if compare_arrays(got, expected, "your scales", rtol=1e-5, atol=1e-9) is None:
        return None  # correct: the hints below only explain wrong answers
    got = np.asarray(got)
    half = 2 ** (bits - 1) - 1
    amax = np.abs(W.astype(np.float64)).reshape(len(W), -1).max(axis=1)
    if got.size == 1 and len(W) > 1:
        return "return one scale per output channel (shape (out,)), not one for the whole tensor"
    col_max = np.abs(W.astype(np.float64)).max(axis=0).ravel() / half
    wrong_axis = got.shape == col_max.shape and np.allclose(got.ravel(), col_max, rtol=1e-5)
    if got.shape != expected.shape or wrong_axis:
        if wrong_axis:
            return f"shape {got.shape}: reduce over every axis except axis 0 (the output channels), not over axis 0"
        return f"scales have shape {got.shape}, expected {expected.shape} (one per row/output channel)"
    if np.allclose(got, amax / 2 ** (bits - 1), rtol=1e-5):
        return f"divide by 2^{bits - 1} - 1 = {half} (symmetric range ±{half}), not 2^{bits - 1}"
    if np.allclose(got, W.reshape(len(W), -1).max(axis=1) / half, rtol=1e-5):
        return "use the largest *absolute* value of each channel, max(|W[c]|), not max(W[c])"
    if np.allclose(got, np.full(len(W), amax.max() / half), rtol=1e-5):
        return "each channel gets its own max|W[c]|; you used the maximum of the whole tensor"
    return compare_arrays(got, expected, "your scales", rtol=1e-5, atol=1e-9)


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
    compare=_compare_pcs,
    pass_line="per_channel_scales: correct on 3 weight tensors (one max|W[c]| / (2^(b-1) - 1) per channel)",
)
