"""Release and grading: the safe record format, notebook assembly, scoring, and a release run.

Whole grading runs live in test_grading_batch.py (the committed hostile and broken submissions of
lab 00) and test_grading_labs.py (every lab's released solution scores full marks, its student
release 0), so that pytest-xdist can run them side by side.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import graded_labs

from labkit.check import Case, Exercise, lab00
from labkit.check.output import quiet
from labkit.check.records import decode, encode
from labkit.grading import notebook as nbmod
from labkit.grading.grade import GradeOptions, score
from labkit.grading.release import ReleaseError, release
from labkit.grading.reports import gradebook_csv
from labkit.grading.results import ExerciseResult, GradeResult

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
SUBMISSIONS = ROOT / "tests" / "submissions" / "lab00"
LABS = nbmod.lab_notebooks(ROOT / "notebooks")

GRADED_LABS = graded_labs()


# --- the record format: plain JSON, never code ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -(2**70),
        1.5,
        float("nan"),
        float("-inf"),
        "text",
        b"\x00\xff",
        2 + 3j,
        np.arange(6, dtype=np.int8).reshape(2, 3),
        np.array([True, False]),
        np.float32(0.25),
        np.int64(7),
        np.zeros((0, 4), np.float16),
        (1, [2.0, {"k": np.uint8(3)}]),
        {1: "a", (2, 3): None},
        {1, 2},
    ],
)
def test_encode_decode_round_trip(value):
    back = decode(json.loads(json.dumps(encode(value))))
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape and np.array_equal(back, value)
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(back)
    else:
        assert back == value


def test_encode_labkit_objects_keeps_public_state():
    from labkit import models

    m = models.mlp([4, 3, 2], seed=0)
    back = decode(json.loads(json.dumps(encode(m))))
    assert type(back) is type(m)
    x = np.ones((1, 4), np.float32)
    assert np.array_equal(back.forward(x), m.forward(x))


@pytest.mark.parametrize("value", [print, lambda x: x, np.array([object()], dtype=object), open, Path(".")])
def test_encode_refuses_code_and_foreign_objects(value):
    with pytest.raises(TypeError):
        encode(value)


@pytest.mark.parametrize(
    "record",
    [
        {"__obj__": "os:system", "state": {}},
        {"__obj__": "subprocess:Popen", "state": {}},
        {"__ntuple__": "collections:namedtuple", "items": []},
        {"__nd__": "|O", "shape": [1], "data": ""},
        {"__nd__": "<f8", "shape": [3], "data": "AAAA"},
        {"__obj__": "labkit.nn:Dense", "state": {"__class__": 1}},
        {"unknown": 1},
    ],
)
def test_decode_rejects_anything_but_plain_data(record):
    with pytest.raises(ValueError):
        decode(record)


# --- the grading hook of Exercise ---------------------------------------------------------------


def _count(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def test_grading_cases_depend_only_on_the_seed():
    ex = lab00.count_parameters
    a, b, c = ex.grading_cases(5), ex.grading_cases(5), ex.grading_cases(6)
    assert [x.args for x in a] == [x.args for x in b]
    assert [x.args for x in a] != [x.args for x in c]
    assert [x.args for x in a[: len(ex.fixed_cases)]] == [x.args for x in ex.fixed_cases]


def _records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_record_written_only_for_a_passing_check_and_verified_outside(tmp_path, monkeypatch, capsys):
    rec = tmp_path / "record.jsonl"
    monkeypatch.setenv("LABKIT_GRADE_RECORD", str(rec))
    monkeypatch.setenv("LABKIT_GRADE_SEED", "123")
    ex = lab00.count_parameters
    with pytest.raises(AssertionError):
        ex(lambda s: 0)  # fails (raises): no record
    assert not rec.exists()
    ex(_count)
    assert capsys.readouterr().out.splitlines() == [ex.pass_line]
    (r,) = _records(rec)
    assert r["grade_id"] == "count_parameters" and len(r["outputs"]) == len(ex.grading_cases(123))
    assert ex.verify(r["outputs"], 123) is None
    assert "expected" in ex.verify(r["outputs"], 124)  # other seed, other cases: outputs no longer match
    forged = [{"ok": 0}] * len(r["outputs"])
    assert "expected" in ex.verify(forged, 123)
    assert "record holds" in ex.verify(r["outputs"][:-1], 123)
    assert "not implemented" in ex.verify([{"error": "NotImplementedError: "}], 123)


def test_check_raise_mode_for_nbgrader(capsys):
    # a failing check always raises (nbgrader's autograder counts a grade cell as failed only then)
    with pytest.raises(AssertionError) as info:
        lab00.count_parameters(lambda s: 0)
    assert info.value.line == lab00.count_parameters.verdict(lambda s: 0)
    lab00.count_parameters(_count)  # a pass never raises
    assert capsys.readouterr().out.splitlines() == [lab00.count_parameters.pass_line]


def test_memorised_answers_fail_the_grader_cases():
    ex = lab00.count_parameters
    table = {tuple(c.args[0]): _count(c.args[0]) for c in ex.cases()}
    memorised = lambda s: table.get(tuple(s), 0)
    assert ex.passes(memorised)  # the notebook's own cases are fixed: a lookup table passes them
    outputs = [{"ok": encode(memorised(*c.args))} for c in ex.grading_cases(99)]
    assert ex.verify(outputs, 99) is not None


def test_quiet_hides_every_kind_of_output_and_lets_interrupts_through(capfd):
    with quiet():
        print("print")
        sys.stderr.write("stderr")
        os.write(1, b"fd one\n")
        os.write(2, b"fd two\n")
        import warnings

        warnings.warn("warning", stacklevel=1)
    print("after")
    out = capfd.readouterr()
    assert out.out == "after\n" and out.err == ""
    with pytest.raises(KeyboardInterrupt), quiet():
        raise KeyboardInterrupt
    print("restored")
    assert capfd.readouterr().out == "restored\n"


def test_exercise_without_random_cases_still_verifies():
    ex = Exercise("double", lambda x: 2 * x, fixed_cases=[Case((np.arange(3),))], pass_line="double: ok")
    outputs = [{"ok": encode(2 * np.arange(3))}]
    assert ex.verify(outputs, 1) is None
    assert "differs" in ex.verify([{"ok": encode(np.arange(3))}], 1)


# --- notebooks: strip, release, assemble ------------------------------------------------------------


def test_strip_solution_keeps_indentation_and_code_around():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nz = 2"
    assert (
        nbmod.strip_solution(src)
        == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nz = 2"
    )
    with pytest.raises(ValueError, match="END SOLUTION"):
        nbmod.strip_solution("### BEGIN SOLUTION\nx = 1")


def test_load_assignment_lab00():
    asg = nbmod.load_assignment(LAB00)
    assert [c.answer_id for c in asg.checks] == ["count_parameters", "accuracy"]
    assert asg.max_points == 2 and asg.answer_ids == ["count_parameters", "accuracy"]
    assert all(c.exercise is getattr(lab00, c.answer_id) for c in asg.checks)
    assert nbmod.is_check(asg.nb.cells[-1])  # cut after the last check cell


def test_student_notebook_stubs_solutions_and_keeps_only_expected_lines():
    nb = nbformat.read(LAB00, as_version=4)
    st = nbmod.student_notebook(nb)
    for cell in st.cells:
        if cell.cell_type != "code":
            continue
        if nbmod.is_answer(cell):
            assert "raise NotImplementedError()" in cell.source and "BEGIN SOLUTION" not in cell.source
            assert cell.outputs == []
        elif nbmod.is_check(cell):
            assert len(cell.outputs) == 1 and cell.outputs[0]["text"].count("\n") == 1
        else:
            assert cell.outputs == [] and cell.execution_count is None


def _submission(edit):
    nb = nbmod.student_notebook(nbformat.read(LAB00, as_version=4))
    edit(nb)
    return nbmod.read_submission(nbformat.writes(nb).encode())


def test_graded_notebook_takes_only_answers_from_the_submission():
    asg = nbmod.load_assignment(LAB00)

    def edit(nb):
        for cell in nb.cells:
            if nbmod.is_answer(cell):
                cell.source = cell.source.replace("raise NotImplementedError()", "return 42")
            elif nbmod.is_check(cell):
                cell.source = "print('hacked')"
                cell.metadata["nbgrader"]["points"] = 99
                cell.outputs[0]["text"] = "hacked\n"
            elif cell.cell_type == "code":
                cell.source = "import os"
        nb.cells.append(nbformat.v4.new_code_cell("print('extra cell')"))

    got = nbmod.graded_notebook(asg, _submission(edit)).nb
    assert len(got.cells) == len(asg.nb.cells)
    for mine, ref in zip(got.cells, asg.nb.cells):
        if nbmod.is_answer(ref):
            assert "return 42" in mine.source
        else:
            assert mine.source == ref.source and mine.metadata == ref.metadata
            if nbmod.is_check(ref):
                assert mine.outputs == ref.outputs


def test_graded_notebook_finds_answers_without_metadata_and_reports_missing():
    asg = nbmod.load_assignment(LAB00)

    def lose_metadata(nb):
        for cell in nb.cells:
            if nbmod.is_answer(cell) and "accuracy" in cell.source:
                del cell.metadata["nbgrader"]
                cell.source = "def accuracy(l, y):\n    return 1.0"

    a = nbmod.graded_notebook(asg, _submission(lose_metadata))
    assert not a.missing and any("no nbgrader metadata" in n for n in a.notes)
    assert "return 1.0" in a.nb.cells[nbmod.answer_cells(a.nb)["accuracy"][0]].source

    def delete(nb):
        nb.cells = [c for c in nb.cells if not (nbmod.is_answer(c) and "accuracy" in c.source)]

    b = nbmod.graded_notebook(asg, _submission(delete))
    assert b.missing == ["accuracy"]


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"cells": 3}', "caf\u00e9".encode("latin-1")])
def test_read_submission_rejects_non_notebooks(raw):
    with pytest.raises(nbmod.SubmissionError):
        nbmod.read_submission(raw)


def test_suspicious_answer_cells_are_flagged():
    assert nbmod.suspicious("import labkit.check._core as c") == ["labkit.check"]
    assert "processes/signals" in nbmod.suspicious("import os\nos._exit(0)")
    assert nbmod.suspicious("def f(x):\n    return np.mean(x)") == []


def test_release_writes_student_and_solution_for_every_lab(released_labs):
    out, names = released_labs
    assert names == [p.name for p in LABS]
    manifest = json.loads((out / "MANIFEST.json").read_text())
    for name in names:
        st = nbformat.read(out / "student" / name, as_version=4)
        assert not any("BEGIN SOLUTION" in c.source for c in st.cells)
        sol = nbformat.read(out / "solution" / name, as_version=4)
        assert [c.source for c in sol.cells] == [c.source for c in nbformat.read(ROOT / "notebooks" / name, 4).cells]
        assert manifest["labs"][name]["max_points"] == nbmod.load_assignment(ROOT / "notebooks" / name).max_points


def test_release_refuses_a_check_that_does_not_print_its_pass_line(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    nb = nbformat.read(LAB00, as_version=4)
    for cell in nb.cells:
        if nbmod.is_check(cell) and "accuracy" in cell.source:
            cell.outputs[0]["text"] = "FAIL: something\n"
    nbformat.write(nb, src / LAB00.name)
    with pytest.raises(ReleaseError, match="does not show its pass line"):
        release(src, tmp_path / "out", execute=False, log=lambda *a: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_release_executes_the_instructor_notebook(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    nbformat.write(nbmod.load_assignment(LAB00).nb, src / LAB00.name)  # lab 00 up to its last check
    lines = []
    assert release(src, tmp_path / "out", log=lines.append) == [LAB00.name]
    assert any("executed in" in line for line in lines)
    sol = nbformat.read(tmp_path / "out" / "solution" / LAB00.name, as_version=4)
    asg = nbmod.load_assignment(LAB00)
    for c in asg.checks:  # fresh outputs, checked against the pass lines
        assert sol.cells[c.cell_index].outputs[0]["text"] == c.pass_line + "\n"


# --- scoring: nbval's verdict and the grader's own verification must agree ---------------------------


def _spec(seed=7):
    asg = nbmod.load_assignment(LAB00)
    checks = [
        {
            "grade_id": c.check_id,
            "answer_id": c.answer_id,
            "points": c.points,
            "code_index": c.code_index,
            "exercise": c.exercise_path,
        }
        for c in asg.checks
    ]
    return asg, {"seed": seed, "checks": checks, "cell_timeout": 9, "timeout": 99, "missing": []}


def _run(cells, records, timed_out=False):
    return {
        "cells": cells,
        "records": records,
        "timed_out": timed_out,
        "seconds": 1.0,
        "leftover_processes": 0,
        "log_tail": "",
        "records_truncated": False,
    }


def test_score_needs_both_the_pass_line_and_matching_outputs():
    asg, spec = _spec()
    ci = {c.answer_id: c.code_index for c in asg.checks}
    ex = lab00.count_parameters
    good = {"grade_id": "count_parameters", "outputs": [{"ok": encode(_count(*c.args))} for c in ex.grading_cases(7)]}
    passed = {"cell": ci["count_parameters"], "outcome": "passed", "message": "", "output": ex.pass_line}
    r = score(spec, _run([passed], [good]))
    assert [e.points for e in r.exercises] == [1, 0]
    assert "not run" in r.exercises[1].hint
    r = score(spec, _run([passed], []))  # pass line printed, but the real check never ran
    assert r.exercises[0].points == 0 and "never run" in r.exercises[0].hint
    r = score({**spec, "seed": 8}, _run([passed], [good]))  # outputs for other cases than the grader's
    assert r.exercises[0].points == 0 and "grader's own cases" in r.exercises[0].hint
    failed = {
        "cell": ci["count_parameters"],
        "outcome": "failed",
        "message": "Cell outputs differ",
        "output": "FAIL: a hint\n",
    }
    r = score(spec, _run([failed], [good]))
    assert r.exercises[0].points == 0 and r.exercises[0].hint == "FAIL: a hint"
    r = score(spec, _run([], [], timed_out=True))
    assert r.status == ("timeout",) and "overall time limit" in r.exercises[0].hint


def test_gradebook_columns():
    asg, _ = _spec()
    graded = lambda points: tuple(ExerciseResult(c.check_id, c.answer_id, points, 1.0, True, "") for c in asg.checks)
    res = {"b": GradeResult("b", graded(1.0)), "a": GradeResult("a", graded(0.0), status=("malformed",))}
    rows = list(csv.reader(gradebook_csv([c.check_id for c in asg.checks], res).splitlines()))
    assert rows[0] == ["student", "total", "max", "check_count_parameters", "check_accuracy", "status"]
    assert rows[1] == ["a", "0", "2", "0", "0", "malformed"] and rows[2] == ["b", "2", "2", "1", "1", "ok"]


def test_grade_options_validate():
    with pytest.raises(ValueError, match="cell_timeout"):
        GradeOptions(cell_timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        GradeOptions(memory_mb=1.5)


def test_cli_reports_bad_arguments(tmp_path, capsys):
    from labkit.__main__ import main

    assert (
        main(
            ["grade", "--assignment", str(LAB00), "--submissions", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "folder of .ipynb" in capsys.readouterr().err


@pytest.mark.parametrize("lab", GRADED_LABS, ids=[p.stem for p in GRADED_LABS])
def test_every_lab_exercise_verifies_outside_the_kernel(lab):
    from labkit.grading.grade import preflight

    asg = nbmod.load_assignment(lab)
    for seed in (0, 2**31 + 5):
        preflight(asg, seed)


def test_preflight_rejects_unrecordable_or_unseeded_exercises():
    from labkit.grading.grade import preflight

    asg = nbmod.load_assignment(LAB00)
    bad = Exercise("f", lambda: print, fixed_cases=[Case()])
    asg.checks[0].exercise = bad
    with pytest.raises(ValueError, match="cannot be verified"):
        preflight(asg, 1)
    unseeded = Exercise("g", lambda x: x, cases=lambda rng: [Case((np.random.default_rng().random(),))])
    asg.checks[0].exercise = unseeded
    with pytest.raises(ValueError, match="cannot be verified"):
        preflight(asg, 1)


# --- whole grading runs (slow: each submission starts a kernel) -----------------------------------
