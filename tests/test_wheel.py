"""The installable kit: a wheel carries the embedded data and the pretrained models.

The slow test does what a JupyterHub admin does: build a wheel with ``python -m build``, install it
(not editable) into a fresh venv that does not see the repository, and use it from a folder outside
the repository: load the data (SHA-256 verified), load and evaluate a pretrained model, run
``python -m labkit data``, and release and grade lab 00's solution with the installed kit.

The fresh venv gets the kit's dependencies from the shared environment through one ``.pth`` line
naming the shared ``site-packages``. A ``.pth`` line adds a folder to ``sys.path`` without processing
the ``.pth`` files inside it, so the shared environment's editable install of the repository stays
out; the test checks that ``labkit`` is imported from the fresh venv.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import time
import venv
from fnmatch import fnmatch
from pathlib import Path

import pytest
from conftest import grading_sandbox_args, read_gradebook
from setuptools import find_packages

from labkit import data, models, train

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_pyproject_lists_every_labkit_package_and_the_data_packages():
    listed = set(SETUPTOOLS["packages"])
    found = set(find_packages(str(ROOT), include=["labkit", "labkit.*"]))
    assert listed == found | {"labkit._data", "labkit._data.pretrained"}
    assert SETUPTOOLS["package-dir"] == {"labkit._data": "data"}


def test_package_data_covers_every_shipped_data_file():
    globs = SETUPTOOLS["package-data"]
    shipped = sorted(p for p in (ROOT / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert shipped
    for path in shipped:
        rel = path.relative_to(ROOT / "data")
        pkg = ".".join(["labkit._data", *rel.parts[:-1]])
        assert any(fnmatch(rel.name, g) for g in globs.get(pkg, [])), f"data/{rel} would be left out of the wheel"


def _import_in_subprocess(env_extra: dict, code: str) -> str:
    env = {**os.environ, **env_extra}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_data_dir_override_and_user_full_dir(tmp_path):
    out = _import_in_subprocess(
        {"LABKIT_DATA_DIR": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")},
        "from labkit import data, models; print(data.DATA_DIR, models.PRETRAINED_DIR, data.USER_FULL_DIR, sep='\\n')",
    )
    assert out.splitlines() == [str(tmp_path), str(tmp_path / "pretrained"), str(tmp_path / "xdg/labkit/fashion-mnist")]


def test_checkout_uses_the_repository_data_folder():
    if os.environ.get("LABKIT_DATA_DIR"):
        pytest.skip("LABKIT_DATA_DIR is set")
    assert Path(data.DATA_DIR).resolve() == (ROOT / "data").resolve()
    assert Path(models.PRETRAINED_DIR).resolve() == (ROOT / "data" / "pretrained").resolve()


# --- the slow round trip ----------------------------------------------------------------------------------------

PROBE = """
import json, sys
import labkit
from labkit import data, models, train
d = data.load_fashion_mnist()  # verifies the SHA-256 of the embedded file
m = models.pretrained("lenet_300_100")
acc = train.evaluate(m, d.X_test, d.y_test)
print(json.dumps({"file": labkit.__file__, "data_dir": str(data.DATA_DIR), "n_train": len(d.y_train),
                  "n_test": len(d.y_test), "accuracy": acc, "sha": data.sha256_of(data.DATA_DIR / data.EMBEDDED_FILE),
                  "path": sys.path}))
"""


def _clean_env(**extra) -> dict:
    """The environment without anything that would point back into the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_DATA_DIR", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, wheel path, seconds per step): the wheel built from a copy of the repository's
    packaging inputs and installed with ``pip install --no-deps`` into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    src, dist, env_dir = base / "src", base / "dist", base / "venv"
    times = {}
    t0 = time.perf_counter()
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("labkit", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    wheels = list(dist.glob("labkit-*.whl"))
    assert len(wheels) == 1
    times["build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shared = [p for p in site.getsitepackages() if os.path.isdir(p)]
    (Path(purelib) / "labkit_test_shared_env.pth").write_text("\n".join(shared) + "\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            str(wheels[0]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    times["install"] = time.perf_counter() - t0
    return py, wheels[0], Path(purelib), times


@pytest.mark.slow
def test_wheel_carries_the_data_and_the_models(installed, tmp_path):
    py, wheel, purelib, times = installed
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [f"pretrained/{m}.npz" for m in models.PRETRAINED + models.PRETRAINED_LANGUAGE]
    for rel in ("fashion_mnist_subset.npz", "tinyshakespeare.txt", "README.md", *shipped):
        assert f"labkit/_data/{rel}" in names
    assert "labkit/grading/_sandbox_site/sitecustomize.py" in names
    assert not any(n.startswith(("data/", "tests/", "notebooks/")) for n in names)

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    r = subprocess.run([py, "-c", PROBE], cwd=cwd, capture_output=True, text=True, timeout=300, env=_clean_env())
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(purelib.resolve()), got["file"]
    assert not any(Path(p).resolve() == ROOT.resolve() for p in got["path"] if p)
    assert Path(got["data_dir"]).resolve() == (purelib / "labkit" / "_data").resolve()
    assert got["sha"] == data.EMBEDDED_SHA256
    assert (got["n_train"], got["n_test"]) == (18_000, 10_000)
    d = data.load_fashion_mnist()  # the same model and data evaluated by the checkout
    assert got["accuracy"] == train.evaluate(models.pretrained("lenet_300_100"), d.X_test, d.y_test)

    r = subprocess.run(
        [py, "-m", "labkit", "data"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(XDG_DATA_HOME=str(tmp_path / "xdg")),
    )
    assert r.returncode == 0, r.stderr
    assert f"embedded: {purelib / 'labkit' / '_data' / data.EMBEDDED_FILE} verified" in r.stdout
    if "full: not available" in r.stdout:  # the instructions name a user folder, never the installed package
        assert str(tmp_path / "xdg" / "labkit" / "fashion-mnist") in r.stdout
        assert f"into {purelib}" not in r.stdout
    print(f"wheel {wheel.stat().st_size} bytes; build {times['build']:.1f} s, install {times['install']:.1f} s")


@pytest.mark.slow
def test_installed_kit_releases_and_grades_lab00(installed, tmp_path):
    """An instructor with only the installed kit and the course's notebooks: release lab 00, grade its
    solution (full marks) and its untouched student notebook (0), in the sandbox when there is one."""
    py, _, purelib, _ = installed
    lab = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    shutil.copy2(lab, course / "notebooks" / lab.name)
    run = lambda *args: subprocess.run(
        [py, "-m", "labkit", *args],
        cwd=course,
        capture_output=True,
        text=True,  # noqa: E731
        timeout=900,
        env=_clean_env(),
    )
    t0 = time.perf_counter()
    r = run("release", "--notebooks", "notebooks", "--out", "release", "--no-execute")
    assert r.returncode == 0, r.stdout + r.stderr
    subs = course / "submissions"
    subs.mkdir()
    shutil.copy2(course / "release" / "solution" / lab.name, subs / "solution.ipynb")
    shutil.copy2(course / "release" / "student" / lab.name, subs / "untouched.ipynb")
    extra = grading_sandbox_args()
    r = run(
        "grade",
        "--assignment",
        f"notebooks/{lab.name}",
        "--submissions",
        "submissions",
        "--out",
        "grades",
        "--jobs",
        "1",
        *extra,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = read_gradebook(course / "grades")
    assert float(rows["solution"]["total"]) == float(rows["solution"]["max"]) > 0, rows["solution"]
    assert float(rows["untouched"]["total"]) == 0, rows["untouched"]
    print(f"release + grade of 2 lab-00 submissions with the installed kit {extra}: {time.perf_counter() - t0:.1f} s")
