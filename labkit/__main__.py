"""Command line: ``python -m labkit {data,bench,release,grade,gradebook}``.

``data``       verify the data; ``--train-baselines`` retrains the shipped models
``bench``      time labkit's kernels against numpy, scipy and PyTorch
``release``    write student and solution notebooks for every lab
``grade``      grade a folder of submitted notebooks
``gradebook``  merge the per-lab gradebooks into one course table (plain, Canvas or Moodle CSV)

Exit status: 0 on success, 1 on failure, 2 on bad usage (wrong options, or arguments found unusable
after parsing: a missing folder, a bad weights file).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Every subcommand lives in one module that exposes ``add_parser(sub)``: it adds and returns its
# parser, whose default ``fn`` is called with the parsed arguments and returns the exit status. A
# usage error found after parsing goes through ``args.parser.error(message)``, argparse's own way
# (usage line, message, exit status 2); ``args.parser`` is the subcommand's parser.
COMMANDS = {
    "data": "labkit.baselines",
    "bench": "labkit.bench.cli",
    "release": "labkit.grading.release",
    "grade": "labkit.grading.cli",
    "gradebook": "labkit.grading.course",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m labkit`` parser with every subcommand of :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        p = importlib.import_module(module).add_parser(sub)
        p.set_defaults(parser=p)
    return parser


def main(argv=None) -> int:
    """Run ``python -m labkit`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.fn(args)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
