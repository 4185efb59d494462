"""A tiny synthetic Fashion-MNIST in the real IDX format, for the data and main-job tests."""

import gzip
import struct

import numpy as np


def write_idx(path, array):
    """Write a uint8 array as a (gzipped when ``path`` ends in .gz) IDX file."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fake_fashion_mnist(directory, train=256, test=128, seed=0):
    """Four gzipped IDX files; each class is a bright band at its own row, plus noise."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label:4 + 2 * label, :] = 230
        stem = "train" if split == "train" else "t10k"
        write_idx(directory / f"{stem}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{stem}-labels-idx1-ubyte.gz", labels)
    return directory
