"""Shared test helpers.

Optional pieces (the full data set, PyTorch, a browser, the grader's bubblewrap sandbox) are skipped
with a visible reason on a user's machine, but CI sets LABKIT_REQUIRE_FULL_DATA / LABKIT_REQUIRE_TORCH /
LABKIT_REQUIRE_ONNX / LABKIT_REQUIRE_BROWSER / LABKIT_REQUIRE_SANDBOX so that a missing piece fails
instead of being skipped. Without bubblewrap the grading tests still grade, with ``--no-sandbox``
(:func:`grading_sandbox_args`): the session's header and a warning per test say so, and the tests of
the sandbox itself skip. ``LABKIT_BWRAP=/nonexistent`` and ``LABKIT_BROWSER_EXECUTABLE=/nonexistent``
show on a machine that has both what a machine without them runs.
"""

import csv
import functools
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

# The files that take minutes, longest first (seconds on 2 cores in a full `make test`, 2026-12-01).
# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder, so files are handed out in
# collection order: starting these first means no worker sits idle at the end while the other
# finishes a long file (the committed batch mostly waits on timeouts, so it overlaps well).
LONG_FILES_FIRST = (
    "tests/test_grading_batch.py",  # 378
    "tests/test_nbgrader.py",  # the nbgrader round trip of one lab
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


def grade_command(assignment, subs, out, *extra) -> list:
    """The ``python -m labkit grade`` command line for a folder of submissions, plus ``extra`` options.

    Without a sandbox here (and outside CI) it grades with ``--no-sandbox`` (:func:`grading_sandbox_args`).
    """
    cmd = [sys.executable, "-m", "labkit", "grade", "--assignment", str(assignment), "--submissions", str(subs)]
    return [*cmd, "--out", str(out), *extra, *grading_sandbox_args()]


def grade_cli(assignment, subs, out, *extra, timeout=1800) -> str:
    """Run :func:`grade_command`; assert it succeeded; return its output."""
    root = Path(__file__).resolve().parent.parent
    cmd = grade_command(assignment, subs, out, *extra)
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


class GradedWithoutSandbox(UserWarning):
    """A grading test ran student code with ``--no-sandbox`` because bubblewrap cannot start here."""


@functools.cache
def sandbox_problem() -> str:
    """Why the grader's bubblewrap sandbox cannot start here (``""`` when it can); one probe per process."""
    from labkit.grading import sandbox

    try:
        sandbox.check_available()
    except sandbox.SandboxUnavailable as exc:
        return str(exc)
    return ""


def require_sandbox():
    """Skip a test of the sandbox itself when bubblewrap cannot start here (fail under LABKIT_REQUIRE_SANDBOX)."""
    why = sandbox_problem()
    if why:
        skip_or_fail("LABKIT_REQUIRE_SANDBOX", f"no grader sandbox here (package 'bubblewrap'): {why}")


@pytest.fixture
def sandbox_required():
    """For the tests of the sandbox itself: skip (naming the package) without it, fail under LABKIT_REQUIRE_SANDBOX."""
    require_sandbox()


def grading_sandbox_args() -> list:
    """The grader's sandbox options for a grading test: none when bubblewrap works here, else ``--no-sandbox``.

    The grading logic is the same either way, so these tests still grade without bubblewrap; they say
    so with a :class:`GradedWithoutSandbox` warning (listed in pytest's warnings summary), and fail
    instead when ``LABKIT_REQUIRE_SANDBOX`` is set (CI).
    """
    why = sandbox_problem()
    if not why:
        return []
    if os.environ.get("LABKIT_REQUIRE_SANDBOX"):
        pytest.fail(f"no grader sandbox here: {why} (and LABKIT_REQUIRE_SANDBOX is set, so it may not be skipped)")
    warnings.warn(
        GradedWithoutSandbox(f"graded with --no-sandbox (install the package 'bubblewrap'): {why}"), stacklevel=2
    )
    return ["--no-sandbox"]


def sandboxed() -> bool:
    """True when the grading tests run the grader in its sandbox (see :func:`grading_sandbox_args`)."""
    return not sandbox_problem()


def clean_status() -> str:
    """A cleanly graded submission's gradebook status: ``"ok"``, or ``"no sandbox"`` without bubblewrap."""
    return "ok" if sandboxed() else "no sandbox"


def pytest_report_header(config):
    """The optional pieces this run found, at the top of the output: what is graded how, which BLAS runs."""
    why = sandbox_problem()
    lines = [
        "labkit grader sandbox: "
        + (
            "bubblewrap works"
            if not why
            else f"NONE: grading tests grade with --no-sandbox, sandbox tests skip ({why})"
        )
    ]
    try:
        from blas_kernel import describe  # tests/blas_kernel.py

        lines.append("labkit BLAS: " + describe())
    except Exception as exc:  # noqa: BLE001 - a header must never stop the run
        lines.append(f"labkit BLAS: unknown ({exc})")
    return lines


# Debian's Chromium (apt-get install chromium); LABKIT_BROWSER_EXECUTABLE points elsewhere (another
# distribution's path, or a missing one to see the skip).
CHROMIUM = Path(os.environ.get("LABKIT_BROWSER_EXECUTABLE", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps dialling Google's services, which a
# closed network refuses (and which no test should depend on).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, or a skip naming the package (a failure under LABKIT_REQUIRE_BROWSER)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(
            "LABKIT_REQUIRE_BROWSER",
            f"browser tests need Chromium at {CHROMIUM} (Debian/Ubuntu: apt-get install chromium)",
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("LABKIT_REQUIRE_BROWSER", "browser tests need the playwright package (dev extra)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path):
    """One headless Chromium per test process, shared by tests/browser/ and the accessibility audit.

    Playwright's synchronous API keeps its event loop running in this thread while it is open, and
    refuses a second one there: every test that needs a browser takes this one.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def require_torch():
    try:
        import torch
    except ImportError:
        skip_or_fail("LABKIT_REQUIRE_TORCH", "PyTorch is not installed (extra 'peers')")
    return torch


@pytest.fixture(scope="session")
def released_labs(tmp_path_factory):
    """``(folder, names)``: one release (not executed) of every lab in notebooks/, shared by the tests that
    read it (tests/test_release.py, test_grading.py, test_grading_labs.py); none of them writes into it."""
    from labkit.grading.release import release

    out = tmp_path_factory.mktemp("released_labs")
    names = release(Path(__file__).resolve().parent.parent / "notebooks", out, execute=False, log=lambda *a: None)
    return out, names


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
