"""Hints as data: a check's wrong-answer detectors, in order, one small function per hint.

A check compares the learner's result with the reference's and, when they differ, names the
mistake. Each mistake it knows is one *detector*: a function of the :class:`Answer` (the result
``got``, the reference's ``expected``, the ``case`` it was called on) that returns the hint when it
recognises the answer, else None. :class:`Hints` holds a check's detectors in the order they are
tried; the first that recognises the answer gives the hint. Type and shape detectors come first
(later ones may then rely on them), specific mistakes next, and a generic comparison last.

A detector marked with :func:`accept` recognises a *right* answer instead (say, a float64 result
equal to a float32 reference): it returns :data:`CORRECT` and the check passes.

Order matters: a detector placed early can catch an answer that a later, more specific one was
written for. ``tests/test_check_labNN.py`` proves that each detector is reached by at least one
answer of the lab's wrong-answer battery (:func:`recording`, :func:`detector_names`), so a hint
that a new one shadows shows up as a failing test.

>>> def _negative(a):
...     return "the count is never negative" if a.got < 0 else None
>>> def _off_by_one(a):
...     return f"got {a.got}, one more than {a.expected}: count from 0" if a.got == a.expected + 1 else None
>>> hints = Hints(_negative, _off_by_one)
>>> hints(4, 3, None)
'got 4, one more than 3: count from 0'
>>> hints.diagnose(-1, 3, None)
('_negative', 'the count is never negative')
>>> hints(7, 3, None) is None
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["Answer", "Hints", "CORRECT", "accept", "recording", "detector_names"]

#: what an :func:`accept` detector returns for an answer that is right although not equal to the reference
CORRECT = object()


class Answer:
    """What a detector looks at: ``got`` (the learner's result), ``expected`` (the reference's) and the case.

    ``args`` is the case's positional arguments. :meth:`memo` computes a value once per answer (e.g.
    the float64 forms of the inputs several detectors compare against).
    """

    __slots__ = ("got", "expected", "case", "_memo")

    def __init__(self, got, expected, case):
        self.got, self.expected, self.case = got, expected, case
        self._memo: dict = {}

    @property
    def args(self) -> tuple:
        return self.case.args

    def memo(self, fn: Callable[[Answer], object]):
        """``fn(self)``, computed the first time it is asked for and remembered for this answer."""
        if fn not in self._memo:
            self._memo[fn] = fn(self)
        return self._memo[fn]


def accept(fn: Callable[[Answer], bool]) -> Callable[[Answer], object]:
    """A detector of *right* answers: ``fn(answer)`` True means the check passes (:data:`CORRECT`)."""

    def detector(a: Answer):
        return CORRECT if fn(a) else None

    detector.__name__ = detector.__qualname__ = fn.__name__
    detector.__doc__ = fn.__doc__
    detector.accepts = True
    return detector


_recorded: dict | None = None  # (id of a Hints, detector name) -> hints given; None when not recording


@contextlib.contextmanager
def recording() -> Iterator[dict]:
    """Record every detector that recognises an answer, as ``{(hints, name): [hint, ...]}`` (for tests)."""
    global _recorded
    saved, _recorded = _recorded, {}
    try:
        yield _recorded
    finally:
        _recorded = saved


class Hints:
    """The ordered detectors of one check; calling it gives the first detector's hint (or None).

    Parameters
    ----------
    *detectors : callable(Answer) -> str or None (or :data:`CORRECT` for an :func:`accept` detector)
        Tried in order; the first that returns something decides.

    Called as ``hints(got, expected, case)``, it is an :class:`~labkit.check.Exercise`'s ``compare``.
    """

    def __init__(self, *detectors):
        names = [d.__name__ for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique (they name the hints in tests), got {names}")
        self.detectors = tuple(detectors)

    def diagnose(self, got, expected, case) -> tuple[str | None, str | None]:
        """``(name of the detector that decided, its hint)``; ``(name, None)`` for an accepted answer,
        ``(None, None)`` when no detector recognises the answer."""
        a = Answer(got, expected, case)
        for detector in self.detectors:
            hint = detector(a)
            if hint is CORRECT:
                return detector.__name__, None
            if hint is not None:
                if _recorded is not None:
                    _recorded.setdefault((id(self), detector.__name__), []).append(hint)
                return detector.__name__, hint
        return None, None

    def __call__(self, got, expected, case) -> str | None:
        return self.diagnose(got, expected, case)[1]

    def __repr__(self) -> str:
        return f"Hints({', '.join(d.__name__ for d in self.detectors)})"


def detector_names(hints: Hints) -> list[str]:
    """The names of the hint detectors of ``hints`` (the :func:`accept` ones left out)."""
    return [d.__name__ for d in hints.detectors if not getattr(d, "accepts", False)]
