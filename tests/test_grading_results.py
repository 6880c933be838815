"""labkit.grading.results and .reports: one GradeResult from the supervisor to the manifest, and the files written."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from labkit.check import lab00
from labkit.grading import notebook as nbmod
from labkit.grading.reports import MANIFEST, feedback_md, gradebook_csv, read_manifest, write_reports
from labkit.grading.results import ExerciseResult, GradeResult, zero_result

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"


@pytest.fixture(scope="module")
def asg():
    return nbmod.load_assignment(LAB00)


def _result(asg, student="ann", points=(1.0, 0.0), **fields):
    exercises = tuple(
        ExerciseResult(c.check_id, c.answer_id, p, c.points, p > 0, "passed" if p else "FAIL: a | hint\nsplit")
        for c, p in zip(asg.checks, points)
    )
    return GradeResult(student, exercises, **fields)


def test_result_round_trips_through_json(asg):
    run = dict(seconds=2.5, sha256="ab", seed=7, sandbox=True, forbid_reference=False, leftover_processes=0)
    audit = dict(attempts=({"kind": "write", "what": "/x"},), reference_calls=(), log_tail="tail")
    r = _result(asg, status=("timeout",), notes=("a note",), **run, **audit)
    d = json.loads(json.dumps(r.to_dict()))
    first = {"grade_id": "check_count_parameters", "answer_id": "count_parameters", "points": 1.0, "max": 1.0}
    assert d["exercises"][0] == {**first, "passed": True, "hint": "passed"}
    assert GradeResult.from_dict(d) == r
    assert (r.total, r.max_points, r.status_line) == (1.0, 2.0, "timeout")


def test_unset_fields_stay_out_of_the_json(asg):
    r = zero_result(asg.checks, "bob", "malformed", "could not read your notebook", sha256="")
    assert set(r.to_dict()) == {"student", "exercises", "status", "notes", "seconds", "sha256"}
    assert [e.points for e in r.exercises] == [0.0, 0.0] and r.status_line == "malformed"
    assert GradeResult.from_dict(r.to_dict()) == r


def test_reports_write_the_gradebook_feedback_and_manifest(asg, tmp_path):
    results = {"ann": _result(asg, sha256="1", sandbox=True), "bob": _result(asg, "bob", (0.0, 0.0), sha256="2")}
    results["cy"] = _result(asg, "cy", (1.0, 1.0), sha256="3", sandbox=False)
    write_reports(tmp_path, asg, True, False, results)
    rows = (tmp_path / "gradebook.csv").read_text().splitlines()
    header = "student,total,max,check_count_parameters,check_accuracy,status"
    assert rows == [header, "ann,1,2,1,0,ok", "bob,0,2,0,0,ok", "cy,2,2,1,1,ok"]
    text = (tmp_path / "feedback" / "ann.md").read_text()
    assert text == feedback_md(asg.path.name, results["ann"])
    assert "**Score: 1 / 2**" in text and "FAIL: a \\| hint split" in text  # table cells stay one line
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["assignment_sha256"] == asg.sha256 and set(manifest["results"]) == {"ann", "bob", "cy"}
    # a result says whether it was graded in a sandbox (none said: it was); it holds only for the same kind of run
    assert read_manifest(tmp_path, asg, True, False) == {s: results[s] for s in ("ann", "bob")}
    assert read_manifest(tmp_path, asg, False, False) == {"cy": results["cy"]}
    assert read_manifest(tmp_path, asg, True, True) == {}  # graded without --forbid-reference
    assert gradebook_csv(["check_accuracy"], {}) == "student,total,max,check_accuracy,status\n"


def test_unreadable_manifest_regrades_everything(asg, tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    assert read_manifest(tmp_path, asg, True, False) == {}
    (tmp_path / MANIFEST).write_text(json.dumps({"assignment_sha256": asg.sha256, "results": {"x": {"exercises": 3}}}))
    assert read_manifest(tmp_path, asg, True, False) == {}


def test_one_name_for_each_id_and_deprecated_aliases(asg):
    check = asg.checks[0]
    assert (check.check_id, check.answer_id) == ("check_count_parameters", "count_parameters")
    assert check.exercise.answer_id == check.answer_id
    with pytest.warns(DeprecationWarning, match="CheckCell.check_id"):
        assert check.grade_id == "check_count_parameters"
    with pytest.warns(DeprecationWarning, match="Exercise.answer_id"):
        assert lab00.accuracy.grade_id == "accuracy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn about nothing
        assert lab00.accuracy.answer_id == "accuracy"
