"""Every ``>>>`` example in labkit's docstrings runs and prints what it shows (the package's doctests).

One test per module that has examples; a module is imported as the kit imports it. The sandbox's
``sitecustomize`` (it installs audit hooks when imported) and ``labkit.__main__`` are left out.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import labkit

SKIP = ("labkit.__main__", "labkit.grading._sandbox_site")


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(labkit.__path__, "labkit.")]
    return ["labkit", *(n for n in names if not n.startswith(SKIP))]


def _examples(name: str) -> list:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]


MODULES = _modules()


def test_the_package_has_examples():
    assert sum(len(t.examples) for name in MODULES for t in _examples(name)) >= 50


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
