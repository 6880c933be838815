"""Global top-k magnitude selection over many arrays, without concatenating them.

Global magnitude pruning removes the ``k`` weights of smallest ``|w|`` across all layers. The obvious
way, ``np.partition(np.abs(np.concatenate([w.ravel() for w in ws])), k)``, copies every weight twice
and does an O(n) but branchy selection on the copy. Here the selection is a two-pass radix select on
the bit patterns of ``|w|``:

For float32 ``v >= 0``, the IEEE-754 bit pattern read as an unsigned integer is monotone in ``v``
(sign 0, then exponent, then mantissa). So the k-th smallest ``|w|`` is the k-th smallest integer key
``bits(w) & 0x7fffffff``, found in the spirit of Floyd and Rivest's SELECT (1975):

1. sort an evenly strided sample of ~65536 keys and take a bracket ``[lo, hi]`` around its
   ``k/n`` quantile, ±4 standard deviations wide;
2. one branch-free, vectorized, parallel pass over every array counts the keys below and inside the
   bracket (if the k-th key is not inside — a sample that misled, e.g. on sorted weights — the
   bracket is widened to the missed end and the pass repeated);
3. a second pass gathers the few keys inside the bracket (about 1 % of them); ``np.partition`` of
   those gives the exact k-th key.

Two streaming reads of the weights, no copy of the whole and no sort: O(n). Small inputs
(<= 262144 weights) are selected directly with ``np.partition``.

Semantics (the contract ``labkit.prune`` relies on)
---------------------------------------------------
``global_topk_threshold(arrays, k)`` returns ``t``, the k-th smallest ``|w|`` over all arrays
(1-based; ``-inf`` for k = 0). ``global_magnitude_masks(arrays, k)`` removes *exactly* k weights:
every weight with ``|w| < t``, then as many weights with ``|w| == t`` as are still needed, taken in a
fixed order — arrays in list order, and within an array in C (row-major) order of the flat index.
Masks are bool, True = kept. NaN counts as larger than every magnitude (as in ``np.sort``); a k that
would remove a NaN raises ValueError.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange
from numba.typed import List

from ..validation import check_int

__all__ = [
    "global_topk_threshold",
    "global_magnitude_masks",
    "global_topk_threshold_reference",
    "global_magnitude_masks_reference",
]


def _as_list(arrays) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    try:
        arrays = list(arrays)
    except TypeError:
        raise TypeError(f"arrays must be a list of float32 arrays, got {type(arrays).__name__}") from None
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"arrays[{i}] must be a numpy array, got {type(a).__name__}")
        if a.dtype != np.float32:
            raise TypeError(f"arrays[{i}] must be float32 (weights), got {a.dtype}")
    return arrays


def _check_k(k, n):
    return check_int("k", k, 0, n, what=" (the number of weights to remove)")


# ----------------------------------------------------------------------------------------------
# numpy references
# ----------------------------------------------------------------------------------------------


def global_topk_threshold_reference(arrays, k: int) -> float:
    """k-th smallest ``|w|`` of the concatenation (``-inf`` for k = 0), via ``np.partition``."""
    mags = np.abs(np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]))
    return float("-inf") if k == 0 else float(np.partition(mags, k - 1)[k - 1])


def global_magnitude_masks_reference(arrays, k: int) -> list[np.ndarray]:
    """Remove the k smallest ``|w|``, ties in (array, C-order index) order, via a stable argsort."""
    mags = np.abs(np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]))
    keep = np.ones(mags.size, bool)
    keep[np.argsort(mags, kind="stable")[:k]] = False
    out, start = [], 0
    for a in arrays:
        out.append(keep[start : start + a.size].reshape(a.shape))
        start += a.size
    return out


# ----------------------------------------------------------------------------------------------
# numba cores (u: the array's bits as a flat uint32 view)
# ----------------------------------------------------------------------------------------------


# Pattern used throughout labkit.kernels: the prange loop only splits work into chunks and calls a
# serial jitted function on each; numba's parallel lowering vectorizes a loop written inline in a
# prange body far worse (measured 5-9x slower here).


@njit(cache=True)
def _count_chunk(u, lo, hi):
    c0 = 0
    c1 = 0
    for p in range(u.shape[0]):
        key = u[p] & np.uint32(0x7FFFFFFF)
        c0 += key < lo
        c1 += (key >= lo) & (key <= hi)
    return c0, c1


# All arrays are handled in one parallel region: a task table (array, start, end) splits them into
# chunks, and numba.typed.List carries the arrays. (One region per array would pay the thread
# pool's wake-up once per layer, which is costly on a busy machine.)


@njit(cache=True, parallel=True)
def _count_bracket(bits, tasks, lo, hi, counts):
    """counts[t] = (#keys < lo, #keys in [lo, hi]) over task t: branch-free, vectorized."""
    for t in prange(tasks.shape[0]):
        u = bits[tasks[t, 0]]
        c0, c1 = _count_chunk(u[tasks[t, 1] : tasks[t, 2]], lo, hi)
        counts[t, 0] = c0
        counts[t, 1] = c1


@njit(cache=True)
def _gather_chunk(u, lo, hi, buf, c):
    for p in range(u.shape[0]):
        key = u[p] & np.uint32(0x7FFFFFFF)
        if (key - lo) <= (hi - lo):  # one rarely taken branch
            buf[c] = key
            c += 1


@njit(cache=True, parallel=True)
def _gather_bracket(bits, tasks, lo, hi, offsets, buf):
    """Copy the keys in [lo, hi] of task t to buf[offsets[t]:] (they are rare: the branch predicts well)."""
    for t in prange(tasks.shape[0]):
        u = bits[tasks[t, 0]]
        _gather_chunk(u[tasks[t, 1] : tasks[t, 2]], lo, hi, buf, offsets[t])


@njit(cache=True)
def _keep_ge_chunk(u, tkey, keep):
    for p in range(u.shape[0]):
        keep[p] = (u[p] & np.uint32(0x7FFFFFFF)) >= tkey


@njit(cache=True, parallel=True)
def _keep_ge(bits, tasks, tkey, keeps):
    for t in prange(tasks.shape[0]):
        a, s, e = tasks[t, 0], tasks[t, 1], tasks[t, 2]
        _keep_ge_chunk(bits[a][s:e], tkey, keeps[a][s:e])


@njit(cache=True)
def _drop_first_ties(u, tkey, keep, r):
    """Set keep False on the first r entries whose key equals tkey; return how many were dropped."""
    done = 0
    for p in range(u.shape[0]):
        if done == r:
            break
        if (u[p] & np.uint32(0x7FFFFFFF)) == tkey:
            keep[p] = False
            done += 1
    return done


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint32)


def _tasks(sizes, per_thread: int = 4) -> np.ndarray:
    """(ntask, 3) int64 rows (array index, start, end): ~per_thread chunks per thread over all arrays."""
    nt = max(1, get_num_threads())
    target = max(1 << 14, -(-sum(sizes) // (per_thread * nt)))
    rows = []
    for i, m in enumerate(sizes):
        nchunk = -(-m // target)
        rows += [(i, m * c // nchunk, m * (c + 1) // nchunk) for c in range(nchunk)]
    return np.array(rows, np.int64).reshape(-1, 3)


def _typed(arrs):
    out = List()
    for a in arrs:
        out.append(a)
    return out


_SAMPLE = 1 << 16
_NAN_KEY = 0x7F800000  # keys above this are NaN


def _keys(a: np.ndarray) -> np.ndarray:
    return _bits(a) & np.uint32(0x7FFFFFFF)


def _select(arrays, k):
    """(threshold key, number of keys strictly below it) of the k-th smallest key, 1 <= k <= n."""
    tkey, below = _select_key(arrays, k)
    if tkey > _NAN_KEY:
        n_nan = sum(int(np.isnan(a).sum()) for a in arrays)
        raise ValueError(f"k = {k} reaches into the {n_nan} NaN weights (NaN counts as the largest magnitude)")
    return tkey, below


def _select_key(arrays, k):
    n = sum(a.size for a in arrays)
    if n <= 4 * _SAMPLE:  # small: select directly
        keys = np.concatenate([_keys(a) for a in arrays])
        tkey = np.partition(keys, k - 1)[k - 1]
        return np.uint32(tkey), int(np.count_nonzero(keys < tkey))
    # 1. a bracket [lo, hi] around the k-th key from an evenly strided sample of ~65536 keys
    step = max(1, n // _SAMPLE)
    sample = np.sort(np.concatenate([_bits(a)[::step] & np.uint32(0x7FFFFFFF) for a in arrays if a.size]))
    s, q = sample.size, k / n
    d = int(4 * np.sqrt(s * q * (1 - q))) + 16  # ~4 standard deviations of the sample quantile
    i = int(q * s)
    lo = sample[i - d] if i - d >= 0 else np.uint32(0)
    hi = sample[i + d] if i + d < s else np.uint32(0x7FFFFFFF)
    bits = _typed([_bits(a) for a in arrays])
    tasks = _tasks([a.size for a in arrays])
    counts = np.zeros((tasks.shape[0], 2), np.int64)
    for _ in range(2):
        # 2. one vectorized pass: how many keys fall below / inside the bracket, per chunk
        _count_bracket(bits, tasks, np.uint32(lo), np.uint32(hi), counts)
        below, inside = (int(v) for v in counts.sum(axis=0))
        if below < k <= below + inside:
            break
        # an unlucky sample (e.g. sorted weights): widen the bracket to the end it missed and recount
        lo, hi = (np.uint32(0), hi) if k <= below else (lo, np.uint32(0x7FFFFFFF))
    # 3. gather the keys inside the bracket and select exactly among them
    buf = np.empty(inside, np.uint32)
    offsets = np.concatenate([[0], np.cumsum(counts[:-1, 1])]).astype(np.int64)
    _gather_bracket(bits, tasks, np.uint32(lo), np.uint32(hi), offsets, buf)
    tkey = np.partition(buf, k - below - 1)[k - below - 1]
    return np.uint32(tkey), below + int(np.count_nonzero(buf < tkey))


def global_topk_threshold(arrays, k: int) -> float:
    """The k-th smallest magnitude ``|w|`` over all ``arrays`` (1-based), without concatenating them.

    Parameters
    ----------
    arrays : list of float32 arrays (any shapes; non-contiguous ones are copied)
    k : int in [0, total size]
        How many weights global pruning removes (``floor(sparsity · total)``).

    Returns
    -------
    float
        ``t`` such that removing every ``|w| < t`` and then ``k - count(|w| < t)`` of the weights with
        ``|w| == t`` removes exactly k (see :func:`global_magnitude_masks` for which ties go).
        ``-inf`` when k = 0. Equal to :func:`global_topk_threshold_reference`.
    """
    arrays = _as_list(arrays)
    k = _check_k(k, sum(a.size for a in arrays))
    if k == 0:
        return float("-inf")
    tkey, _ = _select(arrays, k)
    return float(np.array([tkey], np.uint32).view(np.float32)[0])


def global_magnitude_masks(arrays, k: int) -> list[np.ndarray]:
    """Masks (bool, True = kept, one per array, same shapes) that remove exactly the k smallest ``|w|``.

    Removed: all ``|w| < t`` (``t`` = :func:`global_topk_threshold`), then the first weights with
    ``|w| == t`` in (array order, C-order flat index) until k are removed. Equal to
    :func:`global_magnitude_masks_reference`.
    """
    arrays = _as_list(arrays)
    k = _check_k(k, sum(a.size for a in arrays))
    if k == 0:
        return [np.ones(a.shape, bool) for a in arrays]
    tkey, below = _select(arrays, k)
    masks = [np.empty(a.size, bool) for a in arrays]
    _keep_ge(_typed([_bits(a) for a in arrays]), _tasks([a.size for a in arrays]), tkey, _typed(masks))
    r = k - below  # ties to remove, >= 1
    for a, keep in zip(arrays, masks):
        if r == 0:
            break
        if a.size:
            r -= int(_drop_first_ties(_bits(a), tkey, keep, np.int64(r)))
    return [m.reshape(a.shape) for m, a in zip(masks, arrays)]
