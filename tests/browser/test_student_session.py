"""Scenario 1, "a student does lab 01": the released student notebook, in JupyterLab, by keyboard.

The student opens the student version of a lab (made by ``python -m labkit release``), runs it
(Run > Run All Cells) and sees the first check fail with the not-implemented hint; types a correct
solution into the answer cell through the editor, runs the cell and its check (Shift+Enter twice)
and sees the pass line; then types a plausible wrong answer and sees that mistake's specific hint.

The correct solution typed is the instructor notebook's own (the lines between ``### BEGIN
SOLUTION`` and ``### END SOLUTION``); the wrong answers and the words their hints must contain are
listed per lab in ``WRONG``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import jlab
from .conftest import NOTEBOOKS, REPO, SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"

# lab -> (a plausible wrong answer to the lab's first exercise, words its hint must contain)
WRONG = {
    "00": (
        "def count_parameters(sizes):\n    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))",
        "weights only",
    ),
    "01": (
        "def magnitude_mask(w, sparsity):\n"
        "    k = int(np.floor(sparsity * w.size))\n"
        '    order = np.argsort(w.ravel(), kind="stable")\n'
        "    keep = np.ones(w.size, dtype=bool)\n"
        "    keep[order[:k]] = False\n"
        "    return keep.reshape(w.shape)",
        "rank by magnitude |w|",
    ),
}
NOT_IMPLEMENTED = "FAIL: not implemented yet"


def instructor_notebook(lab: str) -> Path | None:
    found = sorted(NOTEBOOKS.glob(f"{lab}_*.ipynb"))
    return found[0] if found else None


def _strip(source: str) -> str:
    """The stub in place of each solution block, keeping its indentation (as nbgrader does)."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB.splitlines()]
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def student_version(instructor: Path, workdir: Path) -> tuple[Path, str]:
    """The student notebook of ``instructor``, made by ``python -m labkit release`` when the kit has it.

    Returns the path and how it was made. Without ``labkit.grading`` (an older kit), the solutions are
    stripped here the same way: each solution block replaced by the stub, outputs cleared except the
    check cells' expected lines.
    """
    src, out = workdir / "instructor", workdir / "release"
    src.mkdir(parents=True, exist_ok=True)
    (src / instructor.name).write_bytes(instructor.read_bytes())
    try:
        import labkit.grading.release  # noqa: F401
    except ImportError:
        nb = json.loads(instructor.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                cell["source"] = _strip(jlab.source(cell))
            if not jlab.is_check(cell):
                cell["outputs"], cell["execution_count"] = [], None
        path = out / "student" / instructor.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1))
        return path, "stripped by the test (labkit.grading is not available)"
    cmd = [sys.executable, "-m", "labkit", "release", "--notebooks", str(src), "--out", str(out), "--no-execute"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)} failed:\n{run.stdout}\n{run.stderr}"
    return out / "student" / instructor.name, "python -m labkit release --no-execute"


def first_exercise(instructor: dict, student: dict) -> dict:
    """Where the first exercise is and what to type: answer/check cell indexes, solution, pass line."""
    answer = next(
        i
        for i, c in enumerate(student["cells"])
        if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")
    )
    grade_id = student["cells"][answer]["metadata"]["nbgrader"].get("grade_id")
    checks = [i for i, c in enumerate(student["cells"]) if jlab.is_check(c) and i > answer]
    linked = [i for i in checks if student["cells"][i]["metadata"].get("labkit", {}).get("answer") == grade_id]
    check = (linked or checks)[0]
    assert STUB.splitlines()[-1] in jlab.source(student["cells"][answer]), "the student version holds no stub"
    # the release adds markdown cells (each check's target line): find the instructor's cells by grade_id
    gid = lambda c: c.get("metadata", {}).get("nbgrader", {}).get("grade_id")  # noqa: E731
    i_answer = next(i for i, c in enumerate(instructor["cells"]) if gid(c) == grade_id)
    i_check = next(i for i, c in enumerate(instructor["cells"]) if gid(c) == gid(student["cells"][check]))
    solution = "\n".join(
        line for line in jlab.source(instructor["cells"][i_answer]).splitlines() if line.strip() not in (BEGIN, END)
    )
    return {
        "answer": answer,
        "check": check,
        "solution": solution,
        "pass_line": jlab.output_text(instructor["cells"][i_check]).strip(),
    }


def run_answer_and_check(page, ex: dict, timeout: float = 300) -> str:
    """Shift+Enter in the answer cell, Shift+Enter in its check cell; returns what the check shows."""
    before = page.evaluate(jlab.PROMPTS_JS)
    code_index = page.evaluate(
        jlab.js("""i => [...document.querySelectorAll(CELLS)]
            .slice(0, i).filter(c => c.classList.contains('jp-CodeCell')).length"""),
        ex["check"],
    )
    old = before[code_index]
    # runs the answer cell, then every cell up to and including its check (the release puts a
    # markdown cell stating the pass line between them)
    for _ in range(ex["check"] - ex["answer"] + 1):
        page.keyboard.press("Shift+Enter")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prompt = page.evaluate(jlab.PROMPTS_JS)[code_index]
        if prompt not in (old, "[*]:", "[ ]:") and page.evaluate(jlab.STATUS_JS) == "idle":
            break
        page.wait_for_timeout(500)
    else:
        raise TimeoutError(f"the check cell did not run again in {timeout} s (prompt {prompt})")
    shown = jlab.cells(page)[ex["check"]]
    return "".join(o["text"] for o in shown["outputs"]).strip()


# Lab 01 is the scenario; lab 00 (where this test was first developed) runs too with
# LABKIT_BROWSER_STUDENT_LABS=00,01. Lab 01's student notebook stops at its first stub within
# seconds; lab 00's trains for three epochs first.
LABS = [lab.strip() for lab in os.environ.get("LABKIT_BROWSER_STUDENT_LABS", "01").split(",") if lab.strip()]


@pytest.mark.parametrize("lab", LABS)
def test_student_does_first_exercise(lab, lab_server, page, tmp_path):
    instructor_path = instructor_notebook(lab)
    if instructor_path is None:
        pytest.skip(f"lab {lab} has no instructor notebook in {NOTEBOOKS} yet")
    student_path, how = student_version(instructor_path, tmp_path)
    instructor, student = (json.loads(p.read_text()) for p in (instructor_path, student_path))
    ex = first_exercise(instructor, student)
    wrong, hint_words = WRONG[lab]
    rel = lab_server.add(student_path, f"student/{student_path.name}")
    t0 = time.perf_counter()

    # 1. Open and run the released notebook: the first check fails, saying what to do.
    jlab.open_notebook(page, lab_server.url(rel), len(student["cells"]))
    t_open = time.perf_counter()
    jlab.run_all(page)
    jlab.wait_run_finished(page, timeout=600)
    t_run = time.perf_counter()
    shown = jlab.cells(page)
    first = "".join(o["text"] for o in shown[ex["check"]]["outputs"]).strip()
    assert first.startswith(NOT_IMPLEMENTED), (
        f"the stub's check (cell {ex['check']}) shows {first!r}; prompts {[c['prompt'] for c in shown]}; "
        f"errors {jlab.shown_errors(shown)}"
    )

    # 2. Type the correct solution into the answer cell, run it and its check: the pass line.
    jlab.type_into_cell(page, ex["answer"], ex["solution"])
    assert jlab.editor_text(page, ex["answer"]) == ex["solution"]
    shown = run_answer_and_check(page, ex)
    assert shown == ex["pass_line"], f"after typing the solution the check shows {shown!r}"

    # 3. Type a plausible wrong answer: the check fails with that mistake's hint.
    jlab.type_into_cell(page, ex["answer"], wrong)
    assert jlab.editor_text(page, ex["answer"]) == wrong
    shown = run_answer_and_check(page, ex)
    assert shown.startswith("FAIL: ") and hint_words in shown, f"after the wrong answer the check shows {shown!r}"

    jlab.full_page_screenshot(page, SCREENSHOTS / f"student_{student_path.stem}.png")
    print(
        f"student session, lab {lab} ({how}): {time.perf_counter() - t0:.0f} s (open {t_open - t0:.0f} s, "
        f"run all {t_run - t_open:.0f} s, type and re-run twice {time.perf_counter() - t_run:.0f} s); "
        f"wrong answer -> {shown!r}"
    )
