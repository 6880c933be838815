"""Sound method in every lab: choices on the validation split, the test split touched once.

A lab may read the test split (``X_test``, ``y_test``, ``subset(n_test=...)``) only in a code cell
tagged ``test-once`` whose first line is a ``# Test, once`` comment, so a reader sees where it
happens. This file proves, by a static analysis (``ast``) of every lab notebook, that

1. no other cell names the test split (so no ``evaluate``/``fit(eval_data=...)`` on test happens
   before, or outside, a marked cell);
2. a ``test-once`` cell neither monitors training on the test split (``eval_data=``) nor scans
   sensitivity on it (``sensitivity_scan``): those are choices;
3. what a ``test-once`` cell computes flows only into later ``test-once`` cells — no later choice
   can read a test result;
4. the library itself reads the test split nowhere but where it reports the shipped baselines.

The last tests show the analysis catching each violation on small wrong notebooks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from labkit.grading import notebook as nbmod

ROOT = Path(__file__).resolve().parent.parent
LABS = list(nbmod.lab_notebooks(ROOT / "notebooks"))
TEST_NAMES = {"X_test", "y_test"}
TAG = "test-once"
MARKER = "# Test, once"
# Library modules allowed to read the test split: the loader that makes it, and the baseline
# recipes, which report the shipped files' test accuracy once, after training.
LIBRARY_READERS = {"labkit/data.py", "labkit/baselines.py"}


def _tree(source: str) -> ast.Module:
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _names_test_split(node) -> bool:
    """Does ``node`` name the test split: ``X_test``/``y_test`` as a name or attribute, or ``n_test=``?"""
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in TEST_NAMES:
            return True
        if isinstance(n, ast.Attribute) and n.attr in TEST_NAMES:
            return True
        if isinstance(n, ast.keyword) and n.arg == "n_test":
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "subset":
            if len(n.args) >= 2:  # subset(n_train, n_test, ...)
                return True
    return False


def _bound(tree) -> set[str]:
    """Names a cell binds at its top level or in loops (assignments, for targets, defs, with-as)."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
    return out


def _read(tree) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def violations(nb) -> list[str]:
    """Every breach of the rules above in one notebook, as readable lines (empty when sound)."""
    found = []
    tainted: set[str] = set()  # names whose value came from a test-once cell
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = _tree(cell.source)
        once = TAG in cell.metadata.get("tags", [])
        first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
        where = f"cell {i} ({first[:60]!r})"
        if once:
            if not first.startswith(MARKER):
                found.append(f"{where}: a test-once cell must start with the comment {MARKER!r}")
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                if _call_name(call) == "sensitivity_scan":
                    found.append(f"{where}: sensitivity_scan in a test-once cell (scan on validation)")
                for kw in call.keywords:
                    if kw.arg == "eval_data":
                        found.append(f"{where}: fit(eval_data=...) in a test-once cell (monitor validation)")
            tainted |= _bound(tree)
            continue
        if _names_test_split(tree):
            found.append(f"{where}: reads the test split outside a cell tagged {TAG!r}")
        # A name this cell binds itself (anywhere in it) is its own; any other tainted read is a leak.
        leaks = (_read(tree) - _bound(tree)) & tainted
        if leaks:
            found.append(f"{where}: reads {sorted(leaks)}, computed in a test-once cell, outside one")
        tainted -= _bound(tree)
    return found


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem[:2])
def test_lab_touches_the_test_split_only_in_test_once_cells(lab):
    nb = nbformat.read(lab, as_version=4)
    assert violations(nb) == []


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem[:2])
def test_test_once_cells_are_announced_in_the_text(lab):
    """Each test-once cell follows a markdown cell that says the choices are fixed before it."""
    nb = nbformat.read(lab, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and TAG in cell.metadata.get("tags", []):
            before = [c for c in nb.cells[:i] if c.cell_type == "markdown"]
            assert before and "test" in before[-1].source.lower(), f"cell {i} of {lab.name}"


def test_the_library_reads_the_test_split_only_to_report_baselines():
    readers = set()
    for path in sorted((ROOT / "labkit").rglob("*.py")):
        if _names_test_split(ast.parse(path.read_text())):
            readers.add(path.relative_to(ROOT).as_posix())
    assert readers <= LIBRARY_READERS, readers - LIBRARY_READERS


# --- the analysis catches each violation ------------------------------------------------------------


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for src, tags in cells:
        if src.startswith("md:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(src[3:]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(src, metadata={"tags": list(tags)}))
    return nb


LOAD = ("data = load_fashion_mnist()\nmodel = models.pretrained('lenet_300_100')", ())
ONCE = "# Test, once: the choices above are fixed\n"


@pytest.mark.parametrize(
    "cells, culprit",
    [
        # monitoring training on test (lab 00 before this rule)
        ([LOAD, ("train.fit(model, data, eval_data=(data.X_test, data.y_test))", ())], "outside a cell"),
        # an alias made in an ordinary cell, used later
        (
            [LOAD, ("test = (data.X_test, data.y_test)", ()), (ONCE + "train.evaluate(model, *test)", [TAG])],
            "outside a cell",
        ),
        # choosing on a test result: the best learning rate read after the test-once cell
        (
            [
                LOAD,
                (ONCE + "accs = {lr: train.evaluate(m[lr], data.X_test, data.y_test) for lr in lrs}", [TAG]),
                ("best_lr = max(accs, key=accs.get)", ()),
            ],
            "computed in a test-once cell",
        ),
        # a sensitivity scan on test, even inside a marked cell
        (
            [LOAD, (ONCE + "scan = prune.sensitivity_scan(model, data.X_test, data.y_test, [0.5])", [TAG])],
            "sensitivity_scan",
        ),
        # per-epoch test monitoring inside a marked cell
        ([LOAD, (ONCE + "train.fit(model, data, eval_data=(data.X_test, data.y_test))", [TAG])], "eval_data"),
        # a tagged cell without its marker line
        ([LOAD, ("acc = train.evaluate(model, data.X_test, data.y_test)", [TAG])], "must start"),
        # the test split reached through subset(n_train, n_test)
        ([LOAD, ("small = data.subset(1000, 500)", ())], "outside a cell"),
    ],
)
def test_analysis_catches_each_violation(cells, culprit):
    found = violations(_nb(*cells))
    assert found and any(culprit in line for line in found), found


def test_analysis_allows_sound_use():
    nb = _nb(
        LOAD,
        ("accs = {lr: train.evaluate(m[lr], data.X_val, data.y_val) for lr in lrs}", ()),
        ("best = max(accs, key=accs.get)", ()),
        ("md:Everything is chosen; now the test set, once.", ()),
        (ONCE + "test_acc = train.evaluate(m[best], data.X_test, data.y_test)", [TAG]),
        (ONCE + "print(f'{test_acc:.3f}')", [TAG]),
        ("for test_acc in [1, 2]:\n    print(test_acc)", ()),  # rebinding a name is not a leak
    )
    assert violations(nb) == []
