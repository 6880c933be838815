"""Affine (asymmetric) and symmetric uniform quantization: parameters, quantize, dequantize.

A real value ``r`` is represented by an integer ``q`` through ``r = scale * (q - zero_point)``
(Jacob et al. 2018, eq. 1). ``scale`` is a positive float32, ``zero_point`` an integer of the
quantized type, chosen so that the real range always contains 0 and real 0 maps *exactly* to the
integer ``zero_point`` (zero padding and ReLU depend on it).

* ``quantize(x) = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)``
* ``dequantize(q) = scale * (q - zero_point)`` as float32

Integer ranges for ``bits`` b: signed ``[-2^(b-1), 2^(b-1) - 1]``, unsigned ``[0, 2^b - 1]``.
Symmetric quantization fixes ``zero_point`` at 0 (signed) or ``2^(b-1)`` (unsigned) and uses
the **narrow range** ``zero_point ± (2^(b-1) - 1)`` — for int8, ``[-127, 127]`` — so that
``-scale·qmax`` and ``+scale·qmax`` are both representable and the code ``-128`` is never emitted,
not even for inputs beyond the calibrated range (the int8 weight scheme of TFLite, whose flag is
``narrow_range``, and of Krishnamoorthi 2018). The narrow range is an explicit choice carried with
the parameters: :func:`qparams` returns a :class:`QParams` (it unpacks as ``scale, zero_point``)
that records ``bits``, ``signed`` and ``narrow_range``; :func:`quantize`, :func:`fake_quantize`,
the STE mask, the integer engine and the kernels clamp to :func:`int_range` with the same flag.

Calibration chooses the real range ``[lo, hi]`` that the integer range covers:

* ``"minmax"``: the observed minimum and maximum;
* ``"percentile"``: the ``100 - p`` and ``p`` percentiles (default p = 99.99), clipping outliers;
* ``"mse"``: the clipping range ``α·[lo, hi]`` (α on a grid in (0, 1]) whose
  quantize-dequantize round trip has the smallest mean squared error.
"""

from __future__ import annotations

import numpy as np

from ..qarith import int_dtype, int_range, round_clamp
from ..validation import check_array, check_axis, check_bits, check_choice, check_int, check_real, renamed, show

__all__ = [
    "QParams",
    "int_range",
    "qparams",
    "quantize",
    "dequantize",
    "fake_quantize",
    "quantization_error",
    "METHODS",
]

METHODS = ("minmax", "percentile", "mse")


class QParams(tuple):
    """``(scale, zero_point)`` with the integer type they were chosen for.

    Unpacks like the pair it is (``scale, zero_point = qparams(x)``); the attributes ``bits``,
    ``signed``, ``narrow_range`` and ``symmetric`` say which integer range to clamp to, so
    ``quantize(x, qp)`` needs nothing else. ``qp.qrange`` is that range.
    """

    def __new__(cls, scale, zero_point, bits: int, signed: bool, narrow_range: bool, symmetric: bool = False):
        self = super().__new__(cls, (scale, zero_point))
        self.bits, self.signed, self.narrow_range, self.symmetric = (
            int(bits),
            bool(signed),
            bool(narrow_range),
            bool(symmetric),
        )
        return self

    @property
    def scale(self):
        return self[0]

    @property
    def zero_point(self):
        return self[1]

    @property
    def qrange(self) -> tuple[int, int]:
        return int_range(self.bits, self.signed, self.narrow_range)

    def __repr__(self):
        return (
            f"QParams(scale={show(self[0])}, zero_point={show(self[1])}, bits={self.bits}, signed={self.signed}, "
            f"narrow_range={self.narrow_range})"
        )

    def __reduce__(self):
        return (QParams, (self[0], self[1], self.bits, self.signed, self.narrow_range, self.symmetric))


def _resolve(scale, zero_point, bits, signed, narrow_range, what):
    """Unpack a QParams passed as ``scale``; fill the defaults (8 bits, unsigned, full range)."""
    if isinstance(scale, QParams):
        if zero_point is not None:
            raise TypeError(f"{what}: pass either a QParams or (scale, zero_point), not both")
        qp = scale
        scale, zero_point = qp
        bits = qp.bits if bits is None else bits
        signed = qp.signed if signed is None else signed
        narrow_range = qp.narrow_range if narrow_range is None else narrow_range
    elif zero_point is None:
        raise TypeError(f"{what}: zero_point is missing (or pass the QParams returned by qparams)")
    return scale, zero_point, 8 if bits is None else bits, bool(signed), bool(narrow_range)


def _range(x: np.ndarray, axis, method: str, percentile: float):
    """Per-tensor (axis None) or per-channel real range [lo, hi], float64, widened to contain 0."""
    if axis is None:
        flat = x.reshape(1, -1)
    else:
        flat = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    flat = flat.astype(np.float64)
    if method == "percentile":
        lo = np.percentile(flat, 100.0 - percentile, axis=1)
        hi = np.percentile(flat, percentile, axis=1)
    else:
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0), flat


def _params_from_range(lo, hi, bits, symmetric, signed, narrow_range=False):
    """Scale (float32) and zero point (int64) for ranges lo <= 0 <= hi (arrays, float64)."""
    qmin, qmax = int_range(bits, signed, narrow_range)
    if symmetric:
        half = (1 << (bits - 1)) - 1
        amax = np.maximum(-lo, hi)
        scale = np.where(amax > 0, amax / half, 1.0).astype(np.float32)
        zp = np.full(lo.shape, 0 if signed else 1 << (bits - 1), dtype=np.int64)
        return scale, zp
    span = hi - lo
    scale = np.where(span > 0, span / (qmax - qmin), 1.0).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(np.finfo(np.float32).tiny))  # span below float32's range
    # zero point: the integer that real 0 maps to, nudged into [qmin, qmax] (Jacob et al. 2018, §2.1)
    zp = np.clip(qmin - np.rint(lo / scale.astype(np.float64)), qmin, qmax).astype(np.int64)
    return scale, zp


def _round_trip_mse(flat, scale, zp, bits, signed, narrow_range=False):
    qmin, qmax = int_range(bits, signed, narrow_range)
    s = scale.astype(np.float64)[:, None]
    q = round_clamp(flat / s, qmin, qmax, zp[:, None])
    return ((s * (q - zp[:, None]) - flat) ** 2).mean(axis=1)


def qparams(
    x,
    bits: int = 8,
    symmetric: bool = False,
    axis=None,
    method: str = "minmax",
    signed: bool | None = None,
    percentile: float = 99.99,
    grid: int = 100,
    narrow_range: bool | None = None,
    *,
    per_channel_axis=None,
):
    """Scale and zero point that map the range of ``x`` onto ``bits``-bit integers.

    Parameters
    ----------
    x : array_like of float, any shape, finite, not empty
        Calibration data: weights, or activations collected on training data.
    bits : int
        1..16 (2..16 if symmetric).
    symmetric : bool
        Zero point fixed (0 for signed types), range ``[-amax, amax]`` with ``amax = max|x|``.
    axis : int or None
        One (scale, zero_point) per index along this axis (e.g. 0 for the output channels of
        ``Dense.W`` (out, in) or ``Conv2d.W`` (out_c, in_c, k, k)); None = one pair for the tensor.
        The same ``axis`` as :func:`quantize` and :func:`dequantize` take. (``per_channel_axis`` is
        its deprecated name.)
    method : {"minmax", "percentile", "mse"}
        How to choose the clipping range (see the module docstring).
    signed : bool, optional
        Integer type; default signed for symmetric, unsigned for affine (int8 weights, uint8
        activations).
    percentile : float
        For ``method="percentile"``: keep the range between the (100 - p)th and p-th percentiles.
    grid : int
        For ``method="mse"``: number of clipping fractions α = 1/grid, 2/grid, ..., 1 tried.
    narrow_range : bool, optional
        Leave out the lowest integer code (int8: ``[-127, 127]``). Default: True when symmetric
        (the range is then ``zero_point ± (2^(b-1) - 1)``, as promised above), False for affine.

    Returns
    -------
    QParams, which unpacks as ``(scale, zero_point)``:
    scale : numpy.float32, or float32 array of shape (C,) per channel
    zero_point : int, or int64 array of shape (C,) per channel
    and carries ``bits``, ``signed``, ``narrow_range`` for :func:`quantize`.

    Raises
    ------
    ValueError
        bits out of range, unknown method, an axis that does not exist, empty x, NaN or inf in x.
    """
    axis = renamed("qparams", "per_channel_axis", per_channel_axis, "axis", axis)
    x = check_array(x, "x", kind="fiu")
    bits = check_bits(bits, lo=1 + bool(symmetric))
    check_choice("method", method, METHODS)
    axis = None if axis is None else check_axis("axis", axis, x.ndim)
    x = check_array(x, "calibration data x", non_empty=True, finite=True)
    percentile = check_real("percentile", percentile, 50.0, 100.0, lo_open=True)
    grid = check_int("grid", grid, lo=1)
    signed = bool(symmetric) if signed is None else bool(signed)
    narrow = bool(symmetric) if narrow_range is None else bool(narrow_range)
    if narrow:
        bits = check_bits(bits, lo=2)
    lo, hi, flat = _range(x, axis, method, percentile)
    scale, zp = _params_from_range(lo, hi, bits, symmetric, signed, narrow)
    if method == "mse":
        best = _round_trip_mse(flat, scale, zp, bits, signed, narrow)
        for alpha in np.arange(1, grid) / grid:
            s, z = _params_from_range(alpha * lo, alpha * hi, bits, symmetric, signed, narrow)
            err = _round_trip_mse(flat, s, z, bits, signed, narrow)
            better = err < best
            scale, zp, best = np.where(better, s, scale), np.where(better, z, zp), np.minimum(err, best)
    if axis is None:
        return QParams(np.float32(scale[0]), int(zp[0]), bits, signed, narrow, symmetric)
    return QParams(scale.astype(np.float32), zp.astype(np.int64), bits, signed, narrow, symmetric)


def _check_qp(scale, zero_point, qrange, shape, axis, what="quantize"):
    """Validate scale/zero point; return them as float64/int64 arrays shaped to broadcast against x."""
    qmin, qmax = qrange
    scale = np.asarray(scale)
    zp = np.asarray(zero_point)
    if not np.issubdtype(scale.dtype, np.floating) and not np.issubdtype(scale.dtype, np.integer):
        raise TypeError(f"{what}: scale must be a number or float array, got dtype {scale.dtype}")
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        raise ValueError(
            f"{what}: scale must be positive and finite, got {scale if scale.size < 8 else 'an array with bad values'}"
        )
    if zp.dtype.kind not in "iu" and not (zp.dtype.kind == "f" and np.all(zp == np.round(zp))):
        raise TypeError(f"{what}: zero_point must be an integer, got {show(zero_point)}")
    if np.any(zp < qmin) or np.any(zp > qmax):
        raise ValueError(
            f"{what}: zero_point {zp if zp.size < 8 else '(array)'} is outside the integer range [{qmin}, {qmax}]"
        )
    scale, zp = scale.astype(np.float32).astype(np.float64), zp.astype(np.int64)
    if axis is None:
        if scale.size != 1 or zp.size != 1:
            raise ValueError(f"{what}: per-channel scale/zero_point (size {scale.size}) need axis=")
        return scale.reshape(()), zp.reshape(())
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{what}: axis={axis} does not exist for an array of shape {shape}")
    axis %= len(shape)
    c = shape[axis]
    bshape = [1] * len(shape)
    bshape[axis] = c
    if scale.size not in (1, c) or zp.size not in (1, c):
        raise ValueError(
            f"{what}: axis {axis} has {c} channels but scale has {scale.size} and zero_point {zp.size} values"
        )
    return np.broadcast_to(scale.reshape(-1), (c,)).reshape(bshape), np.broadcast_to(zp.reshape(-1), (c,)).reshape(
        bshape
    )


def quantize(
    x,
    scale,
    zero_point=None,
    bits: int | None = None,
    signed: bool | None = None,
    axis=None,
    narrow_range: bool | None = None,
) -> np.ndarray:
    """``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)`` as an integer array.

    Parameters
    ----------
    x : array_like of float, any shape (empty gives an empty result); no NaN (inf clamps)
    scale : float, or array of shape (C,) with ``axis``; or the :class:`QParams` from
        :func:`qparams`, which then also gives ``zero_point``, ``bits``, ``signed`` and
        ``narrow_range`` (so a symmetric quantizer clamps to its narrow range by itself).
    zero_point : int, or int array of shape (C,) with ``axis``; inside the integer range
    bits : int, 1..16 (default 8)
    signed : bool
        Signed (``[-2^(b-1), 2^(b-1)-1]``) or unsigned (``[0, 2^b-1]``) integers. The default
        matches ``qparams``'s default (affine, unsigned); pass ``signed=True`` for symmetric weights.
    axis : int, optional
        The channel axis of per-channel parameters.
    narrow_range : bool
        Clamp to :func:`int_range` without its lowest code (int8 ``[-127, 127]``). Default: the
        QParams' choice, else False (full range).

    Returns
    -------
    ndarray of int8/uint8 (bits <= 8) or int16/uint16, same shape as x.

    Notes
    -----
    ``x / scale`` is computed in float64 (float32 ``scale``), so exact ties such as 2.5 round to
    even. PyTorch multiplies by the float32 reciprocal of the scale instead; values one ulp away
    from a tie can then round differently by one step (``tests/test_quant_torch.py``).
    """
    scale, zero_point, bits, signed, narrow_range = _resolve(scale, zero_point, bits, signed, narrow_range, "quantize")
    bits = check_bits(bits)
    x = check_array(x, "x", kind="fiu")
    qmin, qmax = int_range(bits, signed, narrow_range)
    s, z = _check_qp(scale, zero_point, (qmin, qmax), x.shape, axis)
    if np.any(np.isnan(x)):
        raise ValueError(f"quantize: x contains {int(np.isnan(x).sum())} NaN values; expected numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        v = x.astype(np.float64) / s
    return round_clamp(v, qmin, qmax, z).astype(int_dtype(bits, signed))


def dequantize(q, scale, zero_point, axis=None) -> np.ndarray:
    """``scale * (q - zero_point)`` as float32 (exact: the product is rounded once).

    Parameters
    ----------
    q : integer array, any shape
    scale : float, or array (C,) with ``axis``
    zero_point : int, or int array (C,) with ``axis``
    axis : int, optional
        Channel axis for per-channel parameters.
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"dequantize expects integers, got dtype {q.dtype}")
    info = np.iinfo(q.dtype)
    s, z = _check_qp(scale, zero_point, (int(info.min), int(info.max)), q.shape, axis, "dequantize")
    return (s * (q.astype(np.int64) - z)).astype(np.float32)


def fake_quantize(
    x,
    scale,
    zero_point=None,
    bits: int | None = None,
    signed: bool | None = None,
    axis=None,
    narrow_range: bool | None = None,
) -> np.ndarray:
    """``dequantize(quantize(x))``: the float32 values a quantized tensor really represents.

    Same parameters as :func:`quantize` (a :class:`QParams` may stand for scale and zero point).
    """
    scale, zero_point, bits, signed, narrow_range = _resolve(
        scale, zero_point, bits, signed, narrow_range, "fake_quantize"
    )
    return dequantize(quantize(x, scale, zero_point, bits, signed, axis, narrow_range), scale, zero_point, axis)


def quantization_error(
    x,
    bits: int = 8,
    symmetric: bool = False,
    axis=None,
    method: str = "minmax",
    signed: bool | None = None,
    *,
    per_channel_axis=None,
) -> float:
    """Mean squared error of the quantize-dequantize round trip of ``x`` with calibrated parameters
    (symmetric: narrow range, as :func:`qparams` chooses); ``axis`` as in :func:`qparams`."""
    axis = renamed("quantization_error", "per_channel_axis", per_channel_axis, "axis", axis)
    x = np.asarray(x)
    signed = bool(symmetric) if signed is None else bool(signed)
    qp = qparams(x, bits, symmetric, axis, method, signed=signed)
    xr = fake_quantize(x, qp, axis=axis)
    return float(np.mean((xr.astype(np.float64) - x) ** 2))
