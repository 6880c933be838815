"""Grade a folder of submissions: nbval per submission, outputs verified outside the kernel.

``grade(assignment, submissions, out)`` grades every ``*.ipynb`` in ``submissions`` (the student's
name is the file stem) against the instructor notebook ``assignment`` and writes

* ``out/gradebook.csv``: student, total, max, one column per check cell (its ``check_id``), status;
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

import hashlib
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

from labkit.grading.executors import EXECUTORS, dask_results, local_results
from labkit.grading.notebook import SubmissionError, graded_notebook, load_assignment, read_submission
from labkit.grading.reports import MANIFEST, read_manifest, write_reports
from labkit.grading.results import ExerciseResult, GradeResult, zero_result
from labkit.grading.scoring import attempt_summary, score
from labkit.validation import show

__all__ = ["grade", "grade_one", "score", "attempt_summary", "GradeOptions", "GradeResult", "MANIFEST"]
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
            raise ValueError(f"exercise {ex.answer_id!r} cannot be verified outside the kernel: {hint}")


# --- one submission ---------------------------------------------------------------------------------


def _spec(assignment, assembly, opts: GradeOptions, seed: int) -> dict:
    """What the supervisor needs to run one graded notebook (written to its folder as spec.json)."""
    return {
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
                "grade_id": c.check_id,
                "answer_id": c.answer_id,
                "points": c.points,
                "code_index": c.code_index,
                "exercise": c.exercise_path,
            }
            for c in assignment.checks
        ],
    }


def _run_supervisor(tmp: Path, opts: GradeOptions) -> tuple[GradeResult | None, int, str]:
    """Run the supervisor on ``tmp`` (its spec and notebook); (its result or None, exit code, stderr tail)."""
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
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "exercises" in data:
            try:
                return GradeResult.from_dict(data), proc.returncode, ""
            except (KeyError, TypeError, ValueError):
                break
        break
    return None, proc.returncode, err.decode("utf-8", "replace")[-800:]


def grade_one(assignment, student: str, raw: bytes, opts: GradeOptions, seed: int, keep_temp: bool = False):
    """Grade one submission's bytes into a :class:`GradeResult`; never raises for anything the submission holds."""
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_SUBMISSION_BYTES:
        hint = f"the notebook is over {MAX_SUBMISSION_BYTES >> 20} MiB"
        return zero_result(assignment.checks, student, "too large", hint, sha256=sha, sandbox=opts.sandbox)
    try:
        sub = read_submission(raw)
    except SubmissionError as exc:  # nothing of it ran
        hint = f"could not read your notebook: {exc}"
        return zero_result(assignment.checks, student, "malformed", hint, sha256=sha, sandbox=opts.sandbox)
    assembly = graded_notebook(assignment, sub)
    tmp = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    try:
        (tmp / "work").mkdir()
        import nbformat

        nbformat.write(assembly.nb, tmp / "work" / "graded.ipynb")
        (tmp / "spec.json").write_text(json.dumps(_spec(assignment, assembly, opts, seed)))
        result, code, err_tail = _run_supervisor(tmp, opts)
    finally:
        if keep_temp:
            print(f"{student}: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if result is None:
        r = zero_result(assignment.checks, student, "grader error", "the grader could not finish this notebook")
        notes = (*r.notes, f"supervisor exit {code}: {err_tail}")
        return r.replace(notes=notes, sha256=sha, sandbox=opts.sandbox)
    status = [] if len(assembly.missing) != len(assignment.answer_ids) else ["no answers found"]
    if assembly.flags and not any(st.startswith("flagged") for st in result.status):
        status.append("flagged")
    attempts = tuple(f"attempted ({a['kind']}): {a['what']}" for a in result.attempts or ())
    return result.replace(
        student=student,
        exercises=_normalise(assignment, result.exercises),
        status=(*status, *result.status),
        notes=(*assembly.notes, *attempts),
        sha256=sha,
        seed=seed,
        sandbox=opts.sandbox,
        forbid_reference=opts.forbid_reference,
    )


def _normalise(assignment, exercises) -> tuple:
    """Points from the instructor's notebook, not from the run: passed -> points, else 0."""
    by_id = {e.check_id: e for e in exercises}
    out = []
    for c in assignment.checks:
        e = by_id.get(c.check_id)
        passed = e is not None and e.passed is True
        hint = e.hint if e is not None else "not graded"
        out.append(ExerciseResult(c.check_id, c.answer_id, c.points if passed else 0.0, c.points, passed, hint))
    return tuple(out)


# --- the batch --------------------------------------------------------------------------------------


def _safe_name(student: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.@+" else "_" for ch in student).lstrip(".") or "_"


def _check_run(jobs, executor: str, scheduler, options: GradeOptions, log) -> None:
    """Refuse bad arguments (ValueError) and a missing sandbox (SandboxUnavailable) before anything runs."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {show(jobs)}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if (executor == "dask") != (scheduler is not None):
        raise ValueError(
            f"a scheduler address goes with executor='dask' (and only then); got executor={executor!r}, "
            f"scheduler={scheduler!r}"
        )
    who = "the Dask workers'" if executor == "dask" else "the grader's"
    if not options.sandbox:
        log(f"WARNING: --no-sandbox: student code runs with {who} own rights (recorded per result)")
    elif executor == "local":  # on Dask, each worker checks its own sandbox before grading (.executors)
        from labkit.grading.sandbox import check_available

        check_available()  # raises SandboxUnavailable (what is missing, how to install it)


def _read_submissions(folder) -> dict[str, bytes]:
    """``{student: notebook bytes}`` of the ``*.ipynb`` in ``folder``, read now: later writes change nothing."""
    sub_dir = Path(folder)
    if not sub_dir.is_dir():
        raise ValueError(f"submissions must be a folder of .ipynb files, got {sub_dir}")
    students = {}
    for p in sorted(p for p in sub_dir.glob("*.ipynb") if p.is_file()):
        name = _safe_name(p.stem)
        if name in students:
            raise ValueError(f"two submissions map to the student name {name!r}: rename one of them")
        students[name] = p.read_bytes()
    return students


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
    """Grade every ``*.ipynb`` in ``submissions`` against ``assignment``; returns ``{student: GradeResult}``.

    Parameters
    ----------
    assignment : path
        The instructor notebook (``notebooks/NN_name.ipynb``) or its released student version.
    submissions : path
        A folder with one ``.ipynb`` per student (student = file stem).
    out : path
        Where ``gradebook.csv``, ``feedback/`` and the results manifest go (:mod:`.reports`).
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
    options = options or GradeOptions()
    _check_run(jobs, executor, scheduler, options, log)
    asg = load_assignment(assignment)
    students = _read_submissions(submissions)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out, asg, options.sandbox, options.forbid_reference)
    results = {s: r for s, r in old.items() if s in students}
    run_seed = secrets.randbits(32) if seed is None else int(seed)
    preflight(asg, run_seed)
    todo = [s for s in students if force or s not in results or results[s].sha256 != _sha(students[s])]
    where = f"jobs={jobs}" if executor == "local" else f"Dask scheduler {scheduler}"
    n_done = len(students) - len(todo)
    log(f"{asg.path.name}: {len(students)} submissions, {len(todo)} to grade, {n_done} already graded; {where}")
    lock = threading.Lock()
    write = lambda feedback_for=None: write_reports(  # noqa: E731
        out, asg, options.sandbox, options.forbid_reference, results, feedback_for
    )
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
            hint = f"grader error: {type(r).__name__}: {r}"
            r = zero_result(asg.checks, s, "grader error", hint, sha256="")  # graded again by the next run
        with lock:
            results[s] = r
            write([s])
        log(f"  {s}: {r.total:g}/{r.max_points:g} {r.status_line} ({r.seconds:.1f} s)")
    with lock:  # everything in out/ is rewritten from memory: a submission writing there changed nothing
        write()
    log(f"graded {len(todo)} in {time.monotonic() - t0:.1f} s -> {out / 'gradebook.csv'}")
    return results


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
