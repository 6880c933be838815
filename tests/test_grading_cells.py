"""labkit.grading.cells: one set of notebook rules, and the build script and the grader both apply it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import load_script

from labkit.grading import cells
from labkit.grading.notebook import load_assignment

ROOT = Path(__file__).resolve().parent.parent
NBBUILD = load_script(ROOT / "scripts" / "nbbuild.py")


def _notebook(**check_metadata):
    answer = nbformat.v4.new_code_cell(
        "def accuracy(z, y):\n    ### BEGIN SOLUTION\n    return 1.0\n    ### END SOLUTION"
    )
    answer.metadata["nbgrader"] = {"grade_id": "accuracy", "solution": True, "grade": False}
    check = nbformat.v4.new_code_cell("from labkit.check import lab00\nlab00.accuracy(accuracy)")
    check.metadata.update(
        nbgrader={"grade": True, "grade_id": "check_accuracy", "points": 1, "solution": False},
        labkit={"answer": "accuracy"},
        tags=list(cells.CHECK_TAGS),
    )
    for key, value in check_metadata.items():
        if value is None:
            check.metadata.pop(key)
        else:
            check.metadata[key] = value
    nb = nbformat.v4.new_notebook()
    nb.cells = [answer, check]
    return nb


BROKEN = {
    "no check tag": dict(tags=["nbval-check-output"]),
    "no labkit.answer": dict(labkit=None),
    "negative points": dict(nbgrader={"grade": True, "grade_id": "check_accuracy", "points": -1}),
    "skipped check": dict(tags=[*cells.CHECK_TAGS, cells.SKIP_TAG]),
}


def test_a_notebook_that_follows_the_rules_passes_both():
    nb = _notebook()
    assert cells.cell_problems(nb.cells) == []
    NBBUILD.check_cells(nb.cells)
    asg = load_assignment("00_x.ipynb", require_pass_lines=False, nb=nb)
    assert [(c.check_id, c.answer_id, c.points) for c in asg.checks] == [("check_accuracy", "accuracy", 1.0)]


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_the_build_and_the_grader_refuse_the_same_cells(change):
    nb = _notebook(**change)
    (problem,) = cells.cell_problems(nb.cells)
    with pytest.raises(ValueError) as built:
        NBBUILD.check_cells(nb.cells)
    with pytest.raises(ValueError) as graded:
        load_assignment("00_x.ipynb", require_pass_lines=False, nb=nb)
    assert problem in str(built.value) and problem in str(graded.value)


def test_a_released_notebook_needs_no_solution_markers():
    nb = _notebook()
    nb.cells[0].source = "def accuracy(z, y):\n    " + cells.STUB.replace("\n", "\n    ")
    assert cells.cell_problems(nb.cells, released=True) == []
    (problem,) = cells.cell_problems(nb.cells)
    assert "lacks ### BEGIN SOLUTION / ### END SOLUTION" in problem


def test_an_answer_id_is_unique():
    nb = _notebook()
    nb.cells.insert(1, nbformat.from_dict(nb.cells[0]))
    assert cells.answer_cells(nb) == {"accuracy": [0, 1]}
    assert "must be unique" in cells.cell_problems(nb.cells)[0]
