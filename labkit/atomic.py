"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The bytes go to a temporary file in the target's folder (same file system, so the final rename
is atomic), are flushed and ``fsync``-ed, and the temporary file then replaces the target with
``os.replace``. If writing fails or is interrupted (an exception, ``KeyboardInterrupt``), the
temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_bytes", "write_text", "write_with"]


def write_with(path, write) -> Path:
    """Create or replace the file ``path`` with what ``write(f)`` writes to a binary file object ``f``.

    ``write`` may be a library's writer (``np.savez_compressed(f, ...)``). Missing parent folders
    are created. The new file gets ordinary permissions (``0o666`` minus the umask). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path, data: bytes) -> Path:
    """Create or replace the file ``path`` with ``data``, atomically. Returns ``path``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return write_with(path, lambda f: f.write(data))


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Create or replace the file ``path`` with ``text`` (encoded), atomically. Returns ``path``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return write_bytes(path, text.encode(encoding))
