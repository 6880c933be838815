"""Storing a compressed network in as few bytes as it really takes (Deep Compression's last stages).

* :mod:`~labkit.codec.huffman` — canonical Huffman coding of integer streams;
* :mod:`~labkit.codec.sparse_index` — relative indices with filler zeros, and CSR for comparison;
* :mod:`~labkit.codec.bits` — fixed-width bit packing;
* :mod:`~labkit.codec.modelfile` — one versioned, checksummed file per model and exact byte counts.

The size formats ``"kmeans"``, ``"deep_compression"`` and ``"zip_fp32"`` of
:func:`labkit.metrics.size_bytes` are computed by :mod:`~labkit.codec.modelfile` (``metrics`` imports
it by name when one of them is asked for; importing this package registers nothing).
"""

from .bits import pack_fixed, packed_nbytes, unpack_fixed
from .huffman import HuffmanTable, huffman_code_lengths, huffman_decode, huffman_encode, huffman_nbits
from .modelfile import (
    DEFAULT_INDEX_BITS,
    FORMAT_VERSION,
    MAGIC,
    MAX_CODEBOOK,
    compressed_size,
    compression_report,
    decode_model,
    encode_model,
    load_compressed,
    save_compressed,
    zipped_size,
)
from .sparse_index import csr_decode, csr_encode, csr_nbytes, relative_decode, relative_encode

__all__ = [
    "pack_fixed",
    "unpack_fixed",
    "packed_nbytes",
    "HuffmanTable",
    "huffman_code_lengths",
    "huffman_encode",
    "huffman_decode",
    "huffman_nbits",
    "relative_encode",
    "relative_decode",
    "csr_encode",
    "csr_decode",
    "csr_nbytes",
    "MAGIC",
    "FORMAT_VERSION",
    "DEFAULT_INDEX_BITS",
    "MAX_CODEBOOK",
    "encode_model",
    "decode_model",
    "compressed_size",
    "compression_report",
    "save_compressed",
    "load_compressed",
    "zipped_size",
]
