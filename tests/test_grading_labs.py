"""Every lab grades as it should: its released solution scores full marks, its untouched student
release 0 (through the command line, in the sandbox when bubblewrap is there).

In a file of its own so that pytest-xdist (``--dist loadfile``) runs it beside the other slow files.
"""

from __future__ import annotations

import pytest
from conftest import grade_cli, graded_labs, read_gradebook

from labkit.grading import notebook as nbmod

GRADED_LABS = graded_labs()


@pytest.mark.slow
@pytest.mark.parametrize("lab", GRADED_LABS, ids=[p.stem for p in GRADED_LABS])
def test_lab_solution_scores_full_and_student_release_scores_zero(lab, released_labs, tmp_path):
    released, _ = released_labs  # tests/conftest.py: the release of every lab, shared
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "solution.ipynb").write_bytes((released / "solution" / lab.name).read_bytes())
    (subs / "student.ipynb").write_bytes((released / "student" / lab.name).read_bytes())
    grade_cli(lab, subs, tmp_path / "out", "--jobs", "2")
    book = read_gradebook(tmp_path / "out")
    maximum = nbmod.load_assignment(lab).max_points
    assert float(book["solution"]["total"]) == maximum > 0, book["solution"]
    assert float(book["student"]["total"]) == 0, book["student"]
    checks = [c.check_id for c in nbmod.load_assignment(lab).checks]
    assert all(float(book["student"][g]) == 0 for g in checks)
