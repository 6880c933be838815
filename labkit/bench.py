"""Timing that can be trusted: warm-up, repeats, and robust statistics (median, IQR).

A single wall-clock reading of a millisecond kernel says little: caches, frequency scaling and other
processes move it. ``timeit`` runs the call ``warmup`` times untimed, then ``repeat`` times timed,
and reports the median with its spread. Compare kernels only against peers timed in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Timing", "timeit"]


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
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return Timing(float(med), float(samples.min()), float(samples.max()), float(q1), float(q3), repeat, nbytes, flops)
