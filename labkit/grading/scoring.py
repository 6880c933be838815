"""Scoring one graded run: nbval's cell results and the verified records -> points and hints.

:func:`score` runs in the supervisor (:mod:`._supervisor`), the grader's own process for one
submission, after the student's kernel has ended: it maps each check cell to its points only if
nbval saw the pass line *and* the outputs recorded by the check match the reference on the grader's
own cases (:meth:`labkit.check.Exercise.verify`). :mod:`.grade` imports nothing from the supervisor
for scoring, and the supervisor nothing from the batch module: both import this one.
"""

from __future__ import annotations

from labkit.grading.results import ExerciseResult, GradeResult

__all__ = ["score", "attempt_summary", "import_exercise"]


def import_exercise(path: str):
    """The :class:`labkit.check.Exercise` at ``"module:attribute"``, imported in this process."""
    import importlib

    from labkit.check import Exercise

    module, _, attr = path.partition(":")
    ex = getattr(importlib.import_module(module), attr)
    if not isinstance(ex, Exercise):
        raise TypeError(f"{path} is not an Exercise")
    return ex


def _cell_hint(cell: dict | None, check: dict, spec: dict, run: dict) -> str:
    if cell is None:
        if run["timed_out"]:
            return f"not run: the notebook hit the overall time limit ({spec['timeout']:g} s) before this check"
        return "not run: the notebook stopped before this check (the kernel died or could not start)"
    msg, out = cell.get("message", ""), cell.get("output", "")
    if cell.get("kernel_died") is not None:
        return (
            f"the kernel died while running this check (exit code {cell['kernel_died']}): "
            "os._exit, a crash in compiled code, or the system's memory killer"
        )
    if "Timeout" in msg or "timed out" in msg:
        return f"timed out: the check cell took longer than {spec['cell_timeout']:g} s (an infinite loop?)"
    if "Kernel dead" in msg or "kernel died" in msg.lower():
        return "not run: the kernel had died before this check (an earlier cell crashed it)"
    if cell.get("xfail") and cell.get("outcome") != "passed":
        return "not run: a previous cell timed out and this one did not recover"
    lines = [ln for ln in out.splitlines() if ln.strip()]
    fails = [ln for ln in lines if ln.startswith("FAIL: ")]
    if fails:
        return fails[0]
    if "exception" in msg.lower():
        return f"the check cell raised an error: {out.strip()[:300] or msg[:300]}"
    if lines:
        return f"the check cell printed {lines[0][:200]!r} instead of the pass line"
    return f"the check cell did not print the pass line ({msg[:200] or cell.get('outcome')})"


def _verify(chk: dict, cell, rec, spec: dict, run: dict) -> tuple[bool, str | None]:
    """(passed, hint) of one check cell from nbval's result and the check's verified record."""
    nbval_ok = cell is not None and cell.get("outcome") == "passed"
    if chk["answer_id"] in spec.get("missing", []):
        return False, "no answer cell found in your notebook (was it deleted, or its metadata lost?)"
    if not nbval_ok:
        return False, _cell_hint(cell, chk, spec, run)
    if rec is None:
        return False, (
            "the check cell printed the pass line, but your function was never run by the real "
            "check (was `check`, `lab..` or `labkit.check` replaced?)"
        )
    try:
        vhint = import_exercise(chk["exercise"]).verify(rec.get("outputs"), int(spec["seed"]))
    except Exception as exc:  # noqa: BLE001 - a broken record fails this exercise only
        vhint = f"your recorded results could not be checked ({type(exc).__name__}: {exc})"
    if vhint is not None:
        return False, f"the check cell printed the pass line, but on the grader's own cases: {vhint}"
    return True, None


def _used_reference(rec) -> bool:
    calls = (rec or {}).get("reference_calls")
    return isinstance(calls, int) and not isinstance(calls, bool) and calls > 0


def _exercise(chk: dict, cell, rec, spec: dict, run: dict) -> ExerciseResult:
    """The points and hint of one check cell (``forbid_reference`` takes them back from a reference call)."""
    passed, hint = _verify(chk, cell, rec, spec, run)
    if _used_reference(rec):
        if spec.get("forbid_reference"):
            passed = False
            hint = "your answer calls labkit's own implementation of this exercise: 0 points (--forbid-reference)"
        elif passed:
            hint = "passed, but your answer calls labkit's own implementation of this exercise (flagged)"
    points = chk["points"] if passed else 0.0
    return ExerciseResult(chk["grade_id"], chk["answer_id"], points, chk["points"], passed, hint or "passed")


def _status(spec: dict, run: dict, attempts: list, reference_users: list) -> list[str]:
    """What went wrong while running the notebook, in the gradebook's words."""
    status = ["timeout"] if run["timed_out"] else []
    msgs = [c.get("message", "") for c in run["cells"]]
    died = any(c.get("kernel_died") is not None for c in run["cells"])
    if died or any("Kernel dead" in m for m in msgs) or (not run["cells"] and not run["timed_out"]):
        status.append("kernel died")
    if any("Timeout" in m for m in msgs):
        status.append("cell timeout")
    check_cells = {chk["code_index"] for chk in spec["checks"]}
    n_err = sum(1 for c in run["cells"] if c.get("outcome") == "failed" and c.get("cell") not in check_cells)
    if n_err:
        status.append(f"errors in {n_err} other cell{'s' if n_err > 1 else ''}")
    status += [f"missing answer {gid}" for gid in spec.get("missing", [])]
    if run.get("records_truncated"):
        status.append("record too large")
    escapes = [a for a in attempts if a.get("kind") in ("write", "connect")]  # new processes: notes only
    if escapes:
        status.append("flagged: " + attempt_summary(escapes))
    if reference_users:
        status.append("flagged: calls labkit's reference for " + ", ".join(reference_users))
    if run.get("sandbox") is False:
        status.append("no sandbox")
    return status


def score(spec: dict, run: dict) -> GradeResult:
    """Map each check cell to points from nbval's cell results and the verified records.

    The result's ``student`` is left empty: the supervisor does not know the name; the batch sets it.
    """
    cells_by_index: dict[int, dict] = {}
    for c in run["cells"]:
        if isinstance(c.get("cell"), int):
            cells_by_index[c["cell"]] = c  # the last result for a cell wins
    records: dict[str, dict] = {}
    for r in run["records"]:
        if isinstance(r.get("grade_id"), str):
            records[r["grade_id"]] = r  # the last call of an exercise is the check cell's (keyed by answer id)
    exercises = tuple(
        _exercise(chk, cells_by_index.get(chk["code_index"]), records.get(chk["answer_id"]), spec, run)
        for chk in spec["checks"]
    )
    reference_users = [chk["answer_id"] for chk in spec["checks"] if _used_reference(records.get(chk["answer_id"]))]
    attempts = [a for a in run.get("attempts", []) if isinstance(a, dict)]
    return GradeResult(
        student="",
        exercises=exercises,
        status=tuple(_status(spec, run, attempts, reference_users)),
        seconds=run["seconds"],
        sandbox=run.get("sandbox", True),
        attempts=tuple(attempts),
        reference_calls=tuple(reference_users),
        leftover_processes=run["leftover_processes"],
        log_tail=run["log_tail"][-1500:],
    )


_KINDS = {"write": "wrote outside its folder", "connect": "opened a network connection", "process": "started a process"}


def attempt_summary(attempts: list, shown: int = 2) -> str:
    """``wrote outside its folder (/root/x, /tmp/y); opened a network connection (('127.0.0.1', 5))``."""
    parts = []
    for kind, label in _KINDS.items():
        whats = [str(a.get("what", "")) for a in attempts if a.get("kind") == kind]
        if whats:
            more = f" and {len(whats) - shown} more" if len(whats) > shown else ""
            parts.append(f"{label} ({', '.join(w[:120] for w in whats[:shown])}{more})")
    return "; ".join(parts) or "unknown attempt"
