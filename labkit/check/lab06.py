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
from .answers import show
from .exercise import FAIL, Case, Exercise
from .hints import Hints, accept

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


def _lengths(a):
    """The answer as int64 code lengths (after :func:`_lengths_form` and :func:`_whole_bits` passed)."""
    return np.asarray(a.got).astype(np.int64)


def _lengths_form(a):
    f = np.asarray(a.args[0])
    try:
        L = np.asarray(a.got)
    except Exception:  # noqa: BLE001 - a ragged or odd object
        return f"return an array of code lengths, got {type(a.got).__name__}"
    return f"return one length per symbol: shape {f.shape}, got {L.shape}" if L.shape != f.shape else None


def _whole_bits(a):
    L = np.asarray(a.got)
    if L.dtype.kind not in "iu" and not (L.dtype.kind == "f" and np.all(L == np.round(L))):
        return f"code lengths are whole numbers of bits, got dtype {L.dtype}"
    return None


def _zero_length(a):
    L, n = _lengths(a), np.asarray(a.args[0]).size
    if L.min() < 1:
        return f"every symbol needs a code of at least 1 bit when there are {n} symbols, got a length {L.min()}"
    return None


def _not_a_prefix_code(a):
    kraft = sum(Fraction(1, 2 ** int(n)) for n in _lengths(a))
    if kraft > 1:
        return f"no prefix code has these lengths: sum of 2^-L is {float(kraft):.4g} > 1 (Kraft inequality)"
    return None


def _not_optimal(a):
    f, L = np.asarray(a.args[0]), _lengths(a)
    cost, best = int(np.dot(f, L)), int(np.dot(f, a.expected))
    if cost > best:
        extra = " (that is a fixed-length code)" if np.all(L == math.ceil(math.log2(f.size))) else ""
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
    compare=Hints(_lengths_form, _whole_bits, _zero_length, _not_a_prefix_code, _not_optimal),
    pass_line="huffman_code_lengths: optimal prefix codes for 9 frequency tables",
)

# --- 2. relative indices with filler zeros ------------------------------------------------------


def _not_a_pair(a):
    if not isinstance(a.got, (tuple, list)) or len(a.got) != 2:
        return f"return a pair (gaps, values), got {type(a.got).__name__}"
    return None


def _streams(a):
    """(gaps, values) of the answer as arrays, and the expected (gaps, values)."""
    gaps, vals = (np.asarray(g) for g in a.got)
    return gaps, vals, *a.expected


def _fillers_missing(a):
    x, width = a.args
    gaps, vals, eg, ev = _streams(a)
    nnz = int(np.count_nonzero(x))
    if (gaps.shape != eg.shape or vals.shape != ev.shape) and gaps.size == nnz and eg.size > nnz:
        return (
            f"you stored {gaps.size} entries, one per non-zero; {eg.size - nnz} filler zeros are missing: a gap "
            f"above {2**width - 1} zeros does not fit {width} bits"
        )
    return None


def _entry_count(a):
    gaps, vals, eg, ev = _streams(a)
    if gaps.shape != eg.shape or vals.shape != ev.shape:
        nnz = int(np.count_nonzero(a.args[0]))
        return f"you stored {gaps.size} entries, expected {eg.size} ({nnz} non-zeros + fillers)"
    return None


def _position_differences(a):
    gaps, _, eg, _ = _streams(a)
    if gaps.size and np.array_equal(gaps, eg + 1):
        return "your gaps are position differences; store the number of zeros skipped (difference − 1)"
    return None


def _gap_too_wide(a):
    width, gaps = a.args[1], _streams(a)[0]
    if gaps.size and gaps.max() > 2**width - 1:
        return f"a gap of {int(gaps.max())} does not fit {width} bits (at most {2**width - 1})"
    return None


def _wrong_entry(a):
    gaps, vals, eg, ev = _streams(a)
    bad = (gaps != eg) | (vals != ev)
    if bad.any():
        i = int(np.argmax(bad))
        got, want = f"(gap {int(gaps[i])}, value {show(vals[i])})", f"(gap {int(eg[i])}, value {show(ev[i])})"
        return f"entry {i} is {got}, expected {want}"
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
    compare=Hints(_not_a_pair, _fillers_missing, _entry_count, _position_differences, _gap_too_wide, _wrong_entry),
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


def _ratio_not_a_float(a):
    if isinstance(a.got, (str, bytes, bool, np.bool_)):
        return f"return the ratio as a float, got {type(a.got).__name__}"
    try:
        float(a.got)
    except (TypeError, ValueError):
        return f"return the ratio as a float, got {type(a.got).__name__}"
    return None


@accept
def _ratio_close(a):
    return math.isclose(float(a.got), a.expected, rel_tol=1e-9)


def _inverse(a):
    if math.isclose(float(a.got), 1 / a.expected, rel_tol=1e-6):
        return "that is the inverse: original bytes / compressed bytes"
    return None


def _counts(a):
    """(nnz, K distinct non-zero values, m stored entries, c code bits, b = ceil(log2 K) bits) of the case."""
    W, ib = a.args
    nnz = int(np.count_nonzero(W))
    K = int(np.unique(W[W != 0]).size)
    m = _relative_encode(np.asarray(W).ravel(), ib)[0].size
    return nnz, K, m, code_bits(K), max(1, math.ceil(math.log2(K)))


def _ratio(a, codebook, entries, bits, to_bytes=lambda n: math.ceil(n / 8)):
    """4 · W.size over the bytes of a codebook and two streams of ``entries`` codes of ``bits`` and index bits."""
    W, ib = a.args
    return 4 * W.size / (codebook + to_bytes(entries * bits) + to_bytes(entries * ib))


def _ratio_mistake(name, value_of, why):
    """A detector named ``name``: the answer equals ``value_of(a, nnz, K, m, c, b)``; hint ``why(nnz, K, m, c, b)``."""

    def detector(a):
        counts = a.memo(_counts)
        return why(*counts) if math.isclose(float(a.got), value_of(a, *counts), rel_tol=1e-9) else None

    detector.__name__ = detector.__qualname__ = name
    return detector


def _codebook_too_big(a):
    """A codebook that holds zero too (K + 1 entries) or 2^ceil(log2 K) entries; for K + 1 = 2^b, both."""
    _, K, m, c, b = a.memo(_counts)
    with_zero, full = (math.isclose(float(a.got), _ratio(a, 4 * n, m, c), rel_tol=1e-9) for n in (K + 1, 2**b))
    if with_zero and full:
        return (
            f"the codebook holds the K = {K} distinct non-zero values of W, 4 bytes each: zero needs no entry (it is "
            f"code 0), and neither do unused codes ({2**b} = K + 1 entries here)"
        )
    if with_zero:
        return "the codebook holds only the K non-zero shared values (4 bytes each); zero needs no entry, it is code 0"
    if full:
        return f"the codebook holds the K = {K} distinct non-zero values of W, not 2^{b} = {2**b} entries"
    return None


_RATIO_MISTAKES = [
    _ratio_mistake(
        "_no_reserved_code",
        lambda a, nnz, K, m, c, b: _ratio(a, 4 * K, m, b),
        lambda nnz, K, m, c, b: (
            f"you coded each entry in ceil(log2 K) = {b} bits; the codec reserves code 0 for zeros and fillers, so "
            f"K = {K} shared values need ceil(log2(K + 1)) = {c} bits"
        ),
    ),
    _ratio_mistake(
        "_no_fillers",
        lambda a, nnz, K, m, c, b: _ratio(a, 4 * K, nnz, c),
        lambda nnz, K, m, c, b: (
            f"you left out the {m - nnz} filler zeros: count every stored entry of relative_encode ({m}, not {nnz})"
        ),
    ),
    _ratio_mistake(
        "_no_fillers_no_reserved_code",
        lambda a, nnz, K, m, c, b: _ratio(a, 4 * K, nnz, b),
        lambda nnz, K, m, c, b: (
            f"two things: count the {m - nnz} filler zeros too, and code each entry in ceil(log2(K + 1)) = {c} bits "
            "(code 0 is reserved for zeros)"
        ),
    ),
    _ratio_mistake(
        "_no_codebook",
        lambda a, nnz, K, m, c, b: _ratio(a, 0, m, c),
        lambda *_: "you left out the codebook: K float32 values, 4 bytes each",
    ),
    _codebook_too_big,
    _ratio_mistake(
        "_bits_as_bytes",
        lambda a, nnz, K, m, c, b: _ratio(a, 4 * K, m, c, to_bytes=lambda n: n),
        lambda *_: "you counted bits as bytes: divide the bit counts by 8",
    ),
    _ratio_mistake(
        "_fractional_bytes",
        lambda a, nnz, K, m, c, b: _ratio(a, 4 * K, m, c, to_bytes=lambda n: n / 8),
        lambda *_: "each stream occupies whole bytes: round each stream's bit count up with ceil(bits / 8)",
    ),
]


def _wrong_ratio(a):
    _, K, m, c, _ = a.memo(_counts)
    counts = f"K = {K} shared values, {c}-bit codes, {m} stored entries"
    return f"ratio {float(a.got):.6g}, expected {a.expected:.6g} ({counts})"


def _ratio_cases(rng):
    cases = []
    layers = [((30, 40), 0.1, 16, 5), ((100, 50), 0.05, 32, 5), ((20, 20), 0.3, 7, 3), ((300, 10), 0.02, 5, 4)]
    for shape, density, k, ib in layers:
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
    compare=Hints(_ratio_not_a_float, _ratio_close, _inverse, *_RATIO_MISTAKES, _wrong_ratio),
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
