"""Release the labs: a student notebook and an executed solution notebook per instructor notebook.

``release("notebooks", "release")`` writes, for every ``notebooks/NN_name.ipynb``:

* ``release/student/NN_name.ipynb``: each solution (between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``) replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``; no cell
  has an output or an execution count (the release shows targets, not results). Above each check
  cell a markdown cell states the target: the line the check prints when the answer is right,
  taken from the instructor notebook's stored output (the grader compares against that same line);
* ``release/solution/NN_name.ipynb``: the instructor notebook, executed;
* ``release/MANIFEST.json``: per lab its exercises, points and the instructor notebook's SHA-256.

Nothing is written unless every check cell of every lab prints exactly its pass line.

``add_parser`` registers the ``python -m labkit release`` subcommand.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import nbformat

from labkit.atomic import write_text
from labkit.grading.cells import cell_problems
from labkit.grading.notebook import _outputs_text, lab_notebooks, load_assignment, student_notebook

__all__ = ["release", "execute_notebook", "student_release", "ReleaseError"]

TARGET = (
    "When your answer is right, the check below prints\n\n"
    "    {line}\n\n"
    "A wrong answer stops the notebook at the check with `FAIL:` and a hint; fix the answer and run again."
)


class ReleaseError(ValueError):
    """An instructor notebook that must not be released; the message lists every problem."""


def execute_notebook(nb, cwd: Path, timeout: float = 600):
    """Run ``nb`` top to bottom in a fresh kernel (cwd = ``cwd``); returns the executed copy."""
    from nbclient import NotebookClient

    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # a copy, sources as strings
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def student_release(nb, assignment):
    """The student notebook of an executed instructor notebook ``nb``: stubs, no outputs, targets stated.

    ``assignment`` is :func:`labkit.grading.notebook.load_assignment` of ``nb``; each check's pass
    line becomes a markdown cell (metadata ``labkit.target``) just above its check cell.
    """
    st = student_notebook(nb)
    checks = {c.cell_index: c for c in assignment.checks}
    cells = []
    for i, cell in enumerate(st.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if i in checks:
            check = checks[i]
            stored = _outputs_text(nb.cells[i]).strip()  # the instructor's line (equal to check.pass_line)
            text = nbformat.v4.new_markdown_cell(TARGET.format(line=stored or check.pass_line))
            text.metadata["labkit"] = {"target": check.check_id}
            cells.append(text)
        cells.append(cell)
    st.cells = cells
    return st


def _problems(path: Path, nb) -> list[str]:
    """Why the instructor notebook ``nb`` must not be released: the notebook rules it breaks (solution
    markers included), cells that raised, and checks that do not print their pass line."""
    rules = [f"{path.name}: {p}" for p in cell_problems(nb.cells)]
    problems = list(rules)
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                problems.append(f"{path.name}: cell {i} raised {o.get('ename')}: {o.get('evalue')}")
    if not rules:  # the exercises and their pass lines
        try:
            load_assignment(path, require_pass_lines=True, nb=nb, allow_empty=True)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def release(notebooks="notebooks", out="release", execute: bool = True, timeout: float = 600, log=print) -> list:
    """Write the student and solution versions of every lab in ``notebooks`` to ``out``.

    Parameters
    ----------
    execute : bool
        Re-run each instructor notebook first (default) and check the fresh outputs; with False,
        the stored outputs are checked and shipped as the solution.
    timeout : float
        Per-cell timeout in seconds when executing.

    Returns the list of lab file names released. Raises :class:`ReleaseError` (and writes nothing)
    if any check cell does not print its pass line or any cell raises.
    """
    src, out = Path(notebooks), Path(out)
    labs = lab_notebooks(src)
    if not labs:
        raise ReleaseError(f"no lab notebooks (NN_name.ipynb) in {src}")
    prepared, problems = [], []
    for path in labs:
        nb = nbformat.read(path, as_version=4)
        if execute:
            t0 = time.perf_counter()
            try:
                nb = execute_notebook(nb, cwd=path.parent, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - CellExecutionError, timeouts, dead kernel
                problems.append(f"{path.name}: execution failed: {type(exc).__name__}: {str(exc)[:500]}")
                continue
            log(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s")
        found = _problems(path, nb)
        problems += found
        if not found:
            prepared.append((path, nb))
    if problems:
        raise ReleaseError("release refused, nothing written:\n  " + "\n  ".join(problems))
    manifest = {"labs": {}}
    for path, nb in prepared:
        nb.metadata.pop("widgets", None)
        asg = load_assignment(path, nb=nb, allow_empty=True)
        write_text(out / "solution" / path.name, nbformat.writes(nb))
        write_text(out / "student" / path.name, nbformat.writes(student_release(nb, asg)))
        manifest["labs"][path.name] = {
            "instructor_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "exercises": [{"grade_id": c.check_id, "answer": c.answer_id, "points": c.points} for c in asg.checks],
            "max_points": asg.max_points,
        }
        log(f"{path.name}: {len(asg.checks)} exercises, {asg.max_points:g} points -> {out}/student, {out}/solution")
    write_text(out / "MANIFEST.json", json.dumps(manifest, indent=1))
    return [p.name for p, _ in prepared]


def add_parser(sub):
    """Register the ``release`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("release", help="write student and solution notebooks for every lab")
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="instructor notebooks (NN_name.ipynb)")
    p.add_argument("--out", type=Path, default=Path("release"), help="output folder (default: release/)")
    p.add_argument("--no-execute", action="store_true", help="check and ship the stored outputs; do not re-run")
    p.add_argument("--timeout", type=float, default=600, help="per-cell timeout in seconds when executing")
    p.set_defaults(fn=cmd_release)
    return p


def cmd_release(args) -> int:
    """Release every lab: 0 if written, 1 if refused (a check or a cell failed), 2 if no notebooks folder."""
    if not args.notebooks.is_dir():
        args.parser.error(f"--notebooks {args.notebooks}: no such folder")
    if args.timeout <= 0:
        args.parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    try:
        release(args.notebooks, args.out, execute=not args.no_execute, timeout=args.timeout)
    except ReleaseError as exc:
        print(exc)
        return 1
    return 0
