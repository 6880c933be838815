"""Cells tagged ``skip-grading``: the grader does not run them, and no graded cell depends on them.

The grader runs each lab's instructor notebook up to its last check cell, with the student's answer
cells in it. Long experiments (training runs, sweeps, timings) that sit between exercises, to keep
the lecture's order, are tagged ``skip-grading`` in the instructor's notebook; the grader tags them
``nbval-skip`` and does not run them. That is only sound if no cell the grader does run reads what
a skipped cell computed. This file proves it for every lab by a static analysis (``ast``) of the
cells up to the last check:

1. no graded cell (answer, check, or any other cell the grader runs) reads a name that only skipped
   cells bind (function bodies included);
2. walking the cells in order, no graded statement reads a name that the last skipped cell before
   it bound *or may have changed in place* (assigned an item or attribute of, called a method of,
   or passed to a call other than the read-only calls listed in :data:`READ_ONLY`), unless a graded
   statement bound that name again in between.
"""

from __future__ import annotations

import ast
import builtins
import copy
from pathlib import Path

import nbformat
import pytest

from labkit.grading import notebook as nbmod

ROOT = Path(__file__).resolve().parent.parent
LABS = [p for p in nbmod.lab_notebooks(ROOT / "notebooks")]

# Calls that read their arguments and change nothing the notebook holds: builtins, numpy, the plotting
# and measuring helpers, and evaluating a model. Anything else passed a name may change it in place.
READ_ONLY_ROOTS = {"np", "plt", "plot", "metrics", "math", "stats", "tqdm"}
READ_ONLY = {"train.evaluate", "models.pretrained"} | set(dir(builtins))
READ_ONLY_METHODS = {
    "items",
    "keys",
    "values",
    "get",
    "copy",
    "astype",
    "reshape",
    "tolist",
    "index",
    "count",
    "format",
    "join",
    "weight_layers",
}
CHANGES_FIRST_ONLY = {"train.fit"}  # trains its first argument (the model) and only reads the data


def _tree(source: str) -> ast.Module:
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _stores(node) -> set[str]:
    """Names stored anywhere in ``node`` (the names a function body or a comprehension makes local)."""
    out = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in n.names)
    return out


def _loads(node) -> set[str]:
    """The free names ``node`` reads: function bodies included, their parameters and locals not."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None}
        outer = set().union(*(_loads(d) for d in [*a.defaults, *a.kw_defaults] if d is not None))
        if not isinstance(node, ast.Lambda):
            outer |= set().union(*(_loads(d) for d in node.decorator_list))
        body = node.body if isinstance(node.body, list) else [node.body]
        local = params | set().union(*(_stores(b) for b in body))
        return outer | (set().union(*(_loads(b) for b in body)) - local)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        targets = set().union(*(_stores(g.target) for g in node.generators))
        inner = set().union(*(_loads(c) for c in ast.iter_child_nodes(node)))
        return _loads(node.generators[0].iter) | (inner - targets)
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    return set().union(*(_loads(c) for c in ast.iter_child_nodes(node)))


def _bound(node) -> set[str]:
    """Names a statement binds in the notebook's global scope (not inside functions or comprehensions)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return set()
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, (ast.Store, ast.Del)) else set()
    return set().union(*(_bound(c) for c in ast.iter_child_nodes(node)))


def _dotted(n) -> str:
    parts = []
    while isinstance(n, ast.Attribute):
        parts.append(n.attr)
        n = n.value
    if isinstance(n, ast.Name):
        parts.append(n.id)
        return ".".join(reversed(parts))
    return ""


def _base(n) -> str | None:
    while isinstance(n, (ast.Attribute, ast.Subscript, ast.Starred)):
        n = n.value
    return n.id if isinstance(n, ast.Name) else None


def _changed(node, modules: set[str]) -> set[str]:
    """Names a statement may change in place: item/attribute targets, method receivers, call arguments."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                        out.add(_base(sub))
            if isinstance(n, ast.AugAssign):
                out.add(_base(n.target))
        if isinstance(n, ast.Call):
            name = _dotted(n.func)
            root = name.split(".")[0] if name else ""
            if name in READ_ONLY or root in READ_ONLY_ROOTS:
                continue
            if isinstance(n.func, ast.Attribute) and n.func.attr not in READ_ONLY_METHODS:
                out.add(_base(n.func.value))  # obj.method(...) may change obj
            args = [*n.args, *(k.value for k in n.keywords)]
            if name in CHANGES_FIRST_ONLY:
                args = args[:1]
            for a in args:
                out.add(_base(a))
    return {x for x in out if x and x not in modules}


def _graded_reads(stmt, tainted: dict, report) -> None:
    """Walk a graded statement in execution order: report reads of tainted names, untaint what it binds."""

    def check(node):
        for name in sorted(_loads(node) & tainted.keys()) if node is not None else ():
            report(name, tainted[name])

    def unbind(node):
        for name in _bound(node):
            tainted.pop(name, None)

    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        check(stmt.value)
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            if not isinstance(t, ast.Name) or isinstance(stmt, ast.AugAssign):
                check(ast.Expression(body=t) if not isinstance(t, ast.Name) else ast.Name(id=t.id, ctx=ast.Load()))
            unbind(t)
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        check(stmt.iter)
        unbind(stmt.target)
        for s in [*stmt.body, *stmt.orelse]:
            _graded_reads(s, tainted, report)
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        for item in stmt.items:
            check(item.context_expr)
            if item.optional_vars is not None:
                unbind(item.optional_vars)
        for s in stmt.body:
            _graded_reads(s, tainted, report)
    elif isinstance(stmt, (ast.If, ast.While)):
        check(stmt.test)
        for s in [*stmt.body, *stmt.orelse]:
            _graded_reads(s, tainted, report)
    else:  # def, class, import, expression, ...: everything it reads, then what it binds
        check(stmt)
        unbind(stmt)


def dependencies_on_skipped(nb) -> list[str]:
    """What the graded cells of ``nb`` (cut after its last check cell) read from skipped cells; [] if none."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    last = max((i for i, c in enumerate(cells) if nbmod.is_check(c)), default=-1)
    cells = cells[: last + 1]
    trees = [_tree(c.source) for c in cells]
    modules = set()
    for t in trees:
        for n in ast.walk(t):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                modules.update((a.asname or a.name).split(".")[0] for a in n.names)
    skipped = [nbmod.is_skipped(c) for c in cells]
    bound_kept = set().union(*(_bound(t) for t, s in zip(trees, skipped) if not s))
    bound_skip = set().union(*(_bound(t) for t, s in zip(trees, skipped) if s))
    only_skipped = bound_skip - bound_kept
    problems = []
    tainted: dict[str, int] = {}  # name -> code cell index of the skipped cell that bound or changed it
    for i, (cell, tree, skip) in enumerate(zip(cells, trees, skipped)):
        if skip:
            for name in _bound(tree) | _changed(tree, modules):
                tainted[name] = i
            continue
        first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        for name in sorted(_loads(tree) & only_skipped):
            problems.append(f"code cell {i} ({first!r}) reads {name!r}, bound only in skipped cells")

        def report(name, j, i=i, first=first):
            problems.append(f"code cell {i} ({first!r}) reads {name!r}, bound or changed by skipped code cell {j}")

        for stmt in tree.body:
            _graded_reads(stmt, tainted, report)
    return problems


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_no_graded_cell_depends_on_a_skipped_cell(lab):
    nb = nbformat.read(lab, as_version=4)
    assert dependencies_on_skipped(nb) == []
    asg = nbmod.load_assignment(lab, require_pass_lines=False, allow_empty=True)
    for cell in asg.nb.cells:  # the grader runs none of them
        if nbmod.is_skipped(cell):
            assert "nbval-skip" in cell.metadata["tags"]


def _nb(*cells):
    """A notebook from ``(source, kind)`` pairs; kind: "", "skip", "answer", "check"."""
    nb = nbformat.v4.new_notebook()
    for source, kind in cells:
        c = nbformat.v4.new_code_cell(source)
        if kind == "skip":
            c.metadata["tags"] = [nbmod.SKIP_TAG]
        elif kind == "answer":
            c.metadata["nbgrader"] = {"grade_id": "f", "solution": True, "grade": False}
        elif kind == "check":
            c.metadata["nbgrader"] = {"grade_id": "check_f", "grade": True, "solution": False, "points": 1}
            c.metadata["labkit"] = {"answer": "f"}
            c.metadata["tags"] = ["check", "nbval-check-output"]
        nb.cells.append(c)
    return nb


@pytest.mark.parametrize(
    "cells, culprit",
    [
        # a check reads a result only a skipped cell computes
        (
            [
                ("import numpy as np\nx = np.ones(3)", ""),
                ("y = x * 2", "skip"),
                ("def f(a):\n    return a", "answer"),
                ("print(f(y))", "check"),
            ],
            "'y', bound only in skipped",
        ),
        # a graded cell's function reads a global only a skipped cell binds
        (
            [
                ("def g():\n    return z", ""),
                ("z = 1", "skip"),
                ("def f(a):\n    return a", "answer"),
                ("print(f(g()))", "check"),
            ],
            "'z', bound only in skipped",
        ),
        # a skipped cell trains (changes in place) a model a later check uses
        (
            [
                ("m = make()", ""),
                ("fit(m, data)", "skip"),
                ("def f(a):\n    return a", "answer"),
                ("print(f(m))", "check"),
            ],
            "'m', bound or changed by skipped code cell 1",
        ),
        # a skipped cell rebinds a name a check reads
        (
            [("x = 1", ""), ("x = 2", "skip"), ("def f(a):\n    return a", "answer"), ("print(f(x))", "check")],
            "'x', bound or changed by skipped code cell 1",
        ),
        # a skipped cell changes an item of a dict a check reads
        (
            [("d = {}", ""), ("d['k'] = 1", "skip"), ("def f(a):\n    return a", "answer"), ("print(f(d))", "check")],
            "'d', bound or changed by skipped code cell 1",
        ),
    ],
)
def test_analysis_finds_dependencies_on_skipped_cells(cells, culprit):
    problems = dependencies_on_skipped(_nb(*cells))
    assert any(culprit in p for p in problems), problems


def test_analysis_allows_independent_skipped_cells():
    nb = _nb(
        ("import numpy as np\nx = np.ones(3)", ""),
        ("y = np.sum(x)\nprint(len(x), y)", "skip"),  # reads x with read-only calls
        ("x = np.zeros(2)", "skip"),
        ("x = np.ones(3)", ""),  # bound again before the check reads it
        ("def f(a):\n    return a", "answer"),
        ("print(f(x))", "check"),
        ("print(y)", ""),  # after the last check: not graded
    )
    assert dependencies_on_skipped(nb) == []


def test_skip_tags_come_from_the_instructor_and_never_cover_answers_or_checks(tmp_path):
    src = nbformat.read(LABS[0], as_version=4)
    asg = nbmod.load_assignment(LABS[0])
    # a student tagging an answer cell (or anything) skip-grading changes nothing the grader runs
    sub = copy.deepcopy(src)
    for cell in sub.cells:
        if cell.cell_type == "code":
            cell.metadata.setdefault("tags", []).append(nbmod.SKIP_TAG)
    got = nbmod.graded_notebook(asg, sub).nb
    assert [nbmod.is_skipped(c) for c in got.cells] == [nbmod.is_skipped(c) for c in asg.nb.cells]
    # an instructor notebook that tags a check cell is refused
    bad = copy.deepcopy(src)
    check = next(c for c in bad.cells if nbmod.is_check(c))
    check.metadata["tags"].append(nbmod.SKIP_TAG)
    with pytest.raises(ValueError, match="skip-grading"):
        nbmod.load_assignment(tmp_path / LABS[0].name, nb=bad)


def test_skipped_cells_keep_their_place_and_get_nbval_skip(tmp_path):
    answer = "def accuracy(y_true, y_pred):\n    ### BEGIN SOLUTION\n    return 1.0\n    ### END SOLUTION"
    nb = _nb(("x = 1", ""), ("y = 2", "skip"), (answer, "answer"), ("lab00.accuracy(accuracy)", "check"))
    nb.cells[0].source = "from labkit.check import lab00"
    nb.cells[2].metadata["nbgrader"]["grade_id"] = "accuracy"
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "check_accuracy"
    nb.cells[3].metadata["labkit"]["answer"] = "accuracy"
    asg = nbmod.load_assignment(tmp_path / "00_x.ipynb", nb=nb, require_pass_lines=False)
    assert len(asg.nb.cells) == 4 and asg.checks[0].code_index == 3  # nbval's "Cell 3": numbers unchanged
    assert asg.nb.cells[1].metadata["tags"] == [nbmod.SKIP_TAG, "nbval-skip"]
    assert "nbval-skip" not in asg.nb.cells[0].metadata.get("tags", [])
    assert nb.cells[1].metadata["tags"] == [nbmod.SKIP_TAG]  # the instructor's notebook itself is unchanged


def test_jupytext_source_tags_reach_the_built_cells():
    from conftest import load_script

    nbbuild = load_script(ROOT / "scripts" / "nbbuild.py")
    text = (
        '# %% tags=["nbval-ignore-output", "skip-grading"]\nx = 1\n\n# %% tags=["skip-grading"]\ny = 2\n\n# %%\nz = 3\n'
    )
    cells = nbbuild.reads_source(text).cells
    assert [c.metadata.get("tags", []) for c in cells] == [
        ["nbval-ignore-output", nbmod.SKIP_TAG],
        [nbmod.SKIP_TAG],
        [],
    ]
