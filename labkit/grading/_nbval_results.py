"""A pytest plugin the grader loads next to nbval: one JSON line per notebook cell, as it finishes.

Writing each result when it happens (not at the end) means a submission killed by the overall
timeout still keeps the results of the cells that ran before. Loaded with
``-p labkit.grading._nbval_results`` and told where to write by ``--labkit-results PATH``.

It also watches the kernel process: if the kernel exits on its own (``os._exit``, a segfault, the
memory killer) the running cell is recorded as "kernel died" and the session is ended at once,
instead of waiting for the per-cell timeout on a kernel that will never answer.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

MAX_TEXT = 2000
_state = {"cell": None, "stopping": False, "watcher": None, "path": None}


def _append(path, line: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def pytest_configure(config):
    _state["path"] = config.getoption("labkit_results", None)
    try:
        from nbval.kernel import RunningKernel
    except ImportError:
        return
    original = RunningKernel.stop

    def stop(self, *args, **kwargs):  # nbval stops the kernel itself after a timeout: not a death
        _state["stopping"] = True
        return original(self, *args, **kwargs)

    RunningKernel.stop = stop


def _watch(parent):
    while True:
        time.sleep(0.2)
        kernel = getattr(parent, "kernel", None)
        provisioner = getattr(getattr(kernel, "km", None), "provisioner", None)
        proc = getattr(provisioner, "process", None)
        if kernel is None or proc is None or _state["stopping"]:
            if _state["stopping"]:
                return
            continue
        code = proc.poll()
        if code is None:
            continue
        cell = _state["cell"]
        if cell is not None and _state["path"]:
            _append(
                _state["path"],
                {
                    "cell": cell,
                    "outcome": "failed",
                    "xfail": False,
                    "kernel_died": code,
                    "output": "",
                    "seconds": 0,
                    "message": f"Kernel died while running this cell (exit code {code})",
                },
            )
        os.kill(os.getpid(), signal.SIGINT)  # ends the session: no later cell can run without a kernel
        return


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if getattr(item, "cell_num", None) is None:
        return
    _state["cell"] = item.cell_num
    if _state["watcher"] is None:
        _state["watcher"] = threading.Thread(target=_watch, args=(item.parent,), daemon=True)
        _state["watcher"].start()


def pytest_addoption(parser):
    parser.addoption("--labkit-results", default=None, help="append one JSON line per cell result here")


def _text(outputs) -> str:
    parts = []
    for o in outputs or []:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}\n")
        elif "data" in o:
            parts.append(str(o["data"].get("text/plain", "")))
    return "".join(parts)[:MAX_TEXT]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    path = item.config.getoption("labkit_results")
    report = outcome.get_result()
    if not path or report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    cell_num = getattr(item, "cell_num", None)
    if cell_num is None:
        return
    message = ""
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        message = f"{getattr(exc, 'args', [''])[0] if getattr(exc, 'args', None) else type(exc).__name__}"
    line = {
        "cell": int(cell_num),
        "outcome": report.outcome,  # passed / failed / skipped
        "xfail": bool(getattr(report, "wasxfail", "")),
        "message": str(message)[:MAX_TEXT],
        "output": _text(getattr(item, "test_outputs", None)),
        "seconds": round(float(call.duration), 3),
    }
    if _state["cell"] == cell_num:
        _state["cell"] = None
    _append(path, line)
