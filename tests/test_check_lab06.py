"""Lab 06 checks: the reference passes; the stub and plausible wrong answers fail with a hint."""

import heapq
import math
import sys

import numpy as np
import pytest
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit import codec
from labkit.check import FAIL, lab06
from labkit.models import mlp


def stub(*args):
    raise NotImplementedError()


# --- Huffman code lengths ----------------------------------------------------------------------


def textbook_lengths(freqs):  # an independent correct answer (ties broken differently)
    heap = [(int(f), -i, [i]) for i, f in enumerate(freqs)]
    heapq.heapify(heap)
    L = np.zeros(len(freqs), dtype=int)
    n = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        L[a[2] + b[2]] += 1
        n += 1
        heapq.heappush(heap, (a[0] + b[0], n, a[2] + b[2]))
    return L


def fixed_length(freqs):
    return np.full(len(freqs), math.ceil(math.log2(len(freqs))))


def shannon_lengths(freqs):
    p = np.asarray(freqs) / np.sum(freqs)
    return np.ceil(-np.log2(p)).astype(int)


def too_short(freqs):
    return np.maximum(textbook_lengths(freqs) - 1, 1)


def merges_most_frequent(freqs):
    heap = [(-int(f), i, [i]) for i, f in enumerate(freqs)]
    heapq.heapify(heap)
    L = np.zeros(len(freqs), dtype=int)
    n = len(freqs)
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        L[a[2] + b[2]] += 1
        heapq.heappush(heap, (a[0] + b[0], n, a[2] + b[2]))
        n += 1
    return L


def test_lengths_reference_and_independent_answer_pass():
    ex = lab06.huffman_code_lengths
    assert ex.passes(codec.huffman_code_lengths)
    assert ex.passes(textbook_lengths)


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (stub, "not implemented"),
        (fixed_length, "fixed-length code"),
        (shannon_lengths, "optimal code"),
        (too_short, "Kraft"),
        (merges_most_frequent, "least frequent"),
        (lambda f: textbook_lengths(f)[:-1], "one length per symbol"),
        (lambda f: -np.log2(np.asarray(f) / np.sum(f)), "whole numbers of bits"),  # Shannon's lengths, not rounded
        (lambda f: textbook_lengths(f) - 1, "at least 1 bit"),
    ],
)
def test_lengths_wrong_answers_fail(fn, phrase):
    line = lab06.huffman_code_lengths.verdict(fn)
    assert line.startswith(FAIL) and phrase in line, line


# --- relative indices --------------------------------------------------------------------------


def no_fillers(x, width):
    pos = np.flatnonzero(x)
    return np.minimum(np.diff(pos, prepend=-1) - 1, 2**width - 1), x[pos]


def position_differences(x, width):
    gaps, vals = codec.relative_encode(x, width)
    return gaps + 1, vals


def filler_one_early(x, width):  # a filler already when the gap equals 2**width - 1
    out_g, out_v, prev = [], [], -1
    for p in np.flatnonzero(x):
        run = p - prev - 1
        while run >= 2**width - 1:
            out_g.append(2**width - 2)
            out_v.append(0)
            run -= 2**width - 1
        out_g.append(run)
        out_v.append(x[p])
        prev = p
    return np.array(out_g, dtype=np.int64), np.array(out_v)


def trailing_fillers(x, width):  # also stores fillers for the zeros after the last non-zero
    gaps, vals = codec.relative_encode(x, width)
    nz = np.flatnonzero(x)
    tail = len(x) - 1 - (nz[-1] if nz.size else -1)
    n_fill = tail // 2**width
    return np.r_[gaps, np.full(n_fill, 2**width - 1)], np.r_[vals, np.zeros(n_fill, vals.dtype)]


def unreduced_gaps(x, width):  # the fillers are there, but each real entry keeps its whole run of zeros
    gaps, vals = codec.relative_encode(x, width)
    pos = np.flatnonzero(x)
    gaps[vals != 0] = np.diff(pos, prepend=-1) - 1
    return gaps, vals


def test_relative_reference_passes():
    assert lab06.relative_encode.passes(codec.relative_encode)


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (stub, "not implemented"),
        (no_fillers, "filler zeros are missing"),
        (position_differences, "zeros skipped"),
        (filler_one_early, "expected"),
        (lambda x, w: np.flatnonzero(x), "pair"),
        (trailing_fillers, "non-zeros + fillers"),
        (unreduced_gaps, "does not fit 3 bits"),
    ],
)
def test_relative_wrong_answers_fail(fn, phrase):
    line = lab06.relative_encode.verdict(fn)
    assert line.startswith(FAIL) and phrase in line, line


# --- the compression ratio of a layer ----------------------------------------------------------


def _parts(W, ib):
    K = int(np.unique(W[W != 0]).size)
    m = codec.relative_encode(W.ravel(), ib)[0].size
    return K, m, int(np.count_nonzero(W))


def ratio_b_bits(W, ib):  # the old exercise: ceil(log2 K) bits, no code reserved for zeros
    K, m, _ = _parts(W, ib)
    b = max(1, math.ceil(math.log2(K)))
    return 4 * W.size / (4 * K + math.ceil(m * b / 8) + math.ceil(m * ib / 8))


def ratio_without_fillers(W, ib):
    K, _, nnz = _parts(W, ib)
    c = lab06.code_bits(K)
    return 4 * W.size / (4 * K + math.ceil(nnz * c / 8) + math.ceil(nnz * ib / 8))


def ratio_without_fillers_b_bits(W, ib):
    K, _, nnz = _parts(W, ib)
    b = max(1, math.ceil(math.log2(K)))
    return 4 * W.size / (4 * K + math.ceil(nnz * b / 8) + math.ceil(nnz * ib / 8))


def ratio_without_codebook(W, ib):
    K, m, _ = _parts(W, ib)
    c = lab06.code_bits(K)
    return 4 * W.size / (math.ceil(m * c / 8) + math.ceil(m * ib / 8))


def ratio_codebook_with_zero(W, ib):
    K, m, _ = _parts(W, ib)
    c = lab06.code_bits(K)
    return 4 * W.size / (4 * (K + 1) + math.ceil(m * c / 8) + math.ceil(m * ib / 8))


def ratio_full_codebook(W, ib):  # 2^b entries although only K are used
    K, m, _ = _parts(W, ib)
    c, b = lab06.code_bits(K), max(1, math.ceil(math.log2(K)))
    return 4 * W.size / (4 * 2**b + math.ceil(m * c / 8) + math.ceil(m * ib / 8))


def ratio_in_bits(W, ib):
    K, m, _ = _parts(W, ib)
    c = lab06.code_bits(K)
    return 4 * W.size / (4 * K + m * c + m * ib)


def ratio_fractional_bytes(W, ib):
    K, m, _ = _parts(W, ib)
    c = lab06.code_bits(K)
    return 4 * W.size / (4 * K + m * c / 8 + m * ib / 8)


def test_ratio_reference_passes():
    assert lab06.layer_compression_ratio.passes(lab06.reference_layer_ratio)


def test_code_bits_reserves_a_code_for_zero():
    assert [lab06.code_bits(k) for k in (1, 2, 3, 4, 7, 8, 15, 16, 31, 32)] == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (stub, "not implemented"),
        (ratio_b_bits, "reserves code 0"),
        (ratio_without_fillers, "filler zeros"),
        (ratio_without_fillers_b_bits, "count the"),
        (ratio_without_codebook, "left out the codebook"),
        (ratio_codebook_with_zero, "zero needs no entry"),
        (ratio_full_codebook, "the codebook holds"),  # K = 3: 2^2 entries = K + 1, either hint fits
        (ratio_in_bits, "bits as bytes"),
        (ratio_fractional_bytes, "whole bytes"),
        (lambda W, i: 1 / lab06.reference_layer_ratio(W, i), "inverse"),
        (lambda W, i: "12x", "float"),
        (lambda W, i: 2 * lab06.reference_layer_ratio(W, i), "expected"),
    ],
)
def test_ratio_wrong_answers_fail(fn, phrase):
    line = lab06.layer_compression_ratio.verdict(fn)
    assert line.startswith(FAIL) and phrase in line, line


@pytest.mark.parametrize("k", [3, 15, 16, 17])
def test_ratio_equals_the_codec_sparse_layout(rng, k):
    # the exercise's bytes are exactly the codebook and the two fixed-width streams the codec writes
    # for a sparse layer in its "kmeans" form (huffman=False): same K, same code width, same fillers
    model = mlp([60, 40], seed=0)
    cb = np.sort(rng.standard_normal(k)).astype(np.float32)
    model["fc1"].W = np.where(rng.random((40, 60)) < 0.1, cb[rng.integers(0, k, (40, 60))], 0).astype(np.float32)
    (row, _) = codec.compression_report(model, huffman=False, index_bits=5)
    assert row["layout"] == "sparse"
    stored = row["codebook_bytes"] + row["weight_bytes"] + row["index_bytes"]
    W = model["fc1"].W
    assert lab06.reference_layer_ratio(W, 5) == pytest.approx(4 * W.size / stored, rel=1e-12)
    assert row["stored_entries"] == codec.relative_encode(W.ravel(), 5)[0].size  # fillers included


# --- the size budget ---------------------------------------------------------------------------


@pytest.fixture
def tiny_task(rng):
    """A linearly separable 3-class task and a sparse shared model that solves it."""
    X = rng.standard_normal((300, 8)).astype(np.float32)
    y = np.argmax(X[:, :3], axis=1)
    model = mlp([8, 3], seed=0)
    model["fc1"].W = np.zeros((3, 8), np.float32)
    model["fc1"].W[[0, 1, 2], [0, 1, 2]] = 1.0
    return model, X, y


def test_size_budget_passes_and_fails(tmp_path, tiny_task):
    model, X, y = tiny_task
    path = codec.save_compressed(model, tmp_path / "best.lkdc")
    assert lab06.size_budget_verdict(path, X, y).startswith("size_budget: the saved file loads")
    assert "no file at" in lab06.size_budget_verdict(tmp_path / "missing.lkdc", X, y)
    assert "over the budget" in lab06.size_budget_verdict(path, X, y, budget=10)
    assert "test accuracy" in lab06.size_budget_verdict(path, X, (y + 1) % 3)
    raw = path.read_bytes()
    (tmp_path / "bad.lkdc").write_bytes(raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:])
    assert "does not load" in lab06.size_budget_verdict(tmp_path / "bad.lkdc", X, y)
    assert "cannot classify" in lab06.size_budget_verdict(path, X[:, :5], y)


def test_size_budget_prints_one_line(tmp_path, tiny_task, capsys):
    model, X, y = tiny_task
    lab06.size_budget(codec.save_compressed(model, tmp_path / "m.lkdc"), X, y)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("size_budget:")


def test_size_budget_names_the_split(tmp_path, tiny_task):
    model, X, y = tiny_task
    path = codec.save_compressed(model, tmp_path / "best.lkdc")
    line = lab06.size_budget_verdict(path, X, y, split="validation")
    assert line.startswith("size_budget:") and line.endswith("validation accuracy"), line
    assert lab06.size_budget_verdict(path, X, y).endswith(" test accuracy")
    bad = lab06.size_budget_verdict(path, X, (y + 1) % 3, split="validation")
    assert bad.startswith(FAIL) and "validation accuracy" in bad, bad
    with pytest.raises(ValueError, match="split must be one of"):
        lab06.size_budget_verdict(path, X, y, split="train")


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab06)
    assert_every_hint_reached(sys.modules[__name__], lab06)
