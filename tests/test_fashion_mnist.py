"""keras_acts.data.fashion_mnist: IDX reading, installation of Debian's package, errors."""

import gzip
import struct
import types

import numpy as np
import pytest

from fashion_mnist_fake import write_fake_fashion_mnist
from fashion_mnist_fake import write_idx
from keras_acts.data import fashion_mnist


def test_installs_the_debian_package_when_missing(tmp_path, monkeypatch):
    default = tmp_path / "fashion-mnist"
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(default))
    monkeypatch.setattr(fashion_mnist, "_apt_prefix", lambda: ([], None))
    commands, messages = [], []

    def runner(cmd):
        commands.append(cmd)
        ok = cmd[-1] == "update" or len(commands) > 1  # first install fails, then works
        if ok and cmd[-1] == fashion_mnist.APT_PACKAGE:
            write_fake_fashion_mnist(default, train=20, test=10)
        return types.SimpleNamespace(returncode=0 if ok else 100)

    (x, y), (xt, yt) = fashion_mnist.load_data(str(default), runner=runner,
                                               log=messages.append)
    assert x.shape == (20, 28, 28) and yt.shape == (10,)
    assert commands == [["apt-get", "install", "-y", "dataset-fashion-mnist"],
                        ["apt-get", "update"],
                        ["apt-get", "install", "-y", "dataset-fashion-mnist"]]
    text = "\n".join(messages)
    assert "Installing Debian's dataset-fashion-mnist" in text and "apt-get update" in text


def test_install_failure_is_explained(tmp_path, monkeypatch):
    default = tmp_path / "fashion-mnist"
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(default))
    monkeypatch.setattr(fashion_mnist, "_apt_prefix", lambda: (None, "apt-get is not available"))
    messages = []
    with pytest.raises(fashion_mnist.DatasetUnavailable, match="could not be installed"):
        fashion_mnist.load_data(str(default), log=messages.append)
    assert "apt-get is not available" in messages[-1]


def test_other_directories_are_never_installed_into(tmp_path):
    with pytest.raises(fashion_mnist.DatasetUnavailable, match="only fills .*--data-dir"):
        fashion_mnist.load_data(str(tmp_path), runner=pytest.fail)


def test_idx_reader_rejects_malformed_files(tmp_path):
    good = tmp_path / "ok-idx1-ubyte"
    write_idx(good, np.arange(5))
    assert fashion_mnist.read_idx(str(good)).tolist() == [0, 1, 2, 3, 4]
    truncated = tmp_path / "short-idx3-ubyte.gz"
    with gzip.open(truncated, "wb") as f:  # header says 3x28x28, body has 100 bytes
        f.write(struct.pack(">HBBIII", 0, 8, 3, 3, 28, 28) + bytes(100))
    with pytest.raises(ValueError, match="expected 2352 values"):
        fashion_mnist.read_idx(str(truncated))
    wrong_magic = tmp_path / "float-idx1-ubyte"
    wrong_magic.write_bytes(struct.pack(">HBBI", 0, 0x0D, 1, 1) + bytes(4))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        fashion_mnist.read_idx(str(wrong_magic))
    (tmp_path / "tiny").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="too short"):
        fashion_mnist.read_idx(str(tmp_path / "tiny"))


def test_prepare_images_standardises_with_the_training_statistics():
    images = np.array([[[0, 255]]], np.uint8).repeat(28, 1).repeat(14, 2)
    x = fashion_mnist.prepare_images(images)
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(sorted(set(x.ravel().tolist())),
                               [-0.2860 / 0.3530, (1 - 0.2860) / 0.3530], rtol=1e-6)
