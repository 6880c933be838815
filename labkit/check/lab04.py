"""Checks for lab 04 (PTQ, QAT, integer-only inference): the STE backward, the fixed-point
multiplier, requantization with a rounding shift, and one integer-only Dense layer."""

import numpy as np

from ..quant import fake_quantize_backward as _fq_backward
from ..quant import integer_dense as _integer_dense
from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from ..quant import quantize_multiplier as _quantize_multiplier
from ..quant import requantize as _requantize
from .exercise import Case, Exercise, compare_arrays, integer_array_problem

# --- Exercise 1: the straight-through estimator ---------------------------------------------------


def _ste_backward(grad_out, x, scale, zero_point, bits):
    return _fq_backward(grad_out, x, scale, zero_point, bits, signed=False)


def _compare_ste(got, expected, case):
    grad_out, x, scale, zp, bits = case.args
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"the gradient has shape {got.shape}, expected {expected.shape} (the shape of x)"
    if np.allclose(got, expected):
        return None
    if np.allclose(got, grad_out) and not np.allclose(expected, grad_out):
        return "you pass every gradient through; zero it outside the clipping range (round(x/s) + z < qmin or > qmax)"
    if np.allclose(got, 0) and not np.allclose(expected, 0):
        return "all zeros is the true derivative of round(); the STE passes grad_out through inside the clipping range"
    qmax = 2**bits - 1
    q = np.rint(x.astype(np.float64) / np.float64(scale)) + zp
    signed = np.where((q >= -(2 ** (bits - 1))) & (q <= 2 ** (bits - 1) - 1), grad_out, 0)
    if np.allclose(got, signed) and not np.allclose(signed, expected):
        return f"the codes are unsigned here: qmin = 0 and qmax = 2^bits - 1 = {qmax}, not the signed range"
    strict = np.where((q > 0) & (q < qmax), grad_out, 0)
    if np.allclose(got, strict) and not np.allclose(strict, expected):
        return "the ends are inside the range: pass the gradient where qmin <= q <= qmax (<=, not <)"
    lo, hi = float(scale) * (0 - zp), float(scale) * (qmax - zp)
    if np.allclose(got, np.where((x >= lo) & (x <= hi), grad_out, 0)):
        return (
            "compare after rounding: the range test is qmin <= round(x / scale) + zero_point <= qmax, so x up to half "
            "a step beyond the real range still rounds inside it"
        )
    return compare_arrays(got, expected, "your gradient")


def _ste_cases(rng):
    cases = []
    for bits in (8, 4, 2):
        x = rng.normal(0, 2, 60).astype(np.float32)
        s, z = _qparams(x[:15], bits)
        cases.append(Case((rng.standard_normal(60).astype(np.float32), x, s, z, bits), label=f"{bits} bits"))
    return cases


ste_backward = Exercise(
    "ste_backward",
    _ste_backward,
    fixed_cases=[
        Case(
            (
                np.arange(1, 9, dtype=np.float32),
                np.array([-2.0, -1.2, -1.0, 0.0, 1.0, 2.5, 2.7, 3.0], np.float32),
                np.float32(0.5),
                2,
                3,
            ),
            label="3 bits, scale 0.5, zero point 2: real range [-1, 2.5]",
        )  # fmt: skip
    ],
    cases=_ste_cases,
    compare=_compare_ste,
    pass_line="ste_backward: correct on 4 cases (gradient passed inside the clipping range, zero outside)",
)

# --- Exercise 2: the fixed-point multiplier ---------------------------------------------------------


def _qm(M):
    M0, n = _quantize_multiplier(M)
    return int(M0), int(n)


def _compare_qm(got, expected, case):
    (M,) = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (M0, n), got {type(got).__name__}"
    M0, n = got
    for name, v in (("M0", M0), ("n", n)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return f"{name} must be an integer, got {type(v).__name__} {v!r}"
    M0, n = int(M0), int(n)
    if M0 == 2**31:
        return f"M0 = 2^31 does not fit int32: when round(m · 2^31) reaches 2^31 use M0 = 2^30 and n - 1 (M = {M!r})"
    if not 2**30 <= M0 < 2**31:
        return f"M0 = {M0} is not in [2^30, 2^31): write M = 2^-n · m with m in [0.5, 1), then M0 = round(m · 2^31)"
    if (M0, n) == expected:
        return None
    approx = M0 * 2.0 ** -(31 + n)
    if abs(approx / M - 2) < 1e-6 or abs(approx / M - 0.5) < 1e-6:
        return f"n is off by one: M0 · 2^-(31 + n) = {approx!r}, but M = {M!r}"
    if M0 == expected[0] + 1 or M0 == expected[0] - 1:
        return f"M0 = {M0}, expected {expected[0]}: round m · 2^31 to the nearest integer (np.rint), don't truncate"
    return f"(M0, n) = {(M0, n)}, expected {expected}, so that M ≈ M0 · 2^-(31 + n) for M = {M!r}"


quantize_multiplier = Exercise(
    "quantize_multiplier",
    _qm,
    fixed_cases=[
        Case((0.5,), label="M = 0.5"),
        Case((0.0123,), label="M = 0.0123"),
        Case((1 - 2.0**-40,), label="M just below 1 (the mantissa rounds up)"),
        Case((3.25,), label="M = 3.25 (above 1)"),
    ],
    cases=lambda rng: [Case((float(10 ** rng.uniform(-6, 0)),), label="random M") for _ in range(8)],
    compare=_compare_qm,
    pass_line="quantize_multiplier: correct on 12 multipliers (M0 in [2^30, 2^31), M = M0 · 2^-(31+n))",
)

# --- Exercise 3: requantization with a rounding right shift ----------------------------------------


def _requant(acc, M0, n, zero_point):
    return _requantize(acc, M0, n, zero_point, bits=8, signed=False).astype(np.int64)


_FLOAT_HINT = (
    "off by one next to a rounding tie where |acc · M0| exceeds 2^53: float64 (53-bit mantissa) cannot "
    "hold that product exactly, so any floating-point formula rounds the wrong way there. This exercise is "
    "integer-only arithmetic: form the int64 product acc.astype(np.int64) * M0 and round it with integer "
    "shifts (no division, no np.rint on floats)"
)


def _float_answers(acc, M0, n, zp):
    """What a floating-point requantization gives (each formula a student might write)."""
    s = 31 + int(n)
    prod = acc.astype(np.int64) * np.int64(M0)
    with np.errstate(all="ignore"):
        forms = (
            np.rint(acc * (M0 / 2**31) / 2**n),
            np.rint(acc * (M0 * 2.0**-s)),
            np.rint(prod / 2.0**s),
            np.rint(acc.astype(np.float64) * M0 / 2.0**s),
        )
    return [np.clip(f + zp, 0, 255).astype(np.int64) for f in forms]


def _compare_requant(got, expected, case):
    acc, M0, n, zp = case.args
    got = np.asarray(got)
    problem = integer_array_problem(got, expected.shape, integers="integers (uint8)")
    if problem:
        return problem
    got = got.astype(np.int64)
    if np.array_equal(got, expected):
        return None
    prod = acc.astype(np.int64) * np.int64(M0)
    s = 31 + int(n)
    if got.min() < 0 or got.max() > 255:
        return f"values outside [0, 255] (min {got.min()}, max {got.max()}): clamp after adding the zero point"
    wrong = got != expected
    big = np.abs(acc.astype(np.float64) * float(M0)) > 2.0**53
    if any(np.array_equal(got, f) for f in _float_answers(acc, M0, n, zp)) or (
        np.all(big[wrong]) and np.all(np.abs(got - expected)[wrong] == 1)
    ):
        return _FLOAT_HINT
    if np.array_equal(got, np.clip((prod >> s) + zp, 0, 255)):
        return "a plain >> truncates (floors); round instead: add half of 2^(31+n) before shifting (ties to even)"
    if np.array_equal(got, np.clip(((prod + (1 << (s - 1))) >> s) + zp, 0, 255)):
        return "ties must go to even (like np.rint): adding 2^(30+n) then shifting rounds 2.5 up to 3"
    if np.array_equal(got, np.clip(((prod + (1 << (s - 1))) >> s), 0, 255)) or np.array_equal(
        got, np.clip(np.rint(prod / 2.0**s), 0, 255)
    ):
        return "add the output zero point after the shift"
    wrapped = np.clip(np.rint((acc.astype(np.int32) * np.int32(M0)).astype(np.int64) / 2.0**s) + zp, 0, 255)
    if np.array_equal(got, wrapped):
        return "acc · M0 overflows int32: multiply in int64"
    return compare_arrays(got, expected, "your requantized values")


def _requant_cases(rng):
    cases = []
    for _ in range(4):
        M0, n = _quantize_multiplier(float(10 ** rng.uniform(-4, -2)))
        acc = rng.integers(-(2**16), 2**16, 200).astype(np.int32)
        cases.append(Case((acc, int(M0), int(n), int(rng.integers(0, 256))), label="random accumulators"))
    return cases


def _tie_case():
    # M = 2^-4 exactly: acc / 16 has exact ties at acc = 8 (0.5), 24 (1.5), 40 (2.5), -8, -24
    acc = np.array([8, 24, 40, -8, -24, 7, 9, 1600, -1600, 5000], np.int32)
    return Case((acc, 2**30, 3, 100), label="M = 2^-4: exact ties, and values to clamp")


def _beyond_float64_cases():
    # |acc · M0| > 2^53 within 2^(n-14) of a rounding tie: float64 rounds the product onto the tie and
    # np.rint then sends it to the even neighbour, one step from the exact answer (searched offline
    # by solving acc · M0 ≡ 2^(30+n) ± d (mod 2^(31+n)) for small d; tests/test_check_lab04.py
    # verifies each entry). Only integer arithmetic passes.
    a = np.array([103822683, -103822683, 519113415, -519113415, 7, -7, 0], np.int32)  # ±25, ±123 (n = 22)
    b = np.array([70495494, -70495494, 352477470, -352477470, 1000], np.int32)  # ±21, ±107 (n = 21)
    return [
        Case((a, 2125512223, 22, 128), label="|acc · M0| > 2^53 next to ties (M0 = 2125512223, n = 22)"),
        Case((b, 1373525973, 21, 128), label="|acc · M0| > 2^53 next to ties (M0 = 1373525973, n = 21)"),
    ]


requantize = Exercise(
    "requantize",
    _requant,
    fixed_cases=[_tie_case(), *_beyond_float64_cases()],
    cases=_requant_cases,
    compare=_compare_requant,
    pass_line=(
        "requantize: correct on 7 cases (int64 product, rounding shift with ties to even, zero point, clamp; "
        "products beyond float64's 2^53)"
    ),
)

# --- Exercise 4: one integer-only Dense layer -------------------------------------------------------


def _int_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu):
    return _integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu=relu).astype(np.int64)


def _compare_int_dense(got, expected, case):
    q_x, z_x, q_W, q_b, M0, n, z_y, relu = case.args
    got = np.asarray(got)
    problem = integer_array_problem(got, expected.shape, "batch, out", "integers (uint8)")
    if problem:
        return problem
    got = got.astype(np.int64)
    if np.array_equal(got, expected):
        return None
    x32, W32 = q_x.astype(np.int32), q_W.astype(np.int32)
    req = lambda acc, r=relu: _requantize(acc, M0, n, z_y, relu=r).astype(np.int64)
    if np.array_equal(got, req(x32 @ W32.T + q_b)):
        return "subtract the input zero point before the matmul: acc = (q_x - z_x) @ q_W.T + q_b"
    if np.array_equal(got, req((x32 - z_x) @ W32.T)):
        return "add the int32 bias q_b to the accumulator before requantizing"
    if np.array_equal(got, req((x32 - z_x) @ W32.T + q_b, not relu)):
        return "the fused ReLU is a clamp at the output zero point z_y (relu=True only)"
    wrapped = (q_x - np.asarray(z_x).astype(q_x.dtype)).astype(np.int8).astype(np.int32)
    if np.array_equal(got, req(wrapped @ W32.T + q_b)):
        return "q_x - z_x wrapped around in uint8: cast q_x to int32 before subtracting the zero point"
    return compare_arrays(got, expected, "your layer's output")


def _int_dense_cases(rng):
    cases = []
    for relu in (True, False):
        n_in, n_out = int(rng.integers(5, 30)), int(rng.integers(2, 12))
        x = rng.uniform(-1, 2, (8, n_in)).astype(np.float32)
        W = (rng.standard_normal((n_out, n_in)) * 0.5).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.2).astype(np.float32)
        y = x @ W.T + b
        s_x, z_x = _qparams(x, 8)
        s_w, _ = _qparams(W, 8, symmetric=True, per_channel_axis=0)
        s_y, z_y = _qparams(np.maximum(y, 0) if relu else y, 8)
        q_W = _quantize(W, s_w, np.zeros(n_out, np.int64), 8, signed=True, axis=0)
        q_b = np.rint(b / (np.float64(s_x) * s_w)).astype(np.int32)
        M0, n = _quantize_multiplier(np.float64(s_x) * s_w / np.float64(s_y))
        q_x = _quantize(x, s_x, z_x, 8)
        cases.append(Case((q_x, int(z_x), q_W, q_b, M0, n, int(z_y), relu), label=f"{n_in} → {n_out}, relu={relu}"))
    return cases


integer_dense = Exercise(
    "integer_dense",
    _int_dense,
    cases=_int_dense_cases,
    compare=_compare_int_dense,
    pass_line="integer_dense: bit-exact on 2 layers (int32 accumulators, zero point, bias, fused ReLU)",
)
