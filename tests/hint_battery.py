"""Every hint of a lab's checks is reached by its wrong-answer battery (tests/test_check_labNN.py).

A check's hints are an ordered list of detectors (:class:`labkit.check.hints.Hints`); a detector
placed early can swallow the answers a later one was written for. ``assert_every_hint_reached``
runs the battery of a test module (each of its ``test_*`` functions that needs no fixture, over its
``parametrize`` values) while recording which detector gave each hint, and fails if a detector of
the lab's exercises was never reached, naming it. It also fails if any hint given shows a numpy
scalar repr (``np.int64(64)``) where a plain number reads better.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import itertools
import re
import types

from labkit.check import Exercise
from labkit.check.hints import Hints, detector_names, recording

#: a numpy scalar's repr, as numpy 2 prints it: np.int64(64), np.float32(8.0), np.True_
NUMPY_REPR = re.compile(
    r"\bnp\.(?:u?int\d*|float\d*|complex\d*|bool_?|str_|bytes_|longdouble|intp|uintp)\(|np\.(?:True|False)_"
)


class _Capture:
    """pytest's ``capsys`` when the battery is re-run here: what was printed since the last ``readouterr``."""

    def __init__(self):
        self._out, self._err = io.StringIO(), io.StringIO()
        self._redirects = contextlib.ExitStack()

    def __enter__(self):
        self._redirects.enter_context(contextlib.redirect_stdout(self._out))
        self._redirects.enter_context(contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc):
        self._redirects.close()

    def readouterr(self):
        out, err = self._out.getvalue(), self._err.getvalue()
        for stream in (self._out, self._err):
            stream.seek(0)
            stream.truncate()
        return types.SimpleNamespace(out=out, err=err)


#: fixtures the battery runner provides (made fresh for each call)
FIXTURES = {"capsys": _Capture}


def _parameter_sets(fn):
    """The keyword-argument sets pytest calls ``fn`` with (its parametrize marks and :data:`FIXTURES`), or None if
    it needs another fixture."""
    names, values = [], []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        argnames = mark.args[0]
        argnames = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        rows = [getattr(v, "values", v) for v in mark.args[1]]
        rows = [tuple(r) if len(argnames) > 1 else (r[0] if isinstance(r, tuple) and len(r) == 1 else r,) for r in rows]
        names.append(argnames)
        values.append(rows)
    wanted = [p for p in inspect.signature(fn).parameters if p not in FIXTURES]
    given = [n for group in names for n in group]
    if sorted(wanted) != sorted(given):
        return None
    fixtures = [p for p in inspect.signature(fn).parameters if p in FIXTURES]
    sets = []
    for combo in itertools.product(*values):
        kwargs = {}
        for group, row in zip(names, combo):
            kwargs.update(zip(group, row))
        sets.append((kwargs, fixtures))
    return sets


def battery_hints(test_module) -> dict:
    """Run the fixture-free ``test_*`` functions of ``test_module``; the hints recorded, by (Hints id, detector)."""
    with recording() as rec:
        for name, fn in vars(test_module).items():
            if not name.startswith("test_") or not inspect.isfunction(fn) or "every_hint" in name:
                continue
            for kwargs, fixtures in _parameter_sets(fn) or ():
                with contextlib.ExitStack() as stack:
                    made = {name: stack.enter_context(FIXTURES[name]()) for name in fixtures}
                    fn(**kwargs, **made)
    return rec


def assert_every_hint_reached(test_module, lab_module) -> None:
    """Fail unless every hint detector of every exercise in ``lab_module`` is reached by the battery."""
    rec = battery_hints(test_module)
    missing = []
    for ex in vars(lab_module).values():
        if isinstance(ex, Exercise) and isinstance(ex.compare, Hints):
            reached = {name for (hid, name) in rec if hid == id(ex.compare)}
            missing += [f"{ex.answer_id}: {d}" for d in detector_names(ex.compare) if d not in reached]
    assert not missing, "hints no answer of the battery reaches (shadowed, or a wrong answer missing):\n" + "\n".join(
        missing
    )
    reprs = [h for hints in rec.values() for h in hints if NUMPY_REPR.search(h)]
    assert not reprs, f"hints that print numpy reprs: {reprs[:3]}"


def assert_every_check_uses_hints(lab_module) -> None:
    """Every exercise of ``lab_module`` compares through a :class:`Hints` list."""
    plain = [
        ex.answer_id
        for ex in vars(lab_module).values()
        if isinstance(ex, Exercise) and not isinstance(ex.compare, Hints)
    ]
    assert not plain, f"exercises whose hints are not a Hints list: {plain}"
