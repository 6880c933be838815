"""Build data/fashion_mnist_subset.npz from the official Fashion-MNIST IDX files.

Source: Debian's package ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist), or any
folder given as the first argument, holding the four official files. Each file is verified by the
SHA-256 of its decompressed bytes before use. The subset: the first 2,000 training images of every
class, in their original order (20,000 images), and the complete official test set (10,000).

    python scripts/build_embedded_data.py [SOURCE_DIR]
"""

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from labkit.data import DATA_DIR, DEBIAN_DIR, EMBEDDED_FILE, read_fashion_mnist_idx, sha256_of

PER_CLASS = 2000


def main(argv):
    source = Path(argv[1]) if len(argv) > 1 else DEBIAN_DIR
    a = read_fashion_mnist_idx(source)
    X, y = a["train-images-idx3-ubyte"], a["train-labels-idx1-ubyte"]
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:PER_CLASS] for c in range(10)]))
    arrays = {
        "X_train": X[keep],
        "y_train": y[keep],
        "X_test": a["t10k-images-idx3-ubyte"],
        "y_test": a["t10k-labels-idx1-ubyte"],
    }
    out = DATA_DIR / EMBEDDED_FILE
    # Write a reproducible zip: fixed timestamps and order, so the SHA-256 is stable across runs.
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(out)
    print(f"wrote {out}: {out.stat().st_size} bytes, SHA-256 {sha256_of(out, decompress=False)}")
    for name, arr in arrays.items():
        print(f"  {name}: {arr.shape} {arr.dtype}")


if __name__ == "__main__":
    main(sys.argv)
