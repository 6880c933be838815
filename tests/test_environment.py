"""environment.yml (conda/Binder) and pyproject.toml must list the same packages."""

import re
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {_name(s) for s in pyproject["project"]["dependencies"]}
    wanted |= {_name(s) for s in pyproject["project"]["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    conda |= {_name(s) for s in (pip[0] if pip else []) if not s.startswith("-")}  # pip-only packages
    # environment.yml may also list a peer (the optional PyTorch), never a package pyproject lacks
    peers = {_name(s) for s in pyproject["project"]["optional-dependencies"]["peers"]}
    extra, missing = conda - peers - wanted, wanted - conda
    assert conda - peers == wanted, f"only in environment.yml: {extra}; only in pyproject: {missing}"


def test_lab10_packages_are_ordinary_dependencies_and_torch_stays_optional():
    """Every student gets lab 10's onnx and onnxruntime and the FP8/FP4 reference ml_dtypes; PyTorch is a peer."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(s) for s in pyproject["project"]["dependencies"]}
    assert {"onnx", "onnxruntime", "ml-dtypes"} <= runtime
    peers = {_name(s) for s in pyproject["project"]["optional-dependencies"]["peers"]}
    assert "torch" not in runtime and "torch" in peers


def test_environment_yml_installs_the_kit_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections and "-e ." in pip_sections[0]


def test_python_floor_matches():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    floor = pyproject["project"]["requires-python"].lstrip(">=")
    assert f"python>={floor}" in env["dependencies"]
