"""A throw-away JupyterLab server and a headless Chromium for the browser tests.

The server runs the kit's own Jupyter settings (``etc/jupyter``: no news pop-up, no update check,
no announcements) on a free loopback port with a random token, in a temporary root folder into
which each test copies the notebooks it opens. It runs in its own process group; at the end of the
session the server and every kernel it started are stopped by PID and process group, also when a
test failed.

Chromium is Debian's ``/usr/bin/chromium``; no browser is ever downloaded. Without it the tests are
skipped with a visible reason, or fail when ``LABKIT_REQUIRE_BROWSER`` is set (CI). The browser itself
(fixtures ``chromium_path`` and ``browser``) is tests/conftest.py's, shared with the accessibility audit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = REPO / "build" / "screenshots"
JUPYTER_CONFIG = REPO / "etc" / "jupyter"
SERVER_START_TIMEOUT = 120  # seconds; JupyterLab starts in 3-10 s on an idle laptop
# Settings of this test run only, on top of the kit's etc/jupyter/overrides.json: attach every cell
# to the page so that the whole notebook can be inspected and photographed at once.
TEST_SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}


def lab_notebooks() -> list[Path]:
    """The instructor notebooks ``notebooks/NN_name.ipynb`` present now, in lab order."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_user_settings(settings_dir: Path, overrides: dict) -> None:
    """Write ``{"pkg:plugin": {...}}`` as JupyterLab user settings files under ``settings_dir``."""
    for plugin_id, values in overrides.items():
        package, plugin = plugin_id.split(":", 1)
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


@dataclass
class LabServer:
    """A running ``jupyter lab``: its process, URL, token, root folder and log file."""

    process: subprocess.Popen
    port: int
    token: str
    root: Path
    log: Path
    started: float = field(default_factory=time.perf_counter)
    pages: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The JupyterLab URL that opens ``path`` (relative to the root folder) in a new workspace.

        A workspace of its own per page: JupyterLab would otherwise reopen the notebooks of the
        previous test next to this one.
        """
        self.pages += 1
        return f"{self.base_url}/lab/workspaces/test{self.pages}/tree/{path}?token={self.token}"

    def get(self, path: str, method: str = "GET", timeout: float = 10) -> bytes:
        """The body of the server's answer to ``method path`` (authenticated with the token)."""
        req = urllib.request.Request(
            f"{self.base_url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        """The JSON answer of the REST API at ``path``."""
        body = self.get(path, method, timeout)
        return json.loads(body) if body else None

    def add(self, source: Path, name: str | None = None) -> str:
        """Copy ``source`` into the root folder (as ``name``); returns its path relative to the root."""
        target = self.root / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target.relative_to(self.root).as_posix()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def _wait_ready(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("/api/status", timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer /api/status in {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")


def _stop(server: LabServer) -> list[str]:
    """Stop the server and every process it started (kernels run in their own sessions).

    Returns the descriptions of processes that survived (empty when all is clean).
    """
    import psutil  # a dependency of ipykernel

    try:
        procs = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        procs = []
    own_group = os.getpgid(0)
    # Politely first: the server shuts its kernels down and exits.
    if server.process.poll() is None:
        try:
            server.api("/api/shutdown", method="POST", timeout=5)
            server.process.wait(timeout=15)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    # Then by PID and process group, whatever is left.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in procs if p.is_running()]
        groups = {server.process.pid}
        for p in alive:
            try:
                groups.add(os.getpgid(p.pid))
            except ProcessLookupError:
                pass
        for g in groups - {own_group}:
            try:
                os.killpg(g, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for p in alive:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        if server.process.poll() is None:
            try:
                server.process.send_signal(sig)
            except ProcessLookupError:
                pass
        psutil.wait_procs(alive, timeout=5)
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    survivors = [f"{p.pid} {p.name()}" for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if server.process.poll() is None:
        survivors.append(f"{server.process.pid} jupyter lab")
    return survivors


@pytest.fixture(scope="session")
def lab_server(chromium_path, tmp_path_factory) -> LabServer:
    """A JupyterLab server with the kit's settings, stopped with all its kernels at the end."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, settings, workspaces, runtime = (base / d for d in ("root", "settings", "workspaces", "runtime"))
    for d in (root, settings, workspaces, runtime):
        d.mkdir()
    # The kit's overrides (news and update check off) as this server's user settings, so that they
    # hold even if `make setup` has not copied them into the venv, plus this run's own settings.
    write_user_settings(settings, json.loads((JUPYTER_CONFIG / "overrides.json").read_text()))
    write_user_settings(settings, TEST_SETTINGS)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_PATH=str(JUPYTER_CONFIG),  # page_config.json and jupyter_server_config.json
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
        JUPYTER_RUNTIME_DIR=str(runtime),
        PYTHONUNBUFFERED="1",
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port, token = _free_port(), secrets.token_hex(24)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    log = base / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabServer(proc, port, token, root, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        survivors = _stop(server)
        if survivors:
            raise RuntimeError(f"processes of the test's JupyterLab survived teardown: {survivors}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that the page fixture knows if the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page (1280 × 900) per test; a screenshot of it if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in request.node.name)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            try:
                pg.screenshot(path=str(SCREENSHOTS / f"FAILED_{name}.png"))
            except Exception as exc:  # noqa: BLE001 - a dead page must not hide the test's own failure
                print(f"no screenshot of the failed page: {exc}")
        context.close()
