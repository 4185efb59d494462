"""Fashion-MNIST from IDX files (Debian's ``dataset-fashion-mnist`` package).

Nothing is downloaded: the files come from ``apt-get install dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``) or any directory holding the four IDX
files, gzipped or not.
"""

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def read_idx(path):
    """Read one IDX file (optionally ``.gz``) into a NumPy array.

    The header gives the element type (only unsigned bytes, 0x08, are used by
    MNIST-style data) and the dimensions; a short or malformed file raises
    ``ValueError`` naming the path.

    Example:
        >>> labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        >>> labels.shape
        (10000,)
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (too short).")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4]!r}).")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values for shape {dims}, "
                         f"found {body.size}.")
    return body.reshape(dims)


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory!r}. Install Debian's "
        "package (apt-get install dataset-fashion-mnist) or pass the directory that holds "
        f"the four IDX files: {sorted(FILES.values())}.")


def load_fashion_mnist(directory=DEFAULT_DIR):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays.

    Images have shape (N, 28, 28), labels (N,) with values 0..9 (names in
    ``CLASS_NAMES``). Raises ``FileNotFoundError`` with install instructions when
    a file is missing.

    Example:
        >>> (x, y), (xt, yt) = load_fashion_mnist()
        >>> x.shape, xt.shape
        ((60000, 28, 28), (10000, 28, 28))
    """
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise ValueError(f"{directory}: {split} images and labels differ in length.")
    return ((arrays["train_images"], arrays["train_labels"]),
            (arrays["test_images"], arrays["test_labels"]))
