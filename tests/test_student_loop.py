"""The student's loop: exercise headings state the points the grader awards.

Convention (docs/CONTRIBUTING.md): the last markdown heading before an answer cell (nbgrader
``"solution": true`` on its ``# %%`` line) reads ``Exercise K — <title> (N point[s])``, K counting
1, 2, ... within the lab, and N equals the nbgrader ``"points"`` of its check cell (the metadata the
grader uses).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
HEADING = re.compile(r"^#{2,4} (?:.*\s)?Exercise (\d+) — .+ \((\d+(?:\.\d+)?) (points?)\)\s*$")
ANY_HEADING = re.compile(r"^#{1,6} ")


def _nbbuild():
    return load_script(ROOT / "scripts" / "nbbuild.py")


NBBUILD = _nbbuild()


def heading_problems(cells) -> list[str]:
    """Every mismatch between exercise headings and check points in a list of built cells."""
    problems, last_heading, numbers, headed = [], None, [], {}
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if ANY_HEADING.match(line):
                    last_heading = line
            continue
        nbg = cell.metadata.get("nbgrader", {})
        if nbg.get("solution"):
            gid = nbg["grade_id"]
            m = HEADING.match(last_heading or "")
            if m is None:
                problems.append(
                    f"{gid}: heading before the answer is {last_heading!r}, not 'Exercise K — title (N points)'"
                )
                continue
            number, points, word = int(m.group(1)), float(m.group(2)), m.group(3)
            if (points == 1) != (word == "point"):
                problems.append(f"{gid}: heading says '{m.group(2)} {word}'")
            numbers.append(number)
            headed[gid] = points
            last_heading = None  # one heading per exercise
        elif nbg.get("grade"):
            gid = cell.metadata.get("labkit", {}).get("answer", nbg["grade_id"])
            if gid in headed and headed[gid] != float(nbg["points"]):
                problems.append(f"{gid}: heading says {headed[gid]:g} points, check cell points={nbg['points']}")
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"exercises are numbered {numbers}, expected 1..{len(numbers)} in order")
    return problems


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_exercise_headings_state_the_points_of_their_check(src):
    cells = NBBUILD.read_source(src).cells
    assert any(c.metadata.get("nbgrader", {}).get("grade") for c in cells), f"{src.name} has no graded exercise"
    assert heading_problems(cells) == []


def _cells(text):
    return NBBUILD.reads_source(text).cells


def _answer(gid):
    return (
        f'# %% nbgrader={{"grade": false, "grade_id": "{gid}", "locked": false, "schema_version": 3, '
        f'"solution": true, "task": false}}'
    )


def _check(gid, points):
    return (
        f'# %% labkit={{"answer": "{gid}"}} nbgrader={{"grade": true, "grade_id": "check_{gid}", "locked": true, '
        f'"points": {points}, "schema_version": 3, "solution": false, "task": false}} '
        f'tags=["check", "nbval-check-output"]'
    )


GOOD = f"""# %% [markdown]
# ### Exercise 1 — one thing (2 points)
{_answer("a")}
### BEGIN SOLUTION
x = 1
### END SOLUTION
{_check("a", 2)}
print("a: ok")
# %% [markdown]
# ## 4. Exercise 2 — another thing (1 point)
{_answer("b")}
### BEGIN SOLUTION
y = 1
### END SOLUTION
{_check("b", 1)}
print("b: ok")
"""


def test_heading_check_accepts_the_convention():
    assert heading_problems(_cells(GOOD)) == []


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ("(2 points)", "(1 point)", "heading says 1 points, check cell points=2"),
        ("(2 points)", "(2 point)", "heading says '2 point'"),
        ("(1 point)", "(1 points)", "heading says '1 points'"),
        ("### Exercise 1 — one thing (2 points)", "### One thing", "not 'Exercise K"),
        ("Exercise 2", "Exercise 3", "numbered [1, 3]"),
        ("(2 points)", "", "not 'Exercise K"),
    ],
)
def test_heading_check_fails_on_a_mismatch(old, new, expect):
    problems = heading_problems(_cells(GOOD.replace(old, new, 1)))
    assert any(expect in p for p in problems), problems


# --- a wrong answer stops "Run All" at its check (every lab, headless) ----------------------------

NOTEBOOKS = ROOT / "notebooks"
LAB_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("lab", LAB_NOTEBOOKS, ids=[p.stem for p in LAB_NOTEBOOKS])
def test_the_first_exercise_stub_stops_run_all_at_its_check(lab, tmp_path):
    """Execute the student release top to bottom (nbclient, like "Run All"): the untouched stub of
    the first exercise makes its check raise CheckFailed with the not-implemented hint, and no
    later cell runs."""
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from labkit.grading import notebook as nbmod
    from labkit.grading.release import student_release

    nb = nbformat.read(lab, as_version=4)
    asg = nbmod.load_assignment(lab, nb=nb)
    student = student_release(nb, asg)
    first_check = next(i for i, c in enumerate(student.cells) if nbmod.is_check(c))
    client = NotebookClient(
        student, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    t0 = time.perf_counter()
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    print(f"{lab.stem}: stopped after {time.perf_counter() - t0:.1f} s")
    assert info.value.ename == "CheckFailed"
    assert info.value.evalue.startswith("not implemented yet")
    errors = [i for i, c in enumerate(student.cells) if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert errors == [first_check]
    (err,) = [o for o in student.cells[first_check].outputs if o.output_type == "error"]
    assert err.traceback[0].startswith("FAIL: not implemented yet") and len(err.traceback) == 2
    later = [c for c in student.cells[first_check + 1 :] if c.cell_type == "code"]
    assert later and all(c.execution_count is None and not c.outputs for c in later), "a cell after the check ran"
