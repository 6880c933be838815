"""The student's loop in JupyterLab: a wrong answer stops "Run All" at its check.

A student release of lab 00 in which the student has solved every exercise but the first: the
student types a plausible wrong answer into the first answer cell and chooses Run > Run All Cells.
Execution stops at that exercise's check, which shows ``FAIL:`` and the mistake's hint; no later
code cell has run (their prompts stay ``[ ]:``). After typing the right answer, Run All reaches the
end: every code cell has run, no cell shows an error, and the check shows its pass line.
"""

from __future__ import annotations

import json
import time

import pytest

from . import jlab
from .conftest import SCREENSHOTS
from .test_student_session import BEGIN, END, WRONG, first_exercise, instructor_notebook, student_version

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAB = "00"  # the quickest lab with a typed-in wrong answer in WRONG


def _solution(cell) -> str:
    return "\n".join(line for line in jlab.source(cell).splitlines() if line.strip() not in (BEGIN, END))


def solve_all_but_first(instructor: dict, student: dict) -> None:
    """Put the instructor's solutions into every answer cell of ``student`` except the first."""
    gid = lambda c: c.get("metadata", {}).get("nbgrader", {}).get("grade_id")  # noqa: E731
    answers = [
        c
        for c in student["cells"]
        if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")
    ]
    solutions = {gid(c): _solution(c) for c in instructor["cells"] if gid(c)}
    for cell in answers[1:]:
        cell["source"] = solutions[gid(cell)]


def test_wrong_answer_stops_run_all_at_its_check_and_the_fix_runs_to_the_end(lab_server, page, tmp_path):
    instructor_path = instructor_notebook(LAB)
    if instructor_path is None:
        pytest.skip(f"lab {LAB} has no instructor notebook yet")
    student_path, how = student_version(instructor_path, tmp_path)
    instructor, student = (json.loads(p.read_text()) for p in (instructor_path, student_path))
    solve_all_but_first(instructor, student)
    student_path.write_text(json.dumps(student, indent=1))
    ex = first_exercise(instructor, student)
    wrong, hint_words = WRONG[LAB]
    code = [i for i, c in enumerate(student["cells"]) if c["cell_type"] == "code"]
    rel = lab_server.add(student_path, f"loop/{student_path.name}")
    t0 = time.perf_counter()
    jlab.open_notebook(page, lab_server.url(rel), len(student["cells"]))

    # 1. A wrong answer typed in, Run All: stops at the check with the hint; nothing later ran.
    jlab.type_into_cell(page, ex["answer"], wrong)
    assert jlab.editor_text(page, ex["answer"]) == wrong
    jlab.run_all(page)
    jlab.wait_run_finished(page, timeout=600)
    t_wrong = time.perf_counter()
    shown = jlab.cells(page)
    text = "".join(o["text"] for o in shown[ex["check"]]["outputs"]).strip()
    assert text.startswith("FAIL: ") and hint_words in text, f"the check shows {text!r}"
    assert "Traceback" not in text and "_core.py" not in text  # the hint, not a library traceback
    later = [i for i in code if i > ex["check"]]
    assert later, "no code cell after the first check"
    ran = [(i, shown[i]["prompt"]) for i in later if shown[i]["prompt"] != "[ ]:" or shown[i]["outputs"]]
    assert ran == [], f"cells after the failed check ran: {ran}"
    assert all(shown[i]["prompt"] not in ("[ ]:", "[*]:") for i in code if i <= ex["check"])
    jlab.full_page_screenshot(page, SCREENSHOTS / f"loop_{student_path.stem}_stopped.png")

    # 2. The right answer typed in, Run All: every cell runs, the check prints its pass line.
    jlab.type_into_cell(page, ex["answer"], ex["solution"])
    jlab.run_all(page)
    prompts = jlab.wait_run_finished(page, timeout=900)
    shown = jlab.cells(page)
    assert all(p not in ("[ ]:", "[*]:") for p in prompts), f"not every cell ran: {prompts}"
    assert jlab.shown_errors(shown) == []
    assert not any(o["text"].lstrip().startswith("FAIL: ") for c in shown for o in c["outputs"])
    text = "".join(o["text"] for o in shown[ex["check"]]["outputs"]).strip()
    assert text == ex["pass_line"], f"after the fix the check shows {text!r}"
    print(
        f"student loop, lab {LAB} ({how}): wrong answer run {t_wrong - t0:.0f} s, "
        f"fixed run to the end {time.perf_counter() - t_wrong:.0f} s"
    )
