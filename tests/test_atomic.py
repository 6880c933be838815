"""labkit.atomic: a write replaces the file whole or leaves the old one, never half of either."""

import os

import numpy as np
import pytest

from labkit import atomic


def test_write_bytes_and_text(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    assert atomic.write_bytes(p, b"\x00\x01") == p and p.read_bytes() == b"\x00\x01"
    atomic.write_text(p, "é\n")
    assert p.read_text(encoding="utf-8") == "é\n"
    assert [q.name for q in p.parent.iterdir()] == ["f.bin"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # ordinary permissions, not mkstemp's 0600


def test_wrong_types(tmp_path):
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        atomic.write_bytes(tmp_path / "f", "text")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        atomic.write_text(tmp_path / "f", b"bytes")


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_the_old_file(tmp_path, exc):
    p = tmp_path / "model.npz"
    p.write_bytes(b"old contents")

    def write(f):
        f.write(b"half of the new")
        raise exc("interrupted")

    with pytest.raises(exc):
        atomic.write_with(p, write)
    assert p.read_bytes() == b"old contents"
    assert [q.name for q in tmp_path.iterdir()] == ["model.npz"]


def test_write_with_a_library_writer(tmp_path):
    p = tmp_path / "a.npz"
    atomic.write_with(p, lambda f: np.savez_compressed(f, w=np.arange(3)))
    assert np.load(p)["w"].tolist() == [0, 1, 2]
