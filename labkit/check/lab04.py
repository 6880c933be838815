"""Checks for lab 04 (PTQ, QAT, integer-only inference): the STE backward, the fixed-point
multiplier, requantization with a rounding shift, and one integer-only Dense layer."""

import numpy as np

from ..quant import fake_quantize_backward as _fq_backward
from ..quant import integer_dense as _integer_dense
from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from ..quant import quantize_multiplier as _quantize_multiplier
from ..quant import requantize as _requantize
from .answers import array_problem, compare_arrays, show
from .exercise import Case, Exercise
from .hints import Hints, accept

# --- Exercise 1: the straight-through estimator ---------------------------------------------------


def _ste_backward(grad_out, x, scale, zero_point, bits):
    return _fq_backward(grad_out, x, scale, zero_point, bits, signed=False)


def _gradient_form(a):
    return array_problem(np.asarray(a.got), "the gradient", shape=a.expected.shape, shape_note="the shape of x")


@accept
def _gradient_close(a):
    return np.allclose(np.asarray(a.got), a.expected)


def _passes_everything(a):
    grad_out = a.args[0]
    if np.allclose(np.asarray(a.got), grad_out) and not np.allclose(a.expected, grad_out):
        return "you pass every gradient through; zero it outside the clipping range (round(x/s) + z < qmin or > qmax)"
    return None


def _all_zero(a):
    if np.allclose(np.asarray(a.got), 0) and not np.allclose(a.expected, 0):
        return "all zeros is the true derivative of round(); the STE passes grad_out through inside the clipping range"
    return None


def _passed_where(a, lo_ok, hi_ok, zero_point=True):
    """grad_out where ``lo_ok(q)`` and ``hi_ok(q)`` for the codes q = rint(x / scale) (+ zero point), else 0."""
    grad_out, x, scale, zp, _ = a.args
    q = np.rint(x.astype(np.float64) / np.float64(scale)) + (zp if zero_point else 0)
    return np.where(lo_ok(q) & hi_ok(q), grad_out, 0)


def _signed_range(a):
    bits = a.args[4]
    signed = _passed_where(a, lambda q: q >= -(2 ** (bits - 1)), lambda q: q <= 2 ** (bits - 1) - 1)
    if np.allclose(np.asarray(a.got), signed) and not np.allclose(signed, a.expected):
        return f"the codes are unsigned here: qmin = 0 and qmax = 2^bits - 1 = {2**bits - 1}, not the signed range"
    return None


def _strict_ends(a):
    qmax = 2 ** a.args[4] - 1
    strict = _passed_where(a, lambda q: q > 0, lambda q: q < qmax)
    if np.allclose(np.asarray(a.got), strict) and not np.allclose(strict, a.expected):
        return "the ends are inside the range: pass the gradient where qmin <= q <= qmax (<=, not <)"
    return None


def _no_zero_point(a):
    qmax = 2 ** a.args[4] - 1
    shifted = _passed_where(a, lambda q: q >= 0, lambda q: q <= qmax, zero_point=False)
    if a.args[3] and np.allclose(np.asarray(a.got), shifted) and not np.allclose(shifted, a.expected):
        return (
            "the zero point is missing: the code is q = rint(x / scale) + zero_point, and the gradient passes "
            "where 0 <= q <= 2^bits - 1"
        )
    return None


def _real_range(a):
    grad_out, x, scale, zp, bits = a.args
    lo, hi = float(scale) * (0 - zp), float(scale) * (2**bits - 1 - zp)
    if np.allclose(np.asarray(a.got), np.where((x >= lo) & (x <= hi), grad_out, 0)):
        return (
            "compare after rounding: the range test is qmin <= round(x / scale) + zero_point <= qmax, so x up to half "
            "a step beyond the real range still rounds inside it"
        )
    return None


def _wrong_gradient(a):
    return compare_arrays(np.asarray(a.got), a.expected, "your gradient")


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
        )
    ],
    cases=_ste_cases,
    compare=Hints(
        _gradient_form,
        _gradient_close,
        _passes_everything,
        _all_zero,
        _signed_range,
        _strict_ends,
        _no_zero_point,
        _real_range,
        _wrong_gradient,
    ),
    pass_line="ste_backward: correct on 4 cases (gradient passed inside the clipping range, zero outside)",
)

# --- Exercise 2: the fixed-point multiplier ---------------------------------------------------------


def _qm(M):
    M0, n = _quantize_multiplier(M)
    return int(M0), int(n)


def _not_a_pair(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 2:
        return f"return a pair (M0, n), got {type(a.got).__name__}"
    return None


def _not_integers(a):
    for name, v in zip(("M0", "n"), a.got):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return f"{name} must be an integer, got {type(v).__name__} {show(v)}"
    return None


def _mantissa_carry(a):
    if int(a.got[0]) == 2**31:
        M = a.args[0]
        return f"M0 = 2^31 does not fit int32: when round(m · 2^31) reaches 2^31 use M0 = 2^30 and n - 1 (M = {M!r})"
    return None


def _mantissa_range(a):
    M0 = int(a.got[0])
    if not 2**30 <= M0 < 2**31:
        return f"M0 = {M0} is not in [2^30, 2^31): write M = 2^-n · m with m in [0.5, 1), then M0 = round(m · 2^31)"
    return None


@accept
def _same_pair(a):
    return (int(a.got[0]), int(a.got[1])) == a.expected


def _shift_off_by_one(a):
    (M,) = a.args
    approx = int(a.got[0]) * 2.0 ** -(31 + int(a.got[1]))
    if abs(approx / M - 2) < 1e-6 or abs(approx / M - 0.5) < 1e-6:
        return f"n is off by one: M0 · 2^-(31 + n) = {approx!r}, but M = {M!r}"
    return None


def _mantissa_truncated(a):
    M0, expected = int(a.got[0]), a.expected[0]
    if M0 in (expected + 1, expected - 1):
        return f"M0 = {M0}, expected {expected}: round m · 2^31 to the nearest integer (np.rint), don't truncate"
    return None


def _wrong_pair(a):
    M0, n = int(a.got[0]), int(a.got[1])
    return f"(M0, n) = {(M0, n)}, expected {a.expected}, so that M ≈ M0 · 2^-(31 + n) for M = {a.args[0]!r}"


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
    compare=Hints(
        _not_a_pair,
        _not_integers,
        _mantissa_carry,
        _mantissa_range,
        _same_pair,
        _shift_off_by_one,
        _mantissa_truncated,
        _wrong_pair,
    ),
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


def _codes_form(a):
    return array_problem(np.asarray(a.got), "your result", shape=a.expected.shape, kinds="iu", holds="integers (uint8)")


@accept
def _same_codes(a):
    return np.array_equal(np.asarray(a.got).astype(np.int64), a.expected)


def _requant_parts(a):
    """(codes as int64, the int64 products acc · M0, the total shift 31 + n, the zero point)."""
    acc, M0, n, zp = a.args
    return np.asarray(a.got).astype(np.int64), acc.astype(np.int64) * np.int64(M0), 31 + int(n), zp


def _outside_uint8(a):
    got = _requant_parts(a)[0]
    if got.min() < 0 or got.max() > 255:
        return f"values outside [0, 255] (min {got.min()}, max {got.max()}): clamp after adding the zero point"
    return None


def _floating_point(a):
    acc, M0 = a.args[:2]
    got = _requant_parts(a)[0]
    wrong = got != a.expected
    big = np.abs(acc.astype(np.float64) * float(M0)) > 2.0**53
    if any(np.array_equal(got, f) for f in _float_answers(*a.args)) or (
        np.all(big[wrong]) and np.all(np.abs(got - a.expected)[wrong] == 1)
    ):
        return _FLOAT_HINT
    return None


def _plain_shift(a):
    got, prod, s, zp = _requant_parts(a)
    if np.array_equal(got, np.clip((prod >> s) + zp, 0, 255)):
        return "a plain >> truncates (floors); round instead: add half of 2^(31+n) before shifting (ties to even)"
    return None


def _ties_up(a):
    got, prod, s, zp = _requant_parts(a)
    if np.array_equal(got, np.clip(((prod + (1 << (s - 1))) >> s) + zp, 0, 255)):
        return "ties must go to even (like np.rint): adding 2^(30+n) then shifting rounds 2.5 up to 3"
    return None


def _no_output_zero_point(a):
    got, prod, s, _ = _requant_parts(a)
    if np.array_equal(got, np.clip(((prod + (1 << (s - 1))) >> s), 0, 255)) or np.array_equal(
        got, np.clip(np.rint(prod / 2.0**s), 0, 255)
    ):
        return "add the output zero point after the shift"
    return None


def _int32_product(a):
    acc, M0 = a.args[:2]
    got, _, s, zp = _requant_parts(a)
    with np.errstate(over="ignore"):
        wrapped = np.clip(np.rint((acc.astype(np.int32) * np.int32(M0)).astype(np.int64) / 2.0**s) + zp, 0, 255)
    if np.array_equal(got, wrapped):
        return "acc · M0 overflows int32: multiply in int64"
    return None


def _wrong_requant(a):
    return compare_arrays(_requant_parts(a)[0], a.expected, "your requantized values")


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
    compare=Hints(
        _codes_form,
        _same_codes,
        _outside_uint8,
        _floating_point,
        _plain_shift,
        _ties_up,
        _no_output_zero_point,
        _int32_product,
        _wrong_requant,
    ),
    pass_line=(
        "requantize: correct on 7 cases (int64 product, rounding shift with ties to even, zero point, clamp; "
        "products beyond float64's 2^53)"
    ),
)

# --- Exercise 4: one integer-only Dense layer -------------------------------------------------------


def _int_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu):
    return _integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu=relu).astype(np.int64)


def _layer_form(a):
    return array_problem(
        np.asarray(a.got),
        "your result",
        shape=a.expected.shape,
        shape_note="batch, out",
        kinds="iu",
        holds="integers (uint8)",
    )


@accept
def _same_outputs(a):
    return np.array_equal(np.asarray(a.got).astype(np.int64), a.expected)


def _layer_gives(a, acc, relu=None) -> bool:
    """The answer equals the layer requantized from the accumulators ``acc`` (ReLU as asked, or ``relu``)."""
    q_x, z_x, q_W, q_b, M0, n, z_y, asked_relu = a.args
    relu = asked_relu if relu is None else relu
    out = _requantize(np.asarray(acc, np.int64), M0, n, z_y, relu=relu).astype(np.int64)
    return np.array_equal(np.asarray(a.got).astype(np.int64), out)


def _wide(a):
    """q_x and q_W as int32."""
    return a.args[0].astype(np.int32), a.args[2].astype(np.int32)


def _no_input_zero_point(a):
    x32, W32 = _wide(a)
    if _layer_gives(a, x32 @ W32.T + a.args[3]):
        return "subtract the input zero point before the matmul: acc = (q_x - z_x) @ q_W.T + q_b"
    return None


def _no_bias(a):
    x32, W32 = _wide(a)
    if _layer_gives(a, (x32 - a.args[1]) @ W32.T):
        return "add the int32 bias q_b to the accumulator before requantizing"
    return None


def _relu_flipped(a):
    x32, W32 = _wide(a)
    if _layer_gives(a, (x32 - a.args[1]) @ W32.T + a.args[3], relu=not a.args[7]):
        return "the fused ReLU is a clamp at the output zero point z_y (relu=True only)"
    return None


def _uint8_accumulators(a):
    """What numpy computes when q_x - z_x stays uint8: it wraps around (3 - 5 = 254); the products may then
    wrap in int16 too (uint8 @ int8 is int16), or the difference be read back as int8."""
    q_x, z_x, q_W, q_b = a.args[:4]
    W32 = q_W.astype(np.int32)
    with np.errstate(over="ignore"):
        diff = q_x - np.asarray(z_x).astype(q_x.dtype)
        variants = (
            (diff @ q_W.T).astype(np.int64) + q_b,  # all in numpy's small types
            diff.astype(np.int32) @ W32.T + q_b,  # widened after the wrap
            diff.astype(np.int8).astype(np.int32) @ W32.T + q_b,  # the wrap read back as int8
        )
    if any(_layer_gives(a, acc) for acc in variants):
        return (
            "q_x - z_x wrapped around in uint8 (e.g. 3 - 5 = 254): widen to int32 before subtracting, "
            "acc = (q_x.astype(np.int32) - z_x) @ q_W.T.astype(np.int32) + q_b"
        )
    return None


def _wrong_outputs(a):
    return compare_arrays(np.asarray(a.got).astype(np.int64), a.expected, "your layer's output")


def _int_dense_cases(rng):
    cases = []
    for relu in (True, False):
        n_in, n_out = int(rng.integers(5, 30)), int(rng.integers(2, 12))
        x = rng.uniform(-1, 2, (8, n_in)).astype(np.float32)
        W = (rng.standard_normal((n_out, n_in)) * 0.5).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.2).astype(np.float32)
        y = x @ W.T + b
        s_x, z_x = _qparams(x, 8)
        s_w, _ = _qparams(W, 8, symmetric=True, axis=0)
        # the output range is calibrated before the ReLU, so z_y > 0 and the fused ReLU (a clamp at z_y) acts
        s_y, z_y = _qparams(y, 8)
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
    compare=Hints(
        _layer_form,
        _same_outputs,
        _no_input_zero_point,
        _no_bias,
        _relu_flipped,
        _uint8_accumulators,
        _wrong_outputs,
    ),
    pass_line="integer_dense: bit-exact on 2 layers (int32 accumulators, zero point, bias, fused ReLU)",
)
