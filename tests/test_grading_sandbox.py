"""The grader's sandbox (labkit.grading.sandbox): what a student kernel can see, write and reach.

Fast tests run small commands inside the sandbox; the slow test grades the committed hostile
submissions (tests/submissions/lab00/sandbox_*.ipynb.json, the ``ref_*`` ones and a detached
daemon) in one batch with the honest one, and checks that every attempt failed on the host.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from labkit.check import lab00
from labkit.grading import sandbox
from labkit.grading.grade import GradeOptions, attempt_summary, score

ROOT = Path(__file__).resolve().parent.parent
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"


# without bubblewrap these skip, naming the package; in CI (LABKIT_REQUIRE_SANDBOX, .ci/run) they fail instead
needs_sandbox = pytest.mark.usefixtures("sandbox_required")


def _inside(code: str, tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    files = {"out.txt": tmp_path / "out.txt"}
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
    cmd = sandbox.command([sys.executable, "-c", code], files, env, **kw)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


# --- the sandbox itself ---------------------------------------------------------------------------


@needs_sandbox
def test_sandbox_hides_the_repository_and_keeps_the_kit_read_only(tmp_path):
    kit = Path(sandbox.kit_paths()[0])
    code = f"""
import os, json, labkit, numpy
kit = {str(kit)!r}
res = {{"labkit": labkit.__file__, "uid": os.getuid(), "repo": sorted(os.listdir(os.path.dirname(kit))),
       "tmp": os.listdir("/tmp"), "home_visible": os.path.exists({os.path.expanduser("~")!r} + "/.bashrc")}}
for name, path in [("kit", kit + "/x.py"), ("usr", "/usr/x"), ("root", "/x"), ("box", "/box/x"),
                   ("tmp", "/tmp/labkit-sandbox-probe-9d2")]:
    try:
        open(path, "w").write("x")
        res[name] = "written"
    except OSError as e:
        res[name] = type(e).__name__
open("/box/.grader/out.txt", "w").write(json.dumps(res))
"""
    r = _inside(code, tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "out.txt").read_text())
    assert res["labkit"] == str(kit / "__init__.py")
    # never notebooks/, release/, ...: only the kit, its data and (when the venv lives in the repository,
    # as `make setup` puts it) the Python environment the kernel runs in
    repo = kit.parent
    venv = {Path(sys.prefix).relative_to(repo).parts[0]} if Path(sys.prefix).is_relative_to(repo) else set()
    assert "labkit" in res["repo"] and set(res["repo"]) <= {"labkit", "data"} | venv
    assert res["kit"] != "written" and res["usr"] != "written" and res["root"] != "written"
    assert res["box"] == "written" and res["tmp"] == "written"  # its own tmpfs folders
    assert not Path("/tmp/labkit-sandbox-probe-9d2").exists()  # a fresh /tmp: the host's is not it
    assert not (kit / "x.py").exists()
    assert not res["home_visible"]
    if os.geteuid() == 0:
        assert res["uid"] == 65534


@needs_sandbox
def test_sandbox_has_no_network_and_caps_its_folder(tmp_path):
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(0.5)
        port = srv.getsockname()[1]
        code = f"""
import socket
s = socket.socket(); s.settimeout(2)
print("connect", s.connect_ex(("127.0.0.1", {port})) == 0)
n = 0
try:
    with open("/box/fill", "wb") as f:
        for _ in range(64):
            f.write(b"\\0" * 2**20); f.flush(); n += 1
except OSError:
    pass
print("mb", n)
"""
        r = _inside(code, tmp_path, box_mb=16)
        with pytest.raises(OSError):
            srv.accept()  # nobody came
    assert r.returncode == 0, r.stderr
    assert "connect False" in r.stdout
    assert int(r.stdout.split("mb")[-1]) <= 16


def test_missing_bwrap_is_refused_with_how_to_install(tmp_path, monkeypatch, capsys):
    from labkit.__main__ import main

    monkeypatch.setenv("LABKIT_BWRAP", str(tmp_path / "no-bwrap"))
    sandbox._PROBE_CACHE.clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="apt install bubblewrap"):
            sandbox.check_available()
        subs = tmp_path / "subs"
        subs.mkdir()
        args = ["grade", "--assignment", str(LAB00), "--submissions", str(subs), "--out", str(tmp_path / "o")]
        assert main(args) == 1  # a failure (no sandbox), not bad usage
        assert "refusing to run student code without a sandbox" in capsys.readouterr().out
        assert not (tmp_path / "o").exists()
        assert main([*args, "--no-sandbox"]) == 0  # explicit: runs, and says so in the manifest
        manifest = json.loads((tmp_path / "o" / ".labkit-grades.json").read_text())
        assert manifest["sandbox"] is False
    finally:
        sandbox._PROBE_CACHE.clear()


def test_grade_options_sandbox_flags_validate():
    with pytest.raises(TypeError, match="sandbox"):
        GradeOptions(sandbox="no")
    with pytest.raises(ValueError, match="box_mb"):
        GradeOptions(box_mb=1)


# --- the reference is not an answer ---------------------------------------------------------------


def _record(ex, fn, tmp_path, monkeypatch):
    path = tmp_path / f"rec-{ex.answer_id}.jsonl"
    monkeypatch.setenv("LABKIT_GRADE_RECORD", str(path))
    monkeypatch.setenv("LABKIT_GRADE_SEED", "3")
    ex._record_for_grader(fn)
    return json.loads(path.read_text().splitlines()[-1])


def test_reference_calls_are_seen_whatever_the_route(tmp_path, monkeypatch):
    import importlib

    from labkit.check import exercises

    ex = lab00.count_parameters

    def honest(sizes):
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    mod = importlib.import_module("labkit.check." + "lab" + "00")
    routes = {
        "alias": ex.reference,
        "getattr": getattr(mod, "_count" + "_parameters"),
        "wrapped": lambda sizes: exercises("lab00")["count_parameters"].reference(list(sizes)),
    }
    assert _record(ex, honest, tmp_path, monkeypatch)["reference_calls"] == 0
    for name, fn in routes.items():
        rec = _record(ex, fn, tmp_path, monkeypatch)
        assert rec["reference_calls"] >= 7, name  # once per grader case
        assert ex.verify(rec["outputs"], 3) is None  # the outputs are right: only the watch tells
    assert sys.getprofile() is None  # the watch restores the profiler


def test_the_public_function_a_reference_wraps_counts_as_the_reference(tmp_path, monkeypatch):
    import labkit.quant
    from labkit.check import lab01, lab03

    ex = lab03.quantize  # its reference wraps labkit.quant.quantize

    def through_the_kit(x, scale, zero_point, bits):
        return labkit.quant.quantize(x, scale, zero_point, bits, signed=False).astype(np.int64)

    def honest(x, scale, zero_point, bits):
        return np.clip(np.rint(np.asarray(x) / scale) + zero_point, 0, 2**bits - 1).astype(np.int64)

    assert _record(ex, through_the_kit, tmp_path, monkeypatch)["reference_calls"] > 0
    assert _record(ex, honest, tmp_path, monkeypatch)["reference_calls"] == 0
    # an earlier exercise's kit version used inside a later one is not that one's reference
    names = {c.co_name for c in lab01.global_masks._reference_codes()}
    assert "magnitude_mask" not in names


def _spec(**extra):
    from labkit.grading import notebook as nbmod

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
    return asg, {"seed": 3, "checks": checks, "cell_timeout": 9, "timeout": 99, "missing": [], **extra}


def _run(asg, records, attempts=()):
    cells = [{"cell": c.code_index, "outcome": "passed", "message": "", "output": ""} for c in asg.checks]
    return {
        "cells": cells,
        "records": records,
        "timed_out": False,
        "seconds": 1.0,
        "leftover_processes": 0,
        "log_tail": "",
        "records_truncated": False,
        "attempts": list(attempts),
        "sandbox": True,
    }


def test_score_flags_reference_calls_and_zeroes_them_only_when_forbidden(tmp_path, monkeypatch):
    def honest(lg, y):
        return float(np.mean(np.argmax(lg, 1) == y))

    recs = [
        _record(lab00.count_parameters, lab00.count_parameters.reference, tmp_path, monkeypatch),
        _record(lab00.accuracy, honest, tmp_path, monkeypatch),
    ]
    asg, spec = _spec()
    r = score(spec, _run(asg, recs))
    assert [e.points for e in r.exercises] == [1, 1]
    assert "flagged: calls labkit's reference for count_parameters" in r.status
    assert "labkit's own implementation" in r.exercises[0].hint
    r = score({**spec, "forbid_reference": True}, _run(asg, recs))
    assert [e.points for e in r.exercises] == [0, 1]
    assert "--forbid-reference" in r.exercises[0].hint
    # a record claiming a negative or non-int count is not a reference call
    forged = [{**recs[0], "reference_calls": True}, recs[1]]
    assert [e.points for e in score({**spec, "forbid_reference": True}, _run(asg, forged)).exercises] == [1, 1]


def test_score_reports_attempts_and_keeps_points():
    asg, spec = _spec()
    attempts = [
        {"kind": "write", "what": "/root/x"},
        {"kind": "connect", "what": "('127.0.0.1', 5)"},
        {"kind": "process", "what": "subprocess.Popen: uname -p"},
    ]
    r = score(spec, _run(asg, [], attempts))
    assert list(r.attempts) == attempts
    flagged = [s for s in r.status if s.startswith("flagged")]
    assert flagged == ["flagged: wrote outside its folder (/root/x); opened a network connection (('127.0.0.1', 5))"]
    assert "started a process" in attempt_summary(attempts)
    assert score(spec, _run(asg, [])).status == ()


# --- a whole batch of hostile submissions -----------------------------------------------------------


def _load_make_submissions():
    return load_script(ROOT / "tests/submissions/make_submissions.py")


class _Listener:
    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.connections, self.stop = [], False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.connections.append(addr)
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.mark.slow
@needs_sandbox
def test_hostile_batch_is_contained_and_the_honest_submission_scores_full(tmp_path):
    subs = _load_make_submissions()
    mark = subs.ATTACK_MARKER
    names = ["correct", "partly_wrong", "daemon", "ref_import", "ref_dynamic", *subs.SANDBOX_SUBMISSIONS]
    folder = subs.copy_as_notebooks(tmp_path / "subs", names)
    out = tmp_path / "out"
    out.mkdir()
    kit = Path(sandbox.kit_paths()[0])
    # the attacks would work without the sandbox: their discovery finds the real targets from here
    ns: dict = {}
    exec(subs._ATTACK_HELPERS, ns)  # noqa: S102 - the committed attack's own helpers
    assert out in ns["output_folders"]() and any(f.parent == folder for f in ns["submission_files"]())
    targets = [
        kit / f"{mark}.py",
        kit.parent / f"{mark}.txt",
        Path("/tmp") / f"{mark}.txt",
        Path(os.path.expanduser("~")) / f"{mark}.txt",
        Path("/root") / f"{mark}.txt",
        out / f"{mark}.txt",
    ]
    for t in targets:
        assert not t.exists(), f"left over from an earlier run: {t}"
    kit_init = (kit / "check" / "__init__.py").read_bytes()
    try:
        listener = _Listener(subs.LISTEN_PORT)
    except OSError as exc:
        pytest.skip(f"port {subs.LISTEN_PORT} is busy: {exc}")
    cmd = [
        sys.executable,
        "-m",
        "labkit",
        "grade",
        "--assignment",
        str(LAB00),
        "--submissions",
        str(folder),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--cell-timeout",
        "60",
        "--timeout",
        "240",
        "--forbid-reference",
    ]
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500, env=env)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / ".labkit-grades.json").read_text())["results"]
    assert set(results) == set(names)  # the batch completed

    def total(name):
        return sum(e["points"] for e in results[name]["exercises"])

    def status(name):
        return "; ".join(results[name]["status"])

    assert total("correct") == 2 and results["correct"]["status"] == [], results["correct"]
    assert results["correct"]["sandbox"] is True
    assert total("partly_wrong") == 1  # one failing (raising) check keeps the other's point
    # every attempt failed on the host
    for t in targets:
        assert not t.exists(), f"a submission wrote {t}"
    assert (kit / "check" / "__init__.py").read_bytes() == kit_init
    assert listener.connections == [], "a submission reached the listener on 127.0.0.1"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert subs.DAEMON_MARKER not in ps
    for name, (_answers, points, words, what) in subs.SANDBOX_SUBMISSIONS.items():
        assert total(name) == points, f"{name} ({what}): {results[name]}"
        for word in words:
            assert word in status(name), f"{name}: status {status(name)!r} lacks {word!r}"
    writes = [a["what"] for a in results["sandbox_writes"]["attempts"] if a["kind"] == "write"]
    assert any(w.startswith(str(kit)) for w in writes) and any(w.startswith("/tmp/") for w in writes)
    # reads of files that are not there: no attempt to report (the plain "flagged" is the source scan's)
    assert not [a for a in results["sandbox_reads"]["attempts"] if a["kind"] != "process"]
    assert "flagged:" not in status("sandbox_reads")
    # the reference routes: flagged and 0 with --forbid-reference
    for name in ("ref_import", "ref_dynamic"):
        assert total(name) == 0, results[name]
        assert "calls labkit's reference for count_parameters, accuracy" in status(name)
    notes = " ".join(results["daemon"]["notes"])
    assert "attempted (process): subprocess.Popen" in notes and subs.DAEMON_MARKER in notes
