"""Small floating-point element formats: FP8 E4M3 / E5M2, FP4 E2M1 and the E8M0 power-of-two scale.

A *minifloat* with ``E`` exponent bits, ``M`` mantissa bits and bias ``b`` stores
``sign · 2^(e − b) · (1 + m / 2^M)`` (normal, exponent field ``e ≥ 1``) or
``sign · 2^(1 − b) · (m / 2^M)`` (subnormal, ``e = 0``). Between two consecutive powers of two the
grid is uniform with ``2^M`` steps; below the smallest normal ``2^(1 − b)`` the step stays at
``2^(1 − b − M)`` (the subnormals), down to 0. The formats (OCP 8-bit Floating Point Specification
(OFP8) rev. 1.0, and OCP Microscaling Formats (MX) v1.0 for E2M1 and E8M0):

======== ===== ===== ====== ============== =================== =================================
name      E     M    bias   largest finite  smallest subnormal  special values
======== ===== ===== ====== ============== =================== =================================
e4m3      4     3     7     448            2^-9                no inf; NaN = S.1111.111 only
e5m2      5     2     15    57344          2^-16               ±inf = S.11111.00; NaN S.11111.xx
e2m1      2     1     1     6              0.5                 none (values ±{0,.5,1,1.5,2,3,4,6})
e8m0      8     0     127   2^127          (none: 2^-127 is    no sign, no zero; NaN = 0xFF
                                           the smallest value)
======== ===== ===== ====== ============== =================== =================================

``e4m3`` is E4M3**FN** (finite, one NaN pattern), ml_dtypes' ``float8_e4m3fn``; ``e5m2`` is
``float8_e5m2``; ``e2m1`` is ``float4_e2m1fn``; ``e8m0`` is ``float8_e8m0fnu``.

**Rounding** (:func:`round_to_format`) is round to nearest, ties to even (the neighbour whose last
mantissa bit is 0), then **saturation**: a value beyond the largest finite number becomes that number
with its sign. This is the OFP8 specification's saturating conversion mode and ONNX ``Cast`` with
``saturate=1``: ±inf become ±max too. NaN stays NaN (for E2M1, which has no NaN encoding, the result
is still NaN: a NaN weight is a bug to be seen, and a hardware cast's result is implementation
defined). Subnormals are kept (no flush to zero); signed zeros keep their sign, and a negative value
that rounds to 0 gives −0.

ml_dtypes' own casts round the same way but do **not** saturate: an E4M3 overflow becomes NaN and an
E5M2 overflow ±inf (E2M1 saturates, having neither). Values whose rounding stays within range agree
bit for bit with ml_dtypes, and every value with ONNX's saturating ``Cast`` as onnx's reference
evaluator runs it, ±inf included (E8M0: non-negative finite values, see below).
``tests/test_quant_minifloat.py`` checks every representable value, every midpoint and random float32.

**E8M0** has no mantissa bit, so "ties to even" cannot choose by the last bit: a value exactly
halfway between ``2^k`` and ``2^(k+1)`` (that is ``1.5 · 2^k``) rounds up, as ml_dtypes'
``float8_e8m0fnu`` cast does. It has no sign and no zero: a positive value saturates into
``[2^-127, 2^127]`` (ONNX ``Cast`` with ``saturate=1`` and ``round_mode="nearest"``, which sends 0 to
the smallest value too, so ±0 → ``2^-127``); +inf → ``2^127`` (as ONNX's table says; its reference
evaluator returns NaN); negative values, −inf and NaN → NaN (the only code left, 0xFF). ``2^-127`` is
a float32 subnormal, still exact.

:func:`float_to_bits` and :func:`bits_to_float` convert between those float32 values and the stored
bit patterns (uint8, the low 4 bits for E2M1), the same patterns as ml_dtypes' ``.view(np.uint8)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_array, check_choice

__all__ = [
    "ELEMENT_FORMATS",
    "MinifloatFormat",
    "format_info",
    "round_to_format",
    "float_to_bits",
    "bits_to_float",
    "format_grid",
]


class MinifloatFormat(NamedTuple):
    """The parameters of one element format (see the module docstring's table).

    ``max`` is the largest finite value, ``min_normal`` ``2^(1 − bias)`` (E8M0: ``2^-127``),
    ``nan_code`` the bit pattern :func:`float_to_bits` writes for NaN (None: no NaN encoding).
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    max: float
    has_inf: bool
    nan_code: int | None

    @property
    def bits(self) -> int:
        """Total width: 1 sign bit + exponent + mantissa (E8M0 has no sign bit: 8)."""
        return self.exponent_bits + self.mantissa_bits + (0 if self.name == "e8m0" else 1)

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias) if self.name != "e8m0" else 2.0**-127

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mantissa_bits) if self.name != "e8m0" else 2.0**-127


ELEMENT_FORMATS = {
    "e4m3": MinifloatFormat("e4m3", 4, 3, 7, 448.0, False, 0x7F),
    "e5m2": MinifloatFormat("e5m2", 5, 2, 15, 57344.0, True, 0x7E),
    "e2m1": MinifloatFormat("e2m1", 2, 1, 1, 6.0, False, None),
    "e8m0": MinifloatFormat("e8m0", 8, 0, 127, 2.0**127, False, 0xFF),
}


def format_info(fmt: str) -> MinifloatFormat:
    """The :class:`MinifloatFormat` of ``fmt`` ("e4m3", "e5m2", "e2m1" or "e8m0")."""
    return ELEMENT_FORMATS[check_choice("fmt", fmt, tuple(ELEMENT_FORMATS))]


def _round_e8m0(a: np.ndarray) -> np.ndarray:
    """Nearest power of two of float64 ``a`` (ties up), saturated into [2^-127, 2^127]; NaN where
    the format has nothing to offer (negative, −inf, NaN)."""
    out = np.full(a.shape, np.nan)
    positive = (a > 0) & np.isfinite(a)
    mant, exp = np.frexp(a[positive])  # a = mant · 2^exp, mant in [0.5, 1): between 2^(exp−1) and 2^exp
    k = exp - 1 + (mant >= 0.75)  # 0.75 · 2^exp = 1.5 · 2^(exp−1), the midpoint, rounds up
    out[positive] = np.ldexp(1.0, np.clip(k, -127, 127))
    out[a == np.inf] = 2.0**127
    out[a == 0] = 2.0**-127  # no zero: saturate at the smallest value (ONNX Cast, saturate=1)
    return out


def round_to_format(x, fmt: str) -> np.ndarray:
    """Round ``x`` to the nearest value of an element format, ties to even, saturating.

    Parameters
    ----------
    x : array_like of real numbers, any shape
        float16/32/64 or integers; NaN and ±inf allowed (see the module docstring for what they become).
    fmt : {"e4m3", "e5m2", "e2m1", "e8m0"}

    Returns
    -------
    ndarray of float32, shape of ``x``
        Values on the format's grid (every one exactly representable in float32). Beyond the largest
        finite value ``m`` the result is ``±m`` (saturation), for ±inf too; NaN stays NaN. E8M0: see
        the module docstring (positive values only; ties up).

    Raises
    ------
    TypeError
        ``x`` is not a real array (strings, complex, objects).
    ValueError
        Unknown ``fmt``.

    Examples
    --------
    >>> round_to_format([0.3, 464.0, 465.0, -1e9], "e4m3").tolist()
    [0.3125, 448.0, 448.0, -448.0]
    """
    spec = format_info(fmt)
    x = check_array(x, "x", kind="fiu")
    a64 = x.astype(np.float64)
    if spec.name == "e8m0":
        return _round_e8m0(a64).astype(np.float32)
    a = np.abs(a64)
    finite = np.isfinite(a) & (a > 0)
    r = np.where(np.isnan(a), np.nan, np.where(np.isinf(a), spec.max, 0.0))
    mant, exp = np.frexp(a[finite])  # floor(log2 a) = exp − 1, exact
    e = np.maximum(exp - 1, 1 - spec.bias)  # below the smallest normal the step stays the subnormal step
    step = np.ldexp(1.0, e - spec.mantissa_bits)
    r[finite] = np.minimum(np.rint(a[finite] / step) * step, spec.max)  # a / step is exact: step is 2^k
    return np.copysign(r, a64).astype(np.float32)


def _positive_values(spec: MinifloatFormat) -> np.ndarray:
    """The values of the codes 0 .. 2^(E+M) − 1 (sign bit clear), increasing; NaN/inf codes included."""
    if spec.name == "e8m0":
        v = np.ldexp(1.0, np.arange(256) - 127)
        v[255] = np.nan
        return v
    codes = np.arange(1 << (spec.exponent_bits + spec.mantissa_bits))
    e = codes >> spec.mantissa_bits
    m = codes & ((1 << spec.mantissa_bits) - 1)
    frac = m / (1 << spec.mantissa_bits)
    v = np.where(e == 0, np.ldexp(frac, 1 - spec.bias), np.ldexp(1.0 + frac, e - spec.bias))
    if spec.name == "e4m3":
        v[-1] = np.nan  # S.1111.111
    elif spec.name == "e5m2":
        top = e == (1 << spec.exponent_bits) - 1
        v[top] = np.where(m[top] == 0, np.inf, np.nan)
    return v


def bits_to_float(codes, fmt: str) -> np.ndarray:
    """The float32 values of stored bit patterns.

    Parameters
    ----------
    codes : array_like of unsigned integers, any shape
        Bit patterns: 0..255 for the 8-bit formats, 0..15 for E2M1 (sign in bit 3).
    fmt : {"e4m3", "e5m2", "e2m1", "e8m0"}

    Returns
    -------
    ndarray of float32, shape of ``codes`` (NaN and ±inf where the pattern says so)
    """
    spec = format_info(fmt)
    codes = check_array(codes, "codes", kind="iu")
    n = 1 << spec.bits
    if codes.size and (codes.min() < 0 or codes.max() >= n):
        raise ValueError(f"codes must be in [0, {n - 1}] for {fmt}, got range [{codes.min()}, {codes.max()}]")
    pos = _positive_values(spec)
    table = pos if spec.name == "e8m0" else np.concatenate([pos, -pos])
    return table[codes.astype(np.int64)].astype(np.float32)


def float_to_bits(values, fmt: str) -> np.ndarray:
    """The bit patterns (uint8) of values already on the grid (the output of :func:`round_to_format`).

    Parameters
    ----------
    values : array_like of float, any shape
        Each value exactly representable in ``fmt`` (or NaN where the format has a NaN code; E5M2
        also ±inf). Negative zero keeps its sign bit.
    fmt : {"e4m3", "e5m2", "e2m1", "e8m0"}

    Returns
    -------
    ndarray of uint8, shape of ``values``; E2M1 uses the low 4 bits. NaN is encoded as E4M3 0x7F,
    E5M2 0x7E, E8M0 0xFF (ml_dtypes' patterns).

    Raises
    ------
    ValueError
        A value is not on the grid (round it first), or NaN for E2M1.
    """
    spec = format_info(fmt)
    v = check_array(values, "values", kind="fiu").astype(np.float64)
    pos = _positive_values(spec)
    finite_pos = np.where(np.isnan(pos), np.inf, pos)  # increasing, with the NaN codes pushed to the end
    a = np.abs(v)
    code = np.searchsorted(finite_pos, a).clip(max=len(pos) - 1)
    nan = np.isnan(v)
    off_grid = ~nan & (pos[code] != a)  # a NaN code never matches, so inf is off the grid where there is no inf
    if spec.name == "e8m0":
        off_grid |= ~nan & (v < 0)
    if np.any(off_grid):
        bad = v[off_grid][:3]
        raise ValueError(f"values must lie on the {fmt} grid (use round_to_format first), got e.g. {bad.tolist()}")
    if np.any(nan) and spec.nan_code is None:
        raise ValueError(f"{fmt} has no NaN encoding, got {int(nan.sum())} NaN value(s)")
    sign = 0 if spec.name == "e8m0" else np.signbit(v).astype(np.int64) << (spec.bits - 1)
    out = np.where(nan, spec.nan_code or 0, code + sign)
    return out.astype(np.uint8)


def format_grid(fmt: str) -> np.ndarray:
    """Every finite value of ``fmt`` once, increasing, as float32 (−0 left out; E8M0: the 255 powers)."""
    spec = format_info(fmt)
    pos = _positive_values(spec)
    pos = pos[np.isfinite(pos)]
    if spec.name == "e8m0":
        return pos.astype(np.float32)
    return np.concatenate([-pos[:0:-1], pos]).astype(np.float32)
