"""Grade N copies of one committed submission and report the wall time (not part of the test run).

    .venv/bin/python tests/submissions/bench_grading.py [--copies 100] [--jobs 2] [--no-sandbox] [--compare]

``--compare`` grades the copies twice, with the sandbox and without it, in alternating batches of
``--copies`` (three rounds), and prints the per-submission medians of both and their difference.

Prints the time for the batch, the time per submission, and checks every copy got the same score.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--submission", type=Path, default=ROOT / "tests/submissions/lab00/correct.ipynb.json")
    p.add_argument("--assignment", type=Path, default=ROOT / "notebooks/00_welcome_and_baseline.ipynb")
    p.add_argument("--no-sandbox", action="store_true", help="grade without the bubblewrap sandbox")
    p.add_argument("--compare", action="store_true", help="alternate sandbox / no sandbox, 3 rounds each")
    args = p.parse_args(argv)
    if args.compare:
        per = {True: [], False: []}
        for _ in range(3):
            for sandboxed in (True, False):
                per[sandboxed].append(_batch(args, sandboxed))
        med = {k: statistics.median(v) for k, v in per.items()}
        print(f"per submission, sandbox: {', '.join(f'{x:.2f}' for x in per[True])} s (median {med[True]:.2f})")
        print(f"per submission, no sandbox: {', '.join(f'{x:.2f}' for x in per[False])} s (median {med[False]:.2f})")
        print(f"sandbox overhead (difference of medians): {med[True] - med[False]:+.2f} s per submission")
        return 0
    _batch(args, not args.no_sandbox)
    return 0


def _batch(args, sandboxed: bool) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-grading-"))
    try:
        subs = tmp / "subs"
        subs.mkdir()
        for i in range(args.copies):
            shutil.copy(args.submission, subs / f"student{i:03d}.ipynb")
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(args.assignment),
               "--submissions", str(subs), "--out", str(tmp / "out"), "--jobs", str(args.jobs)]  # fmt: skip
        cmd += [] if sandboxed else ["--no-sandbox"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        with open(tmp / "out" / "gradebook.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        totals = sorted({r["total"] for r in rows})
        print(
            f"{'sandbox' if sandboxed else 'no sandbox'}: graded {len(rows)} copies of {args.submission.name} with "
            f"--jobs {args.jobs} in {seconds:.1f} s ({seconds / len(rows):.2f} s per submission); totals seen: {totals}"
        )
        if len(rows) != args.copies or len(totals) != 1:
            raise SystemExit("the copies did not all get the same score")
        return seconds / len(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
