"""Grading on a real Dask cluster: a scheduler and two workers started as processes on 127.0.0.1.

Nothing is mocked: the grader's command line sends each submission's bytes to the workers, which
grade them in their own sandboxes (with ``--no-sandbox`` where bubblewrap is missing, outside CI).
The assignment is a small instructor notebook built here from lab 00's two exercises (a submission
grades in about 2 s), and the 12 submissions, three of each kind (correct, one answer wrong, the
other wrong, untouched), differ so that comparing gradebooks row for row means something. Checked:
(a) the Dask gradebook equals the local pool's, (b) even when a worker process is killed while it
grades (the scheduler gives its task to another worker), and (c) a run stopped halfway is finished
by the same command, which grades only what is missing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import clean_status, grade_command, read_gradebook, sandboxed

from labkit.grading import cells
from labkit.grading import notebook as nbmod

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
SEED = "20261130"
N_SUBMISSIONS = 12  # enough for a worker to be killed in the middle of the batch (after 4 results)

COUNT = "def count_parameters(sizes):\n    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))"
COUNT_NO_BIAS = "def count_parameters(sizes):\n    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))"
ACC = "def accuracy(logits, y):\n    return float(np.mean(np.argmax(logits, axis=1) == y))"
ACC_PERCENT = "def accuracy(logits, y):\n    return 100 * float(np.mean(np.argmax(logits, axis=1) == y))"
VARIANTS = {  # name: (count_parameters, accuracy, expected total)
    "correct": (COUNT, ACC, 2),
    "wrongacc": (COUNT, ACC_PERCENT, 1),
    "wrongcount": (COUNT_NO_BIAS, ACC, 1),
    "untouched": (None, None, 0),
}


def _tiny_assignment(dest: Path) -> Path:
    """Lab 00's two exercises and their check cells (with their pass lines), after one import cell."""
    lab = nbformat.read(LAB00, as_version=4)
    keep = []
    for i, cell in enumerate(lab.cells):
        gid = cells.nbgrader(cell).get("grade_id", "")
        if gid in ("count_parameters", "check_count_parameters", "accuracy", "check_accuracy"):
            keep.append(i)
    assert len(keep) == 4, keep
    nb = copy.deepcopy(lab)
    nb.cells = [nbformat.v4.new_markdown_cell("# Two exercises of lab 00")]
    nb.cells += [nbformat.v4.new_code_cell("import numpy as np")]
    nb.cells += [copy.deepcopy(lab.cells[i]) for i in keep]
    path = dest / "tiny_lab00.ipynb"
    nbformat.write(nb, path)
    assert [c.check_id for c in nbmod.load_assignment(path).checks] == ["check_count_parameters", "check_accuracy"]
    return path


def _submissions(assignment: Path, dest: Path, n: int) -> dict[str, int]:
    """``n`` student notebooks cycling through :data:`VARIANTS`; returns {student: expected total}."""
    student = nbmod.student_notebook(nbformat.read(assignment, as_version=4))
    dest.mkdir(parents=True, exist_ok=True)
    expected = {}
    for k in range(n):
        variant = list(VARIANTS)[k % len(VARIANTS)]
        count, acc, points = VARIANTS[variant]
        nb = copy.deepcopy(student)
        for cell in nb.cells:
            gid = cells.nbgrader(cell).get("grade_id")
            if gid == "count_parameters" and count:
                cell.source = count
            elif gid == "accuracy" and acc:
                cell.source = acc
        name = f"s{k:02d}_{variant}"
        nbformat.write(nb, dest / f"{name}.ipynb")
        expected[name] = points
    return expected


def _env() -> dict:
    env = dict(os.environ)
    env["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "5s"  # an unreachable scheduler is reported after 5 s
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _grade_cmd(assignment, subs, out, *extra) -> list:
    return grade_command(assignment, subs, out, "--seed", SEED, "--cell-timeout", "60", "--timeout", "180", *extra)


def _run(cmd, timeout=1200) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def _graded(out: Path) -> set:
    try:
        return set(json.loads((out / ".labkit-grades.json").read_text())["results"])
    except (OSError, ValueError, KeyError):
        return set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes (no nanny: a killed worker stays dead)."""

    def __init__(self, tmp: Path):
        self.tmp, self.procs, self.workers = tmp, [], {}
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])
        self.client = None

    def _start(self, name, args):
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dask"), *args],
            cwd=self.tmp,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((proc, log))
        return proc

    def add_worker(self, name: str):
        self.workers[name] = self._start(
            name,
            [
                "worker",
                self.address,
                "--name",
                name,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--memory-limit",
                "0",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
        )

    def connect(self, n_workers: int):
        if self.client is None:
            from distributed import Client

            self.client = Client(self.address, timeout=60, set_as_default=False)
        self.client.wait_for_workers(n_workers, timeout=120)

    def live_workers(self) -> dict[str, str]:
        """{worker name: address} as the scheduler sees them."""
        return {w["name"]: addr for addr, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}

    def close(self):
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
        for proc, log in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            log.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    assignment = _tiny_assignment(tmp)
    expected = _submissions(assignment, tmp / "subs", N_SUBMISSIONS)
    return assignment, tmp / "subs", expected


@pytest.fixture(scope="module")
def local_book(tiny, tmp_path_factory):
    """The local pool's gradebook of the submissions (the reference for the Dask runs)."""
    assignment, subs, expected = tiny
    out = tmp_path_factory.mktemp("local") / "out"
    proc = _run(_grade_cmd(assignment, subs, out, "--jobs", "2"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_gradebook(out)
    assert {s: float(r["total"]) for s, r in rows.items()} == expected
    assert all(r["status"] == clean_status() for s, r in rows.items() if "untouched" not in s), rows
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed", reason="the cluster extra (dask, distributed) is not installed")
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.add_worker("w0")
        c.add_worker("w1")
        c.connect(2)
        yield c
    finally:
        c.close()


@pytest.mark.slow
def test_dask_gradebook_equals_local_run_even_when_a_worker_is_killed(tiny, local_book, cluster, tmp_path):
    assignment, subs, expected = tiny
    out = tmp_path / "out"
    cmd = _grade_cmd(assignment, subs, out, "--executor", "dask", "--scheduler", cluster.address)
    log = open(tmp_path / "grade.log", "w+")  # noqa: SIM115
    coordinator = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # kill w1 while it grades a submission, once a few results are in
        victim = cluster.workers["w1"]
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and coordinator.poll() is None:
            addr = cluster.live_workers().get("w1")
            busy = addr is not None and any(
                str(k).startswith("grade_on_worker") for k in cluster.client.processing([addr]).get(addr, ())
            )
            if busy and len(_graded(out)) >= 4:
                victim.send_signal(signal.SIGKILL)
                break
            time.sleep(0.2)
        victim.wait(timeout=30)
        assert len(_graded(out)) < len(expected), "the batch ended before a worker could be killed in its middle"
        cluster.add_worker("w2")  # a new machine joins; the killed worker's task may go to it or to w0
        coordinator.wait(timeout=1200)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        log.seek(0)
        text = log.read()
        log.close()
    assert coordinator.returncode == 0, text
    assert "w1" not in cluster.live_workers()
    n = N_SUBMISSIONS
    assert f"{n} submissions, {n} to grade, 0 already graded; Dask scheduler {cluster.address}" in text
    # no row lost, no score changed: the gradebook is the local run's, byte for byte
    assert (out / "gradebook.csv").read_text() == (local_book / "gradebook.csv").read_text()
    manifest = json.loads((out / ".labkit-grades.json").read_text())
    assert all(r["sandbox"] is sandboxed() and r["sha256"] for r in manifest["results"].values())
    for s in expected:
        assert (out / "feedback" / f"{s}.md").read_text() == (local_book / "feedback" / f"{s}.md").read_text()
    cluster.connect(2)  # w0 and w2 for the next test


@pytest.mark.slow
def test_stopped_dask_run_grades_only_the_missing_submissions(tiny, local_book, cluster, tmp_path):
    assignment, all_subs, expected = tiny
    subs = tmp_path / "subs"
    subs.mkdir()
    names = sorted(expected)[:8]
    for s in names:
        (subs / f"{s}.ipynb").write_bytes((all_subs / f"{s}.ipynb").read_bytes())
    out = tmp_path / "out"
    cmd = _grade_cmd(assignment, subs, out, "--executor", "dask", "--scheduler", cluster.address)
    coordinator = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and coordinator.poll() is None and len(_graded(out)) < 3:
        time.sleep(0.1)
    coordinator.send_signal(signal.SIGKILL)  # stopped hard: no chance to tidy up
    coordinator.wait(timeout=30)
    done = _graded(out)
    assert 3 <= len(done) < len(names), done
    proc = _run(cmd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"8 submissions, {8 - len(done)} to grade, {len(done)} already graded" in proc.stdout
    graded_now = {line.split(":")[0].strip() for line in proc.stdout.splitlines() if line.startswith("  s")}
    assert graded_now == set(names) - done
    local = read_gradebook(local_book)
    assert read_gradebook(out) == {s: local[s] for s in names}


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(tiny, tmp_path):
    assignment, subs, _ = tiny
    port = _free_port()  # nothing listens there
    proc = _run(
        _grade_cmd(assignment, subs, tmp_path / "out", "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}")
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in proc.stdout
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_dask_executor_without_distributed_names_the_extra(monkeypatch):
    from labkit.grading.executors import ExecutorUnavailable, connect

    monkeypatch.setitem(sys.modules, "distributed", None)  # what an install without the extra looks like
    with pytest.raises(ExecutorUnavailable, match=r"labkit\[cluster\]"):
        connect("tcp://127.0.0.1:8786")


def test_grade_rejects_a_scheduler_without_the_dask_executor(tmp_path):
    from labkit.grading.grade import grade

    with pytest.raises(ValueError, match="scheduler"):
        grade(LAB00, tmp_path, tmp_path / "out", executor="dask")
    with pytest.raises(ValueError, match="scheduler"):
        grade(LAB00, tmp_path, tmp_path / "out", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="executor must be one of"):
        grade(LAB00, tmp_path, tmp_path / "out", executor="ray")
