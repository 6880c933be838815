"""Timing that can be trusted: warm-up, repeats, robust statistics; bandwidth, a roofline, thread control.

A single wall-clock reading of a millisecond kernel says little: caches, frequency scaling and other
processes move it. ``timeit`` runs the call ``warmup`` times untimed, then ``repeat`` times timed,
and reports the median with its spread. Compare kernels only against peers timed in the same run,
and better still in alternating blocks (``timeit_interleaved``), so that a burst of load from
another process slows all of them alike instead of whichever happened to be running.

Why a kernel takes the time it does is answered by two numbers of the machine (Williams, Waterman
and Patterson, "Roofline", CACM 2009): the memory bandwidth B (bytes/s, measured by
:func:`bandwidth`) and the peak arithmetic rate P (operations/s; :func:`compute_peak` measures
float32 GEMM through BLAS as a practical stand-in). A kernel doing F operations on Q bytes has
arithmetic intensity I = F / Q and can run at most at ``min(P, B · I)`` (:func:`roofline`):
below the ridge point I = P / B it is memory-bound, above it compute-bound. GEMV (I ≈ 0.5 flop/byte
in float32) and SpMV sit far left of the ridge, so their time is bytes / bandwidth: fewer bytes
(sparsity, int8) is the only way to make them faster.

:func:`thread_limits` pins the thread pools (numpy's BLAS and OpenMP through threadpoolctl, numba,
PyTorch) to one size, so that pools do not fight over the cores while timing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Timing",
    "timeit",
    "timeit_interleaved",
    "timing_from_samples",
    "Bandwidth",
    "bandwidth",
    "compute_peak",
    "roofline",
    "ridge_point",
    "thread_limits",
]


@dataclass(frozen=True)
class Timing:
    """Statistics of repeated timings, in seconds.

    ``gbps`` and ``gflops`` are filled when ``timeit`` is told the bytes moved or the floating-point
    (or integer) operations of one call.
    """

    median: float
    min: float
    max: float
    q1: float
    q3: float
    repeat: int
    nbytes: int | None = None
    flops: int | None = None

    @property
    def iqr(self) -> float:
        """Interquartile range (q3 - q1), a spread that ignores the odd outlier."""
        return self.q3 - self.q1

    @property
    def gbps(self) -> float | None:
        return None if self.nbytes is None else self.nbytes / self.median / 1e9

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / self.median / 1e9

    def __str__(self) -> str:
        s = f"{self.median * 1e3:.3f} ms (median of {self.repeat}, IQR {self.iqr * 1e3:.3f} ms)"
        if self.gbps is not None:
            s += f", {self.gbps:.2f} GB/s"
        if self.gflops is not None:
            s += f", {self.gflops:.2f} GFLOP/s"
        return s


def timeit(
    fn,
    *args,
    repeat: int = 20,
    warmup: int = 3,
    nbytes: int | None = None,
    flops: int | None = None,
    min_time: float = 0.0,
    **kwargs,
) -> Timing:
    """Time ``fn(*args, **kwargs)``.

    Parameters
    ----------
    repeat : int
        Timed calls (at least 1).
    warmup : int
        Untimed calls first (JIT compilation, caches, lazy allocation).
    nbytes, flops : int, optional
        Bytes moved / operations done by one call, to report GB/s or GFLOP/s.
    min_time : float
        If > 0, each timed sample loops the call until it lasts at least this many seconds and
        reports the per-call time (for calls shorter than the clock's resolution).
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"repeat must be >= 1 and warmup >= 0, got {repeat} and {warmup}")
    for _ in range(warmup):
        fn(*args, **kwargs)
    inner = 1
    if min_time > 0:
        while True:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn(*args, **kwargs)
            if time.perf_counter() - t0 >= min_time or inner >= 1 << 20:
                break
            inner *= 2
    samples = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn(*args, **kwargs)
        samples[i] = (time.perf_counter() - t0) / inner
    return timing_from_samples(samples, nbytes=nbytes, flops=flops)


def timeit_interleaved(
    fns,
    repeat: int = 20,
    warmup: int = 2,
    rounds: int = 3,
    settle: float = 0.15,
    nbytes=None,
    flops=None,
) -> dict[str, Timing]:
    """Time several zero-argument calls in alternating blocks, for ratios that survive load.

    Each contender's ``repeat`` timed calls are split into ``rounds`` blocks, and the blocks of all
    contenders alternate, in an order that rotates from round to round. A burst of load from
    another process then falls on every contender rather than on whichever ran at the time. Before
    each block the timer sleeps ``settle`` seconds and makes ``warmup`` untimed calls: thread pools
    keep spinning after a call (OpenBLAS for about 0.1 s, measured on the 2-core reference VM, where
    an int8 GEMM timed right after a BLAS GEMM ran 1.8× slower for three calls), and a kernel's
    operands should be back in cache, as they are for a timing of that kernel alone.

    Parameters
    ----------
    fns : mapping of str to callable
        The contenders, called with no arguments.
    repeat : int
        Timed calls per contender (at least 1).
    warmup : int
        Untimed calls at the start of every block (the first also absorbs JIT compilation).
    rounds : int
        Blocks per contender (at least 1; at most ``repeat``).
    settle : float
        Seconds of sleep before each block.
    nbytes, flops : mapping of str to int, optional
        Bytes moved / operations of one call, per contender name (missing names: not reported).

    Returns
    -------
    dict of str to Timing, in the order of ``fns``.
    """
    if repeat < 1 or warmup < 0 or not 1 <= rounds <= repeat or settle < 0:
        raise ValueError(
            "need repeat >= 1, warmup >= 0, 1 <= rounds <= repeat and settle >= 0; "
            f"got repeat={repeat}, warmup={warmup}, rounds={rounds}, settle={settle}"
        )
    names = list(fns)
    if not names:
        raise ValueError("need at least one function to time")
    for name in names:
        if not callable(fns[name]):
            raise TypeError(f"fns[{name!r}] must be callable, got {type(fns[name]).__name__}")
    nbytes, flops = dict(nbytes or {}), dict(flops or {})
    unknown = (set(nbytes) | set(flops)) - set(names)
    if unknown:
        raise ValueError(f"nbytes/flops name contenders that are not in fns: {sorted(unknown)}")
    block_sizes = [len(b) for b in np.array_split(np.arange(repeat), rounds)]
    samples = {name: [] for name in names}
    for r, size in enumerate(block_sizes):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            fn = fns[name]
            if settle:
                time.sleep(settle)
            for _ in range(warmup):
                fn()
            for _ in range(size):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {n: timing_from_samples(samples[n], nbytes=nbytes.get(n), flops=flops.get(n)) for n in names}


def timing_from_samples(samples, nbytes: int | None = None, flops: int | None = None) -> Timing:
    """A :class:`Timing` from per-call times in seconds (for loops that need untimed setup per call)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    if samples.size == 0:
        raise ValueError("need at least one timing sample")
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return Timing(float(med), float(samples.min()), float(samples.max()), float(q1), float(q3), samples.size,
                  nbytes, flops)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# thread pools
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def thread_limits(n: int | None = None):
    """Limit every thread pool in the process to ``n`` threads (default: the CPUs this process may use).

    numpy's BLAS and any OpenMP runtime through ``threadpoolctl.threadpool_limits``; numba through
    ``numba.set_num_threads``; PyTorch through ``torch.set_num_threads`` (only if torch is already
    imported). Yields a one-line description of what was set; restores the previous sizes on exit.
    """
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n_numba = min(n, numba.config.NUMBA_NUM_THREADS)
    old_numba = numba.get_num_threads()
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        numba.set_num_threads(n_numba)
        if torch is not None:
            torch.set_num_threads(n)
        pools = ", ".join(sorted({f"{p['internal_api']} ({p['user_api']})" for p in threadpool_info()}))
        desc = (f"{n} threads: threadpoolctl.threadpool_limits({n}) on [{pools}]; numba.set_num_threads({n_numba})"
                + (f"; torch.set_num_threads({n})" if torch is not None else ""))  # fmt: skip
        try:
            yield desc
        finally:
            numba.set_num_threads(old_numba)
            if torch is not None:
                torch.set_num_threads(old_torch)


# ----------------------------------------------------------------------------------------------
# bandwidth and roofline
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bandwidth:
    """Measured memory bandwidth, in GB/s (1e9 bytes/s), of a streaming read and of a copy."""

    read: float
    copy: float
    nbytes: int
    threads: int

    def __str__(self) -> str:
        return (f"read {self.read:.1f} GB/s, copy {self.copy:.1f} GB/s (read + write bytes) over "
                f"{self.nbytes / 2**20:.0f} MiB, {self.threads} thread(s)")  # fmt: skip


def _probe_kernels():
    from numba import njit, prange

    @njit(cache=True, fastmath={"reassoc", "nsz"})  # reassociation lets LLVM vectorize the sum
    def _sum_chunk(a):
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += a[i]
        return s

    @njit(cache=True, parallel=True)
    def read_probe(a, nt):
        n = a.shape[0]
        total = 0.0
        for t in prange(nt):
            total += _sum_chunk(a[n * t // nt : n * (t + 1) // nt])
        return total

    @njit(cache=True)
    def _copy_chunk(src, dst):
        for i in range(src.shape[0]):
            dst[i] = src[i]

    @njit(cache=True, parallel=True)
    def copy_probe(src, dst, nt):
        n = src.shape[0]
        for t in prange(nt):
            s, e = n * t // nt, n * (t + 1) // nt
            _copy_chunk(src[s:e], dst[s:e])

    return read_probe, copy_probe


_PROBES = None


def bandwidth(nbytes: int = 512 * 2**20, repeat: int = 10) -> Bandwidth:
    """Measure streaming read and copy bandwidth with numba's current thread count.

    Parameters
    ----------
    nbytes : int
        Size of the array read (and of each side of the copy); choose it well above the last-level
        cache, or the probe measures the cache.
    repeat : int
        Timed repeats; the median is reported.

    Returns
    -------
    Bandwidth
        ``read``: bytes read per second summing a float32 array; ``copy``: (bytes read + bytes
        written) per second copying it. Both split across numba's threads, like labkit's kernels.
    """
    global _PROBES
    import numba

    if nbytes < 4096:
        raise ValueError(f"nbytes must be at least 4096, got {nbytes}")
    if _PROBES is None:
        _PROBES = _probe_kernels()
    read_probe, copy_probe = _PROBES
    nt = numba.get_num_threads()
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    r = timeit(read_probe, a, nt, repeat=repeat, warmup=2, nbytes=a.nbytes)
    c = timeit(copy_probe, a, b, nt, repeat=repeat, warmup=2, nbytes=2 * a.nbytes)
    return Bandwidth(r.gbps, c.gbps, a.nbytes, nt)


def compute_peak(n: int = 2048, repeat: int = 5) -> float:
    """A practical compute roof: float32 GEMM (n × n × n) through numpy's BLAS, in GFLOP/s."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    return timeit(np.matmul, A, B, repeat=repeat, warmup=1, flops=2 * n**3).gflops


def ridge_point(peak_gflops: float, bandwidth_gbps: float) -> float:
    """Arithmetic intensity (operations per byte) where the memory roof meets the compute roof."""
    return peak_gflops / bandwidth_gbps


def roofline(intensity, peak_gflops: float, bandwidth_gbps: float):
    """Attainable GFLOP/s (or GOP/s) at arithmetic ``intensity`` (op/byte): ``min(peak, bandwidth · I)``.

    Works elementwise on arrays of intensities.
    """
    if peak_gflops <= 0 or bandwidth_gbps <= 0:
        raise ValueError(f"peak and bandwidth must be > 0, got {peak_gflops} and {bandwidth_gbps}")
    return np.minimum(peak_gflops, bandwidth_gbps * np.asarray(intensity, dtype=np.float64))
