"""Block-scaled low-bit weight formats, what they store, and their bits per weight.

Every format here cuts each row of ``W`` (out, in) along the input dimension into blocks of
``block`` consecutive weights (the last block of a row may be shorter), stores one small code per
weight and, per block, the scale that turns codes back into weights. ``block=None`` means one block
per row (per output channel), ``block="tensor"`` one scale for the whole matrix (``int*`` and
``fp8_e4m3`` only). The formats:

``"int{b}"``, ``"int{b}_g{G}"`` (b = 2..8; e.g. ``"int4_g128"``, ``"int4_g64"``, ``"int8"``)
    Uniform integers, affine (unsigned codes ``[0, 2^b − 1]`` and a zero point) or symmetric (signed,
    narrow range ``±(2^(b−1) − 1)``), from each block's min and max as in :mod:`labkit.quant.groupwise`.
    The scale is stored as **float16** (rounded up, so the block's range still fits) and the codes
    are computed with that stored scale; the zero point (an integer) is counted as 16 bits, as
    GPTQ/AWQ checkpoints keep it next to an fp16 scale (packed 4-bit zero points would cost 4).
    ``_g{G}`` fixes the block; ``"int8"`` alone is per row.
``"fp8_e4m3"``
    E4M3 elements with an fp32 scale ``amax / 448`` per row (default), per block or per tensor.
``"mxfp4"`` (OCP Microscaling Formats (MX) v1.0, its conversion of a block to MX)
    E2M1 elements in blocks of 32 with a shared E8M0 scale ``X = 2^(floor(log2 amax) − 2)`` (2 is the
    exponent of E2M1's largest power of two, ``emax_elem``), clamped to ``[2^-127, 2^127]``; an
    all-zero block gets ``2^-127``. Elements ``round_to_format(V / X, "e2m1")``: ``V / X`` can reach
    just under 8, so values in ``[6, 8) · X`` saturate to 6 (the spec's clamp to max normal).
``"nvfp4"`` (NVIDIA Blackwell; torchao's ``nvfp4_quantize`` with a per-tensor scale)
    E2M1 elements in blocks of 16. A per-tensor fp32 scale ``t = amax(W) / (448 · 6)`` lets each
    block's scale ``amax_block / 6 / t`` use the whole E4M3 range; that block scale is clamped to
    ``[2^-6, 448]`` (E4M3's smallest normal, as torchao does) and rounded to E4M3. Elements
    ``round_to_format(V / (t · s_block), "e2m1")``.
``"nf4"`` (QLoRA, Dettmers et al. 2023)
    4-bit NormalFloat: index of the nearest of the 16 values :data:`NF4_CODE` (quantiles of N(0, 1)
    scaled to [−1, 1], with an exact 0) for ``V / absmax_block``, blocks of 64. **Double
    quantization** (the paper's §3): the fp32 absmax constants, minus their mean (one fp32 offset), are
    quantized to 8-bit floats (E4M3 here, each block's largest magnitude mapped to 448) in blocks of
    256 with one fp32 scale each:
    ``4 + 8/64 + 32/(64·256) = 4.127`` bits per weight. As in bitsandbytes, the weights are coded
    against the exact absmax and decoded with the double-quantized one; ties between two NF4 values go
    to the lower one (bitsandbytes compares ``x > midpoint``). bitsandbytes codes the absmax with its
    8-bit dynamic-tree map rather than E4M3 (also an 8-bit float-like code).

:func:`quantize_blocks` returns a :class:`BlockQuantized` that holds exactly the arrays a file would
store (its ``storage``) and decodes from them alone; :func:`bits_per_weight` counts the same bits
from the format's description (``tests/test_quant_formats.py`` checks the two agree).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..qarith import int_range, round_clamp
from ..validation import check_bool, check_int, check_matrix
from .affine import _params_from_range
from .minifloat import bits_to_float, float_to_bits, round_to_format

__all__ = [
    "BLOCK_FORMATS",
    "NF4_CODE",
    "normal_float_code",
    "BlockQuantized",
    "quantize_blocks",
    "dequantize_blocks",
    "bits_per_weight",
    "round_to_format",
    "float_to_bits",
    "bits_to_float",
]

BLOCK_FORMATS = ("nf4", "mxfp4", "nvfp4", "fp8_e4m3", "int{b}", "int{b}_g{G}")
_DEFAULT_BLOCK = {"nf4": 64, "mxfp4": 32, "nvfp4": 16, "fp8_e4m3": None}
_ELEMENT = {"mxfp4": "e2m1", "nvfp4": "e2m1", "fp8_e4m3": "e4m3"}
_INT = re.compile(r"int([2-8])(?:_g([1-9][0-9]*))?")
_DQ_BLOCK = 256  # absmax constants per second-level block (QLoRA's double quantization)
_FP16_TINY = float(np.finfo(np.float16).smallest_normal)

# QLoRA's NF4 values (Dettmers et al. 2023, listed in the paper's appendix; bitsandbytes' table), float32.
NF4_CODE = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=np.float32,
)


def normal_float_code(bits: int = 4, offset: float = 1 - (1 / 30 + 1 / 32) / 2) -> np.ndarray:
    """The k-bit NormalFloat values from their definition (QLoRA §3, "4-bit NormalFloat").

    ``2^(k−1)`` quantiles of N(0, 1) for the positive half and ``2^(k−1) − 1`` for the negative half,
    taken at probabilities evenly spaced from 0.5 to ``offset`` (and their mirror), then 0 added once
    and everything divided by the largest value: an exact zero and ``2^k`` values in [−1, 1].
    ``offset = 1 − δ`` with ``δ = (1/30 + 1/32) / 2`` (= 0.9677083) keeps the outermost quantile finite.
    For k = 4 this gives :data:`NF4_CODE` to within float32 rounding.

    Returns
    -------
    ndarray of float64, shape (2^bits,), increasing
    """
    from scipy.stats import norm  # scipy is only needed here

    bits = check_int("bits", bits, lo=2, hi=8)
    half = 1 << (bits - 1)
    positive = norm.ppf(np.linspace(offset, 0.5, half + 1)[:-1])
    negative = -norm.ppf(np.linspace(offset, 0.5, half)[:-1])
    v = np.sort(np.concatenate([positive, [0.0], negative]))
    return v / v.max()


def _parse(fmt, block):
    """(kind, element bits, block) for a format name and the block the caller asked for."""
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format name such as 'int4_g128' or 'nf4', got {type(fmt).__name__}")
    m = _INT.fullmatch(fmt)
    if m is not None:
        kind, elem_bits, named = "int", int(m.group(1)), None if m.group(2) is None else int(m.group(2))
        if named is not None:
            if block is not None and block != named:
                raise ValueError(f"{fmt!r} fixes block={named}; got block={block!r} (use 'int{elem_bits}' instead)")
            block = named
    else:
        if fmt not in _DEFAULT_BLOCK:
            raise ValueError(
                f"fmt must be 'nf4', 'mxfp4', 'nvfp4', 'fp8_e4m3' or 'int{{b}}' / 'int{{b}}_g{{G}}' with b in 2..8 "
                f"(e.g. 'int4_g128', 'int8'), got {fmt!r}"
            )
        kind, elem_bits = fmt, 8 if fmt == "fp8_e4m3" else 4
        block = _DEFAULT_BLOCK[fmt] if block is None else block
    if block == "tensor":
        if kind not in ("int", "fp8_e4m3"):
            raise ValueError(f"block='tensor' (one scale for the matrix) applies to int and fp8_e4m3, not {fmt!r}")
    elif block is not None:
        block = check_int("block", block, lo=1, what=" (weights per block), None (per row) or 'tensor'")
    return kind, elem_bits, block


def _layout(block, shape):
    """The block of every column and the number of scales, for ``block`` int / None / "tensor"."""
    out, n_in = shape
    if block == "tensor":
        return np.zeros(n_in, np.int64), (1, 1)
    if block is None:
        return np.zeros(n_in, np.int64), (out, 1)
    return np.arange(n_in) // block, (out, math.ceil(n_in / block))


def _block_reduce(A, block, ufunc):
    """``ufunc.reduce`` of each block of ``A`` (out, in): shape (out, G), or (1, 1) for "tensor"."""
    if block == "tensor":
        return ufunc.reduce(A, axis=None).reshape(1, 1)
    if block is None:
        return ufunc.reduce(A, axis=1).reshape(-1, 1)
    return ufunc.reduceat(A, np.arange(0, A.shape[1], block), axis=1)


@dataclass(frozen=True)
class BlockQuantized:
    """A matrix in a block format: exactly what would be stored, and how to read it back.

    Attributes
    ----------
    fmt : str
        The format name given to :func:`quantize_blocks`.
    shape : (int, int)
        ``(out, in)`` of the original matrix.
    block : int, None or "tensor"
        Weights per block along ``in`` (None: one block per row; "tensor": one for the matrix).
    symmetric : bool
        For ``int*``: symmetric (no zero point) or affine.
    storage : dict of str -> (ndarray, int)
        Every stored array with its width in bits per entry: ``"codes"`` (out, in) always, then the
        format's scales (see the module docstring). Decoding uses nothing else.
    """

    fmt: str
    shape: tuple
    block: object
    symmetric: bool
    storage: dict = field(repr=False)

    @property
    def codes(self) -> np.ndarray:
        """The element codes, shape (out, in): uint8 (int8 for symmetric integers)."""
        return self.storage["codes"][0]

    @property
    def bits(self) -> int:
        """Total stored bits: every entry of every stored array at its width."""
        return int(sum(a.size * b for a, b in self.storage.values()))

    @property
    def bits_per_weight(self) -> float:
        return self.bits / (self.shape[0] * self.shape[1])

    def scale(self) -> np.ndarray:
        """The multiplier of each block's element values, float64, shape (out, G) (or (1, 1)),
        decoded from the stored scales (for NF4, the double-quantized absmax)."""
        s = self.storage
        kind = _parse(self.fmt, self.block)[0]
        if kind == "int":
            return s["scale"][0].astype(np.float64)
        if kind == "fp8_e4m3":
            return s["scale"][0].astype(np.float64)
        if kind == "mxfp4":
            return bits_to_float(s["scale_e8m0"][0], "e8m0").astype(np.float64)
        if kind == "nvfp4":
            return bits_to_float(s["scale_e4m3"][0], "e4m3").astype(np.float64) * float(s["tensor_scale"][0][0])
        if "absmax" in s:  # nf4 without double quantization
            return s["absmax"][0].astype(np.float64)
        q, sc, off = s["absmax_e4m3"][0], s["absmax_scale"][0], s["absmax_offset"][0]
        flat = bits_to_float(q.ravel(), "e4m3").astype(np.float64)
        flat = flat * np.repeat(sc.astype(np.float64), _DQ_BLOCK)[: flat.size] + float(off[0])
        return flat.reshape(q.shape)

    def dequantize(self) -> np.ndarray:
        """The matrix the codes stand for, float32, shape (out, in)."""
        kind = _parse(self.fmt, self.block)[0]
        gi, _ = _layout(self.block, self.shape)
        codes = self.codes
        if kind == "int":
            v = codes.astype(np.float64)
            if not self.symmetric:
                v = v - self.storage["zero_point"][0].astype(np.float64)[:, gi]
        elif kind == "nf4":
            v = NF4_CODE.astype(np.float64)[codes]
        else:
            v = bits_to_float(codes, _ELEMENT[kind]).astype(np.float64)
        return np.broadcast_to(v * self.scale()[:, gi], self.shape).astype(np.float32)


def _fp16_scale(scale):
    """A positive scale as stored in float16: rounded *up* to the next float16 (so the block's range
    still fits in the codes), and at least float16's smallest normal (never 0)."""
    scale = np.maximum(np.asarray(scale, np.float64), _FP16_TINY)
    if np.any(scale > np.finfo(np.float16).max):
        raise ValueError("weights too large for a float16 scale (a block spans more than 65504 · 2^b)")
    s16 = scale.astype(np.float16)
    return np.where(s16.astype(np.float64) < scale, np.nextafter(s16, np.float16(np.inf)), s16)


def _quantize_int(W, bits, block, symmetric):
    lo = np.minimum(_block_reduce(W, block, np.minimum), 0.0)
    hi = np.maximum(_block_reduce(W, block, np.maximum), 0.0)
    scale32, _ = _params_from_range(lo.ravel(), hi.ravel(), bits, symmetric, symmetric, symmetric)
    scale = _fp16_scale(scale32).reshape(lo.shape)
    qmin, qmax = int_range(bits, signed=symmetric, narrow_range=symmetric)
    s = scale.astype(np.float64)
    gi, _ = _layout(block, W.shape)
    storage = {}
    if symmetric:
        codes = round_clamp(W / s[:, gi], qmin, qmax)
    else:
        zp = np.clip(qmin - np.rint(lo / s), qmin, qmax)  # real 0 maps to an integer (Jacob et al. 2018)
        codes = round_clamp(W / s[:, gi], qmin, qmax, zp[:, gi])
        storage["zero_point"] = (zp.astype(np.uint8), 16)
    codes = codes.astype(np.int8 if symmetric else np.uint8)
    return {"codes": (codes, bits), "scale": (scale, 16), **storage}


def _quantize_fp8(W, block):
    amax = _block_reduce(np.abs(W), block, np.maximum)
    scale = np.where(amax > 0, amax / 448.0, 1.0).astype(np.float32)
    gi, _ = _layout(block, W.shape)
    codes = float_to_bits(round_to_format(W / scale.astype(np.float64)[:, gi], "e4m3"), "e4m3")
    return {"codes": (codes, 8), "scale": (scale, 32)}


def _quantize_mxfp4(W, block):
    amax = _block_reduce(np.abs(W), block, np.maximum)
    _, exp = np.frexp(amax)  # floor(log2 amax) = exp − 1 for amax > 0
    shared = np.where(amax > 0, exp - 1 - 2, -127).clip(-127, 127)  # emax_elem(E2M1) = 2
    gi, _ = _layout(block, W.shape)
    codes = float_to_bits(round_to_format(W / np.ldexp(1.0, shared)[:, gi], "e2m1"), "e2m1")
    return {"codes": (codes, 4), "scale_e8m0": ((shared + 127).astype(np.uint8), 8)}


def _quantize_nvfp4(W, block):
    amax = float(np.abs(W).max())
    t = np.float32(amax / (448.0 * 6.0)) if amax > 0 else np.float32(1.0)
    block_amax = _block_reduce(np.abs(W), block, np.maximum)
    s = round_to_format(np.clip(block_amax / 6.0 / float(t), 2.0**-6, 448.0), "e4m3")
    gi, _ = _layout(block, W.shape)
    total = s.astype(np.float64) * float(t)
    codes = float_to_bits(round_to_format(W / total[:, gi], "e2m1"), "e2m1")
    return {"codes": (codes, 4), "scale_e4m3": (float_to_bits(s, "e4m3"), 8), "tensor_scale": (np.array([t]), 32)}


def _quantize_nf4(W, block, double_quant):
    absmax = _block_reduce(np.abs(W), block, np.maximum).astype(np.float32)
    gi, _ = _layout(block, W.shape)
    safe = np.where(absmax > 0, absmax, 1.0).astype(np.float64)
    mid = (NF4_CODE[1:].astype(np.float64) + NF4_CODE[:-1]) / 2
    codes = np.searchsorted(mid, W / safe[:, gi], side="left").astype(np.uint8)  # a tie goes to the lower value
    if not double_quant:
        return {"codes": (codes, 4), "absmax": (absmax, 32)}
    flat = absmax.ravel().astype(np.float64)
    offset = np.float32(flat.mean())
    centred = flat - float(offset)
    starts = np.arange(0, flat.size, _DQ_BLOCK)
    bmax = np.maximum.reduceat(np.abs(centred), starts)
    sc = np.where(bmax > 0, bmax / 448.0, 1.0).astype(np.float32)
    q = float_to_bits(
        round_to_format(centred / np.repeat(sc.astype(np.float64), _DQ_BLOCK)[: flat.size], "e4m3"), "e4m3"
    )
    return {
        "codes": (codes, 4),
        "absmax_e4m3": (q.reshape(absmax.shape), 8),
        "absmax_scale": (sc, 32),
        "absmax_offset": (np.array([offset]), 32),
    }


def quantize_blocks(W, fmt: str, block=None, *, symmetric: bool = False, double_quant: bool = True):
    """Quantize a weight matrix to a block-scaled format.

    Parameters
    ----------
    W : ndarray, shape (out, in), finite
        A ``Dense.W`` (rows are output channels, blocks run along ``in``).
    fmt : str
        ``"nf4"``, ``"mxfp4"``, ``"nvfp4"``, ``"fp8_e4m3"``, ``"int{b}"`` or ``"int{b}_g{G}"``
        (b = 2..8, e.g. ``"int4_g128"``, ``"int4_g64"``, ``"int8"``); see the module docstring.
    block : int, None or "tensor"
        Weights per block. Default: the format's own (nf4 64, mxfp4 32, nvfp4 16, ``_g{G}`` G,
        otherwise one block per row). ``"tensor"``: one scale for the matrix (int and fp8_e4m3).
    symmetric : bool
        ``int*`` only: signed codes with zero point 0 (narrow range) instead of affine.
    double_quant : bool
        ``nf4`` only: quantize the absmax constants too (QLoRA's double quantization).

    Returns
    -------
    BlockQuantized
        ``.dequantize()`` gives the float32 (out, in) matrix, ``.bits_per_weight`` the stored bits
        per weight including every scale, zero point and per-tensor constant.

    Raises
    ------
    TypeError, ValueError
        ``W`` not a finite 2-D real array; unknown ``fmt``; a ``block`` that is not a positive int,
        None or "tensor", or that contradicts the name (``"int4_g128"`` with ``block=64``).
    """
    W = check_matrix(W)
    kind, elem_bits, block = _parse(fmt, block)
    symmetric = check_bool("symmetric", symmetric)
    double_quant = check_bool("double_quant", double_quant)
    Wd = W.astype(np.float64)
    if kind == "int":
        storage = _quantize_int(Wd, elem_bits, block, symmetric)
    elif kind == "fp8_e4m3":
        storage = _quantize_fp8(Wd, block)
    elif kind == "mxfp4":
        storage = _quantize_mxfp4(Wd, block)
    elif kind == "nvfp4":
        storage = _quantize_nvfp4(Wd, block)
    else:
        storage = _quantize_nf4(Wd, block, double_quant)
    return BlockQuantized(fmt, tuple(W.shape), block, symmetric and kind == "int", storage)


def dequantize_blocks(q: BlockQuantized) -> np.ndarray:
    """``q.dequantize()``: the float32 matrix (out, in) a :class:`BlockQuantized` stands for."""
    if not isinstance(q, BlockQuantized):
        raise TypeError(f"dequantize_blocks expects the BlockQuantized from quantize_blocks, got {type(q).__name__}")
    return q.dequantize()


def bits_per_weight(fmt: str, block=None, shape=None, *, symmetric: bool = False, double_quant: bool = True) -> float:
    """Stored bits per weight of a format, every scale, zero point and constant included.

    Parameters
    ----------
    fmt, block, symmetric, double_quant
        As for :func:`quantize_blocks`.
    shape : (out, in), optional
        Count exactly for this matrix (a last, shorter block still stores a full scale; per-tensor
        constants such as NVFP4's fp32 scale and NF4's absmax offset are spread over its weights).
        Without it: the per-weight cost of long rows, per-tensor constants left out (needed for
        per-row and per-tensor scales, whose cost depends on the shape).

    Returns
    -------
    float
        E.g. ``"int4_g128"`` 4.25 (fp16 scale + 16-bit zero point per 128), ``"mxfp4"`` 4.25,
        ``"nvfp4"`` 4.5 (+ 32 bits per tensor), ``"nf4"`` 4.127 (double quantization; 4.5 without),
        ``"fp8_e4m3"`` with ``block=128`` 8.25.
    """
    kind, elem_bits, block = _parse(fmt, block)
    symmetric = check_bool("symmetric", symmetric) and kind == "int"
    double_quant = check_bool("double_quant", double_quant)
    if shape is None:
        if block is None or block == "tensor":
            raise ValueError(f"{fmt!r} with block={block!r} has a per-row or per-tensor scale: pass shape=(out, in)")
        per_block = {
            "int": 16 + (0 if symmetric else 16),
            "fp8_e4m3": 32,
            "mxfp4": 8,
            "nvfp4": 8,
            "nf4": 8 + 32 / _DQ_BLOCK if double_quant else 32,
        }[kind]
        return elem_bits + per_block / block
    if len(shape) != 2:
        raise ValueError(f"shape must be (out, in), got {shape!r}")
    out, n_in = (check_int("shape[0]", shape[0], lo=1), check_int("shape[1]", shape[1], lo=1))
    _, (r, g) = _layout(block, (out, n_in))
    n_scales = r * g
    extra = {
        "int": n_scales * (16 + (0 if symmetric else 16)),
        "fp8_e4m3": n_scales * 32,
        "mxfp4": n_scales * 8,
        "nvfp4": n_scales * 8 + 32,
        "nf4": n_scales * 8 + 32 * math.ceil(n_scales / _DQ_BLOCK) + 32 if double_quant else n_scales * 32,
    }[kind]
    return elem_bits + extra / (out * n_in)
