"""The release shows targets, not results: student notebooks carry no outputs and no
execution counts, and each check is preceded by the line it prints when the answer is right."""

import json
from pathlib import Path

import nbformat
import pytest

from labkit.grading import notebook as nbmod
from labkit.grading.release import TARGET, student_release

ROOT = Path(__file__).resolve().parent.parent
LABS = nbmod.lab_notebooks(ROOT / "notebooks")


@pytest.fixture(scope="module")
def released(released_labs):
    return released_labs  # tests/conftest.py: one release of every lab per test session


def test_every_lab_is_released(released):
    out, names = released
    assert names == [p.name for p in LABS] and len(names) >= 9


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_released_student_notebooks_carry_no_outputs(released, lab):
    out, _ = released
    raw = json.loads((out / "student" / lab.name).read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code
    for i, cell in enumerate(code):
        assert cell["outputs"] == [], f"code cell {i} ships an output: {cell['outputs'][:1]}"
        assert cell["execution_count"] is None, f"code cell {i} ships execution count {cell['execution_count']}"


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_each_check_is_preceded_by_its_target_line(released, lab):
    out, _ = released
    st = nbformat.read(out / "student" / lab.name, as_version=4)
    asg = nbmod.load_assignment(lab)
    instructor = nbformat.read(lab, as_version=4)
    checks = [i for i, c in enumerate(st.cells) if nbmod.is_check(c)]
    assert len(checks) == len(asg.checks)
    for i, check in zip(checks, asg.checks):
        above = st.cells[i - 1]
        assert above.cell_type == "markdown" and above.metadata["labkit"]["target"] == check.check_id
        stored = nbmod._outputs_text(instructor.cells[check.cell_index]).strip()
        assert stored == check.pass_line
        assert f"\n    {stored}\n" in above.source  # the instructor's stored line, as a code block
    # the student's notebook has the same code as the instructor's apart from the stubbed answers
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code" and not nbmod.is_answer(c)]  # noqa: E731
    assert code(st) == code(instructor)


def test_student_release_clears_outputs_a_stored_notebook_still_has():
    nb = nbformat.read(LABS[0], as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # the instructor's outputs
    st = student_release(nb, nbmod.load_assignment(LABS[0], nb=nb))
    assert all(c.outputs == [] and c.execution_count is None for c in st.cells if c.cell_type == "code")
    assert sum("labkit" in c.metadata and "target" in c.metadata["labkit"] for c in st.cells) == len(
        nbmod.load_assignment(LABS[0]).checks
    )
    assert "{line}" in TARGET


def test_a_released_student_notebook_is_still_graded_against_the_instructor_line(released):
    out, _ = released
    lab = LABS[0]
    st = nbformat.read(out / "student" / lab.name, as_version=4)
    asg = nbmod.load_assignment(lab)
    graded = nbmod.graded_notebook(asg, st)
    assert not graded.missing  # every answer cell is found in the release
    for check in asg.checks:  # the graded notebook compares against the instructor's stored line
        assert nbmod._outputs_text(graded.nb.cells[check.cell_index]).strip() == check.pass_line
