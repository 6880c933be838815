"""Reading a learner's answer: is it a number, an array of the right shape and dtype, equal to the reference?

The hints shown to a learner print numbers as the learner writes them: ``64`` and ``8.0``, never
numpy's ``np.int64(64)`` or ``np.float32(8.0)`` (:func:`show`).

* :func:`number_answer`: the answer is one number (a float, an int, a numpy scalar, a size-1 array).
* :func:`array_problem`: what is wrong with an array answer's type, shape or dtype (every lab's
  array answers go through it).
* :func:`mask_form`: the detector for a pruning mask's form (labs 01 and 09).
* :func:`compare_arrays`: a hint when an array (or a tuple of them) differs from the reference.

>>> show(np.int64(64)), show(np.float32(8.0)), show(np.True_), show(0.5)
('64', '8.0', 'True', '0.5')
>>> array_problem(np.zeros(3, np.float32), "the mask", shape=(3,), kinds="b", holds="booleans (True = kept)")
'the mask should hold booleans (True = kept), got dtype float32'
>>> compare_arrays(np.array([1, 5, 3]), np.array([1, 2, 3]))
'result differs in 1 of 3 entries (first at index (1,): got 5, expected 2)'
"""

from __future__ import annotations

import numpy as np

from ..validation import show

__all__ = ["show", "number_answer", "array_problem", "mask_form", "compare_arrays"]


def number_answer(got, what: str = "one number (a float)"):
    """``(float(got), None)`` for an answer that is one number, else ``(None, hint)``. A string is not a
    number here, even one that ``float`` would parse."""
    if isinstance(got, np.ndarray) and got.size != 1:
        return None, f"return {what}, got an array of shape {got.shape}"
    if isinstance(got, (str, bytes)) or got is None:
        return None, f"return a float, got {type(got).__name__}"
    try:
        return float(got), None
    except (TypeError, ValueError):
        return None, f"return a float, got {type(got).__name__}"


def array_problem(
    got,
    what: str = "your result",
    *,
    shape=None,
    shape_note: str = "",
    kinds: str | None = None,
    holds: str = "",
    dtype=None,
    dtype_note: str = "",
    scalars: bool = False,
) -> str | None:
    """What is wrong with an array answer's type, shape or dtype, or None. The one array check of every lab.

    Parameters
    ----------
    got : the answer (not converted: a list is not an array here; call ``np.asarray`` first to allow one)
    what : str
        How the hint names it ("the mask", "W_q", "your result").
    shape : tuple, optional
        The shape it must have; ``shape_note`` says why, in parentheses after the hint.
    kinds : str, optional
        numpy dtype kinds allowed (``"b"`` bool, ``"iu"`` integers, ``"f"`` floats, ``"iuf"`` numbers);
        ``holds`` names them in the hint ("integers (uint8)").
    dtype : numpy dtype, optional
        The exact dtype it must have; ``dtype_note`` says why, after a colon.
    scalars : bool
        Accept a numpy scalar (an ONNX initializer may be one) as well as an array.
    """
    if not isinstance(got, np.ndarray) and not (scalars and isinstance(got, np.generic)):
        return f"{what} must be a numpy array, got {type(got).__name__}"
    if shape is not None and np.shape(got) != tuple(shape):
        return f"{what} has shape {np.shape(got)}, expected {tuple(shape)}" + (f" ({shape_note})" if shape_note else "")
    if dtype is not None and got.dtype != dtype:
        return f"{what} has dtype {got.dtype}, expected {np.dtype(dtype)}" + (f": {dtype_note}" if dtype_note else "")
    if kinds is not None and got.dtype.kind not in kinds:
        return f"{what} should hold {holds or kinds}, got dtype {got.dtype}"
    return None


def mask_form(a) -> str | None:
    """Hint detector: the answer ``a.got`` must be a boolean mask shaped like the weights ``a.args[0]``."""
    return array_problem(
        a.got,
        "the mask",
        shape=a.args[0].shape,
        shape_note="the weights' shape: one entry per weight",
        kinds="b",
        holds="booleans (True = kept)",
    )


def compare_arrays(got, expected, what="result", rtol=1e-5, atol=1e-6, exact=False):
    """A hint string if ``got`` differs from ``expected`` (type, shape, dtype kind, values), else None."""
    if isinstance(expected, np.ndarray) or np.isscalar(expected):
        return _compare_array(got, expected, what, rtol, atol, exact)
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{what} should be a tuple of {len(expected)} values, got {type(got).__name__}"
        hints = (compare_arrays(g, e, f"{what}[{k}]", rtol, atol, exact) for k, (g, e) in enumerate(zip(got, expected)))
        return next((h for h in hints if h), None)
    return None if got == expected else f"{what} is {show(got)}, expected {show(expected)}"


def _compare_array(got, expected, what, rtol, atol, exact):
    """:func:`compare_arrays` for an array or a number: type, shape, dtype kind, then the values."""
    if not isinstance(got, (np.ndarray, np.generic, int, float, bool)):
        kind = "an array" if isinstance(expected, np.ndarray) else "a number"
        return f"{what} should be {kind}, got {type(got).__name__}"
    got_a, exp_a = np.asarray(got), np.asarray(expected)
    if got_a.shape != exp_a.shape:
        return f"{what} has shape {got_a.shape}, expected {exp_a.shape}"
    if exp_a.dtype == bool and got_a.dtype != bool:
        return f"{what} should be a boolean array, got dtype {got_a.dtype}"
    if exact or exp_a.dtype.kind in "biu":
        bad = got_a != exp_a
        if not np.any(bad):
            return None
        i = _index(np.argmax(bad), bad)
        first = f"first at index {_at(i)}: {_pair(got_a, exp_a, i)}"
        return f"{what} differs in {int(bad.sum())} of {bad.size} entries ({first})"
    if np.allclose(got_a, exp_a, rtol=rtol, atol=atol, equal_nan=True):
        return None
    err = np.abs(got_a.astype(np.float64) - exp_a.astype(np.float64))
    i = _index(np.nanargmax(err), err)
    return f"{what} is off (largest error {float(np.nanmax(err)):.3g} at index {_at(i)}: {_pair(got_a, exp_a, i)})"


def _index(flat, a) -> tuple:
    return np.unravel_index(flat, a.shape) if a.ndim else ()


def _at(i) -> tuple:
    return tuple(int(j) for j in i)


def _pair(got_a, exp_a, i) -> str:
    return f"got {show(got_a[i])}, expected {show(exp_a[i])}"
