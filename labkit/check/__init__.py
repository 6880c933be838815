"""Check cells: one :class:`~labkit.check.exercise.Exercise` per graded exercise, grouped by lab.

In a notebook: ``from labkit.check import lab01`` then, under the answer cell,
``lab01.magnitude_mask(magnitude_mask)`` prints the pass line, or raises
:class:`~labkit.check.exercise.CheckFailed` (an ``AssertionError``) whose message is the hint.

One idea per file: :mod:`.exercise` (``Exercise``, ``Case``, ``CheckFailed``), :mod:`.answers` (reading
an answer: ``number_answer``, ``array_problem``, ``compare_arrays``, ``show``), :mod:`.hints` (each
check's wrong-answer detectors as an ordered list, ``Hints``), :mod:`.records` (the JSON record format
the grader reads: ``encode``, ``decode``), :mod:`.output` (``quiet``, the output silencer), and
``labNN`` with the exercises of lab NN.
"""

import importlib

from .exercise import FAIL, Case, CheckFailed, Exercise, compare_arrays

__all__ = ["Case", "CheckFailed", "Exercise", "compare_arrays", "FAIL", "exercises"]


def exercises(lab: str) -> dict:
    """``{answer_id: Exercise}`` of one lab module, e.g. ``exercises("lab01")``."""
    mod = importlib.import_module(f"labkit.check.{lab}")
    return {ex.answer_id: ex for ex in vars(mod).values() if isinstance(ex, Exercise)}
