"""Whole grading runs on the committed submissions of lab 00 (tests/submissions/lab00/*.ipynb.json):
hostile and broken notebooks each get their expected score, a re-run grades only what changed.

Without bubblewrap (outside CI) the same runs grade with ``--no-sandbox`` (tests/conftest.py): every
score is the same, and what only the sandbox prevents (a submission writing into the output folder)
is checked to have happened and to have changed nothing the grader wrote.

In a file of its own so that pytest-xdist (``--dist loadfile``) runs it beside the other slow files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import grade_cli, load_script, read_gradebook, sandboxed

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
SUBMISSIONS = ROOT / "tests" / "submissions" / "lab00"


# The grader takes a batch's submissions in the order of their names. The three that mostly wait
# (stop_grader until the overall timeout, the two loops until their cell timeout) are handed to it
# under names that sort first, so that their waiting overlaps the rest of the batch instead of
# trailing it (sorted among the others, stop_grader's overall timeout would come after everything else).
WAIT_FIRST = ("stop_grader", "loop_top_level", "loop_in_function")


def _graded_name(name: str) -> str:
    return f"{WAIT_FIRST.index(name)}_{name}" if name in WAIT_FIRST else name


def _load_make_submissions():
    return load_script(ROOT / "tests/submissions/make_submissions.py")


@pytest.mark.slow
def test_committed_submissions_score_as_expected(tmp_path):
    subs = _load_make_submissions()
    folder = subs.copy_as_notebooks(tmp_path / "subs", list(subs.SUBMISSIONS))  # sandbox_*: test_grading_sandbox
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(subs.SUBMISSIONS)
    for name in WAIT_FIRST:
        (folder / f"{name}.ipynb").rename(folder / f"{_graded_name(name)}.ipynb")
    out = tmp_path / "out"
    # three at a time: stop_grader holds one of them until the overall timeout, so that timeout is the
    # test's length; 100 s overall: under a load of 15 on 2 cores, loop_top_level needed 69 s to reach
    # its cell timeout
    grade_cli(LAB00, folder, out, "--jobs", "3", "--cell-timeout", "20", "--timeout", "100", "--memory", "2048")
    graded = read_gradebook(out)
    assert set(graded) == {_graded_name(n) for n in subs.SUBMISSIONS}
    book = {name: graded[_graded_name(name)] for name in subs.SUBMISSIONS}
    wrong = []  # every submission's problems at once (one failing row says little about the batch)
    for name, (_answers, points, status_words, what) in subs.SUBMISSIONS.items():
        row = book[name]
        if float(row["total"]) != points or float(row["max"]) != 2:
            wrong.append(f"{name} ({what}): expected {points}/2, got {row}")
        lacking = [word for word in status_words if word not in row["status"]]
        wrong += [f"{name}: status {row['status']!r} lacks {word!r}" for word in lacking]
    assert wrong == []
    # the sandbox hides the output folder; without it the answer writes there, and the grader rewrites
    # every file it owns from memory at the end, so the forged gradebook and feedback are gone either way
    assert (out / "attack-was-here").exists() is not sandboxed()
    assert "forged" not in (out / "feedback" / "correct.md").read_text()
    manifest = json.loads((out / ".labkit-grades.json").read_text())
    assert set(manifest["results"]) == set(graded)
    assert not list(out.glob(".*.tmp")) and not list((out / "feedback").glob(".*.tmp"))
    # every feedback file says the score; the detached process was killed with its submission
    for name, (_a, points, *_r) in subs.SUBMISSIONS.items():
        assert f"**Score: {points:g} / 2**" in (out / "feedback" / f"{_graded_name(name)}.md").read_text()
    # (the sandbox's pid namespace ends with nbval, so the supervisor usually finds nothing left to kill)
    if sandboxed():  # the sandbox's audit hook records the attempt: "attempted (process): ..."
        assert subs.DAEMON_MARKER in " ".join(manifest["results"]["daemon"]["notes"])
    assert manifest["sandbox"] is sandboxed() and all(r["sandbox"] is sandboxed() for r in manifest["results"].values())
    for name in ("ref_import", "ref_dynamic"):  # flagged, points kept without --forbid-reference
        assert "calls labkit's reference for count_parameters, accuracy" in book[name]["status"]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert subs.DAEMON_MARKER not in ps
    assert not Path("/tmp/pwned").exists()
    # a re-run grades nothing and leaves the gradebook as it was
    before = (out / "gradebook.csv").read_text()
    log = grade_cli(LAB00, folder, out, "--jobs", "2")
    assert f"0 to grade, {len(subs.SUBMISSIONS)} already graded" in log
    assert (out / "gradebook.csv").read_text() == before


@pytest.mark.slow
def test_regrade_only_changed_submissions_unless_forced(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    correct, partly_wrong = (SUBMISSIONS / f"{n}.ipynb.json" for n in ("correct", "partly_wrong"))
    for name in ("ann", "bob"):
        (subs / f"{name}.ipynb").write_bytes(correct.read_bytes())
    out = tmp_path / "out"
    assert "2 to grade" in grade_cli(LAB00, subs, out, "--jobs", "2")
    (subs / "bob.ipynb").write_bytes(partly_wrong.read_bytes())
    log = grade_cli(LAB00, subs, out)
    assert "1 to grade, 1 already graded" in log and "bob: 1/2" in log
    assert "2 to grade" in grade_cli(LAB00, subs, out, "--force", "--jobs", "2")
    assert {k: v["total"] for k, v in read_gradebook(out).items()} == {"ann": "2", "bob": "1"}
