"""``python -m labkit grade``: the argument parser and the exit status of a grading run."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    """Register the ``grade`` subcommand on an argparse subparsers object."""
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks with nbval")
    g.add_argument("--assignment", type=Path, required=True, help="the instructor notebook, notebooks/NN_name.ipynb")
    g.add_argument("--submissions", type=Path, required=True, help="folder with one <student>.ipynb per student")
    g.add_argument("--out", type=Path, required=True, help="folder for gradebook.csv and feedback/")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default 1)")
    g.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell (default 300)")
    g.add_argument("--timeout", type=float, default=1200, help="seconds per submission, all cells (default 1200)")
    g.add_argument("--memory", type=int, default=4096, help="address-space limit per submission in MiB (0 = none)")
    g.add_argument("--force", action="store_true", help="re-grade submissions that are already graded")
    g.add_argument("--seed", type=int, default=None, help="seed of the grader's cases (default: fresh per run)")
    g.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code WITHOUT the bubblewrap sandbox, with your rights (recorded per result)",
    )
    g.add_argument(
        "--forbid-reference",
        action="store_true",
        help="score 0 an exercise whose answer calls labkit's own reference implementation of it",
    )
    g.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: --jobs processes on this machine (default); dask: the workers of --scheduler",
    )
    g.add_argument("--scheduler", default=None, help="the Dask scheduler's address, tcp://HOST:8786 (--executor dask)")
    g.add_argument("--keep-temp", action="store_true", help="keep each submission's temporary folder (debugging)")
    g.set_defaults(fn=cmd_grade)
    return g


def cmd_grade(args) -> int:
    """Grade the folder: 0 when graded, 1 on failure (no sandbox, no cluster, an unwritable --out), 2 on bad usage."""
    from labkit.grading.executors import ExecutorUnavailable
    from labkit.grading.grade import GradeOptions, grade
    from labkit.grading.sandbox import SandboxUnavailable

    # usage errors exit 2 before anything is looked for on the machine (the sandbox, a cluster)
    if not args.assignment.is_file():
        args.parser.error(f"--assignment {args.assignment}: no such notebook")
    if not args.submissions.is_dir():
        args.parser.error(f"--submissions {args.submissions}: submissions must be a folder of .ipynb files")
    try:
        opts = GradeOptions(
            cell_timeout=args.cell_timeout,
            timeout=args.timeout,
            memory_mb=args.memory,
            sandbox=not args.no_sandbox,
            forbid_reference=args.forbid_reference,
        )
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))
    try:
        grade(
            args.assignment,
            args.submissions,
            args.out,
            jobs=args.jobs,
            options=opts,
            force=args.force,
            seed=args.seed,
            keep_temp=args.keep_temp,
            executor=args.executor,
            scheduler=args.scheduler,
        )
    except SandboxUnavailable as exc:
        print(f"grade: refusing to run student code without a sandbox: {exc}")
        return 1
    except ExecutorUnavailable as exc:  # no distributed installed, or the scheduler cannot be reached
        print(f"grade: {exc}")
        return 1
    except ValueError as exc:  # the arguments: --jobs, a submissions folder without notebooks, two names alike
        args.parser.error(str(exc))
    except OSError as exc:
        print(f"grade: {exc}")
        return 1
    return 0
