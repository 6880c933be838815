"""Hiding the student's output while a check runs their function.

A check cell must print exactly one line (what nbval and the grader compare), so whatever the
student's code prints while it is being checked (``print``, warnings, progress bars, rich displays,
writes straight to file descriptors 1 and 2) is swallowed by :func:`quiet`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet():
    """Swallow everything the student's code prints while it runs: ``print``, warnings, progress
    bars (text or widget), rich displays, and writes straight to file descriptors 1 and 2.

    ``KeyboardInterrupt`` and every exception still propagate; the streams are restored first.
    """
    sink = io.StringIO()
    saved_fds = []
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    except OSError:
        pass  # no file descriptors to redirect (embedded interpreters); Python-level redirection still works
    display_pub = _display_publisher()
    saved_attrs = {}
    try:
        if display_pub is not None:
            for name in ("publish", "clear_output"):
                saved_attrs[name] = display_pub.__dict__.get(name, _MISSING)
                setattr(display_pub, name, lambda *a, **k: None)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield sink
    finally:
        for name, attr in saved_attrs.items():
            if attr is _MISSING:
                display_pub.__dict__.pop(name, None)
            else:
                setattr(display_pub, name, attr)
        for fd, saved in saved_fds:
            with contextlib.suppress(OSError):
                os.dup2(saved, fd)
                os.close(saved)


_MISSING = object()


def _display_publisher():
    """IPython's display publisher (rich output, widgets) when running in a kernel, else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return getattr(shell, "display_pub", None)
