"""Canonical Huffman coding of integer arrays (Huffman 1952; canonical form as in DEFLATE, RFC 1951).

Huffman's construction repeatedly merges the two least frequent subtrees; a symbol's code length is
its depth in the final tree. No prefix code has fewer total bits ``sum_s f_s · L_s``. The *canonical*
code assigns the codes from the lengths alone (shorter codes first, ties by symbol value, each code
the previous one plus one, shifted left when the length grows), so a decoder only needs the lengths:
that is what a :class:`HuffmanTable` stores and what :meth:`HuffmanTable.to_bytes` writes.

Two degenerate alphabets are exact too: no symbols at all (an empty stream) and one distinct symbol,
which gets a code of length 0 — the table already says which symbol and how many, so the stream
needs no bits, which is also what Huffman's tree (a single leaf at depth 0) gives.

Bits are written most significant first; the last byte is padded with zero bits.
"""

from __future__ import annotations

import heapq
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..validation import check_array

_HEAD = struct.Struct("<IqIBI")  # serialised table header: count, smallest symbol, span, has CRC, CRC

__all__ = ["HuffmanTable", "huffman_code_lengths", "huffman_encode", "huffman_decode", "huffman_nbits"]


def huffman_code_lengths(freqs) -> np.ndarray:
    """Code length of each symbol in an optimal (Huffman) prefix code.

    Parameters
    ----------
    freqs : array_like of int, shape (k,)
        How often each symbol occurs; all > 0.

    Returns
    -------
    ndarray of int64, shape (k,)
        ``lengths[i]`` is symbol i's depth in Huffman's tree (0 when k == 1).
        Ties are broken by the order of creation, so the lengths are deterministic.
    """
    f = check_array(freqs, "freqs", ndim=1)
    if f.size and check_array(f, "freqs (counts)", kind="iu").min() <= 0:
        raise ValueError(f"freqs must be positive counts, got a smallest count of {f.min()}")
    k = f.size
    lengths = np.zeros(k, dtype=np.int64)
    if k <= 1:
        return lengths
    # heap of (weight, creation order, leaves under this node); merging deepens every leaf by one
    heap = [(int(w), i, [i]) for i, w in enumerate(f)]
    heapq.heapify(heap)
    order = k
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        leaves = a + b
        lengths[leaves] += 1
        heapq.heappush(heap, (w1 + w2, order, leaves))
        order += 1
    return lengths


@dataclass(frozen=True)
class HuffmanTable:
    """What a decoder needs: the symbols, their code lengths, and how many symbols were coded.

    Attributes
    ----------
    symbols : ndarray of int64, shape (k,)
        The distinct symbols, sorted ascending.
    lengths : ndarray of int64, shape (k,)
        Code length in bits of each symbol (all 0 if k == 1).
    count : int
        Number of symbols in the coded stream.
    checksum : int or None
        CRC-32 of the coded symbols (as little-endian int64); :func:`huffman_decode` checks it, so
        decoding a stream with a table that belongs to another stream fails instead of returning
        wrong symbols. None skips the check (a table written by hand).
    """

    symbols: np.ndarray
    lengths: np.ndarray
    count: int
    checksum: int | None = None

    def __post_init__(self):
        s = np.asarray(self.symbols, dtype=np.int64).ravel()
        L = np.asarray(self.lengths, dtype=np.int64).ravel()
        object.__setattr__(self, "symbols", s)
        object.__setattr__(self, "lengths", L)
        object.__setattr__(self, "count", int(self.count))
        if s.shape != L.shape:
            raise ValueError(f"a Huffman table needs one length per symbol, got {s.size} symbols and {L.size} lengths")
        if s.size > 1 and np.any(np.diff(s) <= 0):
            raise ValueError("a Huffman table's symbols must be distinct and sorted ascending")
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if s.size == 0 and self.count:
            raise ValueError(f"a table with no symbols can only code an empty stream, got count {self.count}")
        if s.size == 1 and L[0] != 0:
            raise ValueError(f"a one-symbol table codes with 0 bits, got length {L[0]}")
        if s.size > 1:
            if L.min() < 1 or L.max() > 62:
                raise ValueError(f"code lengths must be in [1, 62], got [{L.min()}, {L.max()}]")
            top = int(L.max())
            kraft = sum(1 << (top - int(n)) for n in L)
            if kraft != 1 << top:  # a Huffman code is complete: sum 2^-L == 1 exactly
                raise ValueError(f"code lengths {L.tolist()} do not form a complete prefix code (Kraft sum != 1)")

    # --- the canonical code ---------------------------------------------------------------------
    def canonical_order(self) -> np.ndarray:
        """Indices into ``symbols`` sorted by (length, symbol): the order codes are handed out."""
        return np.lexsort((self.symbols, self.lengths))

    def codes(self) -> np.ndarray:
        """Canonical code of each symbol as an integer (read it in ``lengths[i]`` bits), shape (k,)."""
        codes = np.zeros(self.symbols.size, dtype=np.int64)
        code, prev = 0, 0
        for i in self.canonical_order():
            code <<= int(self.lengths[i]) - prev
            codes[i] = code
            prev = int(self.lengths[i])
            code += 1
        return codes

    def code_strings(self) -> dict:
        """``{symbol: "0101"}``, the codes as bit strings (handy for reading a table)."""
        return {
            int(s): format(int(c), f"0{int(n)}b") if n else ""
            for s, c, n in zip(self.symbols, self.codes(), self.lengths)
        }

    # --- serialisation --------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Compact form: count (uint32), smallest symbol (int64), span (uint32), checksum flag (uint8)
        and CRC-32 (uint32), then one length byte per symbol value in [smallest, smallest + span)
        with 0 = absent (for a one-symbol table the span is 1 and the byte is 0)."""
        if self.lengths.size and self.lengths.max() > 255:
            raise ValueError("code lengths above 255 cannot be serialised")
        if self.count >= 2**32:
            raise ValueError(f"count {self.count} does not fit in 32 bits")
        crc = (self.checksum is not None, self.checksum or 0)
        if self.symbols.size == 0:
            return _HEAD.pack(self.count, 0, 0, *crc)
        lo = int(self.symbols[0])
        span = int(self.symbols[-1]) - lo + 1
        if span >= 2**32:
            raise ValueError(f"symbols span {span} values; at most 2**32 - 1 can be serialised")
        dense = np.zeros(span, dtype=np.uint8)
        dense[self.symbols - lo] = self.lengths
        return _HEAD.pack(self.count, lo, span, *crc) + dense.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple:
        """Parse :meth:`to_bytes` output at the start of ``data``; returns (table, bytes consumed)."""
        head = _HEAD.size
        if len(data) < head:
            raise ValueError(f"Huffman table truncated: need {head} header bytes, got {len(data)}")
        count, lo, span, has_crc, crc = _HEAD.unpack_from(data)
        crc = crc if has_crc else None
        if len(data) < head + span:
            raise ValueError(f"Huffman table truncated: need {head + span} bytes, got {len(data)}")
        dense = np.frombuffer(data, dtype=np.uint8, count=span, offset=head).astype(np.int64)
        if span == 1:
            return cls(np.array([lo]), np.array([0]), count, crc), head + span
        present = np.flatnonzero(dense)
        return cls(present + lo, dense[present], count, crc), head + span


def _crc(s: np.ndarray) -> int:
    return zlib.crc32(s.astype("<i8").tobytes())


def _as_symbols(symbols) -> np.ndarray:
    s = np.asarray(symbols)
    if s.size:
        check_array(s, "symbols (Huffman coding takes integers)", kind="biu")
    return s.astype(np.int64).ravel()


def huffman_nbits(symbols) -> int:
    """Total bits of the Huffman-coded stream of ``symbols`` (without the table)."""
    s = _as_symbols(symbols)
    if s.size == 0:
        return 0
    _, freqs = np.unique(s, return_counts=True)
    return int(np.dot(freqs, huffman_code_lengths(freqs)))


def huffman_encode(symbols) -> tuple:
    """Canonical-Huffman-code an integer array.

    Parameters
    ----------
    symbols : array_like of int, any shape (flattened in C order)

    Returns
    -------
    data : bytes
        The codes of all symbols, MSB first, zero-padded to a whole byte.
    table : HuffmanTable
        Symbols, code lengths and count; enough to decode ``data``.
    """
    s = _as_symbols(symbols)
    if s.size == 0:
        return b"", HuffmanTable(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, _crc(s))
    uniq, inverse, freqs = np.unique(s, return_inverse=True, return_counts=True)
    table = HuffmanTable(uniq, huffman_code_lengths(freqs), s.size, _crc(s))
    if uniq.size == 1:
        return b"", table
    codes, lengths = table.codes()[inverse], table.lengths[inverse]
    top = int(lengths.max())
    shifts = np.arange(top - 1, -1, -1, dtype=np.int64)  # bit j of a code, left-justified to `top` bits
    bits = ((codes[:, None] << (top - lengths)[:, None]) >> shifts) & 1
    keep = np.arange(top)[None, :] < lengths[:, None]
    return np.packbits(bits[keep].astype(np.uint8)).tobytes(), table


def huffman_decode(data: bytes, table: HuffmanTable) -> np.ndarray:
    """Decode ``table.count`` symbols from ``data``; inverse of :func:`huffman_encode`.

    Returns
    -------
    ndarray of int64, shape (table.count,)

    Raises
    ------
    ValueError
        If the stream ends before ``count`` symbols are read, it has bytes or non-zero padding bits
        left over, or the decoded symbols fail the table's checksum (the table does not belong to
        this stream, or the stream is damaged).
    """
    if not isinstance(table, HuffmanTable):
        raise TypeError(f"expected a HuffmanTable, got {type(table).__name__}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the coded bytes, got {type(data).__name__}")
    data = bytes(data)
    n = table.count
    if table.symbols.size <= 1:
        if data:
            raise ValueError(f"this table codes its stream in 0 bits, but got {len(data)} bytes: table does not match")
        return _verified(np.full(n, table.symbols[0] if table.symbols.size else 0, dtype=np.int64), table)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int64)
    nbits = bits.size
    top = int(table.lengths.max())
    order = table.canonical_order()
    lens_sorted = table.lengths[order]
    # canonical codes left-justified to `top` bits increase along `order`: a window of `top` bits
    # starting at a code boundary belongs to the last code whose left-justified value is <= it
    first = table.codes()[order] << (top - lens_sorted)
    padded = np.concatenate([bits, np.zeros(top, np.int64)])
    window = np.zeros(nbits, dtype=np.int64)
    for j in range(top):
        window = (window << 1) | padded[j : j + nbits]
    k_at = np.searchsorted(first, window, side="right") - 1
    sym_at = table.symbols[order][k_at].tolist()
    len_at = lens_sorted[k_at].tolist()
    out = [0] * n
    pos = 0
    for i in range(n):
        if pos >= nbits or pos + len_at[pos] > nbits:
            raise ValueError(f"bit stream ends early: decoded {i} of {n} symbols from {len(data)} bytes")
        out[i] = sym_at[pos]
        pos += len_at[pos]
    if (pos + 7) // 8 != len(data):
        raise ValueError(
            f"table does not match the stream: {n} symbols used {pos} bits, but the stream has {len(data)} bytes"
        )
    if bits[pos:].any():
        raise ValueError("table does not match the stream: the padding bits after the last code are not zero")
    return _verified(np.asarray(out, dtype=np.int64), table)


def _verified(symbols: np.ndarray, table: HuffmanTable) -> np.ndarray:
    if table.checksum is not None and _crc(symbols) != table.checksum:
        raise ValueError("table does not match the stream: the decoded symbols fail the table's CRC-32")
    return symbols
