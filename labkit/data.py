"""Data sets for the course: the embedded Fashion-MNIST subset, the full set, digits, and Tiny Shakespeare.

Every loader returns the same :class:`Dataset`: float32 pixels in [0, 1], int64 labels
and the class names. Files read from disk are checked against SHA-256 hashes so that a
truncated download never turns into a silently wrong experiment.

The embedded subset (``data/fashion_mnist_subset.npz``) holds the first 2,000 training
images of each class (20,000 images) and the full official test set (10,000 images). It is
built by ``scripts/build_embedded_data.py`` from the Debian package ``dataset-fashion-mnist``.

Three splits, three jobs. Fashion-MNIST loads as *train* (fit the weights), *validation* (choose
everything else: learning rates, epochs, sparsities, bit widths, temperatures) and *test* (report
once, after every choice is fixed). The validation split is a fixed, stratified hold-out from the
official training images — :data:`VAL_FRACTION` of each class, drawn by :func:`train_val_split` with
:data:`VAL_SEED` — so it is the same on every machine: 2,000 of the embedded 20,000 (200 per class),
6,000 of the full 60,000. The shipped models never saw it.

Tiny Shakespeare (``data/tinyshakespeare.txt``, for the language-model labs) is read as characters and
cut into three contiguous pieces: the first 90 % of the characters train, the next 5 % validate, the
last 5 % test (:func:`load_tiny_shakespeare`). A language model reads it in windows that each open
with a beginning-of-sequence token (:func:`lm_windows`, :func:`sample_windows`).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .validation import check_choice, check_int, check_real

__all__ = [
    "Dataset",
    "FASHION_CLASSES",
    "IDX_SHA256",
    "EMBEDDED_SHA256",
    "DATA_DIR",
    "load_fashion_mnist",
    "load_digits",
    "read_idx",
    "sha256_of",
    "train_val_split",
    "VAL_FRACTION",
    "VAL_SEED",
    "TextData",
    "CharVocab",
    "load_tiny_shakespeare",
    "lm_windows",
    "sample_windows",
    "SHAKESPEARE_SHA256",
    "SHAKESPEARE_SPLIT",
]

#: The fraction of every class held out from the official training images as the validation split.
VAL_FRACTION = 0.1
#: The seed of that hold-out (fixed: the same validation images for everyone).
VAL_SEED = 0

#: The embedded subset's file name inside :data:`DATA_DIR`.
EMBEDDED_FILE = "fashion_mnist_subset.npz"
#: Tiny Shakespeare's file name inside :data:`DATA_DIR`, and the SHA-256 of its bytes.
SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
#: Fractions of the characters in the train and validation pieces (the test piece is the rest).
SHAKESPEARE_SPLIT = (0.90, 0.05)


def _default_data_dir() -> Path:
    """Where the embedded data and the pretrained models are, for this installation of the kit.

    1. ``$LABKIT_DATA_DIR`` when set (any folder laid out like the repository's ``data/``);
    2. an installed kit (a wheel, ``pip install .``): the package data ``labkit/_data``, which the
       build maps from the repository's ``data/`` folder (``[tool.setuptools.package-dir]``);
    3. a source checkout or an editable install: the repository's ``data/`` next to ``labkit/``.

    Step 2 looks for ``_data`` inside *this* ``labkit`` package (``importlib.resources``) rather than
    importing ``labkit._data``: in an editable install that import would be answered by setuptools'
    editable finder, which knows only the checkout the install was made from.
    """
    if os.environ.get("LABKIT_DATA_DIR"):
        return Path(os.environ["LABKIT_DATA_DIR"])
    packaged = importlib.resources.files(__package__ or "labkit") / "_data"
    if isinstance(packaged, Path) and (packaged / EMBEDDED_FILE).is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "data"


#: Where the shipped data lives (see :func:`_default_data_dir`): ``labkit/_data`` in an installed
#: kit, ``<repo>/data`` in a checkout. ``LABKIT_DATA_DIR`` overrides it.
DATA_DIR = _default_data_dir()
#: What to do when a shipped file is missing (shared with :mod:`labkit.models`).
MISSING_HINT = (
    "an installed kit carries it as package data (reinstall it: `pip install --force-reinstall labkit`); "
    "a checkout has it in data/ (restore it: `git checkout -- data`); or LABKIT_DATA_DIR points at the wrong folder"
)

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: SHA-256 of the *decompressed* official IDX files (identical in Debian's package).
IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: SHA-256 of the committed embedded subset file (recorded by the build script).
EMBEDDED_SHA256 = "7f0dde8cc5b7bfe9a577114a9abb1487c076816b2bdd5cdb2fad8d8d74e63e69"

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: A user-writable place for a downloaded full set (never inside an installed package):
#: ``$XDG_DATA_HOME/labkit/fashion-mnist``, by default ``~/.local/share/labkit/fashion-mnist``.
USER_FULL_DIR = (
    Path(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")) / "labkit" / "fashion-mnist"
)
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


@dataclass
class Dataset:
    """Images and labels in three splits: train (fit), validation (choose), test (report once).

    Attributes
    ----------
    X_train, X_test : ndarray of float32, shape (n, 784) or (n, 1, 28, 28)
        Pixels scaled to [0, 1].
    y_train, y_test : ndarray of int64, shape (n,)
        Class indices in ``range(len(class_names))``.
    class_names : tuple of str
    name : str
        Where the data came from, for printing.
    X_val, y_val : ndarray or None
        The validation split, disjoint from the training split (None for a data set without one).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = field(default_factory=tuple)
    name: str = ""
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        val = f", val {self.X_val.shape}" if self.X_val is not None else ""
        return (
            f"Dataset({self.name!r}: train {self.X_train.shape} {self.X_train.dtype}{val}, "
            f"test {self.X_test.shape}, {self.n_classes} classes)"
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None, n_val: int | None = None) -> Dataset:
        """The first ``n_train`` training, ``n_val`` validation and ``n_test`` test examples (a cheap view)."""
        has_val = self.X_val is not None
        return Dataset(
            self.X_train[:n_train],
            self.y_train[:n_train],
            self.X_test[:n_test],
            self.y_test[:n_test],
            self.class_names,
            self.name,
            self.X_val[:n_val] if has_val else None,
            self.y_val[:n_val] if has_val else None,
        )


def sha256_of(path: str | os.PathLike, decompress: bool | None = None) -> str:
    """SHA-256 of a file; ``.gz`` files are hashed after decompression (as the hashes are published)."""
    path = Path(path)
    if decompress is None:
        decompress = path.suffix == ".gz"
    opener = gzip.open if decompress else open
    digest = hashlib.sha256()
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError) as exc:  # gzip raises these on truncation
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a uint8 array, checking its SHA-256 if given.

    Raises
    ------
    ValueError
        If the file is truncated, corrupted, or its hash differs from ``expected_sha256``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is corrupted or truncated ({exc}); expected SHA-256 {expected_sha256}") from exc
    if expected_sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != expected_sha256:
            raise ValueError(
                f"{path} has SHA-256 {got}, expected {expected_sha256}: the file is corrupted or truncated"
            )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise ValueError(f"{path} holds {len(raw) - offset} bytes of data, expected {count} for shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _to_float(images: np.ndarray, flatten: bool) -> np.ndarray:
    x = images.astype(np.float32) / np.float32(255.0)
    n = x.shape[0]
    return x.reshape(n, -1) if flatten else x.reshape(n, 1, 28, 28)


def _load_embedded(flatten: bool) -> Dataset:
    path = DATA_DIR / EMBEDDED_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"embedded data {path} is missing: {MISSING_HINT}; in a checkout, rebuild it with "
            "`python scripts/build_embedded_data.py`"
        )
    got = sha256_of(path, decompress=False)
    if got != EMBEDDED_SHA256:
        raise ValueError(f"{path} has SHA-256 {got}, expected {EMBEDDED_SHA256}: the file is corrupted or truncated")
    with np.load(path) as z:
        return _with_validation(
            z["X_train"], z["y_train"], z["X_test"], z["y_test"], flatten, "fashion-mnist (embedded 18k/2k/10k)"
        )


def _with_validation(X_train, y_train, X_test, y_test, flatten: bool, name: str) -> Dataset:
    """Hold the fixed validation split out of the official training images; scale to float."""
    X_tr, y_tr, X_val, y_val = train_val_split(X_train, y_train, val_fraction=VAL_FRACTION, seed=VAL_SEED)
    return Dataset(
        _to_float(X_tr, flatten),
        y_tr.astype(np.int64),
        _to_float(X_test, flatten),
        y_test.astype(np.int64),
        FASHION_CLASSES,
        name,
        _to_float(X_val, flatten),
        y_val.astype(np.int64),
    )


def _find_full_dir() -> Path:
    candidates = []
    if os.environ.get("LABKIT_DATA"):
        candidates.append(Path(os.environ["LABKIT_DATA"]))
    candidates += [DEBIAN_DIR, USER_FULL_DIR, DATA_DIR / "fashion-mnist"]
    for d in candidates:
        if all((d / f"{stem}.gz").exists() or (d / stem).exists() for stem in IDX_SHA256):
            return d
    raise FileNotFoundError(
        "the full Fashion-MNIST set was not found. Get it one of three ways:\n"
        "  1. set LABKIT_DATA to a folder holding the four IDX files (.gz or raw);\n"
        "  2. on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        f"(files land in {DEBIAN_DIR});\n"
        f"  3. download the four *-ubyte.gz files from {OFFICIAL_URL} into {USER_FULL_DIR} "
        "(create the folder; or into any folder and point LABKIT_DATA at it).\n"
        f"Searched: {', '.join(str(c) for c in candidates)}"
    )


def read_fashion_mnist_idx(folder: str | os.PathLike) -> dict:
    """Read and verify the four official IDX files in ``folder`` → dict of uint8 arrays."""
    folder = Path(folder)
    out = {}
    for stem, digest in IDX_SHA256.items():
        path = folder / f"{stem}.gz"
        if not path.exists():
            path = folder / stem
        out[stem] = read_idx(path, expected_sha256=digest)
    return out


def load_fashion_mnist(subset: str = "embedded", flatten: bool = True) -> Dataset:
    """Load Fashion-MNIST (Xiao et al. 2017).

    Parameters
    ----------
    subset : {"embedded", "full"}
        ``"embedded"``: the committed 20,000/10,000 subset (no download, no extra package).
        ``"full"``: the official 60,000/10,000 set from ``$LABKIT_DATA``, Debian's
        ``dataset-fashion-mnist`` package, :data:`USER_FULL_DIR` (``~/.local/share/labkit/fashion-mnist``)
        or a checkout's ``data/fashion-mnist/``, verified by SHA-256.
    flatten : bool
        True gives X of shape (n, 784); False gives (n, 1, 28, 28) for convolutions.

    Returns
    -------
    Dataset
        ``X_train, y_train`` (training only: 18,000 embedded, 54,000 full), ``X_val, y_val`` (the fixed,
        stratified validation hold-out: 2,000 / 6,000, disjoint from train, see :data:`VAL_FRACTION`)
        and ``X_test, y_test`` (the 10,000 official test images, to be evaluated once).
    """
    if check_choice("subset", subset, ("embedded", "full")) == "embedded":
        return _load_embedded(flatten)
    arrays = read_fashion_mnist_idx(_find_full_dir())
    return _with_validation(
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
        flatten,
        "fashion-mnist (full 54k/6k/10k)",
    )


def load_digits(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1,797 images) as a seeded, stratified train/test split.

    Pixels are scaled from 0..16 to [0, 1]; X has shape (n, 64).
    """
    from sklearn.datasets import load_digits as _sk_digits

    test_size = check_real("test_size", test_size, 0.0, 1.0, lo_open=True, hi_open=True)
    d = _sk_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(y):  # stratified: the same fraction of every class goes to test
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * idx.size))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    return Dataset(X[tr], y[tr], X[te], y[te], tuple(str(c) for c in range(10)), "sklearn digits 8x8")


def train_val_split(X: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0):
    """A seeded, stratified split → (X_train, y_train, X_val, y_val).

    Every class gives ``round(val_fraction · n_class)`` examples to validation, drawn by a seeded
    permutation; both parts keep the original order of the examples.

    Parameters
    ----------
    X : ndarray, shape (n, ...)
    y : ndarray of int, shape (n,)
    val_fraction : float in (0, 1)
    seed : int

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarrays, ``n − n_val`` and ``n_val`` examples
    """
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    val_fraction = check_real("val_fraction", val_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in np.unique(y):  # stratified: the same fraction of every class goes to validation
        idx = rng.permutation(np.flatnonzero(y == c))
        val_idx.append(idx[: int(round(val_fraction * idx.size))])
    is_val = np.zeros(len(y), dtype=bool)
    is_val[np.concatenate(val_idx)] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


@dataclass(frozen=True)
class CharVocab:
    """A character vocabulary with a beginning-of-sequence token: id 0 is BOS, ids 1.. the characters.

    Attributes
    ----------
    chars : str
        The characters in id order (``chars[i]`` has id ``i + 1``).
    bos : int
        The id of the BOS token (0); it opens every sequence a language model reads.
    """

    chars: str
    bos: int = 0

    def __len__(self) -> int:
        """The vocabulary size: the characters plus BOS."""
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        """Ids (int64, shape (len(text),)) of the characters of ``text``; no BOS is added."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        lookup = {c: i + 1 for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(lookup))
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown!r}; it holds {self.chars!r}")
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """The text of a sequence of ids; BOS tokens are dropped."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu" or ids.ndim != 1:
            raise TypeError(f"decode expects a 1-D sequence of integer ids, got {ids.dtype} of shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self)}), got values in [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i - 1] for i in ids.tolist() if i != self.bos)


@dataclass
class TextData:
    """A text as token ids in three contiguous pieces, and its vocabulary.

    Attributes
    ----------
    train, val, test : ndarray of int64, shape (n,)
        Token ids of consecutive stretches of the text: fit on ``train``, choose on ``val``, report
        ``test`` once.
    vocab : CharVocab
    name : str
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    vocab: CharVocab
    name: str = ""

    def __repr__(self) -> str:
        return (
            f"TextData({self.name!r}: train {self.train.size:,}, val {self.val.size:,}, test {self.test.size:,} "
            f"tokens; vocabulary {len(self.vocab)} = {len(self.vocab.chars)} characters + BOS)"
        )


def load_tiny_shakespeare() -> TextData:
    """Tiny Shakespeare (Karpathy's char-rnn corpus), character-level, verified by its SHA-256.

    Returns
    -------
    TextData
        ``train`` (the first 90 % of the 1,115,394 characters: 1,003,854), ``val`` (the next 5 %:
        55,769) and ``test`` (the rest: 55,771), as int64 ids of a :class:`CharVocab` of the text's 65
        distinct characters (sorted) plus BOS (id 0): 66 ids.
    """
    path = DATA_DIR / SHAKESPEARE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {MISSING_HINT}")
    raw = path.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != SHAKESPEARE_SHA256:
        raise ValueError(f"{path} has SHA-256 {got}, expected {SHAKESPEARE_SHA256}: the file is corrupted or truncated")
    text = raw.decode("ascii")
    vocab = CharVocab("".join(sorted(set(text))))
    tokens = vocab.encode(text)
    n_train = int(SHAKESPEARE_SPLIT[0] * len(tokens))
    n_val = int(SHAKESPEARE_SPLIT[1] * len(tokens))
    return TextData(
        tokens[:n_train],
        tokens[n_train : n_train + n_val],
        tokens[n_train + n_val :],
        vocab,
        "tiny shakespeare (characters, 90/5/5 % contiguous)",
    )


def _check_tokens(tokens, context, bos):
    if not isinstance(tokens, np.ndarray):
        raise TypeError(f"tokens must be a numpy array of token ids, got {type(tokens).__name__}")
    if tokens.dtype.kind not in "iu" or tokens.ndim != 1:
        raise TypeError(f"tokens must be a 1-D array of integer ids, got {tokens.dtype} of shape {tokens.shape}")
    context = check_int("context", context, lo=1)
    bos = check_int("bos", bos, lo=0)
    if tokens.size < context:
        raise ValueError(f"tokens must hold at least one window of context={context} tokens, got {tokens.size}")
    return context, bos


def _with_bos(windows: np.ndarray, bos: int):
    """Inputs ``[BOS, w_0 .. w_{T-2}]`` and targets ``[w_0 .. w_{T-1}]`` for windows (n, T)."""
    inputs = np.empty_like(windows)
    inputs[:, 0] = bos
    inputs[:, 1:] = windows[:, :-1]
    return inputs, windows


def lm_windows(tokens: np.ndarray, context: int, bos: int = 0):
    """Cut a token array into non-overlapping windows for evaluating a language model.

    Window i holds tokens ``[i·context, (i+1)·context)``; the model reads BOS followed by the first
    ``context − 1`` of them and predicts all ``context``, so every token of the windows is predicted
    exactly once, with the window's earlier tokens as its only history. The last
    ``len(tokens) % context`` tokens (fewer than a window) are not used.

    Parameters
    ----------
    tokens : ndarray of int, shape (n,), n >= context
    context : int
        Window length (at most the model's context).
    bos : int
        The beginning-of-sequence id.

    Returns
    -------
    inputs, targets : ndarray of tokens' dtype, shape (n // context, context)
    """
    context, bos = _check_tokens(tokens, context, bos)
    n = tokens.size // context
    return _with_bos(tokens[: n * context].reshape(n, context), bos)


def sample_windows(tokens: np.ndarray, context: int, batch_size: int, rng, bos: int = 0):
    """A training batch: ``batch_size`` windows of ``context`` tokens at uniform random starts.

    Starts are drawn by ``rng.integers(0, n − context + 1, batch_size)`` (``rng`` a seeded
    ``numpy.random.Generator``), so windows may overlap and any position of ``tokens`` can start one.
    Inputs and targets are built as in :func:`lm_windows`: BOS, then the window shifted by one.

    Returns
    -------
    inputs, targets : ndarray of tokens' dtype, shape (batch_size, context)
    """
    context, bos = _check_tokens(tokens, context, bos)
    batch_size = check_int("batch_size", batch_size, lo=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    starts = rng.integers(0, tokens.size - context + 1, size=batch_size)
    return _with_bos(tokens[starts[:, None] + np.arange(context)], bos)
