"""Per-lab grading time: grade each lab's released solution notebook as one submission (not part of the test run).

    .venv/bin/python tests/submissions/grading_times.py [--labs 02 04] [--no-sandbox] [--cells] [--root DIR]

(``--root DIR``: grade with another checkout's labkit and notebooks, e.g. to compare with main; put
that checkout first on ``PYTHONPATH`` too.)

For every lab (or the ``--labs`` given) this releases the instructor notebooks without executing
them, grades the solution notebook as a single submission with
``python -m labkit grade --jobs 1`` (sandbox on unless ``--no-sandbox``), and prints one table row:
wall seconds, CPU seconds of the grading command and everything it started (user + system, from
``resource.getrusage(RUSAGE_CHILDREN)``), the score, and the 1-minute load average before and
after. On a machine shared with other work, CPU seconds are the comparable figure.

``--cells`` also runs the notebook the grader runs (the instructor notebook trimmed by
:func:`labkit.grading.notebook.load_assignment`) with nbclient, no sandbox, and prints the slowest
cells with their first line, to see where the time before the last check goes.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def grade_one(solution: Path, assignment: Path, sandbox: bool = True, root: Path = ROOT) -> dict:
    """Grade ``solution`` as the only submission of ``assignment``; wall and CPU seconds, score."""
    tmp = Path(tempfile.mkdtemp(prefix="labkit-grading-times-"))
    try:
        subs = tmp / "subs"
        subs.mkdir()
        shutil.copy(solution, subs / "student.ipynb")
        cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(assignment),
               "--submissions", str(subs), "--out", str(tmp / "out"), "--jobs", "1"]
        cmd += [] if sandbox else ["--no-sandbox"]
        load0, cpu0, t0 = os.getloadavg()[0], _cpu_children(), time.perf_counter()
        subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
        with open(tmp / "out" / "gradebook.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        row = rows[0] if rows else {}
        score = f"{row.get('total', '?')}/{row.get('max', row.get('max_points', '?'))}"
        return {"wall": wall, "cpu": cpu, "score": score, "load0": load0, "load1": os.getloadavg()[0]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cell_times(assignment: Path, top: int = 8, root: Path = ROOT) -> list[tuple[float, int, str]]:
    """Run the trimmed notebook the grader runs (no sandbox) and return (seconds, code index, first line)."""
    import nbformat
    from nbclient import NotebookClient

    from labkit.grading.notebook import load_assignment

    asg = load_assignment(assignment, require_pass_lines=False)
    nb = asg.nb
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root / "notebooks")}}
    )
    times = []
    with client.setup_kernel():
        code_index = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if "nbval-skip" in cell.metadata.get("tags", []):  # skip-grading: the grader does not run it
                code_index += 1
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, i)
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            times.append((time.perf_counter() - t0, code_index, first[:70]))
            code_index += 1
    del nbformat
    return sorted(times, reverse=True)[:top]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose labkit grades (default: this one)")
    p.add_argument("--notebooks", type=Path, help="instructor notebooks (default: ROOT/notebooks)")
    p.add_argument("--labs", nargs="*", help="lab numbers, e.g. 02 04 (default: all)")
    p.add_argument("--no-sandbox", action="store_true", help="grade without the bubblewrap sandbox")
    p.add_argument("--cells", action="store_true", help="also time the cells of the trimmed notebook")
    args = p.parse_args(argv)
    args.notebooks = args.notebooks or args.root / "notebooks"
    from labkit.grading.notebook import lab_notebooks
    from labkit.grading.release import release

    tmp = Path(tempfile.mkdtemp(prefix="labkit-grading-release-"))
    try:
        release(args.notebooks, tmp, execute=False, log=lambda *a: None)
        print(f"{'lab':<40} {'wall s':>7} {'CPU s':>7} {'score':>9} {'load before/after':>18}", flush=True)
        for nb in lab_notebooks(args.notebooks):
            if args.labs and nb.name[:2] not in args.labs:
                continue
            r = grade_one(tmp / "solution" / nb.name, nb, sandbox=not args.no_sandbox, root=args.root)
            print(
                f"{nb.stem:<40} {r['wall']:7.1f} {r['cpu']:7.1f} {r['score']:>9} {r['load0']:8.2f}/{r['load1']:.2f}",
                flush=True,
            )
            if args.cells:
                for sec, idx, first in cell_times(nb, root=args.root):
                    print(f"    {sec:6.2f} s  Cell {idx:<3} {first}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
