"""labkit.codec: Huffman optimality and round trips, relative indices, CSR, the compressed model file."""

import heapq
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import metrics
from labkit.codec import (
    FORMAT_VERSION,
    HuffmanTable,
    compressed_size,
    compression_report,
    csr_decode,
    csr_encode,
    csr_nbytes,
    decode_model,
    encode_model,
    huffman_code_lengths,
    huffman_decode,
    huffman_encode,
    huffman_nbits,
    load_compressed,
    pack_fixed,
    relative_decode,
    relative_encode,
    save_compressed,
    unpack_fixed,
    zipped_size,
)
from labkit.models import lenet5, mlp

# --- Huffman ----------------------------------------------------------------------------------


def heap_huffman_cost(freqs):
    """Total bits of an optimal prefix code, the textbook way: the sum of all merged weights."""
    heap = list(map(int, freqs))
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


def roundtrip(symbols):
    data, table = huffman_encode(symbols)
    out = huffman_decode(data, table)
    np.testing.assert_array_equal(out, np.asarray(symbols, dtype=np.int64).ravel())
    assert out.dtype == np.int64
    return data, table


def test_huffman_empty():
    data, table = roundtrip(np.zeros(0, dtype=np.int64))
    assert data == b"" and table.count == 0
    table2, used = HuffmanTable.from_bytes(table.to_bytes())
    assert used == len(table.to_bytes()) and huffman_decode(b"", table2).size == 0


def test_huffman_single_repeated_symbol_costs_no_bits():
    data, table = roundtrip(np.full(1000, 7))
    assert data == b"" and table.lengths.tolist() == [0] and table.count == 1000
    assert huffman_nbits(np.full(1000, 7)) == 0 == heap_huffman_cost([1000])


def test_huffman_all_256_byte_values(rng):
    symbols = rng.integers(0, 256, 20000)
    symbols[:256] = np.arange(256)
    data, table = roundtrip(symbols)
    assert table.symbols.tolist() == list(range(256))
    # uniform-ish frequencies over 256 symbols: lengths 7..9, about 8 bits per symbol
    assert 7.9 < 8 * len(data) / symbols.size < 8.1


def test_huffman_known_code():
    # frequencies 5, 2, 1, 1 → lengths 1, 2, 3, 3; canonical codes 0, 10, 110, 111
    symbols = np.array([0] * 5 + [1] * 2 + [2, 3])
    data, table = roundtrip(symbols)
    assert table.code_strings() == {0: "0", 1: "10", 2: "110", 3: "111"}
    assert data == bytes([0b00000101, 0b01101110])  # 00000 10 10 110 111, then one padding 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=300), st.integers(1, 50))
def test_huffman_roundtrip_and_optimal(values, alphabet):
    symbols = np.array([v % alphabet - alphabet // 2 for v in values], dtype=np.int64)  # repeats likely
    data, table = roundtrip(symbols)
    if symbols.size:
        _, freqs = np.unique(symbols, return_counts=True)
        nbits = int(np.dot(freqs, huffman_code_lengths(freqs)))
        assert nbits == heap_huffman_cost(freqs) == huffman_nbits(symbols)
        assert len(data) == (nbits + 7) // 8
    table2, _ = HuffmanTable.from_bytes(table.to_bytes())
    np.testing.assert_array_equal(huffman_decode(data, table2), symbols)


def test_huffman_skewed_frequencies_optimal():
    freqs = np.array([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144])  # Fibonacci: the deepest possible tree
    lengths = huffman_code_lengths(freqs)
    assert int(np.dot(freqs, lengths)) == heap_huffman_cost(freqs)
    assert lengths.max() == 11
    roundtrip(np.repeat(np.arange(12), freqs))


def test_huffman_bad_input():
    with pytest.raises(TypeError, match="integer"):
        huffman_encode(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="positive"):
        huffman_code_lengths([3, 0])
    with pytest.raises(ValueError, match="Kraft"):
        HuffmanTable(np.array([0, 1, 2]), np.array([1, 1, 2]), 3)
    with pytest.raises(TypeError, match="HuffmanTable"):
        huffman_decode(b"", {"0": 1})


def test_huffman_stream_ends_early():
    data, table = huffman_encode(np.arange(100) % 7)
    with pytest.raises(ValueError, match="ends early"):
        huffman_decode(data[: len(data) // 2], table)


def test_huffman_table_that_does_not_match():
    a = np.repeat(np.arange(5), [50, 20, 10, 5, 1])
    data, table = huffman_encode(a)
    _, other = huffman_encode(np.repeat(np.arange(5), [1, 5, 10, 20, 50]))  # same count, other lengths
    with pytest.raises(ValueError, match="does not match|ends early"):
        huffman_decode(data, other)
    with pytest.raises(ValueError, match="does not match"):
        huffman_decode(data + b"\x00", table)
    _, single = huffman_encode(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="does not match"):
        huffman_decode(b"\x01", single)
    _, single4 = huffman_encode(np.ones(3, np.int64))
    with pytest.raises(ValueError, match="CRC"):
        huffman_decode(b"", HuffmanTable(single4.symbols, single4.lengths, 3, single.checksum))
    unchecked = HuffmanTable(other.symbols, other.lengths, other.count)  # a hand-made table: no CRC
    assert not np.array_equal(huffman_decode(data, unchecked), a)  # without a CRC the mismatch goes unnoticed


def test_huffman_table_bytes_truncated():
    _, table = huffman_encode(np.arange(40) % 9)
    raw = table.to_bytes()
    with pytest.raises(ValueError, match="truncated"):
        HuffmanTable.from_bytes(raw[:-1])


# --- fixed-width packing and sparse indices ---------------------------------------------------


@pytest.mark.parametrize("width", [1, 3, 5, 8, 13])
def test_pack_fixed_roundtrip(rng, width):
    v = rng.integers(0, 2**width, 101)
    data = pack_fixed(v, width)
    assert len(data) == (101 * width + 7) // 8
    np.testing.assert_array_equal(unpack_fixed(data, width, 101), v)
    with pytest.raises(ValueError, match="ends early"):
        unpack_fixed(data[:-1], width, 101)
    with pytest.raises(ValueError, match=r"\[0, "):
        pack_fixed([2**width], width)


def test_relative_encode_paper_example():
    # a run of 9 zeros does not fit 3 bits (at most 7 zeros): one filler zero, then a gap of 1
    x = np.array([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])
    gaps, vals = relative_encode(x, width=3)
    assert gaps.tolist() == [2, 7, 1] and vals.tolist() == [7, 0, 5]
    np.testing.assert_array_equal(relative_decode(gaps, vals, x.size), x)


def test_relative_encode_filler_count(rng):
    for width in (1, 2, 4, 5, 8):
        x = np.where(rng.random(3000) < 0.03, rng.integers(1, 9, 3000), 0)
        gaps, vals = relative_encode(x, width)
        assert gaps.max(initial=0) <= 2**width - 1
        np.testing.assert_array_equal(relative_decode(gaps, vals, x.size), x)
        pos = np.flatnonzero(x)
        runs = np.diff(pos, prepend=-1) - 1
        assert vals.size - pos.size == int((runs // 2**width).sum())  # one filler per 2**width positions


def test_relative_edge_cases():
    for x in (np.zeros(0, int), np.zeros(10, int), np.ones(6, int), np.array([0] * 100 + [3])):
        gaps, vals = relative_encode(x, 2)
        np.testing.assert_array_equal(relative_decode(gaps, vals, x.size), x)
    with pytest.raises(ValueError, match="flat"):
        relative_encode(np.ones((2, 2)), 4)
    with pytest.raises(ValueError, match="width"):
        relative_encode(np.ones(3), 0)
    with pytest.raises(ValueError, match="beyond"):
        relative_decode([5], [1], 3)


def test_csr_roundtrip_and_bytes(rng):
    w = np.where(rng.random((7, 11)) < 0.2, rng.standard_normal((7, 11)), 0).astype(np.float32)
    w[3] = 0  # an empty row
    data, indices, indptr = csr_encode(w)
    assert indices.dtype == np.int32 and indptr.dtype == np.int32 and indptr.size == 8
    np.testing.assert_array_equal(csr_decode(data, indices, indptr, w.shape), w)
    assert csr_nbytes(w) == data.nbytes + indices.nbytes + indptr.nbytes


# --- the compressed model file ----------------------------------------------------------------


def shared_sparse(model, rng, density=0.1, k=15):
    """Prune each weight layer at random and give the survivors k shared values."""
    for _, layer in model.weight_layers():
        keep = rng.random(layer.W.shape) < density
        centroids = rng.standard_normal(k).astype(np.float32) * 0.1
        layer.W = np.where(keep, centroids[rng.integers(0, k, layer.W.shape)], 0).astype(np.float32)
        layer.mask = keep
    return model


@pytest.fixture
def small_model(rng):
    return shared_sparse(mlp([40, 30, 20, 5], seed=1), rng)


@pytest.mark.parametrize("huffman", [True, False])
def test_save_load_identical(tmp_path, small_model, rng, huffman):
    path = save_compressed(small_model, tmp_path / "m.lkdc", huffman=huffman)
    assert path.stat().st_size == compressed_size(small_model, huffman=huffman)
    loaded = load_compressed(path)
    X = rng.standard_normal((64, 40)).astype(np.float32)
    for (_, a), (_, b) in zip(small_model.weight_layers(), loaded.weight_layers()):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(small_model.predict_logits(X), loaded.predict_logits(X))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the temp file was renamed


def test_conv_model_roundtrip(rng):
    model = shared_sparse(lenet5(seed=0), rng, density=0.3, k=31)
    loaded = decode_model(encode_model(model)[0])
    X = rng.random((4, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.predict_logits(X), loaded.predict_logits(X))


def test_dense_layout_for_dense_layers(rng):
    model = mlp([20, 10], seed=0)
    layer = model["fc1"]
    layer.W = rng.choice(np.array([-0.5, 0.25, 0.5], np.float32), layer.W.shape)  # no zeros: dense wins
    (row, _) = compression_report(model, huffman=False)
    assert row["layout"] == "dense" and row["weight_bytes"] == (200 * 2 + 7) // 8  # 3 values + zero: 2 bits
    np.testing.assert_array_equal(decode_model(encode_model(model, huffman=False)[0])["fc1"].W, layer.W)


def test_byte_accounting_adds_up(small_model):
    data, report = encode_model(small_model)
    parts = sum(r["codebook_bytes"] + r["weight_bytes"] + r["index_bytes"] + r["bias_bytes"] for r in report[:-1])
    assert parts + report[-1]["header_bytes"] == len(data)


def test_huffman_pays_on_skewed_symbols(rng):
    # skewed codebook usage (as after k-means) and geometric gaps: Huffman beats fixed-width packing
    model = mlp([400, 200], seed=0)
    keep = rng.random((200, 400)) < 0.1
    values = np.float32(0.01) * (1 + rng.geometric(0.3, keep.shape).clip(max=31)).astype(np.float32)
    model["fc1"].W = np.where(keep, values, 0).astype(np.float32)
    assert compressed_size(model, huffman=True) < 0.9 * compressed_size(model, huffman=False)


def test_size_formats_registered(small_model):
    assert metrics.size_bytes(small_model, "deep_compression") == compressed_size(small_model)
    assert metrics.size_bytes(small_model, "kmeans") == compressed_size(small_model, huffman=False)
    assert 0 < metrics.size_bytes(small_model, "zip_fp32") == zipped_size(small_model)


def test_unshared_weights_rejected():
    model = mlp([300, 300], seed=0)
    with pytest.raises(ValueError, match="share weights first"):
        encode_model(model)


def test_index_bits_argument(small_model):
    with pytest.raises(ValueError, match="index_bits"):
        encode_model(small_model, index_bits=0)
    narrow = compression_report(small_model, huffman=False, index_bits=2)
    wide = compression_report(small_model, huffman=False, index_bits={"fc1": 8})
    assert narrow[0]["fillers"] > wide[0]["fillers"]


def test_truncated_corrupted_newer_files(tmp_path, small_model):
    path = save_compressed(small_model, tmp_path / "m.lkdc")
    raw = path.read_bytes()
    cases = {
        "truncated": raw[:-10],
        "extra": raw + b"\x00",
        "corrupted": raw[:200] + bytes([raw[200] ^ 0x10]) + raw[201:],
        "not a labkit": b"PK\x03\x04" + raw[4:],
        "newer": raw[:4] + struct.pack("<H", FORMAT_VERSION + 1) + raw[6:],
        "tiny": raw[:5],
    }
    messages = {
        "truncated": "truncated",
        "extra": "longer",
        "corrupted": "CRC",
        "not a labkit": "not a labkit",
        "newer": "version",
        "tiny": "not a labkit",
    }
    for key, blob in cases.items():
        bad = tmp_path / f"{key.replace(' ', '_')}.lkdc"
        bad.write_bytes(blob)
        with pytest.raises(ValueError, match=messages[key]):
            load_compressed(bad)
    with pytest.raises(FileNotFoundError, match="no compressed model"):
        load_compressed(tmp_path / "missing.lkdc")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, small_model, monkeypatch):
    path = save_compressed(small_model, tmp_path / "m.lkdc")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_compressed(mlp([40, 30, 20, 5], seed=9), path, huffman=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.lkdc"]


def test_consistent_crc_but_inconsistent_header(tmp_path, small_model):
    # a file rewritten by some other tool: the CRC matches, but the layer table names a missing layer
    import zlib

    raw = encode_model(small_model)[0]
    body = raw[:-4].replace(b'"name":"fc2"', b'"name":"fc9"')
    bad = tmp_path / "inconsistent.lkdc"
    bad.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(ValueError, match="inconsistent layer table"):
        load_compressed(bad)
