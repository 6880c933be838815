"""Checks for lab 06 (the deep-compression pipeline).

* ``huffman_code_lengths(freqs)``: code lengths of an optimal prefix code (any optimal one passes).
* ``relative_encode(x, width)``: gaps (zeros skipped) and values, with filler zeros (exact).
* ``layer_compression_ratio(W, bits, index_bits)``: float32 bytes of W over the bytes of its
  pruned + shared form (codebook, fixed-width weight indices and relative indices incl. fillers).
* ``size_budget(path)``: the saved compressed model loads, fits the budget and is accurate enough.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..codec import huffman_code_lengths as _huffman_code_lengths
from ..codec import load_compressed
from ..codec import relative_encode as _relative_encode
from ._core import FAIL, Case, Exercise

__all__ = [
    "huffman_code_lengths",
    "relative_encode",
    "layer_compression_ratio",
    "reference_layer_ratio",
    "size_budget",
    "size_budget_verdict",
    "BUDGET_BYTES",
    "BUDGET_MIN_ACCURACY",
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


def reference_layer_ratio(W, bits, index_bits):
    """``4·W.size / (4·2^bits + ceil(m·bits/8) + ceil(m·index_bits/8))``, m = stored entries incl. fillers."""
    m = _relative_encode(np.asarray(W).ravel(), index_bits)[0].size
    return 4 * W.size / (4 * 2**bits + math.ceil(m * bits / 8) + math.ceil(m * index_bits / 8))


def _compare_ratio(got, expected, case):
    W, bits, ib = case.args
    try:
        got = float(got)
    except (TypeError, ValueError):
        return f"return the ratio as a float, got {type(got).__name__}"
    if math.isclose(got, expected, rel_tol=1e-9):
        return None
    nnz = int(np.count_nonzero(W))
    m = _relative_encode(np.asarray(W).ravel(), ib)[0].size
    cb = 4 * 2**bits
    variants = {
        "you left out the filler zeros: count every stored entry of relative_encode": 4
        * W.size
        / (cb + math.ceil(nnz * bits / 8) + math.ceil(nnz * ib / 8)),
        "you left out the codebook: 2^bits float32 values, 4 bytes each": 4
        * W.size
        / (math.ceil(m * bits / 8) + math.ceil(m * ib / 8)),
        "you counted bits as bytes: divide the bit counts by 8": 4 * W.size / (cb + m * bits + m * ib),
    }
    if math.isclose(got, 1 / expected, rel_tol=1e-6):
        return "that is the inverse: original bytes / compressed bytes"
    for hint, value in variants.items():
        if math.isclose(got, value, rel_tol=1e-9):
            return hint
    return f"ratio {got:.6g}, expected {expected:.6g} ({nnz} non-zeros, {m} stored entries with fillers)"


def _ratio_cases(rng):
    cases = []
    for shape, density, bits, ib in [((30, 40), 0.1, 4, 5), ((100, 50), 0.05, 5, 5), ((20, 20), 0.3, 3, 3),
                                     ((300, 10), 0.02, 6, 4)]:  # fmt: skip
        cb = rng.standard_normal(2**bits).astype(np.float32)
        W = np.where(rng.random(shape) < density, cb[rng.integers(0, 2**bits, shape)], 0).astype(np.float32)
        cases.append(Case((W, bits, ib), label=f"{shape}, density {density}, {bits}-bit weights, {ib}-bit indices"))
    return cases


layer_compression_ratio = Exercise(
    "layer_compression_ratio",
    reference_layer_ratio,
    cases=_ratio_cases,
    compare=_compare_ratio,
    pass_line="layer_compression_ratio: exact on 4 pruned, shared layers",
)

# --- 4. the size-budget challenge -------------------------------------------------------------

BUDGET_BYTES = 32 * 1024
BUDGET_MIN_ACCURACY = 0.85


def size_budget_verdict(path, X, y, budget=BUDGET_BYTES, min_accuracy=BUDGET_MIN_ACCURACY) -> str:
    """The line :func:`size_budget` prints: pass line or ``FAIL: ...`` (the file is loaded, not trusted)."""
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
        return FAIL + f"the loaded model cannot classify the test images: {exc}"
    want = f"{100 * min_accuracy:.0f}%"
    if acc < min_accuracy:
        return FAIL + f"the loaded model reaches {100 * acc:.2f}% test accuracy; the challenge asks for {want}"
    return f"size_budget: the saved file loads, fits in {budget // 1024} KB and reaches at least {want} test accuracy"


def size_budget(path, X, y) -> None:
    """Check cell of the size-budget challenge: prints one line."""
    print(size_budget_verdict(path, X, y))
