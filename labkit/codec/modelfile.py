"""A compressed model file, and the exact byte count of each compressed format.

A model whose weight layers hold few distinct values (after k-means weight sharing) and many zeros
(after pruning) is stored layer by layer as

* a **codebook**: the layer's distinct non-zero weights, float32; symbol 0 means "weight 0" and
  symbol i ≥ 1 means ``codebook[i − 1]``, so filler zeros and pruned weights need no codebook entry;
* the **weight symbols**, either one per weight (``dense`` layout) or only for the stored entries of
  a relative-index encoding (``sparse`` layout, :func:`labkit.codec.sparse_index.relative_encode`,
  with its **gap** stream), whichever is smaller for that layer;
* each stream either **fixed-width** (``ceil(log2(K + 1))`` bits per symbol for K codebook entries,
  ``index_bits`` per gap: Deep Compression's "pruning + quantization" stage) or **Huffman-coded**
  (its canonical table, then the bits: the "+ Huffman" stage);
* the **bias**, float32.

File layout (little-endian)::

    b"LKDC" | version uint16 | header length uint32 | header (JSON, UTF-8) | payload | CRC-32 uint32

The header holds the architecture and the layer table (codebook size, layout, widths and the byte
length of every section); the CRC-32 covers every byte before it. Loading checks the length, the
CRC and the version before decoding, so a truncated, corrupted or newer file raises ValueError
instead of returning a wrong model. Writes go to a temporary file that is renamed into place.

``size_bytes(model, "kmeans")`` and ``size_bytes(model, "deep_compression")`` are the exact lengths
of the file :func:`save_compressed` writes with ``huffman=False`` and ``huffman=True``: header,
tables, codebooks, indices, biases and checksum included. ``"zip_fp32"`` is the size of the float32
parameters in a deflate-compressed zip archive, the way the TensorFlow Model Optimization guides
report the size of a pruned model.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from ..nn import LAYER_TYPES, Sequential
from ..validation import check_bits
from .bits import pack_fixed, unpack_fixed
from .huffman import HuffmanTable, huffman_decode, huffman_encode
from .sparse_index import relative_decode, relative_encode

__all__ = [
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

MAGIC = b"LKDC"
FORMAT_VERSION = 1
#: bits per relative index by layer type, as in Deep Compression (Sec. 2): 5 for fc, 8 for conv
DEFAULT_INDEX_BITS = {"Dense": 5, "Conv2d": 8}
#: most distinct non-zero weights a layer may have (symbols must fit 16 bits)
MAX_CODEBOOK = 2**16 - 1
_PREFIX = struct.Struct("<4sHI")
_CRC = struct.Struct("<I")


def _index_bits_for(name, layer, index_bits) -> int:
    if index_bits is None:
        return DEFAULT_INDEX_BITS.get(type(layer).__name__, 8)
    if isinstance(index_bits, dict):
        bits = index_bits.get(name, DEFAULT_INDEX_BITS.get(type(layer).__name__, 8))
        return check_bits(bits, name=f"index_bits[{name!r}]")
    return check_bits(index_bits, name="index_bits")


def _stream(symbols, huffman: bool, width: int) -> bytes:
    """A coded stream: Huffman table + bits, or fixed-width packing."""
    if huffman:
        data, table = huffman_encode(symbols)
        return table.to_bytes() + data
    return pack_fixed(symbols, width)


def _read_stream(blob: bytes, huffman: bool, width: int, count: int) -> np.ndarray:
    if huffman:
        table, used = HuffmanTable.from_bytes(blob)
        if table.count != count:
            raise ValueError(f"stream holds {table.count} symbols, the layer table says {count}")
        return huffman_decode(blob[used:], table)
    return unpack_fixed(blob, width, count)


def _encode_layer(name, layer, huffman: bool, index_bits) -> tuple:
    """(entry for the layer table, list of section bytes, report row) of one weight layer."""
    W = layer.W
    flat = W.reshape(-1).astype(np.float32)
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"layer {name} has NaN or inf weights")
    codebook = np.unique(flat[flat != 0])
    if codebook.size > MAX_CODEBOOK:
        raise ValueError(
            f"layer {name} has {codebook.size} distinct non-zero weights; the compressed formats store a codebook "
            f"of at most {MAX_CODEBOOK}: share weights first (labkit.quant.kmeans_quantize)"
        )
    K = codebook.size
    symbols = np.zeros(flat.size, dtype=np.int64)
    nz = flat != 0
    symbols[nz] = np.searchsorted(codebook, flat[nz]) + 1
    vbits = max(1, math.ceil(math.log2(K + 1)))
    ibits = _index_bits_for(name, layer, index_bits)

    dense_vals = _stream(symbols, huffman, vbits)
    gaps, vals = relative_encode(symbols, ibits)
    sparse_vals, sparse_gaps = _stream(vals, huffman, vbits), _stream(gaps, huffman, ibits)
    if len(sparse_vals) + len(sparse_gaps) < len(dense_vals):
        layout, sections, entries = "sparse", [sparse_vals, sparse_gaps], int(vals.size)
    else:
        layout, sections, entries = "dense", [dense_vals], int(flat.size)
    cb = codebook.astype("<f4").tobytes()
    bias = layer.b.astype("<f4").tobytes()
    sections = [cb, *sections, bias]
    entry = {
        "name": name,
        "K": int(K),
        "layout": layout,
        "n": entries,
        "vbits": vbits,
        "ibits": ibits,
        "mask": layer.mask is not None,
        "sizes": [len(s) for s in sections],
    }
    report = {
        "layer": name,
        "weights": int(flat.size),
        "nonzero": int(nz.sum()),
        "codebook_entries": int(K),
        "layout": layout,
        "stored_entries": entries,
        "fillers": int(vals.size - nz.sum()) if layout == "sparse" else 0,
        "codebook_bytes": len(cb),
        "weight_bytes": len(sections[1]),
        "index_bytes": len(sections[2]) if layout == "sparse" else 0,
        "bias_bytes": len(bias),
    }
    return entry, sections, report


def encode_model(model: Sequential, huffman: bool = True, index_bits=None) -> tuple:
    """The bytes of a compressed model file and a per-layer byte report.

    Parameters
    ----------
    model : Sequential
        Weight layers may hold at most ``MAX_CODEBOOK`` distinct non-zero values each.
    huffman : bool
        Huffman-code the streams (``deep_compression``) or pack them fixed-width (``kmeans``).
    index_bits : None, int or {layer_name: int}
        Bits per relative index; default 5 for Dense, 8 for Conv2d (the paper's choice).

    Returns
    -------
    data : bytes
        Exactly what :func:`save_compressed` writes.
    report : list of dict
        One row per weight layer (codebook/weight/index/bias bytes, fillers, layout), then a row
        ``{"layer": "header+crc", ...}`` for the file's fixed overhead.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"expected a labkit Sequential model, got {type(model).__name__}")
    table, payload, report = [], [], []
    for name, layer in model.weight_layers():
        entry, sections, row = _encode_layer(name, layer, bool(huffman), index_bits)
        table.append(entry)
        payload += sections
        report.append(row)
    header = {"architecture": model.architecture(), "huffman": bool(huffman), "layers": table}
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(hbytes)) + hbytes + b"".join(payload)
    data = body + _CRC.pack(zlib.crc32(body))
    report.append({"layer": "header+crc", "header_bytes": _PREFIX.size + len(hbytes) + _CRC.size})
    return data, report


def decode_model(data: bytes, source: str = "data") -> Sequential:
    """Rebuild the model from :func:`encode_model` bytes; ValueError if they are not intact."""
    data = bytes(data)
    where = source
    if len(data) < _PREFIX.size + _CRC.size:
        raise ValueError(f"{where} is not a labkit compressed model: only {len(data)} bytes")
    magic, version, hlen = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"{where} is not a labkit compressed model (magic {magic!r}, expected {MAGIC!r})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where} was written in compressed-model format version {version}; this labkit reads versions up to "
            f"{FORMAT_VERSION}: upgrade labkit to load it"
        )
    if len(data) < _PREFIX.size + hlen + _CRC.size:
        raise ValueError(f"{where} is truncated: its header alone needs {_PREFIX.size + hlen + _CRC.size} bytes")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + hlen].decode())
        sizes = [s for entry in header["layers"] for s in entry["sizes"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where} has a damaged header ({type(exc).__name__}: {exc})") from exc
    expected = _PREFIX.size + hlen + sum(sizes) + _CRC.size
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its layer table says"
        raise ValueError(f"{where} is {what}: expected {expected} bytes, got {len(data)}")
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise ValueError(f"{where} is corrupted: its CRC-32 does not match its contents")

    try:
        return _build(header, data, _PREFIX.size + hlen, where)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:  # a well-formed but inconsistent header
        raise ValueError(f"{where} has an inconsistent layer table ({type(exc).__name__}: {exc})") from exc


def _build(header: dict, data: bytes, pos: int, where: str) -> Sequential:
    """The model described by a checked header, its weights decoded from ``data`` starting at ``pos``."""
    arch = header["architecture"]
    layers = [LAYER_TYPES[spec["type"]](**spec["config"]) for spec in arch["layers"]]
    model = Sequential(layers, input_shape=arch["input_shape"])
    huffman = header["huffman"]
    for entry in header["layers"]:
        layer = model[entry["name"]]
        parts = []
        for s in entry["sizes"]:
            parts.append(data[pos : pos + s])
            pos += s
        codebook = np.concatenate([[0.0], np.frombuffer(parts[0], dtype="<f4")]).astype(np.float32)
        if codebook.size != entry["K"] + 1:
            raise ValueError(
                f"{where}: layer {entry['name']} codebook has {codebook.size - 1} entries, expected {entry['K']}"
            )
        vals = _read_stream(parts[1], huffman, entry["vbits"], entry["n"])
        if entry["layout"] == "sparse":
            gaps = _read_stream(parts[2], huffman, entry["ibits"], entry["n"])
            symbols = relative_decode(gaps, vals, layer.W.size)
        else:
            symbols = vals
        if symbols.size != layer.W.size or (symbols.size and (symbols.min() < 0 or symbols.max() > entry["K"])):
            raise ValueError(f"{where}: layer {entry['name']} decodes to symbols outside its codebook")
        layer.W = codebook[symbols].reshape(layer.W.shape)
        bias = np.frombuffer(parts[-1], dtype="<f4").astype(np.float32)
        if bias.shape != layer.b.shape:
            raise ValueError(f"{where}: layer {entry['name']} bias has {bias.size} values, expected {layer.b.size}")
        layer.b = bias.copy()
        layer.mask = layer.W != 0 if entry["mask"] else None
    return model


def compressed_size(model: Sequential, huffman: bool = True, index_bits=None) -> int:
    """Bytes of the compressed file of ``model`` (see :func:`encode_model`), header and CRC included."""
    return len(encode_model(model, huffman, index_bits)[0])


def compression_report(model: Sequential, huffman: bool = True, index_bits=None) -> list:
    """Per-layer byte breakdown of the compressed file (see :func:`encode_model`)."""
    return encode_model(model, huffman, index_bits)[1]


def save_compressed(model: Sequential, path, huffman: bool = True, index_bits=None) -> Path:
    """Write ``model`` as one compressed file, atomically (temp file + rename). Returns the path.

    The file's size equals ``compressed_size(model, huffman, index_bits)``;
    :func:`load_compressed` gives back weights that are bit-identical, hence identical predictions.
    """
    data, _ = encode_model(model, huffman, index_bits)
    path = Path(path)
    return write_bytes(path, data)


def load_compressed(path) -> Sequential:
    """Load a file written by :func:`save_compressed`.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not such a file, truncated, corrupted (CRC mismatch) or written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no compressed model file at {path}")
    return decode_model(path.read_bytes(), source=str(path))


def zipped_size(model: Sequential, level: int = 9) -> int:
    """Bytes of a deflate zip holding every parameter as raw float32 (one archive member per array).

    This is how the TensorFlow Model Optimization guides measure a pruned model (zip the saved file,
    compare sizes); it exposes zeros and repeats to a general-purpose compressor. The exact count
    depends on the zlib build, so treat it as a comparison, not a format.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for key, arr in model.parameters().items():
            info = zipfile.ZipInfo(key, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, np.ascontiguousarray(arr, dtype="<f4").tobytes(), compresslevel=level)
    return len(buf.getvalue())
