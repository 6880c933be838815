"""Shared test helpers.

Optional pieces (the full data set, PyTorch, a browser) are skipped with a visible reason on a
user's machine, but CI sets LABKIT_REQUIRE_FULL_DATA / LABKIT_REQUIRE_TORCH / LABKIT_REQUIRE_ONNX /
LABKIT_REQUIRE_BROWSER so that a missing piece fails instead of being skipped silently.
"""

import importlib.util
import os
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
