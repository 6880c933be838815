"""One size for every thread pool in the process, so that pools do not fight over the cores while timing.

numpy's BLAS and OpenMP runtimes (through threadpoolctl), numba and PyTorch each keep their own pool;
left alone, two of them can each start one thread per core and slow each other down.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

from .timing import timeit

__all__ = ["thread_limits", "parallel_call_cost"]


@functools.cache  # compiled (or loaded from numba's cache) once per process
def _empty_parallel_loop():
    from numba import njit, prange

    @njit(cache=True, parallel=True)
    def touch(y):
        for i in prange(y.shape[0]):
            y[i] += 1.0

    return touch


def parallel_call_cost(repeat: int = 200) -> tuple[float, float]:
    """Median and fastest time (seconds) of a numba parallel loop that does nothing but wake the pool.

    Every parallel kernel call pays this once (a 4096 × 4096 int4 GEMV takes a few tenths of a ms,
    so it matters there). It depends on the threading layer and on how fast the OS wakes a sleeping
    thread: much more in a virtual machine whose idle vCPUs halt than on a laptop.
    """
    import numpy as np

    touch = _empty_parallel_loop()
    timing = timeit(touch, np.zeros(64), repeat=repeat, warmup=1)
    return timing.median, timing.min


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
        desc = f"{n} threads: threadpoolctl.threadpool_limits({n}) on [{pools}]; numba.set_num_threads({n_numba})" + (
            f"; torch.set_num_threads({n})" if torch is not None else ""
        )
        try:
            yield desc
        finally:
            numba.set_num_threads(old_numba)
            if torch is not None:
                torch.set_num_threads(old_torch)
