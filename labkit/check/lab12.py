"""Checks for lab 12 (low-bit language models): FP8 E4M3 rounding, the NF4 code, an MX block, the KV cache.

The references are written out in full (they are the answers the lab derives); the library
functions the lab uses at scale (``labkit.quant.round_to_format``, ``quantize_blocks``,
``labkit.nn.forward_cached``) compute the same things.
"""

from __future__ import annotations

import numpy as np

from ..quant import NF4_CODE
from .answers import compare_arrays, number_answer
from .exercise import Case, Exercise

__all__ = [
    "round_e4m3",
    "nf4_quantize",
    "mx_block",
    "attend_with_cache",
    "reference_round_e4m3",
    "reference_nf4_quantize",
    "reference_mx_block",
    "reference_attend_with_cache",
    "NF4",
]

# QLoRA's 16 NormalFloat values (Dettmers et al. 2023): the library's table.
NF4 = NF4_CODE


def _float_array_problem(got, shape, what="the result"):
    if not isinstance(got, np.ndarray):
        return f"return a numpy array, got {type(got).__name__}"
    if got.shape != tuple(shape):
        return f"{what} has shape {got.shape}, expected {tuple(shape)} (the input's shape)"
    if got.dtype.kind != "f":
        return f"{what} should be a float array, got dtype {got.dtype}"
    return None


# --- Exercise 1: FP8 E4M3 rounding, saturating ---------------------------------------------------------


def _minifloat(x, mantissa_bits, min_exp, max_value):
    """Round to the grid with ``mantissa_bits`` fraction bits, exponents >= ``min_exp``, ties to even, clamp."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    _, exp = np.frexp(a)  # a = m · 2^exp with m in [0.5, 1): floor(log2 a) = exp − 1
    e = np.maximum(exp - 1, min_exp)  # below the smallest normal the step stays the subnormal step
    step = np.ldexp(1.0, e - mantissa_bits)
    return np.copysign(np.minimum(np.rint(a / step) * step, max_value), x)


def reference_round_e4m3(x):
    """Nearest FP8 E4M3 (OCP "E4M3FN") value of each entry, ties to even, saturating at ±448.

    3 mantissa bits: 8 values per power of two; exponent bias 7, smallest normal 2^-6, subnormal
    step 2^-9; the largest finite value is 448 = 1.75 · 2^8 (the code that would be 480 is NaN).
    """
    return _minifloat(x, 3, -6, 448.0)


def _compare_e4m3(got, expected, case):
    (x,) = case.args
    problem = _float_array_problem(got, np.shape(x))
    if problem:
        return problem
    g = got.astype(np.float64)
    if np.array_equal(g, expected):
        return None
    if np.array_equal(g, _minifloat(x, 2, -14, 57344.0)):
        return "that is E5M2 (2 mantissa bits): E4M3 keeps 3 mantissa bits, 8 values per power of two"
    big = np.abs(x) > 448
    if np.any(~np.isfinite(g[big])) or np.any(np.abs(g[big]) > 448):
        return "values beyond 448 must saturate to ±448 (E4M3's largest finite value), not overflow to NaN, inf or 480"
    if np.any(big) and np.allclose(np.abs(g[big]), 240):
        return "E4M3 here is the OCP E4M3FN format: the largest finite value is 448 = 1.75 · 2^8, not 240"
    away = np.copysign(np.minimum(np.floor(np.abs(x) / _step(x) + 0.5) * _step(x), 448), x)
    if np.array_equal(g, away):
        return "ties go to the even neighbour (np.rint), not away from zero: halfway points round to an even mantissa"
    if np.array_equal(g, np.copysign(np.minimum(np.floor(np.abs(x) / _step(x)) * _step(x), 448), x)):
        return "you truncate toward zero: round to the nearest value of the grid (ties to even, np.rint)"
    flushed = np.where(np.abs(x) < 2.0**-6, 0.0, expected)
    if np.array_equal(g, flushed):
        return (
            "values below 2^-6 (the smallest normal) are not zero in E4M3: they are subnormals on a grid of "
            "step 2^-9 (the step stays 2^-9 below 2^-6)"
        )
    if np.array_equal(g, _minifloat(x, 3, -7, 448.0)) or np.array_equal(g, _minifloat(x, 3, -5, 448.0)):
        return "the subnormal step is 2^-9: the smallest normal is 2^(1 − bias) = 2^-6 with bias 7, 3 mantissa bits"
    return compare_arrays(g, expected, "the rounded values", exact=True)


def _step(x):
    _, exp = np.frexp(np.abs(np.asarray(x, np.float64)))
    return np.ldexp(1.0, np.maximum(exp - 1, -6) - 3)


def _e4m3_cases(rng):
    scale = 2.0 ** rng.uniform(-12, 10, size=40)
    x = rng.standard_normal(40) * scale
    grid = np.ldexp(rng.integers(8, 16, size=10).astype(np.float64), rng.integers(-9, 6, size=10))
    ties = (grid + np.ldexp(1.0, np.frexp(grid)[1] - 1 - 4)) * rng.choice([-1.0, 1.0], size=10)  # halfway points
    return [
        Case((x,), label="40 values from 2^-12 to 2^10 (normals, subnormals, saturation)"),
        Case((ties,), label="halfway points between two E4M3 values"),
    ]


round_e4m3 = Exercise(
    "round_e4m3",
    reference_round_e4m3,
    fixed_cases=[
        Case((np.array([0.3, 1.0625, 1.1875, 500.0, -1000.0, 464.0, 2.0**-10, 3 * 2.0**-10, 0.0]),), label="edges"),
        Case((np.array([[17.0, 18.0, 19.0], [-0.013, 0.0061, 300.0]]),), label="a 2-D array"),
    ],
    cases=_e4m3_cases,
    compare=_compare_e4m3,
    pass_line="round_e4m3: nearest E4M3 values, ties to even, subnormals, saturation at ±448 — correct on 4 arrays",
)

# --- Exercise 2: the NF4 code of a block ----------------------------------------------------------------


def reference_nf4_quantize(w):
    """``(codes, absmax)`` of one block: ``absmax = max |w|``; code i = index of the NF4 value nearest to
    ``w_i / absmax`` (a tie goes to the lower index); an all-zero block: absmax 0 and every code 7 (0.0)."""
    w = np.asarray(w, dtype=np.float64)
    absmax = float(np.abs(w).max())
    if absmax == 0:
        return np.full(w.shape, 7, dtype=np.int64), 0.0
    mid = (NF4[1:].astype(np.float64) + NF4[:-1]) / 2
    return np.searchsorted(mid, w / absmax, side="left").astype(np.int64), absmax


def _nearest(v, grid, lower_ties=True):
    d = np.abs(v[:, None] - grid[None, :])
    return d.argmin(axis=1) if lower_ties else (d.shape[1] - 1 - d[:, ::-1].argmin(axis=1))


def _compare_nf4(got, expected, case):
    (w,) = case.args
    w = np.asarray(w, np.float64)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (codes, absmax), got {type(got).__name__}"
    codes, absmax = got
    if not isinstance(codes, np.ndarray) or codes.shape != w.shape:
        got_what = getattr(codes, "shape", type(codes).__name__)
        return f"codes should be a numpy array of shape {w.shape} (one code per weight), got {got_what}"
    if codes.dtype.kind not in "iu":
        return f"codes should be integer indices 0..15 into the NF4 table, got dtype {codes.dtype} (values?)"
    absmax, problem = number_answer(absmax, "absmax as one number")
    if problem:
        return problem
    exp_codes, exp_absmax = expected
    if not np.isclose(absmax, exp_absmax, rtol=1e-6, atol=0):
        return _absmax_hint(absmax, exp_absmax, w)
    return _codes_hint(codes, exp_codes, exp_absmax, w)


def _absmax_hint(absmax, exp_absmax, w):
    """Why the block's scale ``absmax`` differs from max |w|."""
    if np.isclose(absmax, w.max(), rtol=1e-6) and w.max() != np.abs(w).max():
        return "absmax is the largest magnitude, max |w|, not the largest signed value max w"
    if np.isclose(absmax, w.max() - w.min(), rtol=1e-6) or np.isclose(absmax, (w.max() - w.min()) / 2, rtol=1e-6):
        return "NF4 is symmetric: scale by absmax = max |w| (no min-max range, no zero point)"
    return f"absmax is {absmax:.6g}, expected max |w| = {exp_absmax:.6g}"


def _codes_hint(codes, exp_codes, exp_absmax, w):
    """Why the NF4 codes differ from the reference's (None when they are equal)."""
    if np.array_equal(codes, exp_codes):
        return None
    if exp_absmax == 0:
        return "an all-zero block has absmax 0 and every code 7 (the NF4 value 0.0): don't divide by zero"
    if np.any(codes < 0) or np.any(codes > 15):
        return "codes are indices 0..15 into the 16 NF4 values"
    v = w / exp_absmax
    if np.array_equal(codes, _nearest(v, np.linspace(-1, 1, 16))):
        return "you used 16 evenly spaced levels: NF4's 16 values are quantiles of N(0, 1) (the table NF4)"
    if np.array_equal(codes, _nearest(v, NF4.astype(np.float64), lower_ties=False)):
        return "a value exactly halfway between two NF4 values gets the lower index"
    lo, hi = w.min(), w.max()
    if hi > lo and np.array_equal(codes, _nearest(2 * (w - lo) / (hi - lo) - 1, NF4.astype(np.float64))):
        return "NF4 is symmetric: divide by absmax = max |w|, don't stretch [min, max] onto [−1, 1]"
    return compare_arrays(codes, exp_codes, "codes", exact=True)


def _nf4_cases(rng):
    out = []
    for n in (64, 64, 32):
        w = rng.standard_normal(n) * rng.uniform(0.01, 0.2)
        out.append(Case((w.astype(np.float32),), label=f"a block of {n} normal weights"))
    skew = np.abs(rng.standard_normal(64)) * 0.05
    skew[:8] *= -0.3
    out.append(Case((skew.astype(np.float32),), label="a block of mostly positive weights"))
    return out


_mid = ((NF4[1:].astype(np.float64) + NF4[:-1]) / 2)[[2, 9, 12]]
nf4_quantize = Exercise(
    "nf4_quantize",
    reference_nf4_quantize,
    fixed_cases=[
        Case((np.array([1.0, -0.5, 0.0, 0.3, -1.0, 0.08, 0.7, -0.0]),), label="values near the table"),
        Case((np.concatenate([[1.0], _mid]),), label="halfway between two NF4 values"),
        Case((np.array([-2.0, 0.5, 0.1]),), label="the largest magnitude is negative"),
        Case((np.zeros(16),), label="an all-zero block"),
    ],
    cases=_nf4_cases,
    compare=_compare_nf4,
    pass_line="nf4_quantize: absmax and NF4 codes (nearest value, ties to the lower index) correct on 8 blocks",
)

# --- Exercise 3: an MX block: shared exponent and E2M1 elements -----------------------------------------------


def _e2m1(x):
    """E2M1 (FP4): ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, ties to even, saturating at ±6."""
    return _minifloat(x, 1, 0, 6.0)


def reference_mx_block(v):
    """``(e, elements)`` of one MXFP4 block (OCP MX v1.0): ``e = floor(log2 max|v|) − 2`` clamped to
    [−127, 127] (−127 for an all-zero block), ``elements = E2M1(v / 2^e)`` (ties to even, saturating at ±6)."""
    v = np.asarray(v, dtype=np.float64)
    amax = float(np.abs(v).max())
    if amax == 0:
        return -127, np.zeros(v.shape)
    e = int(np.clip(np.frexp(amax)[1] - 1 - 2, -127, 127))
    return e, _e2m1(v / 2.0**e)


def _exponent_hint(e, e_exp, v):
    """Why the shared exponent ``e`` differs from ``e_exp`` (the first mistake that explains it)."""
    amax = np.abs(v).max()
    if amax == 0:
        return "an all-zero block gets e = −127 (the smallest E8M0 exponent) and all-zero elements"
    fl = int(np.floor(np.log2(amax)))
    known = [
        (fl, "subtract 2, the exponent of E2M1's largest power of two (4 = 2^2): e = floor(log2 max|v|) − 2"),
        (
            int(np.floor(np.log2(max(v.max(), 1e-300)))) - 2,
            "use the largest magnitude max |v|, not the largest signed value",
        ),
        (
            int(np.floor(np.log2(amax / 6))),
            "the MX scale is not max|v|/6 rounded to a power of two: e = floor(log2 max|v|) − 2",
        ),
        (
            int(np.ceil(np.log2(amax / 6))),
            "the MX scale is not max|v|/6 rounded to a power of two: e = floor(log2 max|v|) − 2",
        ),
        (
            int(np.ceil(np.log2(amax))) - 2,
            "round log2 down: e = floor(log2 max|v|) − 2 (elements near the top then saturate to 6)",
        ),
    ]
    hint = next((h for value, h in known if e == value), None)
    if hint:
        return hint
    if not -127 <= fl - 2 <= 127:
        return "E8M0 holds exponents −127..127: clamp e into that range"
    return f"e is {e}, expected {e_exp} = floor(log2 max|v|) − 2"


def _elements_hint(el, el_exp, v, e):
    """Why the E2M1 elements differ from the reference's (None when they are equal)."""
    if np.array_equal(el, el_exp):
        return None
    if np.array_equal(el, np.clip(v / 2.0**e, -6, 6)):
        return "round the scaled values v / 2^e to E2M1 (±{0, 0.5, 1, 1.5, 2, 3, 4, 6}): round_to_format(x, 'e2m1')"
    if np.array_equal(el, el_exp * 2.0**e):
        return "return the E2M1 elements themselves (values in ±{0 … 6}), not the decoded weights 2^e · element"
    if np.any(np.abs(el) > 6):
        return "E2M1's largest value is 6: scaled values up to 8 must saturate to ±6"
    return compare_arrays(el, el_exp, "elements", exact=True)


def _integer_exponent(e):
    """``e`` as a Python int when it is a whole number, else None."""
    if isinstance(e, (float, np.floating)) and float(e).is_integer():
        return int(e)
    if isinstance(e, (int, np.integer)) and not isinstance(e, bool):
        return int(e)
    return None


def _compare_mx(got, expected, case):
    (v,) = case.args
    v = np.asarray(v, np.float64)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (e, elements), got {type(got).__name__}"
    e, elems = _integer_exponent(got[0]), got[1]
    if e is None:
        return f"e should be an integer exponent (the scale is 2^e), got {type(got[0]).__name__}"
    problem = _float_array_problem(elems, v.shape, "elements")
    if problem:
        return problem
    e_exp, el_exp = expected
    if e != e_exp:
        return _exponent_hint(e, e_exp, v)
    return _elements_hint(elems.astype(np.float64), el_exp, v, e)


def _mx_cases(rng):
    out = []
    for _ in range(3):
        v = rng.standard_normal(32) * 2.0 ** rng.uniform(-8, 8)
        out.append(Case((v.astype(np.float32),), label=f"a block of 32 (scale 2^{np.log2(np.abs(v).max()):.1f})"))
    top = rng.uniform(-1, 1, 32)
    top[3] = 7.5  # scaled to 7.5 · 2^0: saturates to 6
    out.append(Case((top,), label="a block whose largest value sits just under 2^(e+3)"))
    return out


mx_block = Exercise(
    "mx_block",
    reference_mx_block,
    fixed_cases=[
        Case((np.array([0.1, -0.7, 3.0, 1.2, -5.9, 0.0, 2.5, 0.26]),), label="a small block"),
        Case((np.array([-12.0, 1.0, 0.5, 3.0]),), label="the largest magnitude is negative"),
        Case((np.zeros(8),), label="an all-zero block"),
        Case((np.array([1e-40, -3e-41, 0.0, 2e-40]),), label="tiny values: the exponent clamps at −127"),
    ],
    cases=_mx_cases,
    compare=_compare_mx,
    pass_line="mx_block: shared exponent floor(log2 max|v|) − 2 and saturating E2M1 elements correct on 8 blocks",
)

# --- Exercise 4: append to a KV cache, then attend ---------------------------------------------------------------


def reference_attend_with_cache(K, V, q, k, v):
    """Append the new token's key and value, then attend over every cached position.

    ``K, V`` (n_head, T, d_head): the cache; ``q, k, v`` (n_head, d_head): the new token.
    Returns ``(K_new, V_new, y)``: the caches (n_head, T + 1, d_head) with k, v appended last, and
    ``y[h] = softmax(K_new[h] q[h] / √d_head) · V_new[h]``, shape (n_head, d_head).
    """
    K_new = np.concatenate([K, k[:, None, :]], axis=1)
    V_new = np.concatenate([V, v[:, None, :]], axis=1)
    s = np.einsum("htd,hd->ht", K_new, q) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return K_new, V_new, np.einsum("ht,htd->hd", p, V_new)


def _attend(K, V, q, scale, axis=1):
    s = np.einsum("htd,hd->ht", K, q) * scale
    p = np.exp(s - s.max(axis=axis, keepdims=True))
    p /= p.sum(axis=axis, keepdims=True)
    return np.einsum("ht,htd->hd", p, V)


def _cache_hint(got, expected, case):
    """Why ``K_new`` or ``V_new`` differs from the reference's (None when both are right)."""
    K, _, _, k, v = (np.asarray(a, np.float64) for a in case.args)
    for name, a, e, new in (("K_new", got[0], expected[0], k), ("V_new", got[1], expected[1], v)):
        problem = _float_array_problem(a, e.shape, name)
        if problem:
            if isinstance(a, np.ndarray) and a.shape == K.shape:
                return f"{name} must hold the T + 1 positions: the cache plus the new token (got the old cache back)"
            return problem
        if not np.allclose(a, e, rtol=1e-6, atol=1e-7):
            if K.shape[1] > 0 and np.allclose(a[:, 0], new, rtol=1e-6, atol=1e-7):
                return f"append the new token at the end of {name} (position T), not at the front"
            return compare_arrays(a, e, name, rtol=1e-6, atol=1e-7)
    return None


def _output_hint(y, expected, case):
    """Why the attention output ``y`` differs from the reference's (None when it is right)."""
    K, V, q, _, _ = (np.asarray(a, np.float64) for a in case.args)
    Ke, Ve, ye = expected
    if np.allclose(y, ye, rtol=1e-5, atol=1e-6):
        return None
    d, n_head = q.shape[-1], q.shape[0]
    known = [
        (
            K.shape[1] > 0,
            (K, V, q, 1 / np.sqrt(d)),
            "attend after appending: the new token attends to itself too (T + 1 keys, not T)",
        ),
        (True, (Ke, Ve, q, 1.0), "scale the scores by 1/√d_head before the softmax"),
        (
            n_head > 1,
            (Ke, Ve, q, 1 / np.sqrt(d * n_head)),
            "scale by 1/√d_head (the features of one head), not 1/√d_model",
        ),
        (
            n_head > 1,
            (Ke, Ve, q, 1 / np.sqrt(d), 0),
            "take the softmax over the positions (axis of T + 1 keys), separately for each head, not across heads",
        ),
        (True, (Ke, Ve, q, 1 / d), "scale the scores by 1/√d_head, not 1/d_head"),
    ]
    for applies, args, hint in known:
        if applies and np.allclose(y, _attend(*args), rtol=1e-5, atol=1e-6):
            return hint
    return compare_arrays(y, ye, "y", rtol=1e-5, atol=1e-6)


def _compare_attend(got, expected, case):
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return a triple (K_new, V_new, y), got {type(got).__name__}"
    problem = _cache_hint(got, expected, case) or _float_array_problem(got[2], expected[2].shape, "y")
    return problem or _output_hint(got[2], expected, case)


def _attend_cases(rng):
    out = []
    for n_head, T, d in ((4, 5, 8), (2, 11, 16), (3, 1, 4)):
        K, V = rng.standard_normal((2, n_head, T, d))
        q, k, v = rng.standard_normal((3, n_head, d)) * 1.5
        out.append(Case((K, V, q, k, v), label=f"{n_head} heads, {T} cached positions, d_head = {d}"))
    return out


def _attend_fixed():
    rng = np.random.default_rng(12)
    K, V = rng.standard_normal((2, 2, 3, 4))
    q, k, v = rng.standard_normal((3, 2, 4)) * 2
    empty = np.zeros((2, 0, 4))
    return [
        Case((K, V, q, k, v), label="2 heads, 3 cached positions, d_head = 4"),
        Case((empty, empty, q, k, v), label="an empty cache: the first token attends only to itself"),
    ]


attend_with_cache = Exercise(
    "attend_with_cache",
    reference_attend_with_cache,
    fixed_cases=_attend_fixed(),
    cases=_attend_cases,
    compare=_compare_attend,
    pass_line="attend_with_cache: appended caches and softmax(K q/√d_head)·V per head correct on 5 cases",
)
