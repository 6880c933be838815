"""Grade N copies of one submission and report the wall time (not part of the test run).

    .venv/bin/python tests/submissions/bench_grading.py [--copies 100] [--jobs 2] [--no-sandbox] [--compare]
    .venv/bin/python tests/submissions/bench_grading.py --executors --labs 00 08 [--copies 100] [--jobs 2]

``--compare`` grades the copies twice, with the sandbox and without it, in alternating batches of
``--copies`` (three rounds), and prints the per-submission medians of both and their difference.

``--executors`` grades the copies of each lab in ``--labs`` (its released solution notebook) twice:
with the local pool (``--jobs N``) and with a Dask cluster of the same size started here on
127.0.0.1 (a ``dask scheduler`` and N ``dask worker --nthreads 1`` processes), and prints the
submissions per minute of each, the machine and its load average.

Prints the time for the batch, the time per submission, and checks every copy got the same score.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import socket
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
    p.add_argument("--executors", action="store_true", help="local pool vs a local Dask cluster of --jobs workers")
    p.add_argument("--labs", nargs="+", default=["00"], help="labs (NN) graded with --executors (default 00)")
    args = p.parse_args(argv)
    if args.executors:
        return _executors(args)
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


def _batch(args, sandboxed: bool, executor: list | None = None) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-grading-"))
    try:
        subs = tmp / "subs"
        subs.mkdir()
        for i in range(args.copies):
            shutil.copy(args.submission, subs / f"student{i:03d}.ipynb")
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(args.assignment),
               "--submissions", str(subs), "--out", str(tmp / "out")]
        cmd += executor or ["--jobs", str(args.jobs)]
        cmd += [] if sandboxed else ["--no-sandbox"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        with open(tmp / "out" / "gradebook.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        totals = sorted({r["total"] for r in rows})
        how = " ".join(executor) if executor else f"--jobs {args.jobs}"
        print(
            f"{'sandbox' if sandboxed else 'no sandbox'}: graded {len(rows)} copies of {args.submission.name} with "
            f"{how} in {seconds:.1f} s ({seconds / len(rows):.2f} s per submission, "
            f"{60 * len(rows) / seconds:.1f} per minute); totals seen: {totals}"
        )
        if len(rows) != args.copies or len(totals) != 1:
            raise SystemExit("the copies did not all get the same score")
        return seconds / len(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- local pool vs Dask --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cluster(n_workers: int, log_dir: Path) -> tuple[str, list]:
    """Start a scheduler and ``n_workers`` one-thread workers on 127.0.0.1; (address, processes)."""
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    host_port = address.rsplit(":", 1)[1]
    procs = []

    def start(name, args):
        with open(log_dir / f"{name}.log", "wb") as log:
            procs.append(
                subprocess.Popen([dask, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            )

    start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", host_port, "--no-dashboard"])
    for i in range(n_workers):
        start(f"worker{i}", ["worker", address, "--name", f"w{i}", "--nthreads", "1", "--memory-limit", "0",
                             "--no-dashboard", "--host", "127.0.0.1"])
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        client.wait_for_workers(n_workers, timeout=300)
    return address, procs


def _executors(args) -> int:
    from labkit.grading.notebook import lab_notebooks
    from labkit.grading.release import release

    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-executors-"))
    address, procs = _dask_cluster(args.jobs, tmp)
    rates = []
    try:
        for lab in args.labs:
            (path,) = [p for p in lab_notebooks(ROOT / "notebooks") if p.name.startswith(f"{lab}_")]
            src = tmp / f"src{lab}"
            src.mkdir()
            shutil.copy(path, src / path.name)
            release(src, tmp / f"release{lab}", execute=False, log=lambda *a: None)
            args.assignment, args.submission = path, tmp / f"release{lab}" / "solution" / path.name
            local = _batch(args, True)
            on_dask = _batch(args, True, ["--executor", "dask", "--scheduler", address])
            rates.append((path.stem, 60 / local, 60 / on_dask))
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\n| lab | local pool, --jobs {args.jobs} | Dask, {args.jobs} workers x 1 thread |\n|---|---|---|")
    for name, local, on_dask in rates:
        print(f"| {name} | {local:.1f} / min | {on_dask:.1f} / min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
