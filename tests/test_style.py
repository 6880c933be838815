"""The code is formatted and linted with ruff (settings in pyproject.toml)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    return str(exe) if exe.exists() else shutil.which("ruff")


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_clean(args):
    ruff = _ruff()
    assert ruff, "ruff is part of the dev extra; run `make setup`"
    result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _package_of(module: str) -> str:
    """``labkit.quant.gptq`` → ``labkit.quant``; a top-level module is its own package (``labkit.train``)."""
    return ".".join(module.split(".")[:2])


def private_imports(package_dir: Path) -> list:
    """Every ``from labkit.x import _y`` in the package where ``_y`` is private and ``x`` is another
    package or top-level module than the importer's: ``"importer:line imports _y from labkit.x"``.

    Relative imports are resolved; dunder names (``__version__``) are not private. Imports of private
    *modules* by dotted path (``import labkit.x._y``) are import-linter's ``private_modules`` contract.
    """
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not (source == "labkit" or source.startswith("labkit.")):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and _package_of(source) != _package_of(module):
                    found.append(f"{module}:{node.lineno} imports {alias.name} from {source}")
    return found


def test_no_private_name_imported_across_packages():
    """A private name (``_x``) is used only inside its own package (DESIGN: the ground floor)."""
    assert private_imports(ROOT / "labkit") == []


def test_private_import_scan_finds_one(tmp_path):
    """The scan above is not vacuous: it reports a relative and an absolute cross-package import."""
    pkg = tmp_path / "labkit"
    (pkg / "quant").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "quant" / "__init__.py").write_text("from ..nn import _atomic\nfrom .affine import _check_bits\n")
    (pkg / "train.py").write_text("from labkit.distill import _log_softmax_T, softmax\nfrom . import __version__\n")
    assert private_imports(pkg) == [
        "labkit.quant:1 imports _atomic from labkit.nn",
        "labkit.train:1 imports _log_softmax_T from labkit.distill",
    ]


def test_every_labkit_module_sits_in_a_layer():
    """A module missing from the layers contract would escape import-linter's check."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    package = ROOT / "labkit"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file() and not p.name.startswith("_")}
    assert modules - layered == set(), f"add these to [tool.importlinter] layers: {sorted(modules - layered)}"


def test_the_long_files_listed_first_exist():
    """conftest.LONG_FILES_FIRST orders `make test`; a renamed file would silently drop out of it."""
    from conftest import LONG_FILES_FIRST

    root = Path(__file__).resolve().parent.parent
    assert [p for p in LONG_FILES_FIRST if not (root / p).is_file()] == []


#: the functions of labkit longer than MAX_FUNCTION_LINES, and why each may be
LONG_FUNCTIONS = {
    "labkit/grading/_sandbox_site/sitecustomize.py:_install": (
        "runs first in the sandboxed kernel and imports nothing of labkit: the audit hook and its helpers for every "
        "event kind are one closure"
    ),
    "labkit/bench/cli.py:run": "the benchmark's script: a flat sequence of steps, each printed as it runs",
    "labkit/bench/cases.py:case_sparse": "one benchmark case: the rows of one table, measured in order",
    "labkit/baselines.py:train_language_model": (
        "the recipe's training call and the shipped file's metadata are two flat tables, one line per field"
    ),
}
MAX_FUNCTION_LINES = 60


def _code_lines(fn: ast.FunctionDef) -> int:
    """Lines of a function without its docstring (a numpydoc docstring is documentation, not code)."""
    body = fn.body
    has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    if has_doc and isinstance(body[0].value.value, str):
        return fn.end_lineno - fn.lineno + 1 - (body[0].end_lineno - body[0].lineno + 1)
    return fn.end_lineno - fn.lineno + 1


def test_no_function_is_over_60_lines_without_a_reason():
    long = {}
    for path in sorted((ROOT / "labkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(ROOT)}:{node.name}"] = _code_lines(node)
    unexplained = {k: n for k, n in long.items() if k not in LONG_FUNCTIONS}
    assert not unexplained, f"split these, or say in LONG_FUNCTIONS why they are long: {unexplained}"
    assert set(LONG_FUNCTIONS) <= set(long), f"no longer long: {sorted(set(LONG_FUNCTIONS) - set(long))}"
