"""Input validation at the public boundary: one rule, one wording, for every module.

The rule (scikit-learn's ``sklearn.utils.validation`` follows the same one): a value of the wrong
*type* raises ``TypeError``, a value of the right type but outside what is allowed raises
``ValueError``, and the message names the argument, says what was expected and what was given::

    >>> check_int("bits", "8")
    Traceback (most recent call last):
    TypeError: bits must be an int, got str '8'
    >>> check_bits(17)
    Traceback (most recent call last):
    ValueError: bits must be in [1, 16], got 17

Each checker returns the value in its plain form (a Python ``int``/``float``, an ``np.ndarray``),
so a caller writes ``bits = check_bits(bits)`` and goes on with a value it can trust. ``bool`` is
never accepted as a number: ``True`` is an ``int`` to Python, but ``bits=True`` is a mistake.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

__all__ = [
    "renamed",
    "show",
    "describe",
    "check_int",
    "check_real",
    "check_bool",
    "check_bits",
    "check_sparsity",
    "check_fraction",
    "check_choice",
    "check_array",
    "check_axis",
    "check_matrix",
]


def renamed(where: str, old: str, old_value, new: str, new_value):
    """The value of a renamed keyword argument: ``old_value`` (with a DeprecationWarning) if the caller
    used the old name, else ``new_value``; TypeError if both were given.

    Called first thing in a function whose argument ``new`` was called ``old`` until this release; the
    old name is a keyword-only parameter defaulting to None.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     axis = renamed("qparams", "per_channel_axis", 0, "axis", None)
    >>> axis, str(caught[0].message)
    (0, 'qparams(per_channel_axis=...) is deprecated; use axis=...')
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{where}() got {old}= and {new}=; give only {new}= ({old} is its deprecated name)")
    warnings.warn(f"{where}({old}=...) is deprecated; use {new}=...", DeprecationWarning, stacklevel=3)
    return old_value


def show(value) -> str:
    """``value`` as a message prints it: numpy scalars as plain numbers, the rest by ``repr``.

    numpy 2 writes a scalar as ``np.float32(8.0)``; a reader wants ``8.0``. Every message of the kit
    (errors here, the checks' hints) shows values through this function.

    >>> show(np.float32(8.0)), show(np.int64(64)), show(np.True_), show("8"), show((np.int8(1), 2.5))
    ('8.0', '64', 'True', "'8'", '(1, 2.5)')
    """
    if isinstance(value, (np.str_, np.bytes_)):
        return repr(value.item())
    if isinstance(value, np.generic):
        return str(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)


def describe(value) -> str:
    """``"<type> <value>"`` for an error message (long ones shortened): ``str '8'``, ``float64 0.5``."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = show(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _num(v) -> str:
    """A bound as written by hand: 0 rather than 0.0, 0.5 as it is."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _interval(lo, hi, lo_open=False, hi_open=False) -> str:
    lo, hi = (None if lo is None else _num(lo)), (None if hi is None else _num(hi))
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    return f"{'<' if hi_open else '<='} {hi}"


def _check_bounds(name, v, lo, hi, lo_open=False, hi_open=False, what=""):
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        raise ValueError(f"{name} must be {_interval(lo, hi, lo_open, hi_open)}{what}, got {show(v)}")


def check_int(name: str, value, lo: int | None = None, hi: int | None = None, what: str = "") -> int:
    """``value`` as a Python int in ``[lo, hi]`` (either bound optional).

    An ``int`` or numpy integer, but not a ``bool`` (TypeError otherwise); ValueError outside the
    bounds. ``what`` is added to the range in the message (``" (number of groups)"``).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{what}, got {describe(value)}")
    value = int(value)
    _check_bounds(name, value, lo, hi, what=what)
    return value


def check_real(
    name: str, value, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False, what: str = ""
) -> float:
    """``value`` as a finite Python float in the interval given by ``lo``/``hi`` (open ends if asked).

    An int, float or numpy real, but not a ``bool`` (TypeError otherwise); ValueError for NaN, inf
    or a value outside the interval.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{what}, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        where = "" if lo is None and hi is None else " " + _interval(lo, hi, lo_open, hi_open)
        raise ValueError(f"{name} must be a finite number{where}{what}, got {show(value)}")
    _check_bounds(name, value, lo, hi, lo_open, hi_open, what)
    return value


def check_bool(name: str, value) -> bool:
    """``value`` as a bool; only ``True``/``False`` (and numpy bools) are accepted (TypeError otherwise)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def check_bits(bits, lo: int = 1, hi: int = 16, name: str = "bits") -> int:
    """A bit width as an int in ``[lo, hi]`` (default 1–16, what labkit's integer types hold)."""
    return check_int(name, bits, lo, hi)


def check_sparsity(sparsity, name: str = "sparsity") -> float:
    """A sparsity (the fraction of weights removed) as a float in ``[0, 1)``.

    1 is left out: a layer with every weight removed computes nothing.
    """
    return check_real(name, sparsity, 0.0, 1.0, hi_open=True, what=" (the fraction of weights removed)")


def check_fraction(name: str, value) -> float:
    """A fraction as a float in ``[0, 1]`` (a weight such as distillation's ``alpha``)."""
    return check_real(name, value, 0.0, 1.0)


def check_choice(name: str, value, choices):
    """``value`` if it is one of ``choices`` (ValueError listing them otherwise)."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value looked up in a set
        ok = False
    if not ok:
        names = [show(c) for c in choices]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise ValueError(f"{name} must be {listed}, got {show(value)}")
    return value


_KIND_WORDS = {"b": "boolean", "i": "signed integer", "u": "unsigned integer", "f": "floating-point", "c": "complex"}


def check_array(
    x,
    name: str = "x",
    *,
    ndim: int | tuple[int, ...] | None = None,
    kind: str | None = None,
    finite: bool = False,
    non_empty: bool = False,
    copy: bool = False,
    ndarray_only: bool = False,
) -> np.ndarray:
    """``x`` as an ndarray, checked.

    Parameters
    ----------
    x : array_like
    name : str
        The argument's name, for the messages.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions (ValueError otherwise).
    kind : str, optional
        Allowed dtype kinds, numpy's one-letter codes: ``"f"`` float, ``"iu"`` integer,
        ``"fiu"`` any real number, ``"b"`` bool (TypeError otherwise: a list of strings or
        an object array is the wrong type of input, not a wrong value).
    finite : bool
        Reject NaN and inf (ValueError).
    non_empty : bool
        Reject an array with no elements (ValueError).
    copy : bool
        Return a copy (the caller may write into it).
    ndarray_only : bool
        Accept only a numpy array (TypeError for a list): for weights and data, where a silent
        conversion would hide a mistake or a cost.
    """
    if ndarray_only and not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {describe(x)}")
    if isinstance(x, np.ndarray) and not copy:
        a = x
    else:
        try:
            a = np.array(x, copy=True) if copy else np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged nested lists
            raise TypeError(f"{name} must be an array, got {describe(x)} ({exc})") from None
    if kind is not None and a.dtype.kind not in kind:
        want = " or ".join(_KIND_WORDS.get(k, k) for k in kind)
        raise TypeError(f"{name} must be a {want} array, got dtype {a.dtype}")
    if ndim is not None:
        ndims = ndim if isinstance(ndim, tuple) else (ndim,)
        if a.ndim not in ndims:
            want = " or ".join(f"{d}-D" for d in ndims)
            raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    if non_empty and a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    if finite and a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf value{'s' if bad != 1 else ''}")
    return a


def check_axis(name: str, axis, ndim: int) -> int:
    """An axis of an ``ndim``-D array as an int in ``[0, ndim)`` (negative axes count from the end)."""
    axis = check_int(name, axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim}) for a {ndim}-D array, got {axis}")
    return axis % ndim


def check_matrix(W, name: str = "W", n_cols: int | None = None, rows: str = "out", cols: str = "in") -> np.ndarray:
    """A finite, non-empty 2-D array of real numbers (a weight matrix or a batch of inputs).

    ``n_cols`` fixes the number of columns (calibration inputs must match the weights' ``in``);
    ``rows``/``cols`` name the axes in the message (``"(out, in)"``).
    """
    W = check_array(W, name, kind="fiu", ndarray_only=True)
    if W.ndim != 2 or (n_cols is not None and W.shape[1] != n_cols):
        want = f"({rows}, {cols if n_cols is None else n_cols})"
        raise ValueError(f"{name} must be a 2-D array of shape {want}, got shape {W.shape}")
    return check_array(W, name, non_empty=True, finite=True)
