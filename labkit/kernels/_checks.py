"""Input validation shared by the kernels.

The jitted cores do no bounds checking (that is what makes them fast), so every public kernel checks
dtype, shape, contiguity and index ranges here, in Python, before the core runs. A failed check
raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape, range or layout)
that says what was expected and what was given.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_array, show


def as_array(name: str, a, dtypes, ndim: int | tuple[int, ...] | None = None, contiguous: bool = True) -> np.ndarray:
    """Check ``a`` is an ndarray of one of ``dtypes`` with ``ndim`` dims (C-contiguous if asked) and return it.

    Nothing is converted: a kernel that silently copied or cast would hide the very costs that the
    benchmarks measure.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    dts = tuple(np.dtype(d) for d in (dtypes if isinstance(dtypes, (tuple, list)) else (dtypes,)))
    if a.dtype not in dts:
        want = " or ".join(str(d) for d in dts)
        raise TypeError(f"{name} must have dtype {want}, got {a.dtype}")
    check_array(a, name, ndim=ndim)
    if contiguous and not a.flags.c_contiguous:
        raise ValueError(
            f"{name} must be C-contiguous (got strides {a.strides} for shape {a.shape}); "
            "pass np.ascontiguousarray(...) to make a contiguous copy"
        )
    return a


def as_scalar(name: str, v, kind: str = "f") -> float | int:
    """A Python float (kind 'f') or int (kind 'i') from a number or 0-d array."""
    arr = np.asarray(v)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    if kind == "i":
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer, got {arr.dtype} value {show(v)}")
        return int(arr)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number, got {arr.dtype} value {show(v)}")
    return float(arr)
