"""Runs one submission: ``python -m labkit.grading._supervisor TMPDIR`` (started by :mod:`.grade`).

The supervisor is the grader's process for one submission. It

1. marks itself a *child subreaper* (Linux), so every process the student's code starts stays its
   descendant even if it double-forks or calls ``setsid``;
2. starts ``pytest --nbval-lax`` on the graded notebook in ``TMPDIR/work`` in a new process group,
   with address-space, file-size and core-dump limits, the per-cell timeout, and the grading seed
   and record file in the environment;
3. waits at most the overall timeout, then kills every descendant (SIGKILL) and reaps them;
4. reads nbval's per-cell results and the recorded outputs, re-runs the reference on the grader's
   own cases *in this process*, and prints one JSON result on stdout.

Nothing here trusts the kernel: a cell result only counts if the recorded outputs of the student's
function match the reference (:meth:`labkit.check.Exercise.verify`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MAX_RECORD_BYTES = 256 * 2**20
MAX_RESULTS_BYTES = 16 * 2**20
MAX_AUDIT_BYTES = 2**20
PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _limits(memory_mb: int, file_mb: int):
    def apply():
        import resource

        with contextlib.suppress(OSError):
            os.nice(5)  # the grader's own processes stay responsive
        for res, value in (
            (resource.RLIMIT_AS, memory_mb * 2**20),
            (resource.RLIMIT_FSIZE, file_mb * 2**20),
            (resource.RLIMIT_CORE, 0),
        ):
            if value and value > 0:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(res, (value, value))

    return apply


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc; psutil if available)."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - psutil missing or the process gone: fall back to /proc
        pass
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_descendants(rounds: int = 20, root: int | None = None) -> int:
    """SIGKILL every descendant of ``root`` (default: this process) until none is left.

    Returns how many were killed. Run from the root itself (a subreaper), it also reaps them.
    """
    killed = 0
    root = os.getpid() if root is None else root
    for _ in range(rounds):
        pids = _descendants(root)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(pids)
        while True:  # reap whatever died (we are their subreaper)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not pids:
            break
        time.sleep(0.05)
    return killed


def _read_lines(path: Path, limit: int):
    """JSON objects, one per line, from the first ``limit`` bytes of ``path``; bad lines skipped."""
    if not path.exists():
        return [], False
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    truncated = len(raw) > limit
    out = []
    for line in raw[:limit].splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out, truncated


PASS_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONHASHSEED", "LABKIT_DATA_DIR", "VIRTUAL_ENV")
PASS_PREFIXES = ("OMP_", "OPENBLAS_", "MKL_", "NUMBA_", "BLIS_")


def _sandbox_env(spec: dict) -> dict:
    """The whole environment inside the sandbox (bwrap starts from an empty one)."""
    from labkit.grading.sandbox import BOX, GRADER_DIR

    env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith(PASS_PREFIXES)}
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=f"{BOX}/home",
        TMPDIR=f"{BOX}/tmp",
        PYTHONPATH=os.pathsep.join(["/labkit-sandbox-site", *pythonpath]),
        LABKIT_GRADE_RECORD=f"{GRADER_DIR}/record.jsonl",
        LABKIT_GRADE_SEED=str(spec["seed"]),
        LABKIT_SANDBOX_AUDIT=f"{GRADER_DIR}/audit.jsonl",
        LABKIT_SANDBOX_BOX=BOX,
        LABKIT_SANDBOX_RUNNER="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        MPLCONFIGDIR=f"{BOX}/home/.matplotlib",
        JUPYTER_RUNTIME_DIR=f"{BOX}/.runtime",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.setdefault("LANG", "C.UTF-8")
    return env


def _pytest_args(notebook, ini, rootdir, results, spec) -> list:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(notebook),
        "-c",
        str(ini),
        "--rootdir",
        str(rootdir),
        "-p",
        "nbval.plugin",
        "-p",
        "labkit.grading._nbval_results",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={spec['cell_timeout']}",
        f"--nbval-kernel-startup-timeout={spec['startup_timeout']}",
        f"--labkit-results={results}",
        "-q",
    ]


def _matplotlib_font_lists() -> list:
    """The grader's matplotlib font cache files (read-only in the sandbox), without importing matplotlib."""
    folders = [
        os.environ.get("MPLCONFIGDIR"),
        os.path.join(os.environ.get("XDG_CACHE_HOME", ""), "matplotlib"),
        os.path.expanduser("~/.cache/matplotlib"),
    ]
    for folder in folders:
        if folder and os.path.isdir(folder):
            found = sorted(Path(folder).glob("fontlist-v*.json"))
            if found:
                return found
    return []


def _command(tmp: Path, spec: dict, results_path: Path, record_path: Path, audit_path: Path) -> tuple:
    """``(cmd, env, cwd)`` of the nbval run: inside the bubblewrap sandbox, or (``sandbox`` off) as is."""
    work = tmp / "work"
    notebook = work / spec["notebook"]
    if spec.get("sandbox", True):
        from labkit.grading import sandbox

        g = sandbox.GRADER_DIR
        inner = _pytest_args(
            f"{sandbox.BOX}/{spec['notebook']}", f"{g}/pytest.ini", sandbox.BOX, f"{g}/cells.jsonl", spec
        )
        files = {"cells.jsonl": results_path, "record.jsonl": record_path, "audit.jsonl": audit_path}
        ro = {f"{sandbox.BOX}/{spec['notebook']}": notebook, f"{g}/pytest.ini": tmp / "pytest.ini"}
        for font_list in _matplotlib_font_lists():  # else every kernel rebuilds it (10+ s, runs fc-list)
            ro[f"{sandbox.BOX}/home/.matplotlib/{font_list.name}"] = font_list
        cmd = sandbox.command(inner, files, _sandbox_env(spec), box_mb=int(spec.get("box_mb", 256)), ro_files=ro)
        return cmd, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, tmp
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LABKIT_GRADE"))}
    env.update(
        LABKIT_GRADE_RECORD=str(record_path),
        LABKIT_GRADE_SEED=str(spec["seed"]),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return _pytest_args(notebook, tmp / "pytest.ini", work, results_path, spec), env, work


def run(tmp: Path, spec: dict) -> dict:
    """Run nbval on the graded notebook under the limits, kill what is left, and read what it wrote."""
    results_path, record_path, audit_path = tmp / "cells.jsonl", tmp / "record.jsonl", tmp / "audit.jsonl"
    subreaper = _become_subreaper()
    (tmp / "pytest.ini").write_text("[pytest]\naddopts =\n")
    cmd, env, cwd = _command(tmp, spec, results_path, record_path, audit_path)
    t0 = time.monotonic()
    timed_out = False
    with open(tmp / "pytest.log", "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limits(spec["memory_mb"], spec["file_mb"]),
        )
        try:
            proc.wait(timeout=spec["timeout"])
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    leftovers = kill_descendants()
    proc.wait()
    seconds = time.monotonic() - t0
    cells, cells_truncated = _read_lines(results_path, MAX_RESULTS_BYTES)
    records, records_truncated = _read_lines(record_path, MAX_RECORD_BYTES)
    attempts, _ = _read_lines(audit_path, MAX_AUDIT_BYTES)
    return {
        "sandbox": bool(spec.get("sandbox", True)),
        "attempts": [{"kind": str(a.get("kind")), "what": str(a.get("what"))[:300]} for a in attempts][:200],
        "seconds": round(seconds, 2),
        "timed_out": timed_out,
        "returncode": proc.returncode,
        "subreaper": subreaper,
        "leftover_processes": leftovers,
        "cells": cells,
        "records": records,
        "records_truncated": records_truncated,
        "cells_truncated": cells_truncated,
        "log_tail": _tail(tmp / "pytest.log"),
    }


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tmp = Path(argv[0])
    # Everything this process trusts is read and imported *before* the student's code runs: the spec,
    # the scoring code and the exercises' references (a kernel could rewrite files on disk later).
    spec = json.loads((tmp / "spec.json").read_text())
    from labkit.grading.scoring import import_exercise, score

    for chk in spec["checks"]:
        import_exercise(chk["exercise"])
    raw = run(tmp, spec)
    result = score(spec, raw)
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
