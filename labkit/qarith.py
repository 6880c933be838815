"""The integer arithmetic of quantization, in one place: ranges, rounding, requantization.

Everything in labkit that turns reals into integers, or int32 accumulators into narrower integers,
goes through these functions: ``labkit.quant`` (the reference algorithms), ``labkit.kernels`` (the
numpy oracles of the fast kernels), ``labkit.plot`` and the checks of the labs.

* **Ranges.** A ``b``-bit code holds ``[-2^(b-1), 2^(b-1) - 1]`` (signed) or ``[0, 2^b - 1]``
  (unsigned); the *narrow range* leaves out the lowest code (int8: ``[-127, 127]``), as for
  symmetric weights (TFLite's ``narrow_range``): :func:`int_range`, stored in :func:`int_dtype`.
* **Rounding.** Half to even, then clamp (numpy's ``np.rint``, as PyTorch does):
  :func:`round_clamp`.
* **Requantization** (Jacob et al. 2018, §2.2): a real multiplier ``M = s_x s_W / s_y`` is held
  as ``M ≈ M0 · 2^-(31 + n)`` with the int32 ``M0 ∈ [2^30, 2^31)`` (:func:`quantize_multiplier`);
  an int32 accumulator becomes ``clamp(z_y + round(acc · M0 · 2^-(31+n)), qmin, qmax)``
  (:func:`requantize`). ``round`` is one of two integer forms (see :func:`fixed_point_multiply`):

  - ``"single"`` (default): the 64-bit product ``acc · M0`` followed by one rounding right shift by
    ``31 + n`` bits, ties to even like every other rounding in labkit: the exact nearest integer.
  - ``"gemmlowp"``: the reference arithmetic of Jacob et al. 2018 (gemmlowp, TFLite's
    ``MultiplyByQuantizedMultiplier``): a saturating rounding doubling high multiply, then a
    rounding divide by a power of two, ties away from zero. It rounds twice, so it can differ
    from ``"single"`` by one step, at ties and where the first rounding crosses a half.
"""

from __future__ import annotations

import numpy as np

from .validation import check_array, check_bits, check_bool, check_choice

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "ROUNDINGS",
    "int_range",
    "int_dtype",
    "round_clamp",
    "saturate_int32",
    "quantize_multiplier",
    "rounding_right_shift",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "fixed_point_multiply",
    "requantize",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ROUNDINGS = ("single", "gemmlowp")


# --- ranges and rounding ---------------------------------------------------------------------------
def int_range(bits: int = 8, signed: bool = False, narrow_range: bool = False) -> tuple[int, int]:
    """The integer range ``(qmin, qmax)`` of a ``bits``-bit signed or unsigned code.

    Parameters
    ----------
    bits : int, 1..16 (2..16 with ``narrow_range``)
    signed : bool
        ``[-2^(b-1), 2^(b-1) - 1]`` if True, ``[0, 2^b - 1]`` if False (the default, as for
        affine activations; symmetric weights pass ``signed=True``).
    narrow_range : bool
        Leave out the lowest code: ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` signed (int8: ``[-127, 127]``),
        ``[1, 2^b - 1]`` unsigned, symmetric around the symmetric zero point.

    Returns
    -------
    (qmin, qmax) : tuple of Python ints
    """
    narrow_range = check_bool("narrow_range", narrow_range)
    bits = check_bits(bits, lo=2 if narrow_range else 1)
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if check_bool("signed", signed) else (0, (1 << bits) - 1)
    return (qmin + 1, qmax) if narrow_range else (qmin, qmax)


def int_dtype(bits: int, signed: bool):
    """The numpy type that stores ``bits``-bit codes: int8/uint8 up to 8 bits, int16/uint16 above."""
    if check_bits(bits) <= 8:
        return np.int8 if signed else np.uint8
    return np.int16 if signed else np.uint16


def round_clamp(v, qmin: int, qmax: int, zero_point=0) -> np.ndarray:
    """``clamp(round_half_even(v) + zero_point, qmin, qmax)``, as floats (the caller picks the type).

    ``v`` is a real array (``x / scale``); ``zero_point`` an integer or an array broadcastable to
    ``v``. Ties go to the even neighbour (``np.rint``: 2.5 → 2, 3.5 → 4), as in numpy and PyTorch.
    """
    with np.errstate(invalid="ignore"):
        return np.clip(np.rint(v) + zero_point, qmin, qmax)


def saturate_int32(x) -> np.ndarray:
    """``x`` (integers) clamped to the int32 range, as int64."""
    return np.clip(np.asarray(x, np.int64), INT32_MIN, INT32_MAX)


# --- fixed-point requantization --------------------------------------------------------------------
def quantize_multiplier(M):
    """Write a positive real multiplier as ``M ≈ M0_int · 2^-(31 + n)`` with ``M0_int / 2^31 ∈ [0.5, 1)``.

    Parameters
    ----------
    M : float or array of float, each in (0, 2^30)

    Returns
    -------
    M0 : int32 (same shape as M), in [2^30, 2^31)
    n : int32 (same shape as M), the extra right shift (negative when M >= 1)
    """
    M = np.asarray(M, dtype=np.float64)
    if not np.all(np.isfinite(M)) or np.any(M <= 0) or np.any(M >= 2.0**30):
        got = M if M.size < 8 else "an array with bad values"
        raise ValueError(f"multiplier must be finite and in (0, 2^30), got {got}")
    mant, exp = np.frexp(M)  # M = mant * 2^exp, mant in [0.5, 1)
    M0 = np.rint(mant * 2.0**31).astype(np.int64)
    n = (-exp).astype(np.int64)
    carry = M0 == 1 << 31  # mant rounded up to 1.0: use 0.5 and one shift less
    M0 = np.where(carry, 1 << 30, M0)
    n = np.where(carry, n - 1, n)
    if np.any(31 + n > 62):
        raise ValueError(f"multiplier {M.min():.3g} is too small for a 62-bit shift")
    return M0.astype(np.int32), n.astype(np.int32)


def rounding_right_shift(x, shift):
    """``round(x / 2^shift)`` for integers, ties to even, computed with shifts only.

    Parameters
    ----------
    x : integer array (int64 values)
    shift : int or int array broadcastable to x, each in 0..62 (0 leaves x as it is)

    Returns
    -------
    int64 array of the broadcast shape
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any(shift < 0) or np.any(shift > 62):
        raise ValueError(f"shift must be in 0..62, got {shift}")
    x, shift = np.broadcast_arrays(x, shift)
    q = x >> shift  # floor division by 2^shift (arithmetic shift)
    r = x - (q << shift)  # remainder in [0, 2^shift)
    half = np.int64(1) << np.maximum(shift - 1, 0)
    return q + ((shift > 0) & ((r > half) | ((r == half) & ((q & 1) == 1))))


def _int32_values(x, what):
    x = check_array(x, what, kind="iu").astype(np.int64)
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise ValueError(f"{what} must hold int32 values, got range [{x.min()}, {x.max()}]")
    return x


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: the high 32 bits of ``2·a·b``, rounded.

    ``(a·b + nudge) / 2^31`` in 64 bits with C's truncating division, ``nudge = 2^30`` if
    ``a·b >= 0`` else ``1 - 2^30``: the int32 nearest to ``a·b / 2^31``, ties toward +∞
    (1.5 → 2, -1.5 → -1). The only product that overflows int32, ``INT32_MIN · INT32_MIN``
    (= 2^62, whose half-high is 2^31), saturates to ``INT32_MAX``.

    Parameters
    ----------
    a, b : integer arrays of int32 values, broadcastable

    Returns
    -------
    int32 array of the broadcast shape
    """
    a, b = np.broadcast_arrays(_int32_values(a, "a"), _int32_values(b, "b"))
    ab = a * b  # |a·b| <= 2^62: exact in int64
    s = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))  # division truncating toward zero, as in C
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, q).astype(np.int32)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from zero.

    ``(x >> e) + (remainder > threshold)`` with ``remainder = x & (2^e - 1)`` and
    ``threshold = (2^e - 1) >> 1`` plus 1 when ``x < 0``: 3/2 → 2, -3/2 → -2, -5/4 → -1.

    Parameters
    ----------
    x : integer array of int32 values
    exponent : int or int array broadcastable to x, in 0..31

    Returns
    -------
    int32 array
    """
    x = _int32_values(x, "x")
    e = np.asarray(exponent, dtype=np.int64)
    if np.any(e < 0) or np.any(e > 31):
        raise ValueError(f"exponent must be in 0..31, got {exponent}")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> e) + (remainder > threshold)).astype(np.int32)


def fixed_point_multiply(acc, M0, n, rounding: str = "single") -> np.ndarray:
    """``round(acc · M0 · 2^-(31+n))`` in integer arithmetic, before the zero point and the clamp.

    Parameters
    ----------
    acc : integer array of int32 values, shape (..., C)
    M0, n : int32 arrays of shape (C,) or scalars, from :func:`quantize_multiplier`
    rounding : {"single", "gemmlowp"}
        ``"single"``: ``rounding_right_shift(acc · M0, 31 + n)``, one rounding of the exact product,
        ties to even. ``"gemmlowp"``: ``rounding_divide_by_pot(saturating_rounding_doubling_high_mul(
        acc · 2^max(-n, 0), M0), max(n, 0))``, Jacob et al.'s (gemmlowp/TFLite) two roundings.

    Returns
    -------
    int64 array, shape of acc (broadcast against M0, n)
    """
    check_choice("rounding", rounding, ROUNDINGS)
    acc = _int32_values(acc, "acc")
    M0 = _int32_values(M0, "M0")
    n = np.asarray(n, dtype=np.int64)
    if rounding == "single":
        return rounding_right_shift(acc * M0, 31 + n)
    left = np.maximum(-n, 0)  # M >= 1: TFLite shifts the accumulator left first
    x = acc << left
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise ValueError(
            "gemmlowp rounding: acc · 2^-n leaves the int32 range (multiplier >= 1 on a large accumulator)"
        )
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, M0), np.maximum(n, 0)).astype(np.int64)


def requantize(
    acc,
    M0,
    n,
    zero_point: int,
    bits: int = 8,
    signed: bool = False,
    relu: bool = False,
    rounding: str = "single",
    narrow_range: bool = False,
):
    """int32 accumulators → ``bits``-bit outputs: ``clamp(z + fixed_point_multiply(acc, M0, n))``.

    Parameters
    ----------
    acc : int32 array, shape (..., C)
    M0, n : int32 arrays of shape (C,) (per channel) or scalars, from :func:`quantize_multiplier`
    zero_point : int, the output zero point
    relu : bool
        Fused ReLU: clamp below at ``zero_point`` (real 0) instead of at qmin.
    rounding : {"single", "gemmlowp"}
        ``"single"`` (default): ``rounding_right_shift(acc · M0, 31 + n)``, ties to even.
        ``"gemmlowp"``: as in Jacob et al. 2018's reference code (see :func:`fixed_point_multiply`).
    narrow_range : bool
        Clamp to ``int_range(bits, signed, narrow_range=True)`` (lowest code left out).

    Returns
    -------
    int8 / uint8 array (int16 / uint16 above 8 bits), shape of acc
    """
    qmin, qmax = int_range(bits, signed, narrow_range)
    check_choice("rounding", rounding, ROUNDINGS)
    zero_point = int(zero_point)
    if rounding == "single":  # any int64 accumulator (a sum that would wrap in int32 is kept exact)
        prod = np.asarray(acc, dtype=np.int64) * np.asarray(M0, dtype=np.int64)
        y = rounding_right_shift(prod, 31 + np.asarray(n, dtype=np.int64)) + zero_point
    else:
        y = fixed_point_multiply(acc, M0, n, rounding) + zero_point
    lo = max(qmin, zero_point) if relu else qmin
    return np.clip(y, lo, qmax).astype(int_dtype(bits, signed))
