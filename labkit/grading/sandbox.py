"""The sandbox around a student's kernel: bubblewrap (``bwrap``), the tool Flatpak uses.

The grader runs nbval *and* the kernel it starts inside one ``bwrap`` per submission, so nothing the
student's code does can reach past it:

* the root filesystem is an empty tmpfs; only what a notebook needs is mounted, **read-only**: the
  system's ``/usr`` (and the ``/bin``, ``/lib*`` links), a few files of ``/etc``, the Python
  installation and its environment, the ``labkit`` package folder and the kit's data folder. The
  instructor's repository around the package (notebooks, release, grades, other submissions), the
  grader's home and its output folder are simply not there;
* the one writable place is ``/box``, a size-capped tmpfs holding the notebook, plus the three
  result files the grader reads (nbval's cell results, the recorded outputs, the audit log) bound
  one by one from the submission's private folder, each capped by ``RLIMIT_FSIZE``;
* ``/tmp`` is a fresh, size-capped tmpfs; ``$HOME`` is ``/box/home``;
* its own network namespace (loopback only, nothing listening), pid, IPC and UTS namespaces;
  ``--die-with-parent`` and ``--new-session``; when the last process of the sandbox's pid
  namespace exits, the kernel kills whatever it left behind;
* when the grader runs as root, the sandbox runs as uid/gid 65534 (nobody) in its own user
  namespace, without capabilities, and cannot create further user namespaces.

``sitecustomize.py`` in ``_sandbox_site/`` installs an audit hook (:pep:`578`) in the kernel and in
every Python process the student's code starts: writes outside ``/box``, network connections and
new processes are appended to the audit log, so the gradebook can say what was *attempted* (the
sandbox is what stops it; the log only reports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["SandboxUnavailable", "BOX", "bwrap_path", "check_available", "command", "INSTALL_HINT"]

BOX = "/box"  # the sandbox's working folder (a tmpfs)
GRADER_DIR = BOX + "/.grader"  # where the result files are bound
SITE_DIR = Path(__file__).resolve().parent / "_sandbox_site"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt install bubblewrap`; Fedora: `sudo dnf install bubblewrap`), "
    "or grade inside a container (docs/instructors.md), or pass --no-sandbox to run student code with the "
    "grader's own rights (recorded in the gradebook)"
)
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "fonts",
    "localtime",
    "nsswitch.conf",
    "hosts",
    "ssl",
    "ca-certificates",
    "alternatives",
    "mime.types",
    "matplotlibrc",
)
_PROBE_CACHE: dict = {}


class SandboxUnavailable(RuntimeError):
    """No sandbox can be set up here: ``bwrap`` is missing or cannot create namespaces."""


def bwrap_path() -> str | None:
    """The ``bwrap`` executable on PATH (or ``$LABKIT_BWRAP``), None when there is none."""
    return os.environ.get("LABKIT_BWRAP") or shutil.which("bwrap")


def _python_paths() -> list[str]:
    """Folders the interpreter, its standard library and its packages live in (read-only binds)."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix}
    for exe in (sys.executable, os.path.realpath(sys.executable)):
        paths.add(os.path.dirname(exe))
    for p in sys.path:  # package folders only: never the current folder or a PYTHONPATH entry (a course folder?)
        if p and os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages") and os.path.isdir(p):
            paths.add(os.path.realpath(p))
    return sorted(p for p in paths if p and os.path.isdir(p))


def kit_paths() -> list[str]:
    """The ``labkit`` package folder and its data folder (read-only binds; nothing else of the repo)."""
    import labkit
    from labkit import data

    out = [str(Path(labkit.__file__).resolve().parent)]
    if Path(data.DATA_DIR).is_dir():
        out.append(str(Path(data.DATA_DIR).resolve()))
    return out


def _covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _ro_binds() -> list[str]:
    """``--ro-bind`` arguments, skipping any folder that contains the kit (the repository of an editable
    install: a venv inside the repository is bound by itself, never the repository)."""
    kits = kit_paths()
    checkouts = [k for k in kits if not ({"site-packages", "dist-packages"} & set(Path(k).parts))]
    args: list[str] = []
    for p in _python_paths():
        if any(_covers(p, k) and p != k for k in checkouts):
            continue  # a folder around the repository of an editable install: its package folder only
        args += ["--ro-bind", p, p]
    for k in kits:
        args += ["--ro-bind", k, k]
    return args


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/" + name)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    for name in ETC_FILES:
        p = Path("/etc") / name
        if p.exists():
            args += ["--ro-bind", str(p), str(p)]
    return args


def command(
    inner: list[str],
    files: dict[str, Path],
    env: dict[str, str],
    box_mb: int = 512,
    tmp_mb: int = 64,
    ro_files: dict[str, Path] | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``inner`` in the sandbox.

    Parameters
    ----------
    inner : list of str
        The command to run inside (its paths as seen inside: ``/box/...``).
    files : dict
        ``{name: host path}``: files bound *writable* at ``/box/.grader/<name>`` (created if absent).
    env : dict
        The whole environment inside (nothing else is inherited).
    box_mb, tmp_mb : int
        Size caps of the ``/box`` and ``/tmp`` tmpfs, in MiB.
    ro_files : dict, optional
        ``{path inside: host path}`` bound read-only (the notebook, pytest.ini, a passwd file).
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv"]
    if os.geteuid() == 0:
        args += ["--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    if _supports("--disable-userns"):
        args += ["--disable-userns"]
    args += ["--tmpfs", "/", "--proc", "/proc", "--dev", "/dev"]
    # The fresh /tmp comes before the read-only binds: a Python environment or a kit installed under /tmp
    # (a CI runner's venv) is then bound on top of it instead of being hidden by it.
    args += ["--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
    args += _system_binds() + _ro_binds()
    args += ["--ro-bind", str(SITE_DIR), "/labkit-sandbox-site"]
    args += ["--size", str(box_mb * 2**20), "--tmpfs", BOX]
    args += ["--dir", BOX + "/home", "--dir", BOX + "/tmp", "--dir", GRADER_DIR]
    for name, host in files.items():
        Path(host).touch()
        args += ["--bind", str(host), f"{GRADER_DIR}/{name}"]
    for inside, host in (ro_files or {}).items():
        args += ["--ro-bind", str(host), inside]
    for k, v in env.items():
        args += ["--setenv", k, v]
    args += ["--remount-ro", "/", "--chdir", BOX, "--"]
    return args + list(inner)


def _supports(option: str) -> bool:
    key = ("help", bwrap_path())
    if key not in _PROBE_CACHE:
        try:
            _PROBE_CACHE[key] = subprocess.run([key[1], "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            _PROBE_CACHE[key] = ""
    return option in _PROBE_CACHE[key]


def check_available() -> None:
    """Raise :class:`SandboxUnavailable` (saying what is missing and how to install it) unless a sandbox
    with every namespace can be started here: runs ``python -c`` inside one, with loopback only."""
    key = ("probe", bwrap_path(), os.geteuid())
    if key in _PROBE_CACHE:
        if _PROBE_CACHE[key]:
            raise SandboxUnavailable(_PROBE_CACHE[key])
        return
    msg = ""
    if key[1] is None:
        msg = f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    else:
        probe = "import socket, os; s = socket.socket(); print(os.getuid(), s.connect_ex(('1.1.1.1', 53)) != 0)"
        cmd = command([sys.executable, "-S", "-c", probe], {}, {"PATH": "/usr/bin:/bin"})
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            ok = r.returncode == 0 and r.stdout.split()[-1:] == ["True"]
            if ok and os.geteuid() == 0 and r.stdout.split()[0] != "65534":
                ok = False
            if not ok:
                msg = (
                    f"bubblewrap is installed ({key[1]}) but cannot start a sandbox here "
                    f"(exit {r.returncode}: {(r.stderr or r.stdout).strip()[:300]}); user namespaces may be "
                    f"disabled (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces, AppArmor, "
                    f"or a container without them): {INSTALL_HINT}"
                )
        except (OSError, subprocess.SubprocessError) as exc:
            msg = f"bubblewrap ({key[1]}) could not be run ({exc}): {INSTALL_HINT}"
    _PROBE_CACHE[key] = msg
    if msg:
        raise SandboxUnavailable(msg)
