"""Loaded by every Python process inside the grader's sandbox (it is first on ``PYTHONPATH`` there).

In every process except the nbval runner itself (marked by ``LABKIT_SANDBOX_RUNNER``, removed here so
that its children, the kernel and whatever the student starts, are audited), install an audit hook
(PEP 578) that appends one JSON line per *attempt* to ``$LABKIT_SANDBOX_AUDIT``:

* ``write``: a file opened for writing, created, removed, renamed or chmod-ed outside ``/box``;
* ``connect``: a socket connection (the sandbox has no network: it fails);
* ``process``: a new process (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``, ``fork``).

The hook only reports; the sandbox is what stops the attempt. Audit hooks cannot be removed.
"""

import os
import sys


def _install():
    if os.environ.pop("LABKIT_SANDBOX_RUNNER", None):
        # The nbval runner imports nbformat -> jsonschema, whose optional IRI format checker imports
        # rfc3987_syntax, which builds a parser at import time (about 3 s of CPU per submission).
        # nbformat never checks that format: keep the import from happening in the runner.
        sys.modules.setdefault("rfc3987_syntax", None)
        return
    path = os.environ.get("LABKIT_SANDBOX_AUDIT")
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    os.set_inheritable(fd, False)
    box = os.environ.get("LABKIT_SANDBOX_BOX", "/box").rstrip("/") + "/"
    harmless = {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/full", "/dev/zero"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    state = {"n": 0, "busy": False, "seen": set()}
    pid = os.getpid()

    def log(kind, what):
        key = (kind, what)
        if state["n"] >= 200 or key in state["seen"]:
            return
        state["seen"].add(key)
        state["n"] += 1
        what = what.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")[:300]
        try:
            os.write(fd, f'{{"kind": "{kind}", "what": "{what}", "pid": {pid}}}\n'.encode("utf-8", "replace"))
        except OSError:
            pass

    def outside(p):
        if isinstance(p, int) or p is None:
            return None
        try:
            p = os.fsdecode(p)
            full = os.path.normpath(os.path.join(os.getcwd(), p)) if not p.startswith("/") else os.path.normpath(p)
        except Exception:  # noqa: BLE001 - a path we cannot read is reported as given
            return str(p)
        if full + "/" == box or full.startswith(box) or full in harmless or full.startswith("/dev/shm/"):
            return None
        if full.startswith("/proc/self/fd/") or full.startswith(f"/proc/{pid}/fd/"):
            return None
        return full

    def hook(event, args):
        if state["busy"]:
            return
        state["busy"] = True
        try:
            if event == "open":
                path, mode, flags = (tuple(args) + (None, None, None))[:3]
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & write_flags
                )
                where = outside(path) if writing else None
                if where:
                    log("write", where)
            elif event in (
                "os.remove",
                "os.rmdir",
                "os.mkdir",
                "os.chmod",
                "os.chown",
                "os.truncate",
                "os.symlink",
                "os.link",
                "os.utime",
                "shutil.rmtree",
            ):
                where = outside(args[0]) if args else None
                if event in ("os.symlink", "os.link") and len(args) > 1:
                    where = outside(args[1])
                if where:
                    log("write", f"{event.split('.')[-1]} {where}")
            elif event in ("os.rename", "os.replace"):
                where = outside(args[1]) if len(args) > 1 else None
                if where:
                    log("write", f"rename to {where}")
            elif event == "socket.connect":
                log("connect", repr(args[1]) if len(args) > 1 else "?")
            elif event in (
                "subprocess.Popen",
                "os.system",
                "os.exec",
                "os.posix_spawn",
                "os.spawn",
                "os.fork",
                "os.forkpty",
                "pty.spawn",
            ):
                what = args[1] if event == "subprocess.Popen" and len(args) > 1 else (args[0] if args else "")
                if isinstance(what, (list, tuple)):
                    what = " ".join(os.fsdecode(a) if isinstance(a, (str, bytes)) else repr(a) for a in what)
                log("process", f"{event}: {what}" if what else event)
        except Exception:  # noqa: BLE001, S110 - an audit hook must never break the student's code
            pass
        finally:
            state["busy"] = False

    sys.addaudithook(hook)


_install()
del _install
