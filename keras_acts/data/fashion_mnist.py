"""Fashion-MNIST from IDX files (Debian's ``dataset-fashion-mnist`` package).

Nothing is downloaded from the internet by this module: the files come from
``apt-get install dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``,
which :func:`load_data` can run) or any directory holding the four IDX files,
gzipped or not.
"""

import gzip
import os
import shutil
import struct
import subprocess

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
APT_PACKAGE = "dataset-fashion-mnist"
# Fashion-MNIST training-set pixel mean and std (of x / 255).
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def read_idx(path):
    """Read one IDX file (optionally ``.gz``) into a NumPy array.

    The header gives the element type (only unsigned bytes, 0x08, are used by
    MNIST-style data) and the dimensions; a short or malformed file raises
    ``ValueError`` naming the path.

    Example:
        >>> import struct, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 0, 9]))
        >>> read_idx(path).tolist()
        [7, 0, 9]
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
        >>> if os.path.isdir(DEFAULT_DIR):
        ...     (x, y), (xt, yt) = load_fashion_mnist()
        ...     assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    """
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise ValueError(f"{directory}: {split} images and labels differ in length.")
    return ((arrays["train_images"], arrays["train_labels"]),
            (arrays["test_images"], arrays["test_labels"]))


class DatasetUnavailable(RuntimeError):
    """Fashion-MNIST is neither present nor installable (the main job exits with code 2).

    Example:
        >>> str(DatasetUnavailable("apt-get is not available"))
        'apt-get is not available'
    """


def _apt_prefix():
    """Command prefix to run apt-get as root, or None (with the reason)."""
    if shutil.which("apt-get") is None:
        return None, "apt-get is not available on this machine"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return [], None
    if shutil.which("sudo") is not None:
        return ["sudo", "-n"], None
    return None, "not running as root and sudo is not available"


def install_dataset(runner=subprocess.run, log=print):
    """``apt-get install -y dataset-fashion-mnist`` (after ``apt-get update`` if the
    first attempt fails). Returns True on success; says what it does through ``log``.

    ``runner`` runs one command (a list) and returns an object with ``returncode``.

    Example:
        >>> import types
        >>> failing = lambda command: types.SimpleNamespace(returncode=100)
        >>> install_dataset(runner=failing, log=lambda message: None)
        False
    """
    prefix, reason = _apt_prefix()
    if prefix is None:
        log(f"Cannot install {APT_PACKAGE}: {reason}.")
        return False
    install = prefix + ["apt-get", "install", "-y", APT_PACKAGE]
    log(f"Installing Debian's {APT_PACKAGE}: {' '.join(install)}")
    if runner(install).returncode == 0:
        return True
    update = prefix + ["apt-get", "update"]
    log(f"Install failed; refreshing the package lists ({' '.join(update)}) and retrying.")
    if runner(update).returncode != 0:
        log("apt-get update failed.")
        return False
    return runner(install).returncode == 0


def load_data(directory=None, install=True, runner=subprocess.run, log=print):
    """Fashion-MNIST from ``directory`` (default ``DEFAULT_DIR``) as uint8 arrays;
    installs the Debian package when the default directory lacks the files and
    ``install`` is True.

    Raises ``DatasetUnavailable`` with instructions when the files cannot be had
    (a malformed file raises ``ValueError`` naming it).

    Example:
        >>> import tempfile
        >>> try:
        ...     load_data(tempfile.mkdtemp(), install=False)
        ... except DatasetUnavailable as err:
        ...     print(str(err).split(" not found")[0])
        Fashion-MNIST file train-images-idx3-ubyte[.gz]
    """
    directory = DEFAULT_DIR if directory is None else directory
    try:
        return load_fashion_mnist(directory)
    except FileNotFoundError as err:
        missing = str(err)
    if not install or os.path.abspath(directory) != os.path.abspath(DEFAULT_DIR):
        raise DatasetUnavailable(
            f"{missing} (automatic installation only fills {DEFAULT_DIR}; pass --data-dir "
            "with the four IDX files, or drop --no-install)")
    log(f"Fashion-MNIST is not in {directory}.")
    if not install_dataset(runner=runner, log=log):
        raise DatasetUnavailable(
            f"Fashion-MNIST is missing and {APT_PACKAGE} could not be installed. Install it "
            f"yourself (as root: apt-get update && apt-get install -y {APT_PACKAGE}) or pass "
            "--data-dir DIR holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
            "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].")
    log(f"Installed {APT_PACKAGE}.")
    return load_fashion_mnist(directory)


def prepare_images(images):
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) standardised with the training
    set's pixel statistics: ``(x / 255 - PIXEL_MEAN) / PIXEL_STD``.

    Example:
        >>> prepare_images(np.zeros((2, 28, 28), np.uint8)).shape
        (2, 28, 28, 1)
    """
    x = images.astype(np.float32) / 255.0
    return ((x - PIXEL_MEAN) / PIXEL_STD)[..., None]
