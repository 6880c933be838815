"""Reading instructor notebooks and submissions, and assembling the notebook the grader runs.

Which cell is an answer, a check or skipped, and what each must carry, is written once in
:mod:`labkit.grading.cells` (the same rules ``scripts/nbbuild.py`` enforces on the lab sources). A
check cell's code calls an :class:`labkit.check.Exercise`, e.g. ``lab00.accuracy(accuracy)``, and
prints one line.

The graded notebook is the instructor's notebook with only the answer cells' sources taken from the
submission (:func:`graded_notebook`): check cells, their points and their expected output always
come from the instructor. It ends at the last check cell, and the instructor's cells tagged
``skip-grading`` (long experiments: training runs, sweeps, timings that no check depends on) are
tagged ``nbval-skip`` in it, so the grader does not run them. Both come from the *instructor's*
notebook, never from the submission. ``tests/test_grading_skip.py`` proves, lab by lab, that no
graded cell reads a name that only a skipped cell defines or changes.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path


def _import_nbformat():
    """``import nbformat`` without jsonschema's optional IRI format checker.

    nbformat imports jsonschema, whose format module imports ``rfc3987_syntax`` when it is installed
    (it comes with ``jsonschema[format-nongpl]``, e.g. through jupyter-events), and that package
    builds a parser at import time: about 3 s of CPU in every grading process. nbformat never checks
    the ``iri`` format, so the import is blocked while nbformat loads (the IRI checker is then absent
    from this process's jsonschema); ``rfc3987_syntax`` itself stays importable afterwards.
    """
    blocked = "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # makes ``import rfc3987_syntax`` raise ImportError
    try:
        import nbformat
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
    return nbformat


nbformat = _import_nbformat()

from labkit.check import Exercise  # noqa: E402 - after the nbformat import above
from labkit.grading.cells import (  # noqa: E402 - the notebook rules, shared with scripts/nbbuild.py
    BEGIN,
    END,
    LAB_NOTEBOOK,
    SKIP_TAG,
    STUB,
    answer_cells,
    answer_of,
    cell_problems,
    is_answer,
    is_check,
    is_skipped,
    nbgrader,
)

__all__ = [
    "CheckCell",
    "Assignment",
    "SubmissionError",
    "load_assignment",
    "read_submission",
    "answer_cells",
    "student_notebook",
    "graded_notebook",
    "strip_solution",
    "SKIP_TAG",
    "is_skipped",
]


class SubmissionError(ValueError):
    """A submission that cannot be graded at all (not a notebook); the message says why."""


@dataclass
class CheckCell:
    """One check cell of an instructor notebook and the exercise it calls.

    ``code_index`` counts code cells only (nbval names its items ``Cell <code_index>``) in the
    *graded* notebook, which may be cut after the last check cell.
    """

    check_id: str  # the check cell's own nbgrader grade_id, e.g. "check_accuracy"
    answer_id: str  # the answer cell's nbgrader grade_id, the one it checks, e.g. "accuracy"
    points: float
    cell_index: int
    code_index: int
    exercise: Exercise
    pass_line: str
    exercise_path: str  # "module:attribute", how the grader's own process imports the exercise

    @property
    def grade_id(self) -> str:
        """Deprecated: the check cell's id is :attr:`check_id` (``grade_id`` named two different ids)."""
        warnings.warn("CheckCell.grade_id is deprecated; use CheckCell.check_id", DeprecationWarning, stacklevel=2)
        return self.check_id


@dataclass
class Assignment:
    """An instructor notebook prepared for grading: cut after its last check cell, checks resolved."""

    path: Path
    nb: nbformat.NotebookNode  # the instructor notebook, cut after the last check cell
    checks: list[CheckCell] = field(default_factory=list)
    answer_ids: list[str] = field(default_factory=list)
    sha256: str = ""

    @property
    def max_points(self) -> float:
        return float(sum(c.points for c in self.checks))


def _imports(nb) -> dict[str, str]:
    """Names bound by ``import``/``from ... import`` statements in the notebook's code cells -> module."""
    names: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        names[a.asname] = a.name
    return names


def resolve_exercise(cell, nb, path: Path) -> tuple[Exercise, str]:
    """The :class:`Exercise` a check cell calls, imported in the grader's own process.

    Looks at ``metadata.labkit.exercise`` (``"module:attribute"``) if present, else parses the
    check cell's code (``lab00.accuracy(accuracy)``) and the notebook's imports, else uses the lab
    number in the file name (``labkit.check.labNN``) and the answer's grade_id. Returns the exercise
    and its ``"module:attribute"`` path.
    """
    md = cell.metadata.get("labkit", {}) or {}
    answer = md.get("answer")
    candidates = []
    if isinstance(md.get("exercise"), str) and ":" in md["exercise"]:
        candidates.append(tuple(md["exercise"].split(":", 1)))
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        tree = None
    imports = _imports(nb)
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if isinstance(node.func.value, ast.Name) and node.func.value.id in imports:
                candidates.append((imports[node.func.value.id], node.func.attr))
    m = LAB_NOTEBOOK.match(path.name)
    if m and answer:
        candidates.append((f"labkit.check.lab{m.group(1)}", answer))
    for module, attr in candidates:
        try:
            ex = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            continue
        if isinstance(ex, Exercise) and (answer is None or ex.answer_id == answer):
            return ex, f"{module}:{attr}"
    raise ValueError(
        f"{path.name}: cannot find the Exercise behind check cell {nbgrader(cell).get('grade_id')!r} "
        f"(answer {answer!r}, code {cell.source.strip()[:80]!r}); tried {candidates}"
    )


def _outputs_text(cell) -> str:
    return "".join(
        o.get("text", "") if o.get("output_type") == "stream" else "".join(o.get("data", {}).get("text/plain", ""))
        for o in cell.get("outputs", [])
    )


def load_assignment(path, require_pass_lines: bool = True, nb=None, allow_empty: bool = False) -> Assignment:
    """Read an instructor notebook, resolve every check cell, and cut it after the last check.

    The assignment may also be a released student notebook (its answer cells are stubs); ``nb``
    passes an already-loaded notebook (``path`` then only names it).

    Code cells tagged ``skip-grading`` stay in place (cell numbers do not move) but get the tag
    ``nbval-skip``, so the grader does not run them.

    Raises ValueError if a cell breaks the course's notebook rules (:func:`labkit.grading.cells.cell_problems`:
    a check cell without its answer cell above it, points or tags; a graded cell tagged ``skip-grading``),
    if an exercise cannot be found, or (``require_pass_lines``) if a check cell's stored output is not
    exactly its exercise's pass line.
    """
    path = Path(path)
    if nb is None:
        raw = path.read_bytes()
        nb = nbformat.reads(raw.decode(), as_version=4)
    else:
        raw = nbformat.writes(nb).encode()
    problems = cell_problems(nb.cells, released=True)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    checks, code_index, last = [], 0, -1
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_check(cell):
            checks.append(_check_cell(cell, i, code_index, nb, path, require_pass_lines))
            last = i
        code_index += 1
    if not checks and not allow_empty:
        raise ValueError(f"{path.name}: no check cells (metadata.nbgrader.grade = true)")
    answers = answer_cells(nb)
    ids = [gid for gid in answers if answers[gid][0] <= last]
    return Assignment(path, _graded_part(nb, last if checks else None), checks, ids, hashlib.sha256(raw).hexdigest())


def _check_cell(cell, i: int, code_index: int, nb, path: Path, require_pass_lines: bool) -> CheckCell:
    """The :class:`CheckCell` of cell ``i`` (a check cell that follows the rules), its exercise resolved."""
    check_id = nbgrader(cell).get("grade_id")
    ex, ex_path = resolve_exercise(cell, nb, path)
    if require_pass_lines and _outputs_text(cell) != ex.pass_line + "\n":
        raise ValueError(
            f"{path.name}: check cell {check_id!r} does not show its pass line "
            f"{ex.pass_line!r}; it shows {_outputs_text(cell)[:200]!r}"
        )
    points = float(nbgrader(cell)["points"])
    return CheckCell(check_id, answer_of(cell), points, i, code_index, ex, ex.pass_line, ex_path)


def _graded_part(nb, last: int | None):
    """A copy of ``nb`` cut after cell ``last`` (None: whole), its ``skip-grading`` cells tagged ``nbval-skip``."""
    cut = copy.deepcopy(nb)
    if last is not None:
        cut.cells = cut.cells[: last + 1]  # cells after the last check cannot change any grade
    for cell in cut.cells:
        if cell.cell_type == "code" and is_skipped(cell):
            tags = cell.metadata.setdefault("tags", [])
            if "nbval-skip" not in tags:
                tags.append("nbval-skip")
    return cut


def read_submission(raw: bytes):
    """Parse a submitted notebook; :class:`SubmissionError` with the reason if it is not one."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"not a notebook: invalid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SubmissionError("not a notebook: no list of cells")
    try:
        nb = nbformat.from_dict(data)
        if nb.get("nbformat", 4) < 4:
            nb = nbformat.convert(nb, 4)
    except Exception as exc:  # noqa: BLE001 - any malformed structure
        raise SubmissionError(f"not a readable notebook ({type(exc).__name__}: {exc})") from None
    cells = []
    for c in nb.cells:
        if not isinstance(c, dict):
            continue
        src = c.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        if not isinstance(src, str):
            src = ""
        c["source"] = src
        if not isinstance(c.get("metadata"), dict):
            c["metadata"] = {}
        cells.append(c)
    nb.cells = cells
    return nb


def strip_solution(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block by the stub, keeping indentation."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB.splitlines())
            inside = True
        elif stripped == END:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


def student_notebook(nb):
    """The student version: solutions stubbed, outputs cleared except the check cells' expected line."""
    s = copy.deepcopy(nb)
    for cell in s.cells:
        if cell.cell_type != "code":
            continue
        if is_answer(cell):
            cell.source = strip_solution(cell.source)
        if is_check(cell):
            cell.execution_count = 1 if cell.execution_count is None else cell.execution_count
            continue  # keep the pass line (nbval needs an execution count to compare a cell)
        cell.outputs = []
        cell.execution_count = None
    s.metadata.pop("widgets", None)
    return s


@dataclass
class Assembly:
    """What :func:`graded_notebook` did, for the feedback file."""

    nb: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


# Things an answer cell has no business doing. Matching one changes no score (the grader's own check
# decides); it puts "flagged" in the gradebook so an instructor can read that answer.
SUSPICIOUS = {
    "labkit.check": re.compile(r"labkit\.check|from\s+labkit\s+import\s+check|\blab\d\d\."),
    ".reference": re.compile(r"\.reference\b"),
    "LABKIT_GRADE": re.compile(r"LABKIT_GRADE"),
    "sys.modules": re.compile(r"sys\.modules"),
    "builtins": re.compile(r"\bbuiltins\b|__builtins__"),
    "sys.stdout replaced": re.compile(r"sys\.(stdout|stderr)\s*="),
    "processes/signals": re.compile(r"os\._exit|os\.kill|\bsignal\.|/proc/|\bsubprocess\b|\bctypes\b|os\.fork"),
}


def suspicious(source: str) -> list[str]:
    """Names of the :data:`SUSPICIOUS` patterns found in an answer cell's code."""
    return [name for name, rx in SUSPICIOUS.items() if rx.search(source)]


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def graded_notebook(assignment: Assignment, submission) -> Assembly:
    """The instructor's notebook with the answer cells' sources from ``submission``.

    Answer cells are matched by nbgrader grade_id. If a student's answer cell lost its metadata
    (copied into a new notebook, edited in another editor), it is found as the code cell just above
    a cell whose code equals that exercise's check cell; failing that, the answer stays the stub
    and the exercise scores 0. Everything else (check cells, points, expected outputs, other cells)
    comes from the instructor.
    """
    nb = copy.deepcopy(assignment.nb)
    found = answer_cells(submission)
    notes, missing, flags = [], [], []
    check_src = {c.answer_id: _norm(nb.cells[c.cell_index].source) for c in assignment.checks}
    for gid in assignment.answer_ids:
        idx = found.get(gid, [])
        source = None
        if idx:
            if len(idx) > 1:
                notes.append(f"{gid}: {len(idx)} answer cells carry this grade_id; graded the last one")
            source = submission.cells[idx[-1]].source
        elif gid in check_src:
            code = [c for c in submission.cells if c.get("cell_type") == "code"]
            for above, cell in zip(code, code[1:]):
                if _norm(cell.source) == check_src[gid] and not is_answer(above) and not is_check(above):
                    source = above.source
                    notes.append(f"{gid}: answer cell had no nbgrader metadata; used the cell above its check")
                    break
        if source is None:
            missing.append(gid)
            notes.append(f"{gid}: no answer cell found in the submission; graded as not answered")
            source = strip_solution(nb.cells[answer_cells(nb)[gid][0]].source)
        found_flags = suspicious(source) if gid not in missing else []
        if found_flags:
            flags.append(f"{gid}: answer cell uses {', '.join(found_flags)} (flagged for review; score unchanged)")
        cell = nb.cells[answer_cells(nb)[gid][0]]
        cell.source = source
        cell.outputs = []
    # Other cells keep the instructor's outputs: under --nbval-lax only cells the instructor marked
    # (check cells, # NBVAL_CHECK_OUTPUT) are compared, and against the instructor's output.
    return Assembly(nb, notes + flags, missing, flags)


def lab_notebooks(folder) -> list[Path]:
    """The lab notebooks ``NN_name.ipynb`` of a folder, in order."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if LAB_NOTEBOOK.match(p.name))
