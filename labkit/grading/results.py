"""What grading one submission gives: :class:`GradeResult`, one :class:`ExerciseResult` per check cell.

One type flows from the supervisor (:func:`labkit.grading.scoring.score`, in the grader's process for
one submission) to the batch (:mod:`.grade`), the gradebook, the feedback files and the resume
manifest (:mod:`.reports`). Between processes and on disk it travels as JSON (:meth:`GradeResult.to_dict`,
:meth:`GradeResult.from_dict`).

Ids. Every graded exercise has two cells, each with its own nbgrader ``grade_id``: the answer cell
(``accuracy``) and its check cell (``check_accuracy``). In Python they are ``answer_id`` and
``check_id`` everywhere (:class:`labkit.check.Exercise` has the ``answer_id`` it checks;
:class:`labkit.grading.notebook.CheckCell` both). In JSON an exercise keeps nbgrader's names:
``"grade_id"`` is the check cell's id (the gradebook's column), ``"answer_id"`` the answer cell's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["ExerciseResult", "GradeResult", "zero_result"]


@dataclass(frozen=True)
class ExerciseResult:
    """One check cell's outcome: ``points`` of ``max_points``, and the hint the learner reads."""

    check_id: str
    answer_id: str
    points: float
    max_points: float
    passed: bool
    hint: str

    def to_dict(self) -> dict:
        return {
            "grade_id": self.check_id,
            "answer_id": self.answer_id,
            "points": self.points,
            "max": self.max_points,
            "passed": self.passed,
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ExerciseResult:
        return cls(d["grade_id"], d["answer_id"], float(d["points"]), float(d["max"]), bool(d["passed"]), d["hint"])


@dataclass(frozen=True)
class GradeResult:
    """The grade of one submission.

    Attributes
    ----------
    student : str
        The submission's name (its file stem, made safe).
    exercises : tuple of ExerciseResult
        In the order of the check cells.
    status : tuple of str
        What went wrong while grading ("timeout", "flagged: ..."); empty when nothing did.
    notes : tuple of str
        For the feedback file: how the answers were found, what the code attempted.
    seconds : float
        Wall time of the graded run.
    sha256 : str or None
        Of the submitted bytes ("" for a grader error, so that the next run grades it again).
    seed, sandbox, forbid_reference
        How it was graded (None where the run never started).
    attempts, reference_calls, leftover_processes, log_tail
        What the supervisor saw: the sandbox's audit, the answers that called labkit's reference,
        processes killed after the run, the end of nbval's log (None where the run never started).
    """

    student: str
    exercises: tuple[ExerciseResult, ...]
    status: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    sha256: str | None = None
    seed: int | None = None
    sandbox: bool | None = None
    forbid_reference: bool | None = None
    attempts: tuple[dict, ...] | None = None
    reference_calls: tuple[str, ...] | None = None
    leftover_processes: int | None = None
    log_tail: str | None = field(default=None, repr=False)

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(e.max_points for e in self.exercises)

    @property
    def status_line(self) -> str:
        """The status as the gradebook and the log print it: ``"timeout; flagged: ..."``, or ``"ok"``."""
        return "; ".join(self.status) or "ok"

    def replace(self, **changes) -> GradeResult:
        """A copy with ``changes`` (a dataclass is frozen: results are values)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The JSON form (the manifest's entry): exercises as dicts, None fields left out."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "exercises":
                value = [e.to_dict() for e in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> GradeResult:
        """The result written by :meth:`to_dict` (a manifest entry, or the supervisor's line)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["exercises"] = tuple(ExerciseResult.from_dict(e) for e in d.get("exercises", ()))
        for name in ("status", "notes", "attempts", "reference_calls"):
            if kw.get(name) is not None:
                kw[name] = tuple(kw[name])
        kw.setdefault("student", "")
        return cls(**kw)


def zero_result(checks, student: str, status: str, hint: str, notes=(), **fields) -> GradeResult:
    """0 points on every check of ``checks`` (:class:`~labkit.grading.notebook.CheckCell`), with one hint."""
    exercises = tuple(ExerciseResult(c.check_id, c.answer_id, 0.0, c.points, False, hint) for c in checks)
    return GradeResult(student, exercises, (status,), tuple(notes), **fields)
