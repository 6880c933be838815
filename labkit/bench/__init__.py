"""Timing that can be trusted, what the machine can do, and ``python -m labkit bench``.

The timer and the machine's limits, imported by the labs:

- :mod:`.timing`: ``timeit`` (warm-up, repeats, median, IQR), ``timeit_interleaved`` (contenders in
  alternating blocks, for ratios that survive load), ``timing_from_samples``, ``Timing``;
- :mod:`.threads`: ``thread_limits``, one size for every thread pool;
- :mod:`.roofline`: ``bandwidth``, ``compute_peak``, ``roofline``, ``ridge_point``.

The command ``python -m labkit bench`` (labkit's kernels against numpy, scipy and PyTorch) is built
from :mod:`.machine` (what the run ran on), :mod:`.peers` (the other libraries' versions of each
kernel), :mod:`.goals` (the ratios the kit aims for), :mod:`.runner` (rows of timings),
:mod:`.cases` (one function per kernel family), :mod:`.presets` (sizes), :mod:`.report` (console and
Markdown) and :mod:`.cli` (``run`` and the argument parser). They are not imported here, so that
``from labkit import bench`` stays light.
"""

from .roofline import Bandwidth, bandwidth, compute_peak, ridge_point, roofline
from .threads import thread_limits
from .timing import Timing, timeit, timeit_interleaved, timing_from_samples

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
