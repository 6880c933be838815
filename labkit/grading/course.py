"""A course gradebook: the labs' gradebooks merged into one table, or into the CSV Canvas or Moodle imports.

``python -m labkit grade`` writes one ``gradebook.csv`` per lab (columns ``student``, ``total``,
``max``, one per check cell, ``status``). ``python -m labkit gradebook grades/lab00 grades/lab01 …
--out course.csv`` reads them and writes one row per student of any lab:

- ``plain`` (default): ``student``, one column per lab with its points (the lab's name is its
  folder's name), ``total``, ``max``, ``percent``, ``status``. Each lab counts by its weight, as a
  fraction of its points: ``total = Σ w · points / max_points`` and ``max = Σ w`` over the labs, so
  with the default weight 1 every lab counts the same whatever its number of points. A student
  missing from a lab gets 0 there and ``missing: <lab>`` in ``status``, which also lists what went
  wrong while grading (``lab02: timeout``); ``ok`` when nothing did.
- ``canvas``: Canvas's grade import, ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``,
  ``Section``, then one column per lab with its points; the student's name (the submission's file
  name) goes in ``Student`` and ``SIS Login ID``, by which Canvas matches the rows to its students.
- ``moodle``: Moodle's "Import grades from CSV": ``username``, then one column per lab with its
  points; at import, map ``username`` to the user field and each lab column to its grade item.

Weights come from a small TOML or JSON file mapping lab names to numbers ≥ 0 (labs not named
weigh 1). The course file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from labkit.atomic import write_text

__all__ = [
    "FORMATS",
    "GradebookError",
    "WeightsError",
    "LabGrades",
    "read_lab",
    "read_weights",
    "course_rows",
    "course_csv",
    "write_course",
    "add_parser",
]

FORMATS = ("plain", "canvas", "moodle")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
REQUIRED_COLUMNS = ("student", "total", "max", "status")


class GradebookError(Exception):
    """A lab's gradebook cannot be read, or does not hold what ``python -m labkit grade`` writes."""


class WeightsError(ValueError):
    """The weights file cannot be read, or does not map lab names to numbers ≥ 0."""


@dataclass(frozen=True)
class LabGrades:
    """One lab's gradebook: per student the points earned and the grading status.

    Attributes
    ----------
    name : str
        The lab's name: the name of the folder holding ``gradebook.csv``.
    path : Path
        The gradebook read.
    max_points : float
        Points of the whole lab (the gradebook's ``max`` column).
    points : dict of str to float
        Student → points earned (the ``total`` column).
    status : dict of str to str
        Student → ``ok`` or what went wrong while grading (the ``status`` column).
    """

    name: str
    path: Path
    max_points: float
    points: dict
    status: dict


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise GradebookError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(x) or x < 0:
        raise GradebookError(f"{what} must be a finite number >= 0, got {text!r}")
    return x


def read_lab(path) -> LabGrades:
    """Read one lab's ``gradebook.csv`` (``path`` is the file or the folder holding it).

    Raises :class:`GradebookError` saying which file and which row when the file is missing,
    unreadable, lacks a column ``python -m labkit grade`` writes, names a student twice, holds a
    number that is not one, or has no student (the lab's maximum is then unknown).
    """
    path = Path(path)
    file = path / "gradebook.csv" if path.is_dir() else path
    name = file.resolve().parent.name
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GradebookError(f"cannot read the gradebook {file}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise GradebookError(
            f"{file} is not a gradebook written by `python -m labkit grade`: no column {', '.join(missing)} "
            f"(found {', '.join(reader.fieldnames or []) or 'nothing'})"
        )
    points, status, max_points = {}, {}, 0.0
    for row_no, row in enumerate(reader, start=2):
        student = (row["student"] or "").strip()
        if not student:
            raise GradebookError(f"{file}, row {row_no}: empty student name")
        if student in points:
            raise GradebookError(f"{file}, row {row_no}: student {student!r} appears twice")
        points[student] = _number(row["total"], f"{file}, row {row_no}, total")
        max_points = max(max_points, _number(row["max"], f"{file}, row {row_no}, max"))
        status[student] = (row["status"] or "ok").strip()
    if not points:
        raise GradebookError(f"{file} has no student: the lab's maximum points are unknown")
    return LabGrades(name, file, max_points, points, status)


def _parse_weights(path: Path, text: str):
    """The table of a weights file, parsed as its suffix says (JSON, or TOML with tomllib/tomli)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{path} is not valid JSON: {exc}") from None
    if suffix != ".toml":
        raise WeightsError(f"weights file must end in .toml or .json, got {path.name!r}")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise WeightsError(f"{path}: reading TOML needs Python >= 3.11 or tomli; use JSON") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"{path} is not valid TOML: {exc}") from None


def read_weights(path, lab_names) -> dict:
    """Per-lab weights from a TOML or JSON file (by its suffix: ``.toml`` or ``.json``).

    The file maps lab names to numbers ≥ 0, e.g. TOML ``lab00 = 1`` / ``lab04 = 2`` or JSON
    ``{"lab00": 1, "lab04": 2}``; labs it does not name weigh 1. Raises :class:`WeightsError` when
    the file cannot be read or parsed, names a lab that is not among ``lab_names`` (a typo would
    otherwise go unnoticed), gives a weight that is not a number ≥ 0, or makes every weight 0.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read the weights file {path}: {exc}") from None
    table = _parse_weights(path, text)
    if not isinstance(table, dict):
        raise WeightsError(f"{path} must map lab names to weights, got a {type(table).__name__}")
    lab_names = list(lab_names)
    unknown = sorted(set(table) - set(lab_names))
    if unknown:
        raise WeightsError(f"{path} names labs that are not graded here: {unknown} (labs: {lab_names})")
    weights = {name: 1.0 for name in lab_names}
    for name, w in table.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise WeightsError(f"{path}: the weight of {name} must be a number >= 0, got {w!r}")
        weights[name] = float(w)
    if not any(weights.values()):
        raise WeightsError(f"{path}: every weight is 0; nothing would count")
    return weights


def course_rows(labs, weights=None) -> list[dict]:
    """One row per student of any lab, sorted by name: per-lab points, weighted total, max, percent, status.

    Parameters
    ----------
    labs : list of LabGrades
        The labs, in the order of their columns; names must be distinct.
    weights : dict of str to float, optional
        Weight per lab name (default 1 each; see :func:`read_weights`).

    Returns
    -------
    list of dict
        Keys ``student``, ``points`` (lab name → points, 0 when missing), ``total``
        (``Σ w · points / max_points``), ``max`` (``Σ w``), ``percent`` and ``status``.
    """
    names = [lab.name for lab in labs]
    if len(set(names)) != len(names):
        raise ValueError(f"two gradebooks have the same lab name: {names}")
    weights = {name: 1.0 for name in names} | dict(weights or {})
    max_total = sum(weights[lab.name] for lab in labs)
    students = sorted(set().union(*(lab.points for lab in labs)))
    rows = []
    for student in students:
        points, status, total = {}, [], 0.0
        for lab in labs:
            if student not in lab.points:
                points[lab.name] = 0.0
                status.append(f"missing: {lab.name}")
                continue
            points[lab.name] = lab.points[student]
            if lab.max_points > 0:
                total += weights[lab.name] * lab.points[student] / lab.max_points
            if lab.status[student] != "ok":
                status.append(f"{lab.name}: {lab.status[student]}")
        rows.append(
            {
                "student": student,
                "points": points,
                "total": total,
                "max": max_total,
                "percent": 100 * total / max_total if max_total else 0.0,
                "status": "; ".join(status) or "ok",
            }
        )
    return rows


def _fmt(x: float) -> str:
    """A number as the gradebooks write it: at most 4 decimals, no trailing zeros."""
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def course_csv(labs, weights=None, fmt: str = "plain") -> str:
    """The course table as CSV text in format ``fmt`` (``plain``, ``canvas`` or ``moodle``; see the module)."""
    return _render(course_rows(labs, weights), [lab.name for lab in labs], fmt)


def _render(rows, names, fmt: str) -> str:
    """The rows of :func:`course_rows` (labs ``names``, in column order) as CSV text in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if fmt == "plain":
        w.writerow(["student", *names, "total", "max", "percent", "status"])
        for r in rows:
            lab_points = [_fmt(r["points"][n]) for n in names]
            w.writerow([r["student"], *lab_points, _fmt(r["total"]), _fmt(r["max"]), _fmt(r["percent"]), r["status"]])
    elif fmt == "canvas":
        w.writerow([*CANVAS_COLUMNS, *names])
        for r in rows:
            w.writerow([r["student"], "", "", r["student"], "", *(_fmt(r["points"][n]) for n in names)])
    else:
        w.writerow(["username", *names])
        for r in rows:
            w.writerow([r["student"], *(_fmt(r["points"][n]) for n in names)])
    return buf.getvalue()


def write_course(grade_dirs, out, weights_path=None, fmt: str = "plain") -> list[dict]:
    """Read the labs' gradebooks, write the course CSV to ``out`` atomically; return the rows written."""
    labs = [read_lab(p) for p in grade_dirs]
    weights = read_weights(weights_path, [lab.name for lab in labs]) if weights_path else None
    rows = course_rows(labs, weights)
    write_text(Path(out), _render(rows, [lab.name for lab in labs], fmt))
    return rows


def add_parser(sub):
    """Register the ``gradebook`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("gradebook", help="merge the labs' gradebooks into one course table (plain, Canvas, Moodle)")
    p.add_argument(
        "grade_dirs",
        nargs="+",
        type=Path,
        metavar="GRADES_DIR",
        help="a lab's grading folder (holding gradebook.csv) or the gradebook.csv itself",
    )
    p.add_argument("--out", type=Path, required=True, help="the course CSV to write")
    p.add_argument("--weights", type=Path, default=None, help="TOML or JSON file: lab name -> weight (default 1)")
    p.add_argument("--format", choices=FORMATS, default="plain", help="plain (default), canvas or moodle")
    p.set_defaults(fn=cmd_gradebook)
    return p


def cmd_gradebook(args) -> int:
    """Write the course table: 0 when written, 1 if a gradebook cannot be read or the file written, 2 on bad usage."""
    for path in args.grade_dirs:
        if not path.exists():
            args.parser.error(f"{path}: no such folder or file")
    names = [(p if p.is_dir() else p.parent).resolve().name for p in args.grade_dirs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        args.parser.error(f"two GRADES_DIR have the same lab name {twice}: each lab's folder needs its own name")
    if not args.out.resolve().parent.is_dir():
        args.parser.error(f"--out {args.out}: the folder {args.out.resolve().parent} does not exist")
    if args.weights is not None and not args.weights.is_file():
        args.parser.error(f"--weights {args.weights}: no such file")
    try:
        rows = write_course(args.grade_dirs, args.out, args.weights, args.format)
    except WeightsError as exc:
        args.parser.error(str(exc))
    except GradebookError as exc:
        print(f"gradebook: {exc}")
        return 1
    except OSError as exc:
        print(f"gradebook: cannot write {args.out}: {exc}")
        return 1
    missing = sum(r["status"] != "ok" for r in rows)
    print(f"{args.out}: {len(rows)} students, {len(args.grade_dirs)} labs ({args.format}); {missing} with a status")
    return 0
