"""Grade N copies of one committed submission and report the wall time (not part of the test run).

    .venv/bin/python tests/submissions/bench_grading.py [--copies 100] [--jobs 2] [--keep DIR]

Prints the time for the batch, the time per submission, and checks every copy got the same score.
"""

from __future__ import annotations

import argparse
import csv
import shutil
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
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-grading-"))
    try:
        subs = tmp / "subs"
        subs.mkdir()
        for i in range(args.copies):
            shutil.copy(args.submission, subs / f"student{i:03d}.ipynb")
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(args.assignment),
               "--submissions", str(subs), "--out", str(tmp / "out"), "--jobs", str(args.jobs)]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        with open(tmp / "out" / "gradebook.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        totals = sorted({r["total"] for r in rows})
        print(
            f"graded {len(rows)} copies of {args.submission.name} with --jobs {args.jobs} in {seconds:.1f} s "
            f"({seconds / len(rows):.2f} s per submission); totals seen: {totals}"
        )
        return 0 if len(rows) == args.copies and len(totals) == 1 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
