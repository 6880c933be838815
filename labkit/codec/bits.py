"""Packing small unsigned integers into a bit stream, most significant bit first.

Both the fixed-width streams of a compressed model (``width`` bits per value) and the Huffman
coder (a variable number of bits per value) end up as a byte string: the bits in order, the last
byte padded with zero bits.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_bits

__all__ = ["pack_fixed", "unpack_fixed", "packed_nbytes"]


def packed_nbytes(count: int, width: int) -> int:
    """Bytes taken by ``count`` values of ``width`` bits each: ceil(count · width / 8)."""
    return (int(count) * int(width) + 7) // 8


def pack_fixed(values, width: int) -> bytes:
    """Pack unsigned integers into ``width`` bits each (MSB first), zero-padded to whole bytes.

    Parameters
    ----------
    values : array_like of int, shape (n,)
        Each in [0, 2**width).
    width : int in [1, 32]

    Returns
    -------
    bytes of length ``packed_nbytes(n, width)``
    """
    width = check_bits(width, 1, 32, name="width")
    v = np.asarray(values)
    if v.size and not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"pack_fixed packs integers, got dtype {v.dtype}")
    v = v.astype(np.int64).ravel()
    if v.size and (v.min() < 0 or v.max() >= 2**width):
        raise ValueError(f"values must lie in [0, {2**width}) for width {width}, got [{v.min()}, {v.max()}]")
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    bits = ((v[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    return np.packbits(bits).tobytes()


def unpack_fixed(data: bytes, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_fixed`: ``count`` values of ``width`` bits, as int64.

    Raises ValueError if ``data`` is shorter than the ``count`` values need.
    """
    width = check_bits(width, 1, 32, name="width")
    need = packed_nbytes(count, width)
    if len(data) < need:
        raise ValueError(f"bit stream ends early: {count} values of {width} bits need {need} bytes, got {len(data)}")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=need))[: count * width]
    bits = bits.reshape(count, width).astype(np.int64)
    return bits @ (np.int64(1) << np.arange(width - 1, -1, -1, dtype=np.int64)) if count else np.zeros(0, np.int64)
