"""What a grading run writes: the gradebook, a feedback file per student, and the resume manifest.

* ``gradebook.csv``: student, total, max, one column per check cell (its ``check_id``), status;
* ``feedback/<student>.md``: per exercise the points and the hint;
* ``.labkit-grades.json`` (:data:`MANIFEST`): every :class:`~labkit.grading.results.GradeResult`, so
  that a re-run skips what is graded; :func:`read_manifest` gives back those still valid.

Each file is written atomically (:mod:`labkit.atomic`) from the results in memory, so whatever a
submission wrote into the output folder is overwritten.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from labkit.atomic import write_text
from labkit.grading.results import GradeResult

__all__ = ["MANIFEST", "gradebook_csv", "feedback_md", "manifest_json", "read_manifest", "write_reports"]

MANIFEST = ".labkit-grades.json"


def _fmt(x: float) -> str:
    return f"{x:g}"


def gradebook_csv(check_ids, results: dict[str, GradeResult]) -> str:
    """The gradebook: one row per student (sorted), one points column per check id."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "total", "max", *check_ids, "status"])
    for student in sorted(results):
        r = results[student]
        points = {e.check_id: e.points for e in r.exercises}
        cells = (_fmt(points[c]) if c in points else "0" for c in check_ids)
        w.writerow([student, _fmt(r.total), _fmt(r.max_points), *cells, r.status_line])
    return buf.getvalue()


def feedback_md(lab: str, r: GradeResult) -> str:
    """The feedback file of one student on the lab notebook named ``lab``."""
    status = f" (status: {'; '.join(r.status)})" if r.status else ""
    lines = [
        f"# Feedback for {r.student}: {lab}",
        "",
        f"**Score: {_fmt(r.total)} / {_fmt(r.max_points)}**{status}",
        "",
        "| exercise | points | result |",
        "|---|---|---|",
    ]
    for e in r.exercises:
        hint = e.hint.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e.answer_id} | {_fmt(e.points)} / {_fmt(e.max_points)} | {hint} |")
    if r.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in r.notes]
    lines += ["", "A check scores its points when its cell prints the pass line and your function also gives the"]
    lines += ["reference's results on new cases the grader draws at grading time."]
    return "\n".join(lines) + "\n"


def manifest_json(assignment, sandbox: bool, forbid_reference: bool, results: dict[str, GradeResult]) -> str:
    """The resume manifest: the assignment (path and SHA-256), how it was graded, every result."""
    manifest = {
        "assignment": str(assignment.path),
        "assignment_sha256": assignment.sha256,
        "sandbox": sandbox,
        "forbid_reference": forbid_reference,
        "results": {s: r.to_dict() for s, r in results.items()},
    }
    return json.dumps(manifest, indent=1)


def read_manifest(out, assignment, sandbox: bool, forbid_reference: bool) -> dict[str, GradeResult]:
    """The results of an earlier run in ``out`` that still hold: same assignment, graded the same way.

    A missing or unreadable manifest gives ``{}`` (everything is graded again).
    """
    try:
        old = json.loads((Path(out) / MANIFEST).read_text())
        if old.get("assignment_sha256") != assignment.sha256:
            return {}
        results = {s: GradeResult.from_dict(d) for s, d in old.get("results", {}).items()}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}
    same_way = lambda r: (r.sandbox is not False) == sandbox and bool(r.forbid_reference) == forbid_reference
    return {s: r for s, r in results.items() if same_way(r)}


def write_reports(out, assignment, sandbox: bool, forbid_reference: bool, results, feedback_for=None) -> None:
    """Write the manifest and the gradebook of ``results``, and the feedback of the students in
    ``feedback_for`` (default: all of them), atomically."""
    out = Path(out)
    write_text(out / MANIFEST, manifest_json(assignment, sandbox, forbid_reference, results))
    write_text(out / "gradebook.csv", gradebook_csv([c.check_id for c in assignment.checks], results))
    for student in results if feedback_for is None else feedback_for:
        write_text(out / "feedback" / f"{student}.md", feedback_md(assignment.path.name, results[student]))
