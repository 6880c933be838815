"""The runner: times labkit's kernel and its peers with one set of settings and collects the rows.

A row is one (kernel, size): labkit's median and spread, its achieved GB/s and GOP/s, the fraction of
the measured read bandwidth (of main memory and of an array of the same size), the fraction of its
roofline, and per peer its median and the ratio peer time / labkit time (> 1: labkit is faster).

The roofline of a row (Williams et al. 2009) is ``min(compute roof, read bandwidth × intensity)``
with intensity = operations / bytes of labkit's call; the compute roof is the float32 BLAS GEMM rate
measured in the same run (a practical roof, not the CPU's datasheet peak). A memory-bound kernel's
fraction is its fraction of the bandwidth; a compute-bound one's is its rate over BLAS's.
"""

from __future__ import annotations

from .goals import goal, roof_goal
from .report import format_row
from .roofline import bandwidth
from .timing import timeit, timeit_interleaved

__all__ = ["Runner"]


class Runner:
    """Collects rows: one labkit timing and its peers' timings per (kernel, size).

    Parameters
    ----------
    repeat : int
        Timed calls per contender.
    read_gbps : float
        Main-memory read bandwidth measured at the start, in GB/s (the basis of the BW% columns).
    peak_gops : float, optional
        The compute roof in GOP/s (float32 BLAS GEMM measured at the start); without it, rows get no
        roofline fraction.
    verbose : bool
        Print each row as it is added.
    rounds, settle : int, float
        Alternating blocks per contender and the pause before each, in seconds (see
        :func:`.timing.timeit_interleaved`).
    """

    def __init__(
        self, repeat: int, read_gbps: float, verbose: bool = True, rounds: int = 3, settle: float = 0.15,
        peak_gops: float | None = None,
    ):  # fmt: skip
        self.repeat = repeat
        self.peak_gops = peak_gops
        self.rounds = rounds
        self.settle = settle
        self.read_gbps = read_gbps
        self.rows = []
        self.verbose = verbose
        self._bw_at = {}

    def bw_at(self, nbytes: int) -> float:
        """Read bandwidth (GB/s) of an array of the kernel's size: caches can hold a 16-64 MiB operand."""
        key = max(4096, int(nbytes))
        if key not in self._bw_at:
            self._bw_at[key] = bandwidth(key, repeat=7).read
        return self._bw_at[key]

    def time(self, fn, *args, nbytes=None, flops=None, repeat=None):
        """``fn(*args)`` timed alone (:func:`.timing.timeit`, 2 warm-up calls), for calls that cannot alternate."""
        return timeit(fn, *args, repeat=repeat or self.repeat, warmup=2, nbytes=nbytes, flops=flops)

    def time_together(self, fns, nbytes=None, flops=None, repeat=None):
        """Interleaved timings of zero-argument calls (:func:`.timing.timeit_interleaved`): one per name."""
        repeat = repeat or self.repeat
        rounds = min(self.rounds, repeat)
        return timeit_interleaved(
            fns, repeat=repeat, warmup=2, rounds=rounds, settle=self.settle, nbytes=nbytes, flops=flops
        )

    def _roof(self, kernel, t) -> dict:
        """The roofline of a timing with bytes and operations: bound, attainable GOP/s, fraction, goal."""
        if not (t.nbytes and t.flops and self.peak_gops):
            return {"roof_bound": None, "roof_gops": None, "roof_fraction": None, "roof_target": None, "roof_met": None}
        memory_roof = self.read_gbps * t.flops / t.nbytes
        attainable = min(self.peak_gops, memory_roof)
        fraction = t.gflops / attainable
        target = roof_goal(kernel)
        return {
            "roof_bound": "memory" if memory_roof < self.peak_gops else "compute",
            "roof_gops": attainable,
            "roof_fraction": fraction,
            "roof_target": target,
            "roof_met": None if target is None else bool(fraction >= target),
        }

    def add(self, kernel, size, labkit, peers, note=""):
        """labkit: (name, Timing); peers: list of (name, Timing or None (missing) with reason)."""
        name, t = labkit
        bw_same = self.bw_at(t.nbytes) if t.nbytes else None
        row = {
            "kernel": kernel,
            "size": size,
            "labkit": name,
            "labkit_ms": t.median * 1e3,
            "labkit_iqr_ms": t.iqr * 1e3,
            "gbps": t.gbps,
            "gops": t.gflops,
            "bw_fraction": (t.gbps / self.read_gbps) if t.gbps else None,
            "read_gbps_same_size": bw_same,
            "bw_fraction_same_size": (t.gbps / bw_same) if t.gbps else None,
            **self._roof(kernel, t),
            "peers": [],
            "note": note,
        }
        for peer in peers:
            pname, pt = peer[0], peer[1]
            if pt is None:
                row["peers"].append({"peer": pname, "ms": None, "ratio": None, "missing": peer[2]})
                continue
            ratio = pt.median / t.median
            target = goal(kernel, pname)
            row["peers"].append(
                {
                    "peer": pname,
                    "ms": pt.median * 1e3,
                    "iqr_ms": pt.iqr * 1e3,
                    "ratio": ratio,
                    "target": target,
                    "met": None if target is None else bool(ratio >= target),
                }
            )
        self.rows.append(row)
        if self.verbose:
            print(format_row(row), flush=True)
        return row
