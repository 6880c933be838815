"""Whole grading runs on the committed submissions of lab 00 (tests/submissions/lab00/*.ipynb.json):
hostile and broken notebooks each get their expected score, a re-run grades only what changed.

In a file of its own so that pytest-xdist (``--dist loadfile``) runs it beside the other slow files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import grade_cli, load_script, read_gradebook

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
SUBMISSIONS = ROOT / "tests" / "submissions" / "lab00"


def _load_make_submissions():
    return load_script(ROOT / "tests/submissions/make_submissions.py")


@pytest.mark.slow
def test_committed_submissions_score_as_expected(tmp_path):
    subs = _load_make_submissions()
    folder = subs.copy_as_notebooks(tmp_path / "subs", list(subs.SUBMISSIONS))  # sandbox_*: test_grading_sandbox
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(subs.SUBMISSIONS)
    out = tmp_path / "out"
    # three at a time: two of the hostile notebooks mostly wait (a frozen nbval, a 20 s cell timeout);
    # 150 s overall: under a load of 15 on 2 cores, loop_top_level needed 69 s to reach its cell timeout
    grade_cli(LAB00, folder, out, "--jobs", "3", "--cell-timeout", "20", "--timeout", "150", "--memory", "2048")
    book = read_gradebook(out)
    assert set(book) == set(subs.SUBMISSIONS)
    for name, (_answers, points, status_words, what) in subs.SUBMISSIONS.items():
        row = book[name]
        assert float(row["total"]) == points, f"{name} ({what}): {row}"
        assert float(row["max"]) == 2
        for word in status_words:
            assert word in row["status"], f"{name}: status {row['status']!r} lacks {word!r}"
    # the sandbox hides the output folder (without it the answer wrote there and the grader rewrote it)
    assert not (out / "attack-was-here").exists()
    assert "forged" not in (out / "feedback" / "correct.md").read_text()
    manifest = json.loads((out / ".labkit-grades.json").read_text())
    assert set(manifest["results"]) == set(subs.SUBMISSIONS)
    assert not list(out.glob(".*.tmp")) and not list((out / "feedback").glob(".*.tmp"))
    # every feedback file says the score; the detached process was killed with its submission
    for name, (_a, points, *_r) in subs.SUBMISSIONS.items():
        assert f"**Score: {points:g} / 2**" in (out / "feedback" / f"{name}.md").read_text()
    # (the sandbox's pid namespace ends with nbval, so the supervisor usually finds nothing left to kill)
    assert subs.DAEMON_MARKER in " ".join(manifest["results"]["daemon"]["notes"])  # "attempted (process): ..."
    assert manifest["sandbox"] is True and all(r["sandbox"] for r in manifest["results"].values())
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
