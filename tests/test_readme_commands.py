"""The README's path without make: its commands are the ones this test runs.

The commands are read from the README's section "Without make" (one ``sh`` block for Linux and macOS,
one ``powershell`` block for Windows), so the test fails when the README drifts. The fast tests check
that the two blocks say the same thing line for line and that the test command is the one
``make test`` runs. The slow test runs the Linux lines in a fresh virtual environment:

* ``python3 -m venv .venv`` (into a temporary folder: the repository's own ``.venv`` is not touched),
  ``source .venv/bin/activate`` and ``python -m pip install -e ".[dev]"``, verbatim. So that the
  install does not download and unpack a gigabyte of wheels on every run, one ``.pth`` line in the
  fresh venv names this environment's ``site-packages`` (a ``.pth`` line adds the folder to
  ``sys.path``, not the ``.pth`` files inside it): pip then finds every dependency already satisfied,
  which checks that the installed versions meet ``pyproject.toml``, and installs only the kit itself,
  editable, into the fresh venv;
* ``jupyter lab notebooks/`` with the README's ``JUPYTER_CONFIG_PATH``, until the server answers
  with the labs and the kit's page settings (nbgrader's extension disabled), then shut down. The
  dependencies' console scripts live in this environment, not the fresh one, so the line runs as
  ``python -m jupyterlab notebooks/`` (what ``jupyter lab`` runs), plus a free port and a token;
* the README's pytest line with ``--collect-only``: its options exist and it collects the tests
  and every lab's cells (running them is what ``make test`` itself does).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def section_blocks(text: str, heading: str = "## Without make") -> dict[str, list[str]]:
    """``{language: [lines]}`` of the fenced code blocks in the README section starting with ``heading``."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end >= 0 else len(text)]
    return {lang: body.strip().splitlines() for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S)}


BLOCKS = section_blocks(README.read_text(encoding="utf-8"))


def test_readme_gives_the_same_steps_for_linux_macos_and_windows():
    unix, windows = BLOCKS["sh"], BLOCKS["powershell"]
    assert len(unix) == len(windows) == 6, (unix, windows)
    assert unix[0] == "python3 -m venv .venv" and windows[0] == "py -m venv .venv"
    assert unix[1] == "source .venv/bin/activate" and windows[1] == r".venv\Scripts\Activate.ps1"
    assert unix[3] == 'export JUPYTER_CONFIG_PATH="$PWD/etc/jupyter"'
    assert windows[3] == r'$env:JUPYTER_CONFIG_PATH = "$PWD\etc\jupyter"'
    for i in (2, 4, 5):  # the install, JupyterLab and the tests: word for word the same
        assert unix[i] == windows[i]
    assert unix[2] == 'python -m pip install -e ".[dev]"'
    assert unix[4] == "jupyter lab notebooks/"


def test_readme_test_command_is_what_make_test_runs():
    """Every argument of the README's pytest line is in the Makefile's test recipe (which adds workers)."""
    readme = shlex.split(BLOCKS["sh"][5])
    assert readme[:3] == ["python", "-m", "pytest"]
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ntest: ") :].split("\n\n")[0].replace("\\\n", " ")
    make_args = shlex.split(recipe[recipe.index("-m pytest") :])
    assert set(readme[3:]) <= set(make_args), set(readme[3:]) - set(make_args)
    assert {"tests/", "notebooks/", "--nbval"} <= set(readme)


def _localize(line: str, venv: Path) -> str:
    """A README line with ``.venv`` in a temporary folder and ``python3`` the interpreter running the tests."""
    words = []
    for word in shlex.split(line):
        if word == "python3":
            word = sys.executable
        elif word == ".venv" or word.startswith(".venv/"):
            word = str(venv) + word[len(".venv") :]
        words.append(shlex.quote(word))
    return " ".join(words)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, token: str, path: str) -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def _api(port: int, token: str, path: str):
    return json.loads(_get(port, token, path) or b"null")


def _page_config(html: str) -> dict:
    """The ``jupyter-config-data`` JSON that JupyterLab's page carries."""
    m = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, html[:2000]
    return json.loads(m.group(1))


@pytest.mark.slow
def test_linux_commands_install_and_run_in_a_fresh_venv(tmp_path):
    venv_line, activate, install, config, lab, tests = BLOCKS["sh"]
    venv = tmp_path / "venv"
    shared = [p for p in site.getsitepackages() if os.path.isdir(p)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_CONFIG_PATH")}
    env.update(
        PYTHONNOUSERSITE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    # the README's lines, .venv being a temporary folder; python3 is the interpreter running this test
    script = "\n".join(
        [
            "set -euo pipefail",
            _localize(venv_line, venv),
            # the test's one addition: this environment's packages, so that nothing is downloaded (see above)
            f"{venv}/bin/python -c \"import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], "
            f"'labkit_test_shared_env.pth').write_text({chr(10).join(shared)!r})\"",
            _localize(activate, venv),
            install,
            config,
            'python -c "import json, os, sys, labkit; print(json.dumps([sys.prefix, labkit.__file__, '
            "os.environ['JUPYTER_CONFIG_PATH']]))\"",
        ]
    )
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    prefix, kit, config_path = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(prefix) == venv  # the activated python is the fresh venv's
    assert Path(kit) == ROOT / "labkit" / "__init__.py"  # the kit, editable, from this checkout
    assert Path(config_path) == ROOT / "etc" / "jupyter"
    assert "Successfully installed" in r.stdout and "labkit" in r.stdout.split("Successfully installed")[-1]
    py = venv / "bin" / "python"
    run_env = {
        **env,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        "JUPYTER_CONFIG_PATH": config_path,
    }

    # jupyter lab notebooks/ : the labs are served with the kit's settings
    port, token = _free_port(), secrets.token_hex(16)
    argv = shlex.split(lab)
    assert argv[:2] == ["jupyter", "lab"]
    cmd = [
        str(py),
        "-m",
        "jupyterlab",
        *argv[2:],
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=run_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, contents = time.monotonic() + 180, None
        while contents is None and time.monotonic() < deadline and server.poll() is None:
            try:
                contents = _api(port, token, "/api/contents/")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        log.seek(0)
        assert contents is not None, log.read()[-4000:]
        names = {c["name"] for c in contents["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} <= names
        assert "python3" in _api(port, token, "/api/kernelspecs")["kernelspecs"]
        page = _page_config(_get(port, token, "/lab").decode())
        assert "@jupyter/nbgrader" in page["disabledExtensions"], page.get("disabledExtensions")  # etc/jupyter
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    # the README's test line collects every test and every lab's cells
    argv = shlex.split(tests)
    r = subprocess.run(
        [str(py), *argv[1:], "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    collected = r.stdout.splitlines()
    for lab_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert any(line.startswith(f"notebooks/{lab_path.name}::") for line in collected), lab_path.name
    assert any(line.startswith("tests/test_readme_commands.py::") for line in collected)
