"""Shared test helpers.

Optional pieces (the full data set, PyTorch, a browser) are skipped with a visible reason on a
user's machine, but CI sets LABKIT_REQUIRE_FULL_DATA / LABKIT_REQUIRE_TORCH / LABKIT_REQUIRE_ONNX /
LABKIT_REQUIRE_BROWSER so that a missing piece fails instead of being skipped silently.
"""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The files that take minutes, longest first (seconds on 2 cores in a full `make test`, 2026-12-01).
# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder, so files are handed out in
# collection order: starting these first means no worker sits idle at the end while the other
# finishes a long file (the committed batch mostly waits on timeouts, so it overlaps well).
LONG_FILES_FIRST = (
    "tests/test_grading_batch.py",  # 378
    "tests/test_nbgrader.py",  # 257 (two labs; one since)
    "tests/browser/test_every_lab.py",  # 271
    "tests/test_grading_dask.py",  # 217
    "tests/test_grading_labs.py",  # 194
    "tests/test_accessibility.py",  # 122
    "notebooks/09_compression_without_retraining.ipynb",  # 95
    "tests/test_grading_sandbox.py",  # 81
    "notebooks/02_structured_pruning.ipynb",  # 81
    "notebooks/05_knowledge_distillation.ipynb",  # 77
    "tests/test_student_loop.py",  # 74
    "tests/browser/test_student_session.py",  # 71
    "notebooks/04_ptq_qat_integer.ipynb",  # 62
    "notebooks/06_deep_compression.ipynb",  # 57
    "tests/browser/test_student_loop.py",  # 56
    "tests/test_wheel.py",  # 42
    "notebooks/01_magnitude_pruning.ipynb",  # 35
)


def pytest_collection_modifyitems(config, items):
    """Collect the long files first (a stable sort: the order inside a file, which nbval needs, is kept)."""
    rank = {path: i for i, path in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def load_script(path) -> object:
    """Import a file that is not in a package (``scripts/nbbuild.py``, ``tests/submissions/make_submissions.py``)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (and pickling) look their module up by name
    spec.loader.exec_module(module)
    return module


def grade_cli(assignment, subs, out, *extra, timeout=1800) -> str:
    """Run ``python -m labkit grade`` on a folder of submissions; assert it succeeded; return its output."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(assignment), "--submissions", str(subs),
           "--out", str(out), *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def read_gradebook(out) -> dict:
    """``out/gradebook.csv`` as {student: row}."""
    with open(Path(out) / "gradebook.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def graded_labs() -> list:
    """The lab notebooks in notebooks/ that have at least one check cell (the ones the grader grades)."""
    import nbformat

    from labkit.grading import notebook as nbmod

    def has_checks(path):
        try:
            return any(nbmod.is_check(c) for c in nbformat.read(path, as_version=4).cells)
        except Exception:  # noqa: BLE001 - a notebook being written right now: its own tests report it
            return False

    return [p for p in nbmod.lab_notebooks(Path(__file__).resolve().parent.parent / "notebooks") if has_checks(p)]


def skip_or_fail(requirement: str, reason: str):
    """Skip with ``reason``, or fail if the environment variable ``requirement`` is set (CI)."""
    if os.environ.get(requirement):
        pytest.fail(f"{reason} (and {requirement} is set, so this may not be skipped)")
    pytest.skip(reason)


def require_torch():
    try:
        import torch
    except ImportError:
        skip_or_fail("LABKIT_REQUIRE_TORCH", "PyTorch is not installed (extra 'peers')")
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def fashion():
    from labkit.data import load_fashion_mnist

    return load_fashion_mnist()


@pytest.fixture(scope="session")
def digits():
    from labkit.data import load_digits

    return load_digits()
