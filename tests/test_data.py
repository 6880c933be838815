"""labkit.data: the embedded subset, hashes, the IDX reader, the full set, digits."""

import gzip
import hashlib

import numpy as np
import pytest
from conftest import skip_or_fail

from labkit import data


def test_embedded_shapes_dtypes_and_balance(fashion):
    assert fashion.X_train.shape == (18000, 784) and fashion.X_test.shape == (10000, 784)
    assert fashion.X_val.shape == (2000, 784) and fashion.y_val.dtype == np.int64
    assert fashion.X_train.dtype == np.float32 and fashion.y_train.dtype == np.int64
    assert 0.0 <= fashion.X_train.min() and fashion.X_train.max() <= 1.0
    assert np.bincount(fashion.y_train).tolist() == [1800] * 10
    assert np.bincount(fashion.y_val).tolist() == [200] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.class_names[0] == "T-shirt/top" and len(fashion.class_names) == 10


def test_embedded_file_hash_and_size():
    path = data.DATA_DIR / data.EMBEDDED_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == data.EMBEDDED_SHA256
    assert path.stat().st_size <= 15 * 2**20


def test_image_layout():
    d = data.load_fashion_mnist(flatten=False)
    assert d.X_train.shape == (18000, 1, 28, 28) and d.X_val.shape == (2000, 1, 28, 28)


def _embedded_raw():
    with np.load(data.DATA_DIR / data.EMBEDDED_FILE) as z:
        return z["X_train"].reshape(20000, -1), z["y_train"]


def test_validation_split_is_fixed_disjoint_and_complete(fashion):
    """Train and validation partition the 20,000 embedded training images; the split never moves."""
    X, y = _embedded_raw()
    both = np.concatenate([fashion.X_train, fashion.X_val])
    # every stored image lands in exactly one split (compare as bytes: images are unique rows)
    keys = {row.tobytes() for row in (both * 255).round().astype(np.uint8)}
    assert len(keys) == len({row.tobytes() for row in X}) and len(both) == 20000
    assert keys == {row.tobytes() for row in X}
    # the same split as the documented recipe, and as a second load
    _, _, X_val, y_val = data.train_val_split(X, y, data.VAL_FRACTION, data.VAL_SEED)
    np.testing.assert_array_equal((fashion.X_val * 255).round().astype(np.uint8), X_val)
    np.testing.assert_array_equal(fashion.y_val, y_val)
    again = data.load_fashion_mnist()
    np.testing.assert_array_equal(again.X_val, fashion.X_val)
    # pinned: a hash of the validation images (a moved split is a new course)
    assert hashlib.sha256(X_val.tobytes()).hexdigest()[:16] == VAL_IMAGES_SHA256_PREFIX


#: first 16 hex digits of SHA-256 of the embedded validation images (uint8, in order), data/README.md
VAL_IMAGES_SHA256_PREFIX = "34a448728d94691d"


def test_subset_keeps_three_splits(fashion):
    small = fashion.subset(100, 50, 20)
    assert (len(small.X_train), len(small.X_val), len(small.X_test)) == (100, 20, 50)
    assert "val (2000, 784)" in repr(fashion)


def test_corrupted_embedded_file_names_file_and_hash(tmp_path, monkeypatch):
    src = (data.DATA_DIR / data.EMBEDDED_FILE).read_bytes()
    (tmp_path / data.EMBEDDED_FILE).write_bytes(src[: len(src) // 3])
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match=rf"{data.EMBEDDED_FILE}.*expected {data.EMBEDDED_SHA256}"):
        data.load_fashion_mnist()


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_reader_roundtrip_and_hash(tmp_path, rng):
    arr = rng.integers(0, 256, (5, 3, 2), dtype=np.uint8)
    _write_idx(tmp_path / "x.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz"), arr)
    digest = data.sha256_of(tmp_path / "x.gz")
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz", digest), arr)
    with pytest.raises(ValueError, match=r"x.gz has SHA-256 .* expected 00"):
        data.read_idx(tmp_path / "x.gz", "00" * 32)


def test_idx_reader_truncated(tmp_path, rng):
    arr = rng.integers(0, 256, (50, 4), dtype=np.uint8)
    _write_idx(tmp_path / "x.gz", arr)
    raw = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(raw[: len(raw) - 10])
    with pytest.raises(ValueError, match="cut.gz"):
        data.read_idx(tmp_path / "cut.gz")
    header = bytes([0, 0, 8, 2]) + (50).to_bytes(4, "big") + (4).to_bytes(4, "big")
    (tmp_path / "short").write_bytes(header + b"\x00" * 10)
    with pytest.raises(ValueError, match="holds 10 bytes of data, expected 200"):
        data.read_idx(tmp_path / "short")


def test_full_set_missing_names_three_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "nope")
    monkeypatch.setattr(data, "USER_FULL_DIR", tmp_path / "user")
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(
        FileNotFoundError,
        match=r"LABKIT_DATA(.|\n)*apt-get install dataset-fashion-mnist(.|\n)*download(.|\n)*into " + str(tmp_path),
    ):
        data.load_fashion_mnist("full")


def test_full_set_verified_and_subset_matches_it(fashion):
    if not all((data.DEBIAN_DIR / f"{s}.gz").exists() for s in data.IDX_SHA256):
        skip_or_fail("LABKIT_REQUIRE_FULL_DATA", f"full Fashion-MNIST not installed in {data.DEBIAN_DIR}")
    full = data.load_fashion_mnist("full")
    assert full.X_train.shape == (54000, 784) and full.X_test.shape == (10000, 784)
    assert full.X_val.shape == (6000, 784) and np.bincount(full.y_val).tolist() == [600] * 10
    np.testing.assert_array_equal(full.X_test, fashion.X_test)
    # the embedded subset = the first 2,000 images of each class, in the original order
    arrays = data.read_fashion_mnist_idx(data.DEBIAN_DIR)
    X60, y60 = arrays["train-images-idx3-ubyte"].reshape(60000, -1), arrays["train-labels-idx1-ubyte"]
    keep = np.sort(np.concatenate([np.flatnonzero(y60 == c)[:2000] for c in range(10)]))
    X, y = _embedded_raw()
    np.testing.assert_array_equal(X60[keep], X)
    np.testing.assert_array_equal(y60[keep], y)


def test_unknown_subset():
    with pytest.raises(ValueError, match="'embedded' or 'full'"):
        data.load_fashion_mnist("medium")


def test_digits_split(digits):
    assert digits.X_train.shape[1] == 64 and len(digits.X_train) + len(digits.X_test) == 1797
    assert digits.X_train.max() <= 1.0 and digits.X_train.dtype == np.float32
    again = data.load_digits()
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    assert abs(len(digits.X_test) / 1797 - 0.25) < 0.01


def test_train_val_split_is_seeded_stratified_and_disjoint(fashion):
    a = data.train_val_split(fashion.X_train[:100], fashion.y_train[:100], 0.2, seed=1)
    b = data.train_val_split(fashion.X_train[:100], fashion.y_train[:100], 0.2, seed=1)
    assert len(a[2]) + len(a[0]) == 100
    np.testing.assert_array_equal(a[3], b[3])
    counts = np.bincount(fashion.y_train[:100], minlength=10)
    assert np.bincount(a[3], minlength=10).tolist() == [round(0.2 * c) for c in counts]
    assert not {r.tobytes() for r in a[0]} & {r.tobytes() for r in a[2]}
    with pytest.raises(ValueError, match="same length"):
        data.train_val_split(fashion.X_train[:10], fashion.y_train[:9])
