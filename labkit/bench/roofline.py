"""What the machine can do: memory bandwidth, a compute roof, and the roofline that joins them.

Why a kernel takes the time it does is answered by two numbers of the machine (Williams, Waterman
and Patterson, "Roofline", CACM 2009): the memory bandwidth B (bytes/s, measured by
:func:`bandwidth`) and the peak arithmetic rate P (operations/s; :func:`compute_peak` measures
float32 GEMM through BLAS as a practical stand-in). A kernel doing F operations on Q bytes has
arithmetic intensity I = F / Q and can run at most at ``min(P, B · I)`` (:func:`roofline`):
below the ridge point I = P / B it is memory-bound, above it compute-bound. GEMV (I ≈ 0.5 flop/byte
in float32) and SpMV sit far left of the ridge, so their time is bytes / bandwidth: fewer bytes
(sparsity, int8) is the only way to make them faster.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .timing import timeit

__all__ = ["Bandwidth", "bandwidth", "compute_peak", "roofline", "ridge_point"]


@dataclass(frozen=True)
class Bandwidth:
    """Measured memory bandwidth, in GB/s (1e9 bytes/s), of a streaming read and of a copy."""

    read: float
    copy: float
    nbytes: int
    threads: int

    def __str__(self) -> str:
        return (
            f"read {self.read:.1f} GB/s, copy {self.copy:.1f} GB/s (read + write bytes) over "
            f"{self.nbytes / 2**20:.0f} MiB, {self.threads} thread(s)"
        )


@functools.cache  # compiled (or loaded from numba's cache) once per process
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
    import numba

    if nbytes < 4096:
        raise ValueError(f"nbytes must be at least 4096, got {nbytes}")
    read_probe, copy_probe = _probe_kernels()
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
