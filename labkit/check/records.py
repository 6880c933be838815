"""The record format: a student's outputs as plain JSON, for the grader to read back safely.

A check running under the grader writes the outputs of the student's function with :func:`encode`
and the grader reads them with :func:`decode` (see :mod:`labkit.check.exercise`). The format holds
numbers, strings, bytes, None, numpy arrays and scalars, lists, tuples, dicts, sets, and objects of
``labkit`` classes (their public attributes), and nothing else: never pickle, never code, so reading
a record cannot run anything the student wrote. A value is written as itself (JSON's own types) or
as a one-key tag, ``{"__nd__": dtype, "shape": ..., "data": base64}`` for an array and so on; the
two tables below, one per direction, list every tag.
"""

from __future__ import annotations

import base64
import importlib
import math

import numpy as np

__all__ = ["encode", "decode"]

_ARRAY_KINDS = "biufcUS"  # no object, void/structured or datetime arrays
_MAX_DEPTH = 40


class _Unencodable(TypeError):
    pass


# --- writing ------------------------------------------------------------------------------------------


def _float(value: float):
    return value if math.isfinite(value) else {"__float__": repr(value)}  # JSON has no nan/inf


def _array(value, d):
    a = np.ascontiguousarray(np.asarray(value))
    if a.dtype.kind not in _ARRAY_KINDS:
        raise _Unencodable(f"an array of dtype {a.dtype} cannot be recorded")
    return {"__nd__": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _numpy_scalar(value, d):
    if value.dtype.kind not in _ARRAY_KINDS:
        raise _Unencodable(f"a numpy scalar of dtype {value.dtype} cannot be recorded")
    return {"__np__": value.dtype.str, "data": base64.b64encode(np.asarray(value).tobytes()).decode()}


def _tuple(value, d):
    path = _labkit_class_path(type(value))
    if hasattr(value, "_fields") and path:
        return {"__ntuple__": path, "items": [encode(v, d) for v in tuple.__iter__(value)]}
    return {"__tuple__": [encode(v, d) for v in tuple.__iter__(value)]}


def _labkit_object(value, d):
    cls = type(value)
    path = _labkit_class_path(cls)
    if not (path and hasattr(value, "__dict__")):
        raise _Unencodable(f"a {cls.__module__}.{cls.__qualname__} cannot be recorded for the grader")
    state = {}
    for k, v in vars(value).items():
        if k.startswith("_"):
            continue  # caches of the last forward pass and other private state
        try:
            state[k] = encode(v, d)
        except _Unencodable:
            state[k] = {"__skipped__": type(v).__name__}
    return {"__obj__": path, "state": state}


#: (type, writer), tried in order with isinstance after the exact JSON types. numpy scalars come
#: before float (np.float64 is a float); subclasses of the plain types are written as the plain value.
_WRITERS = (
    (np.ndarray, _array),
    (np.generic, _numpy_scalar),
    ((bytes, bytearray), lambda v, d: {"__bytes__": base64.b64encode(bytes(v)).decode()}),
    (bool, lambda v, d: bool(v)),
    (int, lambda v, d: int.__index__(v)),
    (float, lambda v, d: _float(float.__float__(v))),
    (str, lambda v, d: str.__str__(v)),
    (complex, lambda v, d: {"__complex__": [v.real, v.imag]}),
    (tuple, _tuple),
    (list, lambda v, d: [encode(x, d) for x in list.__iter__(v)]),
    ((set, frozenset), lambda v, d: {"__set__": [encode(x, d) for x in v]}),
    (dict, lambda v, d: {"__dict__": [[encode(k, d), encode(x, d)] for k, x in dict.items(v)]}),
)


def encode(value, _depth: int = 0):
    """A JSON-ready form of ``value``: numbers, strings, bytes, None, numpy arrays and scalars,
    lists, tuples, dicts, sets, and objects of ``labkit`` classes (their public attributes).

    Raises TypeError for anything else (functions, open files, arbitrary classes): a record never
    carries code, and :func:`decode` builds only those plain types back.
    """
    if _depth > _MAX_DEPTH:
        raise _Unencodable("result nested too deeply")
    if value is None or type(value) in (bool, str, int):
        return value
    if type(value) is float:
        return _float(value)
    for types, write in _WRITERS:
        if isinstance(value, types):
            return write(value, _depth + 1)
    return _labkit_object(value, _depth + 1)


def _labkit_class_path(cls):
    mod = getattr(cls, "__module__", "") or ""
    if mod == "labkit" or mod.startswith("labkit."):
        return f"{mod}:{cls.__qualname__}"
    return None


def _labkit_class(path: str):
    mod, _, qual = str(path).partition(":")
    if not (mod == "labkit" or mod.startswith("labkit.")) or not qual:
        raise ValueError(f"not a labkit class: {path!r}")
    obj = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise ValueError(f"{path!r} is not a class")
    return obj


# --- reading ------------------------------------------------------------------------------------------


def _read_array(obj, d):
    dt = np.dtype(str(obj["__nd__"]))
    shape = tuple(int(n) for n in obj["shape"])
    if dt.kind not in _ARRAY_KINDS or any(n < 0 for n in shape):
        raise ValueError(f"array of dtype {dt} and shape {shape} not allowed")
    raw = base64.b64decode(obj["data"], validate=True)
    if len(raw) != dt.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def _read_numpy_scalar(obj, d):
    dt = np.dtype(str(obj["__np__"]))
    raw = base64.b64decode(obj["data"], validate=True)
    if dt.kind not in _ARRAY_KINDS or len(raw) != dt.itemsize:
        raise ValueError(f"numpy scalar of dtype {dt} not allowed")
    return np.frombuffer(raw, dtype=dt)[0]


def _read_complex(obj, d):
    re, im = obj["__complex__"]
    return complex(float(re), float(im))


def _read_named_tuple(obj, d):
    cls = _labkit_class(obj["__ntuple__"])
    if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise ValueError(f"{obj['__ntuple__']!r} is not a named tuple")
    return cls(*(decode(v, d) for v in obj["items"]))


def _read_object(obj, d):
    inst = object.__new__(_labkit_class(obj["__obj__"]))
    for k, v in obj["state"].items():
        if not isinstance(k, str) or k.startswith("_"):
            raise ValueError(f"attribute {k!r} not allowed")
        inst.__dict__[k] = None if isinstance(v, dict) and "__skipped__" in v else decode(v, d)
    return inst


#: tag → reader, tried in this order.
_READERS = {
    "__nd__": _read_array,
    "__np__": _read_numpy_scalar,
    "__float__": lambda obj, d: float(obj["__float__"]),  # 'nan', 'inf', '-inf'
    "__bytes__": lambda obj, d: base64.b64decode(obj["__bytes__"], validate=True),
    "__complex__": _read_complex,
    "__tuple__": lambda obj, d: tuple(decode(v, d) for v in obj["__tuple__"]),
    "__set__": lambda obj, d: {decode(v, d) for v in obj["__set__"]},
    "__dict__": lambda obj, d: {decode(k, d): decode(v, d) for k, v in obj["__dict__"]},
    "__ntuple__": _read_named_tuple,
    "__obj__": _read_object,
    "__skipped__": lambda obj, d: None,
}


def decode(obj, _depth: int = 0):
    """Inverse of :func:`encode`; builds only plain values, numpy arrays and labkit objects."""
    if _depth > _MAX_DEPTH:
        raise ValueError("record nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(v, _depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) == 0:
        raise ValueError(f"unexpected record item {type(obj).__name__}")
    for tag, read in _READERS.items():
        if tag in obj:
            return read(obj, _depth + 1)
    raise ValueError(f"unknown record item with keys {sorted(obj)[:5]}")
