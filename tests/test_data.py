"""labkit.data: the embedded subset, hashes, the IDX reader, the full set, digits, Tiny Shakespeare and its windows."""

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


# --- Tiny Shakespeare ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shakespeare():
    return data.load_tiny_shakespeare()


def test_tiny_shakespeare_split_is_contiguous_90_5_5(shakespeare):
    text = (data.DATA_DIR / data.SHAKESPEARE_FILE).read_text(encoding="ascii")
    assert len(text) == 1_115_394
    d = shakespeare
    assert (d.train.size, d.val.size, d.test.size) == (1_003_854, 55_769, 55_771)
    assert d.train.dtype == d.val.dtype == d.test.dtype == np.int64
    # the three pieces, in order, are the whole text
    assert d.vocab.decode(np.concatenate([d.train, d.val, d.test])) == text
    assert d.vocab.decode(d.val[:7]) == text[1_003_854 : 1_003_854 + 7]
    assert d.test[-1] == d.vocab.encode(text[-1])[0]


def test_tiny_shakespeare_vocabulary(shakespeare):
    v = shakespeare.vocab
    assert len(v) == 66 and len(v.chars) == 65 and v.bos == 0
    assert v.chars == "".join(sorted(v.chars)) and v.chars[0] == "\n"
    ids = v.encode("To be, or not")
    assert ids.dtype == np.int64 and ids.min() >= 1
    assert v.decode(np.concatenate([[v.bos], ids])) == "To be, or not"  # BOS decodes to nothing
    for piece in (shakespeare.train, shakespeare.val, shakespeare.test):
        assert piece.min() >= 1 and piece.max() <= 65  # BOS never occurs inside the text
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['\{'\]"):
        v.encode("a{b")
    with pytest.raises(TypeError, match="encode expects a str, got bytes"):
        v.encode(b"abc")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 66\), got values in \[0, 66\]"):
        v.decode(np.array([0, 66]))
    with pytest.raises(TypeError, match="1-D sequence of integer ids"):
        v.decode(np.array([1.0, 2.0]))


def test_tiny_shakespeare_hash_checked(tmp_path, monkeypatch):
    src = (data.DATA_DIR / data.SHAKESPEARE_FILE).read_bytes()
    assert hashlib.sha256(src).hexdigest() == data.SHAKESPEARE_SHA256
    (tmp_path / data.SHAKESPEARE_FILE).write_bytes(src[:-10])
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match=f"expected {data.SHAKESPEARE_SHA256}"):
        data.load_tiny_shakespeare()
    (tmp_path / data.SHAKESPEARE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="tinyshakespeare.txt is missing"):
        data.load_tiny_shakespeare()


def test_lm_windows_open_with_bos_and_cover_each_token_once():
    tokens = np.arange(1, 24)  # 23 tokens
    inputs, targets = data.lm_windows(tokens, 5, bos=0)
    assert inputs.shape == targets.shape == (4, 5)  # 20 tokens scored, the last 3 not
    np.testing.assert_array_equal(targets.ravel(), tokens[:20])
    np.testing.assert_array_equal(inputs[:, 0], 0)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(inputs[1], [0, 6, 7, 8, 9])


def test_sample_windows_are_seeded_and_valid():
    tokens = np.arange(1, 101)
    a = data.sample_windows(tokens, 8, 64, np.random.default_rng(3), bos=0)
    b = data.sample_windows(tokens, 8, 64, np.random.default_rng(3), bos=0)
    np.testing.assert_array_equal(a[0], b[0])
    inputs, targets = a
    assert inputs.shape == (64, 8) and np.all(inputs[:, 0] == 0)
    np.testing.assert_array_equal(np.diff(targets, axis=1), 1)  # consecutive tokens of the text
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    assert targets.min() >= 1 and targets.max() <= 100
    starts = data.sample_windows(tokens, 100, 5, np.random.default_rng(0))[1][:, 0]
    np.testing.assert_array_equal(starts, 1)  # a window as long as the text has one place to start


def test_window_functions_reject_bad_input():
    with pytest.raises(TypeError, match="1-D array of integer ids, got float64"):
        data.lm_windows(np.zeros(10), 4)
    with pytest.raises(TypeError, match="numpy array of token ids, got list"):
        data.lm_windows([1, 2, 3], 2)
    with pytest.raises(ValueError, match="at least one window of context=8 tokens, got 5"):
        data.lm_windows(np.arange(5), 8)
    with pytest.raises(ValueError, match="context must be"):
        data.lm_windows(np.arange(5), 0)
    with pytest.raises(TypeError, match="np.random.default_rng"):
        data.sample_windows(np.arange(20), 4, 2, rng=0)
