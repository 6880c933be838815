"""Grade a folder of submissions: nbval per submission, outputs verified outside the kernel.

``grade(assignment, submissions, out)`` grades every ``*.ipynb`` in ``submissions`` (the student's
name is the file stem) against the instructor notebook ``assignment`` and writes

* ``out/gradebook.csv``: student, total, max, one column per check cell's grade_id, status;
* ``out/feedback/<student>.md``: per exercise the points and the hint;
* ``out/.labkit-grades.json``: every result, so a re-run skips what is graded (unless ``force``).

Each submission runs in its own temporary folder (on this machine, ``jobs`` at a time, or on a worker
of a Dask cluster: :mod:`.executors`), in a supervisor process (:mod:`._supervisor`)
that starts nbval in a new process group under an address-space limit, kills the whole process
tree at the overall timeout, and then compares what the student's functions returned on cases drawn
with this run's seed against the reference implementations, in its own process. A check's points
are awarded only if nbval saw the pass line *and* those outputs match the reference.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.atomic import write_text
from labkit.grading.executors import EXECUTORS, dask_results, local_results
from labkit.grading.notebook import SubmissionError, graded_notebook, load_assignment, read_submission
from labkit.grading.scoring import attempt_summary, score
from labkit.validation import show

__all__ = ["grade", "score", "attempt_summary", "GradeOptions", "MANIFEST"]

MANIFEST = ".labkit-grades.json"
MAX_SUBMISSION_BYTES = 64 * 2**20


@dataclass
class GradeOptions:
    """Limits for one submission. Times in seconds, sizes in MiB."""

    cell_timeout: float = 300.0
    timeout: float = 1200.0
    memory_mb: int = 4096
    file_mb: int = 512
    startup_timeout: float = 120.0
    sandbox: bool = True
    box_mb: int = 256
    forbid_reference: bool = False

    def __post_init__(self):
        for name in ("cell_timeout", "timeout", "startup_timeout"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {show(v)}")
        for name in ("sandbox", "forbid_reference"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {show(getattr(self, name))}")
        if not isinstance(self.box_mb, int) or self.box_mb < 16:
            got = show(self.box_mb)
            raise ValueError(f"box_mb must be an int >= 16 (MiB of the sandbox's working tmpfs), got {got}")
        for name in ("memory_mb", "file_mb"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int (MiB; 0 = no limit), got {show(v)}")


def _student_seed(run_seed: int, student: str) -> int:
    digest = hashlib.sha256(f"{run_seed}:{student}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def preflight(assignment, seed: int) -> None:
    """Raise ValueError unless every exercise's reference passes its own out-of-kernel verification.

    This is what the grader does with a student's record, done with the reference's outputs: it
    fails if an output cannot be recorded (:func:`labkit.check.records.encode`) or if the cases are not
    a function of the seed alone, either of which would cost correct students their points.
    """
    from labkit.check.records import encode

    for chk in assignment.checks:
        ex = chk.exercise
        try:
            outputs = []
            for case in ex.grading_cases(seed):
                c = case.copy()
                outputs.append({"ok": json.loads(json.dumps(encode(ex.reference(*c.args, **c.kwargs))))})
            hint = ex.verify(outputs, seed)
        except Exception as exc:  # noqa: BLE001 - reported with the exercise's name
            hint = f"{type(exc).__name__}: {exc}"
        if hint is not None:
            raise ValueError(f"exercise {ex.grade_id!r} cannot be verified outside the kernel: {hint}")


# --- one submission ---------------------------------------------------------------------------------


def _zero_result(assignment, student: str, status: str, hint: str, notes=()) -> dict:
    return {
        "student": student,
        "exercises": [
            {
                "grade_id": c.grade_id,
                "answer_id": c.answer_id,
                "points": 0.0,
                "max": c.points,
                "passed": False,
                "hint": hint,
            }
            for c in assignment.checks
        ],
        "status": [status],
        "notes": list(notes),
        "seconds": 0.0,
    }


def grade_one(assignment, student: str, raw: bytes, opts: GradeOptions, seed: int, keep_temp: bool = False) -> dict:
    """Grade one submission's bytes; never raises for anything the submission contains."""
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_SUBMISSION_BYTES:
        r = _zero_result(assignment, student, "too large", f"the notebook is over {MAX_SUBMISSION_BYTES >> 20} MiB")
        return {**r, "sha256": sha, "sandbox": opts.sandbox}
    try:
        sub = read_submission(raw)
    except SubmissionError as exc:
        r = _zero_result(assignment, student, "malformed", f"could not read your notebook: {exc}")
        return {**r, "sha256": sha, "sandbox": opts.sandbox}  # nothing of it ran
    assembly = graded_notebook(assignment, sub)
    status_extra = []
    if len(assembly.missing) == len(assignment.answer_ids):
        status_extra.append("no answers found")
    if assembly.flags:
        status_extra.append("flagged")
    tmp = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    try:
        work = tmp / "work"
        work.mkdir()
        import nbformat

        nbformat.write(assembly.nb, work / "graded.ipynb")
        spec = {
            "notebook": "graded.ipynb",
            "seed": seed,
            "cell_timeout": opts.cell_timeout,
            "timeout": opts.timeout,
            "memory_mb": opts.memory_mb,
            "file_mb": opts.file_mb,
            "startup_timeout": opts.startup_timeout,
            "sandbox": opts.sandbox,
            "box_mb": opts.box_mb,
            "forbid_reference": opts.forbid_reference,
            "missing": assembly.missing,
            "checks": [
                {
                    "grade_id": c.grade_id,
                    "answer_id": c.answer_id,
                    "points": c.points,
                    "code_index": c.code_index,
                    "exercise": c.exercise_path,
                }
                for c in assignment.checks
            ],
        }
        (tmp / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkit.grading._supervisor", str(tmp)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=opts.timeout + opts.startup_timeout + 120)
        except subprocess.TimeoutExpired:  # the supervisor itself hung: kill its whole tree, then it
            from labkit.grading._supervisor import kill_descendants

            kill_descendants(root=proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        result = None
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
        if not isinstance(result, dict) or "exercises" not in result:
            tail = err.decode("utf-8", "replace")[-800:]
            r = _zero_result(assignment, student, "grader error", "the grader could not finish this notebook")
            r["notes"].append(f"supervisor exit {proc.returncode}: {tail}")
            return {**r, "sha256": sha, "sandbox": opts.sandbox}
        result["exercises"] = _normalise(assignment, result["exercises"])
        result["student"] = student
        if any(st.startswith("flagged") for st in result["status"]):
            status_extra = [st for st in status_extra if st != "flagged"]
        result["status"] = status_extra + result["status"]
        result["notes"] = assembly.notes + [f"attempted ({a['kind']}): {a['what']}" for a in result.get("attempts", [])]
        result["sha256"] = sha
        result["seed"] = seed
        result["sandbox"] = opts.sandbox
        result["forbid_reference"] = opts.forbid_reference
        return result
    finally:
        if keep_temp:
            print(f"{student}: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _normalise(assignment, exercises) -> list:
    """Points from the instructor's notebook, not from the run: passed -> points, else 0."""
    by_id = {e.get("grade_id"): e for e in exercises if isinstance(e, dict)}
    out = []
    for c in assignment.checks:
        e = by_id.get(c.grade_id, {})
        passed = e.get("passed") is True
        hint = str(e.get("hint", "not graded"))
        out.append({"grade_id": c.grade_id, "answer_id": c.answer_id, "points": c.points if passed else 0.0,
                    "max": c.points, "passed": passed, "hint": hint})  # fmt: skip
    return out


# --- the batch --------------------------------------------------------------------------------------


def _total(result) -> tuple[float, float]:
    return (sum(e["points"] for e in result["exercises"]), sum(e["max"] for e in result["exercises"]))


def _fmt(x: float) -> str:
    return f"{x:g}"


def gradebook_csv(assignment, results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ids = [c.grade_id for c in assignment.checks]
    w.writerow(["student", "total", "max", *ids, "status"])
    for student in sorted(results):
        r = results[student]
        by_id = {e["grade_id"]: e for e in r["exercises"]}
        total, mx = _total(r)
        w.writerow(
            [
                student,
                _fmt(total),
                _fmt(mx),
                *(_fmt(by_id[g]["points"]) if g in by_id else "0" for g in ids),
                "; ".join(r["status"]) or "ok",
            ]
        )
    return buf.getvalue()


def feedback_md(assignment, r: dict) -> str:
    total, mx = _total(r)
    lines = [
        f"# Feedback for {r['student']}: {assignment.path.name}",
        "",
        f"**Score: {_fmt(total)} / {_fmt(mx)}**" + (f" (status: {'; '.join(r['status'])})" if r["status"] else ""),
        "",
        "| exercise | points | result |",
        "|---|---|---|",
    ]
    for e in r["exercises"]:
        hint = e["hint"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e['answer_id']} | {_fmt(e['points'])} / {_fmt(e['max'])} | {hint} |")
    if r.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in r["notes"]]
    lines += ["", "A check scores its points when its cell prints the pass line and your function also gives the"]
    lines += ["reference's results on new cases the grader draws at grading time."]
    return "\n".join(lines) + "\n"


def _safe_name(student: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.@+" else "_" for ch in student).lstrip(".") or "_"


def grade(
    assignment,
    submissions,
    out,
    jobs: int = 1,
    options: GradeOptions | None = None,
    force: bool = False,
    seed: int | None = None,
    keep_temp: bool = False,
    log=print,
    executor: str = "local",
    scheduler: str | None = None,
) -> dict:
    """Grade every ``*.ipynb`` in ``submissions`` against ``assignment``; returns ``{student: result}``.

    Parameters
    ----------
    assignment : path
        The instructor notebook (``notebooks/NN_name.ipynb``) or its released student version.
    submissions : path
        A folder with one ``.ipynb`` per student (student = file stem).
    out : path
        Where ``gradebook.csv``, ``feedback/`` and the results manifest go.
    jobs : int
        Submissions graded at the same time (one supervisor process each).
    options : GradeOptions
        Per-cell and overall timeouts (s), address-space and file-size limits (MiB).
    force : bool
        Re-grade submissions already in the manifest (by default, unchanged ones are skipped).
    seed : int, optional
        The run's seed for the grader's cases (default: fresh from ``secrets``; stored per result).
    executor : {"local", "dask"}
        ``"local"``: ``jobs`` supervisor processes on this machine. ``"dask"``: every submission's
        bytes go to a worker of the Dask ``scheduler`` (``tcp://HOST:8786``), which grades it in its
        own sandbox (:mod:`labkit.grading.executors`); ``jobs`` and ``keep_temp`` are then unused.
        Either way the gradebook, feedback and manifest are written here, after each result.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {show(jobs)}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if (executor == "dask") != (scheduler is not None):
        raise ValueError(f"a scheduler address goes with executor='dask' (and only then); got executor={executor!r}, "
                         f"scheduler={scheduler!r}")  # fmt: skip
    options = options or GradeOptions()
    if executor == "dask":
        if not options.sandbox:
            log("WARNING: --no-sandbox: student code runs with the Dask workers' own rights (recorded per result)")
        # each worker checks its own sandbox before grading (labkit.grading.executors)
    elif options.sandbox:
        from labkit.grading.sandbox import check_available

        check_available()  # raises SandboxUnavailable (what is missing, how to install it)
    else:
        log("WARNING: --no-sandbox: student code runs with the grader's own rights (recorded per result)")
    asg = load_assignment(assignment)
    sub_dir, out = Path(submissions), Path(out)
    if not sub_dir.is_dir():
        raise ValueError(f"submissions must be a folder of .ipynb files, got {sub_dir}")
    files = sorted(p for p in sub_dir.glob("*.ipynb") if p.is_file())
    students = {}
    for p in files:
        name = _safe_name(p.stem)
        if name in students:
            raise ValueError(f"two submissions map to the student name {name!r}: rename one of them")
        students[name] = p.read_bytes()  # read everything now: later writes to the folder change nothing
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    results: dict = {}
    try:
        old = json.loads(manifest_path.read_text())
        if old.get("assignment_sha256") == asg.sha256:
            results = {
                k: v for k, v in old.get("results", {}).items()
                if k in students and v.get("sandbox", True) == options.sandbox
                and v.get("forbid_reference", False) == options.forbid_reference
            }  # fmt: skip
    except (OSError, ValueError, AttributeError):
        pass
    run_seed = secrets.randbits(32) if seed is None else int(seed)
    preflight(asg, run_seed)
    todo = [
        s for s in students if force or s not in results or results[s].get("sha256") != _sha(students[s])
    ]  # fmt: skip
    skipped = len(students) - len(todo)
    where = f"jobs={jobs}" if executor == "local" else f"Dask scheduler {scheduler}"
    log(f"{asg.path.name}: {len(students)} submissions, {len(todo)} to grade, {skipped} already graded; {where}")
    lock = threading.Lock()

    def save():
        manifest = {
            "assignment": str(asg.path),
            "assignment_sha256": asg.sha256,
            "sandbox": options.sandbox,
            "forbid_reference": options.forbid_reference,
            "results": results,
        }
        write_text(manifest_path, json.dumps(manifest, indent=1))
        write_text(out / "gradebook.csv", gradebook_csv(asg, results))

    t0 = time.monotonic()
    work = [(s, students[s], _student_seed(run_seed, s)) for s in todo]
    if executor == "dask":
        arriving = dask_results(grade_one, asg, work, options, scheduler, log=log)
    else:
        arriving = local_results(grade_one, asg, work, options, jobs, keep_temp)
    for s, r in arriving:
        if isinstance(r, BaseException):
            from labkit.grading.sandbox import SandboxUnavailable

            if isinstance(r, SandboxUnavailable):  # a worker without a sandbox: stop, grade nothing there
                raise r
            r = _zero_result(asg, s, "grader error", f"grader error: {type(r).__name__}: {r}")
            r["sha256"] = ""  # graded again by the next run
        with lock:
            results[s] = r
            save()
            write_text(out / "feedback" / f"{s}.md", feedback_md(asg, r))
        total, mx = _total(r)
        log(f"  {s}: {_fmt(total)}/{_fmt(mx)} {'; '.join(r['status']) or 'ok'} ({r.get('seconds', 0):.1f} s)")
    with lock:  # everything in out/ is rewritten from memory: a submission writing there changed nothing
        save()
        for s, r in results.items():
            write_text(out / "feedback" / f"{s}.md", feedback_md(asg, r))
    log(f"graded {len(todo)} in {time.monotonic() - t0:.1f} s -> {out / 'gradebook.csv'}")
    return results


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
