"""The course's notebook rules: which cell is an answer, a check or skipped, and what each must carry.

One module, read by ``scripts/nbbuild.py`` when it builds a lab from its source and by the grader
(:func:`labkit.grading.notebook.load_assignment`, :func:`labkit.grading.release.release`), so the
two can never disagree. Cell roles follow nbgrader's metadata (docs/CONTRIBUTING.md, "Notebooks"):

* an *answer cell* is a code cell with ``metadata.nbgrader = {"solution": true, "grade_id": ID, ...}``;
  in an instructor notebook its solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  (a released student notebook holds the stub instead);
* a *check cell* is a code cell with ``metadata.nbgrader = {"grade": true, "points": N, "grade_id":
  "check_ID", ...}`` (N a number >= 0), ``metadata.labkit = {"answer": ID}`` naming an answer cell above
  it, and the tags ``check`` and ``nbval-check-output``;
* a cell tagged ``skip-grading`` is an instructor's long experiment the grader does not run; an answer
  or check cell never is.

>>> import nbformat
>>> answer = nbformat.v4.new_code_cell("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION")
>>> answer.metadata["nbgrader"] = {"grade_id": "f", "solution": True}
>>> check = nbformat.v4.new_code_cell("lab00.f(f)")
>>> check.metadata.update(nbgrader={"grade": True, "grade_id": "check_f", "points": 1}, labkit={"answer": "f"})
>>> [p.split("; got ")[1] for p in cell_problems([answer, check])]  # the check lacks its tags
["points=1, tags=[], labkit.answer='f'"]
>>> check.metadata["tags"] = list(CHECK_TAGS)
>>> cell_problems([answer, check])
[]
"""

from __future__ import annotations

import re

__all__ = [
    "BEGIN",
    "END",
    "STUB",
    "SKIP_TAG",
    "CHECK_TAGS",
    "LAB_NOTEBOOK",
    "nbgrader",
    "is_answer",
    "is_check",
    "is_skipped",
    "answer_of",
    "answer_cells",
    "cell_problems",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
SKIP_TAG = "skip-grading"  # an instructor's cell the grader does not run (no check depends on it)
CHECK_TAGS = ("check", "nbval-check-output")  # a check cell's tags: its role, and nbval compares its output
LAB_NOTEBOOK = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


def nbgrader(cell) -> dict:
    """The cell's nbgrader metadata (``{}`` if none or malformed)."""
    md = cell.get("metadata", {}).get("nbgrader", {})
    return md if isinstance(md, dict) else {}


def _tags(cell) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def is_answer(cell) -> bool:
    """A code cell holding an answer (nbgrader ``solution`` with a ``grade_id``)."""
    md = nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(md.get("solution")) and isinstance(md.get("grade_id"), str)


def is_check(cell) -> bool:
    """A code cell that grades (nbgrader ``grade``, not ``solution``)."""
    md = nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(md.get("grade")) and not md.get("solution")


def is_skipped(cell) -> bool:
    """Whether the instructor tagged this cell ``skip-grading`` (the grader does not run it)."""
    return SKIP_TAG in _tags(cell)


def answer_of(cell):
    """The answer id a check cell names in ``metadata.labkit.answer`` (None if it names none)."""
    md = cell.get("metadata", {}).get("labkit", {})
    return md.get("answer") if isinstance(md, dict) else None


def answer_cells(nb_or_cells) -> dict[str, list[int]]:
    """``{answer id: [cell indices]}`` of the answer cells (a list: a student may duplicate a cell)."""
    cells = getattr(nb_or_cells, "cells", nb_or_cells)
    found: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        if is_answer(cell):
            found.setdefault(nbgrader(cell)["grade_id"], []).append(i)
    return found


def _check_problem(cell, answers_above) -> str | None:
    points, tags, answer = nbgrader(cell).get("points"), _tags(cell), answer_of(cell)
    points_ok = isinstance(points, (int, float)) and not isinstance(points, bool) and points >= 0
    if points_ok and all(t in tags for t in CHECK_TAGS) and answer in answers_above:
        return None
    return (
        "a check cell needs nbgrader points (a number >= 0), the tags check and nbval-check-output and "
        f"labkit.answer naming an earlier answer cell; got points={points!r}, tags={tags!r}, labkit.answer={answer!r}"
    )


def _cell_problem(cell, answers_above, released: bool) -> str | None:
    """What breaks the rules in one cell that has nbgrader metadata, or None."""
    if cell.get("cell_type") != "code":
        return f"nbgrader metadata on a {cell.get('cell_type')} cell, expected a code cell"
    if nbgrader(cell).get("solution"):
        source = cell.get("source", "")
        if not released and (BEGIN not in source or END not in source):
            return f"solution cell lacks {BEGIN} / {END}"
        if nbgrader(cell).get("grade_id") in answers_above:
            return "an answer cell with this grade_id comes earlier: answer grade_ids must be unique"
    if is_check(cell):
        problem = _check_problem(cell, answers_above)
        if problem:
            return problem
    if is_skipped(cell) and (is_answer(cell) or is_check(cell)):
        return f"an answer or check cell is tagged {SKIP_TAG!r}: the grader must run it"
    return None


def cell_problems(cells, released: bool = False) -> list[str]:
    """Every rule the cells break, one message per cell, in order (``[]`` if none).

    ``released``: the cells are a released student notebook, whose answer cells hold the stub
    instead of the solution markers.
    """
    problems, answers = [], set()
    for i, cell in enumerate(cells):
        if not nbgrader(cell):
            continue
        problem = _cell_problem(cell, answers, released)
        if problem:
            problems.append(f"cell {i} (grade_id {nbgrader(cell).get('grade_id')!r}): {problem}")
        if is_answer(cell):
            answers.add(nbgrader(cell)["grade_id"])
    return problems
