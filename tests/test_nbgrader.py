"""A real nbgrader round trip: the instructor notebooks are nbgrader source notebooks.

For lab 03, in a temporary course folder with its own ``nbgrader_config.py`` and database:
``nbgrader generate_assignment`` from the instructor notebook; ``nbgrader validate`` on the released
(untouched) notebook must tell the student it fails; ``nbgrader autograde`` grades three submissions, the
solution, the untouched released notebook and a solution with one wrong answer; ``python -m labkit grade``
grades the same three files; the two must agree check by check. No environment variable is set: a failing
check raises (``labkit.check.CheckFailed``), which is what nbgrader's autograder counts as a failed test.

nbgrader executes every cell of a notebook (labkit's grader stops after the last check cell), so this file
costs about as much as running the lab five times: about 140 s of a full ``make test``. One lab is enough
to prove the round trip; lab 00 (whose three-epoch training made its round trip the slower of the two)
is left out to keep ``make test`` within its 20 minutes, and labkit's own grader covers every lab
(tests/test_grading_labs.py).

The last tests check that the course's JupyterLab (``etc/jupyter``, used by ``make lab`` and the browser
tests) does not show nbgrader's instructor tools: its server and lab extensions are disabled there.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import clean_status, grading_sandbox_args

from labkit.grading import notebook as nbmod

ROOT = Path(__file__).resolve().parent.parent
ETC = ROOT / "etc" / "jupyter"
NBGRADER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)

#: One wrong answer per lab: (answer grade_id, wrong source). The rest of the wrong submission is the solution.
WRONG = {
    "03_quantization_fundamentals": (
        "quantize",
        "def quantize(x, scale, zero_point, bits):\n"
        "    q = np.rint(x / scale)  # forgets the zero point\n"
        "    return np.clip(q, 0, 2**bits - 1).astype(np.int32)",
    ),
}
STUDENTS = ("correct", "untouched", "wrong")


class _Proc:
    """A command run in the background, its output in files; once :meth:`poll` sees it end, its result, its
    wall-clock and its CPU seconds (``os.wait4``: the process and the children it waited for, e.g. kernels)."""

    def __init__(self, cmd, cwd, log: Path):
        self.cmd, self.log, self.t0 = cmd, log, time.perf_counter()
        self.out, self.err = open(log.with_suffix(".out"), "w+"), open(log.with_suffix(".err"), "w+")
        self.p = subprocess.Popen(cmd, cwd=cwd, stdout=self.out, stderr=self.err, text=True, env=_env())

    def poll(self) -> bool:
        """True once the process has ended (then its result is in :attr:`result`)."""
        if hasattr(self, "result"):
            return True
        pid, status, usage = os.wait4(self.p.pid, os.WNOHANG)
        if not pid:
            return False
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.wall, self.cpu = time.perf_counter() - self.t0, usage.ru_utime + usage.ru_stime
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
            f.close()
        self.result = subprocess.CompletedProcess(self.cmd, self.p.returncode, *texts)
        return True


def _wait_all(procs, timeout: float = 1800) -> list:
    """Wait for every process (killing the rest at ``timeout``) and return their results in order."""
    deadline = time.monotonic() + timeout
    while not all([p.poll() for p in procs]):  # a list: poll every process, each time
        if time.monotonic() > deadline:
            for p in procs:
                if not hasattr(p, "result"):
                    p.p.kill()
            pytest.fail(f"still running after {timeout} s: {[p.cmd for p in procs if not hasattr(p, 'result')]}")
        time.sleep(0.2)
    return [p.result for p in procs]


def _env() -> dict:
    """The test's own environment, minus anything that would change how a failing check behaves, with the
    venv's bin first on PATH as in an activated venv: nbgrader runs the ``alembic`` command of its own
    environment to set up its database (``make test`` runs .venv/bin/python without activating it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_CHECK")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _nbgrader(course: Path, *args: str) -> _Proc:
    return _Proc([sys.executable, "-m", "nbgrader", *args], course, course.parent / f"nbgrader_{args[0]}")


def _course(tmp: Path, lab: str) -> Path:
    course = tmp / "course"
    (course / "source" / lab).mkdir(parents=True)
    shutil.copy2(ROOT / "notebooks" / f"{lab}.ipynb", course / "source" / lab / f"{lab}.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'labkit'\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"
        "c.Execute.timeout = 600  # seconds per cell; nbgrader's default (30) is too short for a training cell\n"
    )
    return course


def _wrong(solution: Path, grade_id: str, source: str) -> nbformat.NotebookNode:
    nb = nbformat.read(solution, as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1 and nbmod.is_answer(cells[0])
    cells[0].source = source
    return nb


def _nbgrader_scores(course: Path, lab: str) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            nb = gb.find_submission_notebook(lab, lab, student)
            out[student] = {"total": nb.score, "max": nb.max_score, **{g.name: g.score for g in nb.grades}}
    return out


def _labkit_grade(tmp: Path, lab: str, files: dict) -> _Proc:
    subs = tmp / "labkit_submissions"
    subs.mkdir()
    for student, path in files.items():
        shutil.copy2(path, subs / f"{student}.ipynb")
    cmd = [
        sys.executable,
        "-m",
        "labkit",
        "grade",
        "--assignment",
        str(ROOT / "notebooks" / f"{lab}.ipynb"),
        "--submissions",
        str(subs),
        "--out",
        str(tmp / "labkit_grades"),
        "--jobs",
        "1",
        *grading_sandbox_args(),
    ]
    return _Proc(cmd, tmp, tmp / "labkit_grade")


def _labkit_scores(tmp: Path) -> dict:
    with open(tmp / "labkit_grades" / "gradebook.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
@pytest.mark.parametrize("lab", sorted(WRONG))
def test_nbgrader_round_trip_scores_equal_labkits(lab, tmp_path):
    pytest.importorskip("nbgrader")
    course = _course(tmp_path, lab)
    steps = {"generate_assignment": _nbgrader(course, "generate_assignment", lab, "--create", "--force")}
    (r,) = _wait_all([steps["generate_assignment"]])
    assert r.returncode == 0, r.stdout + r.stderr
    released = course / "release" / lab / f"{lab}.ipynb"
    student_nb = nbformat.read(released, as_version=4)
    assert "### BEGIN SOLUTION" not in json.dumps(nbformat.v4.new_notebook(cells=student_nb.cells))
    assert any("raise NotImplementedError()" in c.source for c in student_nb.cells if nbmod.is_answer(c))

    files = {"correct": course / "source" / lab / f"{lab}.ipynb", "untouched": released}
    wrong = tmp_path / "wrong.ipynb"
    nbformat.write(_wrong(files["correct"], *WRONG[lab]), wrong)
    files["wrong"] = wrong
    for student, path in files.items():
        dest = course / "submitted" / student / lab
        dest.mkdir(parents=True)
        shutil.copy2(path, dest / f"{lab}.ipynb")

    # Three independent runs, side by side (two cores): what a student sees when they press "Validate" on
    # the notebook they were given, nbgrader's autograde of the three submissions, labkit's grader on them.
    untouched = str(course / "submitted" / "untouched" / lab / f"{lab}.ipynb")
    steps["validate"] = _nbgrader(course, "validate", untouched)
    steps["autograde (3)"] = _nbgrader(course, "autograde", lab, "--force")
    steps["labkit grade (3)"] = _labkit_grade(tmp_path, lab, files)
    t0 = time.perf_counter()
    names = ["validate", "autograde (3)", "labkit grade (3)"]
    done = dict(zip(names, _wait_all([steps[n] for n in names])))
    together = time.perf_counter() - t0

    r = done["validate"]
    assert "VALIDATION FAILED ON" in r.stdout, r.stdout + r.stderr
    assert "NOTEBOOK PASSED" not in r.stdout and "not implemented yet" in r.stdout
    r = done["autograde (3)"]
    assert r.returncode == 0, r.stdout + r.stderr
    nbg = _nbgrader_scores(course, lab)
    r = done["labkit grade (3)"]
    assert r.returncode == 0, r.stdout + r.stderr
    ours = _labkit_scores(tmp_path)

    checks = [c.check_id for c in nbmod.load_assignment(ROOT / "notebooks" / f"{lab}.ipynb").checks]
    table = []
    for student in STUDENTS:
        row = ours[student]
        assert row["status"] == clean_status(), row
        assert float(row["max"]) == nbg[student]["max"]
        assert float(row["total"]) == nbg[student]["total"], (student, row, nbg[student])
        for gid in checks:
            assert float(row[gid]) == nbg[student][gid], (student, gid, row, nbg[student])
        table.append(
            f"{lab} {student}: nbgrader {nbg[student]['total']:g}/{nbg[student]['max']:g}, "
            f"labkit {float(row['total']):g}/{float(row['max']):g}"
        )
    full = nbg["correct"]["max"]
    assert nbg["correct"]["total"] == full > 0
    assert nbg["untouched"]["total"] == 0
    assert 0 < nbg["wrong"]["total"] < full
    print("\n" + "\n".join(table))
    print(", ".join(f"{k} {p.wall:.1f} s wall / {p.cpu:.1f} s CPU" for k, p in steps.items()))
    print(f"validate + autograde + labkit grade side by side: {together:.1f} s wall")


# --- the course's JupyterLab shows no instructor tools ----------------------------------------------------------


def test_course_config_disables_nbgrader_extensions():
    server = json.loads((ETC / "jupyter_server_config.json").read_text())
    assert {k: v for k, v in server["ServerApp"]["jpserver_extensions"].items() if "nbgrader" in k} == dict.fromkeys(
        NBGRADER_EXTENSIONS, False
    )
    page = json.loads((ETC / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"].get("@jupyter/nbgrader") is True


@pytest.mark.slow
def test_course_server_loads_no_nbgrader_extension(tmp_path):
    """The Jupyter server, configured as ``make lab`` does, enables none of nbgrader's server extensions."""
    pytest.importorskip("nbgrader")
    code = (
        "import json\n"
        "from jupyter_server.serverapp import ServerApp\n"
        "app = ServerApp.instance()\n"
        "app.initialize(argv=['--no-browser', '--port=0'], new_httpserver=False)\n"
        "on = sorted(n for n, e in app.extension_manager.extensions.items() if e.enabled)\n"
        "print(json.dumps({'on': on, 'config': app.jpserver_extensions}))\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(ETC), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert not [n for n in got["on"] if "nbgrader" in n]
    assert "jupyterlab" in got["on"]  # the course's server still runs JupyterLab
    assert all(got["config"][name] is False for name in NBGRADER_EXTENSIONS)
