"""Optional dependencies (issue 14 item 4): a feature whose extra is missing
raises an ImportError naming the `pip install "keras-acts[<extra>]"` to run.
A package is made missing with ``sys.modules[name] = None`` (what ``import``
then reports as not installed)."""

import importlib
import sys

import pytest

from keras_acts._extras import EXTRAS
from keras_acts._extras import MissingExtraError
from keras_acts._extras import require


def _block(monkeypatch, *names, reload=()):
    """Make ``names`` unimportable and forget the ``reload`` modules (and their
    sub-modules) so that importing them runs their imports again; everything is
    put back after the test."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for prefix in reload:
        for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
            monkeypatch.delitem(sys.modules, name)


def test_require_returns_the_module_or_names_the_extra(monkeypatch):
    assert require("numpy") is sys.modules["numpy"]
    assert require("os.path") is sys.modules["os.path"]
    for name, extra in EXTRAS.items():
        _block(monkeypatch, name)
        with pytest.raises(MissingExtraError) as err:
            require(name, feature="the feature")
        assert str(err.value) == (f"the feature needs {name!r}, which is not installed: "
                                  f'pip install "keras-acts[{extra}]"')
        assert isinstance(err.value, ImportError) and err.value.extra == extra
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    with pytest.raises(MissingExtraError, match=r'pip install "keras-acts\[plot\]"'):
        require("matplotlib.figure")  # a sub-module: the top-level package decides
    with pytest.raises(MissingExtraError, match=r"needs 'no_such_pkg_xyz'.*pip install no_such"):
        require("no_such_pkg_xyz")  # not an extra: the plain package name


def test_an_installed_but_broken_package_shows_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg_xyz").mkdir()
    (tmp_path / "brokenpkg_xyz" / "__init__.py").write_text("import missing_dep_of_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as err:
        require("brokenpkg_xyz", extra="plot")
    assert not isinstance(err.value, MissingExtraError)
    assert err.value.name == "missing_dep_of_xyz"


def test_plot_without_matplotlib(monkeypatch):
    _block(monkeypatch, "matplotlib", reload=["keras_acts.plot"])
    with pytest.raises(MissingExtraError, match=r'keras_acts.plot needs .*"keras-acts\[plot\]"'):
        importlib.import_module("keras_acts.plot")


def test_backbones_need_their_library_only(monkeypatch):
    from keras_acts.backbones.builders import build

    _block(monkeypatch, "keras_hub", "keras_cv")
    with pytest.raises(MissingExtraError, match=r"'resnet18' from source 'keras_hub' needs "
                       r"'keras_hub'.*keras-acts\[backbones\]"):
        build("resnet18", input_shape=(32, 32, 3))
    with pytest.raises(MissingExtraError, match=r"keras-acts\[detection\]"):
        build("yolo_v8_xs", input_shape=(64, 64, 3))
    # keras.applications' MobileNets need neither.
    model = build("mobilenet_v3_small", activation="serf", input_shape=(32, 32, 3))
    assert model.count_params() > 0


def test_training_without_tensorflow_datasets_or_tensorflow(monkeypatch, tmp_path):
    from keras_acts.training import data as data_lib

    _block(monkeypatch, "tensorflow_datasets")
    with pytest.raises(MissingExtraError, match=r'TFDS input needs .*"keras-acts\[train\]"'):
        data_lib.tfds_data("tiny_images", data_dir=str(tmp_path))
    _block(monkeypatch, "tensorflow", reload=["keras_acts.training"])
    with pytest.raises(MissingExtraError, match=r'keras_acts.training .*"keras-acts\[train\]"'):
        importlib.import_module("keras_acts.training.classification")


def test_cli_names_the_export_extra(monkeypatch, tmp_path, capsys):
    from keras_acts.cli import main

    _block(monkeypatch, "ai_edge_litert")
    assert main(["export", str(tmp_path / "m.keras"), str(tmp_path / "m.tflite")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and '"keras-acts[export]"' in err and "\n" not in err
