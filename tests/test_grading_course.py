"""labkit.grading.course: the course gradebook from made-up per-lab gradebooks (plain, Canvas, Moodle)."""

import csv
import io
import json

import pytest

from labkit.__main__ import main
from labkit.grading import course


def write_lab(root, name, rows, header="student,total,max,check_a,check_b,status"):
    lab = root / name
    lab.mkdir(parents=True)
    (lab / "gradebook.csv").write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return lab


@pytest.fixture
def labs(tmp_path):
    """Three labs: bob misses lab01, cy only handed in lab01, ann's lab02 timed out."""
    return [
        write_lab(tmp_path, "lab00", ["ann,3,4,2,1,ok", "bob,4,4,2,2,ok"]),
        write_lab(tmp_path, "lab01", ["ann,5,10,5,0,ok", "cy,10,10,5,5,ok"]),
        write_lab(tmp_path, "lab02", ["ann,0,2,0,0,timeout", "bob,2,2,1,1,ok"]),
    ]


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_read_lab(labs):
    lab = course.read_lab(labs[0])
    assert lab.name == "lab00" and lab.max_points == 4.0
    assert lab.points == {"ann": 3.0, "bob": 4.0} and lab.status == {"ann": "ok", "bob": "ok"}
    assert course.read_lab(labs[0] / "gradebook.csv") == lab  # the file itself works too


def test_plain_course_table_with_missing_students(labs, tmp_path):
    out = tmp_path / "course.csv"
    assert main(["gradebook", *map(str, labs), "--out", str(out)]) == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["student", "lab00", "lab01", "lab02", "total", "max", "percent", "status"]
    by = {r["student"]: r for r in rows}
    assert sorted(by) == ["ann", "bob", "cy"]  # the union of all labs' students
    # ann: 3/4 + 5/10 + 0/2 = 1.25 of 3 labs
    assert by["ann"]["total"] == "1.25" and by["ann"]["max"] == "3" and by["ann"]["percent"] == "41.6667"
    assert by["ann"]["status"] == "lab02: timeout"
    assert by["bob"]["lab01"] == "0" and by["bob"]["status"] == "missing: lab01"
    assert by["bob"]["total"] == "2"  # 4/4 + 0 + 2/2
    assert by["cy"]["status"] == "missing: lab00; missing: lab02" and by["cy"]["total"] == "1"


def test_weights_from_toml_and_json(labs, tmp_path):
    toml = tmp_path / "w.toml"
    toml.write_text("lab01 = 2\nlab02 = 0\n")
    weights = course.read_weights(toml, ["lab00", "lab01", "lab02"])
    rows = {r["student"]: r for r in course.course_rows([course.read_lab(p) for p in labs], weights)}
    assert rows["ann"]["max"] == 3.0  # 1 + 2 + 0; lab00 not named: weight 1
    assert rows["ann"]["total"] == pytest.approx(0.75 + 2 * 0.5)
    assert rows["cy"]["total"] == pytest.approx(2.0) and rows["cy"]["percent"] == pytest.approx(200 / 3)
    js = tmp_path / "w.json"
    js.write_text(json.dumps({"lab01": 2, "lab02": 0}))
    out_t, out_j = tmp_path / "t.csv", tmp_path / "j.csv"
    assert main(["gradebook", *map(str, labs), "--out", str(out_t), "--weights", str(toml)]) == 0
    assert main(["gradebook", *map(str, labs), "--out", str(out_j), "--weights", str(js)]) == 0
    assert out_t.read_text() == out_j.read_text()
    assert {r["student"]: r["total"] for r in read_csv(out_t)} == {"ann": "1.75", "bob": "1", "cy": "2"}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("w.toml", "lab00 = [", "not valid TOML"),
        ("w.json", "{lab00: 1}", "not valid JSON"),
        ("w.json", '{"lab9": 1}', "not graded here"),
        ("w.json", '{"lab00": -1}', "number >= 0"),
        ("w.json", '{"lab00": "2"}', "number >= 0"),
        ("w.json", '{"lab00": true}', "number >= 0"),
        ("w.json", "[1, 2]", "must map lab names"),
        ("w.json", '{"lab00": 0, "lab01": 0, "lab02": 0}', "every weight is 0"),
        ("w.yaml", "lab00: 1", "must end in .toml or .json"),
    ],
)
def test_bad_weights_file_is_a_usage_error(labs, tmp_path, capsys, name, text, message):
    w = tmp_path / name
    w.write_text(text)
    out = tmp_path / "course.csv"
    assert main(["gradebook", *map(str, labs), "--out", str(out), "--weights", str(w)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(course.WeightsError, match=message.split()[0]):
        course.read_weights(w, ["lab00", "lab01", "lab02"])


def test_missing_weights_file_is_a_usage_error(labs, tmp_path, capsys):
    assert (
        main(["gradebook", str(labs[0]), "--out", str(tmp_path / "c.csv"), "--weights", str(tmp_path / "no.toml")]) == 2
    )
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read the gradebook"),
        ("name,points\nann,3\n", "no column student, total, max, status"),
        ("student,total,max,status\nann,three,4,ok\n", "total must be a number"),
        ("student,total,max,status\nann,nan,4,ok\n", "finite number"),
        ("student,total,max,status\nann,1,4,ok\nann,2,4,ok\n", "appears twice"),
        ("student,total,max,status\n,1,4,ok\n", "empty student name"),
        ("student,total,max,status\n", "has no student"),
        (b"\xff\xfe\x00binary", "cannot read the gradebook"),
    ],
)
def test_unreadable_gradebook_exits_1_with_a_message(labs, tmp_path, capsys, content, message):
    bad = tmp_path / "lab09"
    bad.mkdir()
    if isinstance(content, str):
        (bad / "gradebook.csv").write_text(content)
    elif isinstance(content, bytes):
        (bad / "gradebook.csv").write_bytes(content)
    out = tmp_path / "course.csv"
    assert main(["gradebook", str(labs[0]), str(bad), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert message in printed and "lab09" in printed
    assert not out.exists()


def test_usage_errors(labs, tmp_path, capsys):
    out = str(tmp_path / "course.csv")
    assert main(["gradebook", str(tmp_path / "nope"), "--out", out]) == 2
    other = write_lab(tmp_path / "other", "lab00", ["zed,1,4,1,0,ok"])
    assert main(["gradebook", str(labs[0]), str(other), "--out", out]) == 2  # two labs named lab00
    assert "same lab name" in capsys.readouterr().err
    assert main(["gradebook", str(labs[0]), "--out", str(tmp_path / "no" / "c.csv")]) == 2
    assert main(["gradebook", str(labs[0]), "--out", out, "--format", "blackboard"]) == 2
    with pytest.raises(ValueError, match="fmt must be one of"):
        course.course_csv([course.read_lab(labs[0])], fmt="blackboard")


def test_canvas_shape(labs, tmp_path):
    out = tmp_path / "canvas.csv"
    assert main(["gradebook", *map(str, labs), "--out", str(out), "--format", "canvas"]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "lab00", "lab01", "lab02"]
    assert rows[1] == ["ann", "", "", "ann", "", "3", "5", "0"]
    assert rows[2] == ["bob", "", "", "bob", "", "4", "0", "2"]  # missing from lab01: 0
    assert len(rows) == 4


def test_moodle_shape(labs, tmp_path):
    out = tmp_path / "moodle.csv"
    assert main(["gradebook", *map(str, labs), "--out", str(out), "--format", "moodle"]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows == [
        ["username", "lab00", "lab01", "lab02"],
        ["ann", "3", "5", "0"],
        ["bob", "4", "0", "2"],
        ["cy", "0", "10", "0"],
    ]


def test_a_real_grader_gradebook_is_read(tmp_path):
    """The columns gradebook_csv writes (one per check cell, fractional points) are what read_lab expects."""
    from labkit.grading.reports import gradebook_csv
    from labkit.grading.results import ExerciseResult, GradeResult

    ann = (ExerciseResult("check_a", "a", 1.5, 2.0, False, ""), ExerciseResult("check_b", "b", 0.0, 1.0, False, ""))
    results = {"ann": GradeResult("ann", ann), "bob": GradeResult("bob", (), status=("malformed",))}
    text = gradebook_csv(["check_a", "check_b"], results)
    lab = tmp_path / "lab05"
    lab.mkdir()
    (lab / "gradebook.csv").write_text(text)
    got = course.read_lab(lab)
    assert got.points == {"ann": 1.5, "bob": 0.0} and got.status == {"ann": "ok", "bob": "malformed"}
    assert got.max_points == 3.0  # the malformed row's max is 0: the lab's maximum is the largest


def test_write_is_atomic(labs, tmp_path, monkeypatch, capsys):
    """A write that fails at the rename leaves the previous table whole and no temporary file behind."""
    import os

    out = tmp_path / "course.csv"
    out.write_text("the old table\n")

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    assert main(["gradebook", *map(str, labs), "--out", str(out)]) == 1
    assert "No space left" in capsys.readouterr().out
    assert out.read_text() == "the old table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course.csv", "lab00", "lab01", "lab02"]
