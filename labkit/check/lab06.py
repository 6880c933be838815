"""Checks for lab 06 (the deep-compression pipeline).

* ``huffman_code_lengths(freqs)``: code lengths of an optimal prefix code (any optimal one passes).
* ``relative_encode(x, width)``: gaps (zeros skipped) and values, with filler zeros (exact).
* ``layer_compression_ratio(W, index_bits)``: float32 bytes of W over the bytes of its pruned +
  shared form as the codec stores it: codebook of the K distinct non-zero values, a
  ``ceil(log2(K + 1))``-bit code (code 0 reserved for zeros and fillers) and a relative index per
  stored entry, fillers included.
* ``size_budget(path, X, y, split)``: the saved compressed model loads, fits the budget and is accurate
  enough on ``(X, y)`` — the validation split while choosing, the test split once at the end.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..codec import huffman_code_lengths as _huffman_code_lengths
from ..codec import load_compressed
from ..codec import relative_encode as _relative_encode
from .exercise import FAIL, Case, Exercise

__all__ = [
    "huffman_code_lengths",
    "relative_encode",
    "layer_compression_ratio",
    "reference_layer_ratio",
    "code_bits",
    "size_budget",
    "size_budget_verdict",
    "BUDGET_BYTES",
    "BUDGET_MIN_ACCURACY",
    "SPLITS",
]

# --- 1. Huffman code lengths --------------------------------------------------------------------


def _compare_lengths(got, expected, case):
    (freqs,) = case.args
    f = np.asarray(freqs)
    try:
        L = np.asarray(got)
    except Exception:  # noqa: BLE001
        return f"return an array of code lengths, got {type(got).__name__}"
    if L.shape != f.shape:
        return f"return one length per symbol: shape {f.shape}, got {L.shape}"
    if L.dtype.kind not in "iu" and not (L.dtype.kind == "f" and np.all(L == np.round(L))):
        return f"code lengths are whole numbers of bits, got dtype {L.dtype}"
    L = L.astype(np.int64)
    if L.min() < 1:
        return f"every symbol needs a code of at least 1 bit when there are {f.size} symbols, got a length {L.min()}"
    kraft = sum(Fraction(1, 2 ** int(n)) for n in L)
    if kraft > 1:
        return f"no prefix code has these lengths: sum of 2^-L is {float(kraft):.4g} > 1 (Kraft inequality)"
    cost, best = int(np.dot(f, L)), int(np.dot(f, expected))
    if cost > best:
        fixed = f.size * 0 + math.ceil(math.log2(f.size))
        extra = " (that is a fixed-length code)" if np.all(L == fixed) else ""
        return (
            f"your lengths cost {cost} bits in total, an optimal code {best}{extra}: repeatedly merge the two "
            "least frequent subtrees; each merge adds one bit to every symbol under them"
        )
    return None


def _length_cases(rng):
    cases = []
    for k in (3, 8, 17, 40):
        cases.append(Case((rng.integers(1, 100, k),), label=f"{k} random frequencies"))
    cases.append(Case((np.round(1000 * rng.geometric(0.3, 12) ** -1.5).astype(np.int64) + 1,), label="skewed"))
    return cases


huffman_code_lengths = Exercise(
    "huffman_code_lengths",
    _huffman_code_lengths,
    fixed_cases=[
        Case((np.array([5, 2, 1, 1]),), label="frequencies 5, 2, 1, 1"),
        Case((np.array([10, 10]),), label="two symbols"),
        Case((np.array([1, 1, 2, 3, 5, 8, 13, 21]),), label="Fibonacci frequencies"),
        Case((np.array([7, 7, 7, 7, 7]),), label="five equal frequencies"),
    ],
    cases=_length_cases,
    compare=_compare_lengths,
    pass_line="huffman_code_lengths: optimal prefix codes for 9 frequency tables",
)

# --- 2. relative indices with filler zeros ------------------------------------------------------


def _compare_relative(got, expected, case):
    x, width = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (gaps, values), got {type(got).__name__}"
    gaps, vals = (np.asarray(g) for g in got)
    eg, ev = expected
    if gaps.shape != eg.shape or vals.shape != ev.shape:
        nnz = int(np.count_nonzero(x))
        if gaps.size == nnz and eg.size > nnz:
            return (
                f"you stored {gaps.size} entries, one per non-zero; {eg.size - nnz} filler zeros are missing: a gap "
                f"above {2**width - 1} zeros does not fit {width} bits"
            )
        return f"you stored {gaps.size} entries, expected {eg.size} ({int(np.count_nonzero(x))} non-zeros + fillers)"
    if gaps.size and np.array_equal(gaps, eg + 1):
        return "your gaps are position differences; store the number of zeros skipped (difference − 1)"
    if gaps.size and gaps.max() > 2**width - 1:
        return f"a gap of {int(gaps.max())} does not fit {width} bits (at most {2**width - 1})"
    bad = (gaps != eg) | (vals != ev)
    if bad.any():
        i = int(np.argmax(bad))
        return f"entry {i} is (gap {int(gaps[i])}, value {vals[i]!r}), expected (gap {int(eg[i])}, value {ev[i]!r})"
    return None


def _relative_cases(rng):
    cases = []
    for n, density, width in [(200, 0.05, 3), (500, 0.02, 4), (64, 0.5, 2), (300, 0.1, 5), (1000, 0.01, 5)]:
        x = np.where(rng.random(n) < density, rng.integers(1, 16, n), 0)
        cases.append(Case((x, width), label=f"{n} entries, density {density}, {width}-bit gaps"))
    return cases


relative_encode = Exercise(
    "relative_encode",
    _relative_encode,
    fixed_cases=[
        Case((np.array([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]), 3), label="the 3-bit example above"),
        Case((np.array([3, 1, 0, 2]), 2), label="no long gaps"),
        Case((np.array([0] * 8 + [4]), 3), label="a gap of exactly 8 zeros, 3 bits"),
        Case((np.array([0] * 7 + [4]), 3), label="a gap of exactly 7 zeros, 3 bits"),
        Case((np.zeros(5, dtype=np.int64), 2), label="all zeros"),
    ],
    cases=_relative_cases,
    compare=_compare_relative,
    pass_line="relative_encode: gaps and filler zeros exact on 10 arrays",
)

# --- 3. the compression ratio of a layer -------------------------------------------------------


def code_bits(K) -> int:
    """Bits of one fixed-width weight code for ``K`` shared non-zero values: ``ceil(log2(K + 1))``.

    Code 0 is reserved for "weight 0" (fillers and pruned positions), codes 1..K name the codebook
    entries: K + 1 symbols in all, as in :mod:`labkit.codec.modelfile`.
    """
    return max(1, math.ceil(math.log2(int(K) + 1)))


def reference_layer_ratio(W, index_bits):
    """Float32 bytes of ``W`` over its pruned + shared form before Huffman coding.

    ``4·W.size / (4·K + ceil(m·c/8) + ceil(m·index_bits/8))`` with K the distinct non-zero values
    of ``W`` (the codebook), ``c = ceil(log2(K + 1))`` bits per code and ``m`` the stored entries of
    ``relative_encode(W.ravel(), index_bits)``, fillers included: the codebook and the two
    fixed-width streams of the codec's sparse layout.
    """
    W = np.asarray(W)
    K = int(np.unique(W[W != 0]).size)
    m = _relative_encode(W.ravel(), index_bits)[0].size
    return 4 * W.size / (4 * K + math.ceil(m * code_bits(K) / 8) + math.ceil(m * index_bits / 8))


def _compare_ratio(got, expected, case):
    W, ib = case.args
    if isinstance(got, (str, bytes, bool, np.bool_)):
        return f"return the ratio as a float, got {type(got).__name__}"
    try:
        got = float(got)
    except (TypeError, ValueError):
        return f"return the ratio as a float, got {type(got).__name__}"
    if math.isclose(got, expected, rel_tol=1e-9):
        return None
    nnz = int(np.count_nonzero(W))
    K = int(np.unique(W[W != 0]).size)
    m = _relative_encode(np.asarray(W).ravel(), ib)[0].size
    c = code_bits(K)
    b = max(1, math.ceil(math.log2(K)))  # the bits of the k-means index without the reserved code

    def ratio(codebook, entries, bits, index_bits, to_bytes=lambda n: math.ceil(n / 8)):
        return 4 * W.size / (codebook + to_bytes(entries * bits) + to_bytes(entries * index_bits))

    if math.isclose(got, 1 / expected, rel_tol=1e-6):
        return "that is the inverse: original bytes / compressed bytes"
    variants = [
        (
            ratio(4 * K, m, b, ib),
            f"you coded each entry in ceil(log2 K) = {b} bits; the codec reserves code 0 for zeros and fillers, so "
            f"K = {K} shared values need ceil(log2(K + 1)) = {c} bits",
        ),
        (
            ratio(4 * K, nnz, c, ib),
            f"you left out the {m - nnz} filler zeros: count every stored entry of relative_encode ({m}, not {nnz})",
        ),
        (
            ratio(4 * K, nnz, b, ib),
            f"two things: count the {m - nnz} filler zeros too, and code each entry in ceil(log2(K + 1)) = {c} bits "
            "(code 0 is reserved for zeros)",
        ),
        (ratio(0, m, c, ib), "you left out the codebook: K float32 values, 4 bytes each"),
        (
            ratio(4 * (K + 1), m, c, ib),
            "the codebook holds only the K non-zero shared values (4 bytes each); zero needs no entry, it is code 0",
        ),
        (
            ratio(4 * 2**b, m, c, ib),
            f"the codebook holds the K = {K} distinct non-zero values of W, not 2^{b} = {2**b} entries",
        ),
        (ratio(4 * K, m, c, ib, to_bytes=lambda n: n), "you counted bits as bytes: divide the bit counts by 8"),
        (
            ratio(4 * K, m, c, ib, to_bytes=lambda n: n / 8),
            "each stream occupies whole bytes: round each stream's bit count up with ceil(bits / 8)",
        ),
    ]
    for value, hint in variants:
        if math.isclose(got, value, rel_tol=1e-9):
            return hint
    return f"ratio {got:.6g}, expected {expected:.6g} (K = {K} shared values, {c}-bit codes, {m} stored entries)"


def _ratio_cases(rng):
    cases = []
    for shape, density, k, ib in [((30, 40), 0.1, 16, 5), ((100, 50), 0.05, 32, 5), ((20, 20), 0.3, 7, 3),
                                  ((300, 10), 0.02, 5, 4)]:  # fmt: skip
        cb = np.unique(rng.standard_normal(k).astype(np.float32))
        W = np.where(rng.random(shape) < density, cb[rng.integers(0, cb.size, shape)], 0).astype(np.float32)
        K = int(np.unique(W[W != 0]).size)
        cases.append(Case((W, ib), label=f"{shape}, density {density}, K = {K} shared values, {ib}-bit indices"))
    return cases


layer_compression_ratio = Exercise(
    "layer_compression_ratio",
    reference_layer_ratio,
    fixed_cases=[
        Case(
            (np.tile(np.array([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5], np.float32), (8, 1)), 3),
            label="the 3-bit example, 8 rows: K = 2 shared values",
        ),
        Case(
            (np.tile(np.array([0.5, 0, 0, -0.25] + [0] * 5 + [1.0] + [0] * 7 + [0.5], np.float32), (4, 1)), 2),
            label="K = 3 shared values (2-bit codes), 2-bit indices",
        ),
    ],
    cases=_ratio_cases,
    compare=_compare_ratio,
    pass_line="layer_compression_ratio: exact on 6 pruned, shared layers, as the codec stores them",
)

# --- 4. the size-budget challenge -------------------------------------------------------------

BUDGET_BYTES = 32 * 1024
BUDGET_MIN_ACCURACY = 0.85
#: the splits the challenge is measured on: validation while choosing, test once at the end
SPLITS = ("validation", "test")


def size_budget_verdict(path, X, y, budget=BUDGET_BYTES, min_accuracy=BUDGET_MIN_ACCURACY, split="test") -> str:
    """The line :func:`size_budget` prints: pass line or ``FAIL: ...`` (the file is loaded, not trusted).

    ``split`` names the images ``(X, y)`` in the line: ``"validation"`` while choosing, ``"test"`` once
    the choice is final.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(path)
    if not path.is_file():
        return FAIL + f"no file at {path}: save your model with labkit.codec.save_compressed(model, path)"
    size = path.stat().st_size
    if size > budget:
        return FAIL + f"{path.name} has {size:,} bytes, over the budget of {budget:,}"
    try:
        model = load_compressed(path)
    except ValueError as exc:
        return FAIL + f"{path.name} does not load: {exc}"
    try:
        acc = float(np.mean(model.predict(X) == y))
    except ValueError as exc:
        return FAIL + f"the loaded model cannot classify the {split} images: {exc}"
    want = f"{100 * min_accuracy:.0f}%"
    if acc < min_accuracy:
        return FAIL + f"the loaded model reaches {100 * acc:.2f}% {split} accuracy; the challenge asks for {want}"
    return (
        f"size_budget: the saved file loads, fits in {budget // 1024} KB and reaches at least {want} {split} accuracy"
    )


def size_budget(path, X, y, split="test") -> None:
    """Check cell of the size-budget challenge: prints one line (``split`` names the images)."""
    print(size_budget_verdict(path, X, y, split=split))
