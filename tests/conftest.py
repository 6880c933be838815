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


def load_script(path) -> object:
    """Import a file that is not in a package (``scripts/nbbuild.py``, ``tests/submissions/make_submissions.py``)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
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
