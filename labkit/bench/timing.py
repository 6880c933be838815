"""Timing that can be trusted: warm-up, repeats, robust statistics, contenders in alternating blocks.

A single wall-clock reading of a millisecond kernel says little: caches, frequency scaling and other
processes move it. ``timeit`` runs the call ``warmup`` times untimed, then ``repeat`` times timed,
and reports the median with its spread. Compare kernels only against peers timed in the same run,
and better still in alternating blocks (``timeit_interleaved``), so that a burst of load from
another process slows all of them alike instead of whichever happened to be running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Timing", "timeit", "timeit_interleaved", "timing_from_samples"]


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
    return Timing(
        float(med), float(samples.min()), float(samples.max()), float(q1), float(q3), samples.size, nbytes, flops
    )
