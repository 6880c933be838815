"""One size for every thread pool in the process, so that pools do not fight over the cores while timing.

numpy's BLAS and OpenMP runtimes (through threadpoolctl), numba and PyTorch each keep their own pool;
left alone, two of them can each start one thread per core and slow each other down.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["thread_limits"]


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
