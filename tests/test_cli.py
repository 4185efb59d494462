"""`keras-acts export` on bad input: one `error:` line naming the path or the
value at fault and exit status 2, never a traceback (issue 11 item 10)."""

import zipfile

import numpy as np
import pytest

from keras_acts.cli import main


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from keras_acts.models import small_cnn

    path = str(tmp_path_factory.mktemp("cli") / "m.keras")
    small_cnn("serf", width=4).save(path)  # input (None, 28, 28, 1)
    return path


def _error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _export(*args):
    return main(["export", *map(str, args)])


def test_missing_and_unloadable_model_files(tmp_path, capsys):
    out = tmp_path / "o.tflite"
    assert _export(tmp_path / "absent.keras", out) == 2
    line = _error_line(capsys)
    assert str(tmp_path / "absent.keras") in line and "does not exist" in line
    assert _export(tmp_path, out) == 2
    assert "is a directory" in _error_line(capsys)
    text = tmp_path / "text.keras"
    text.write_text("not a model\n")
    assert _export(text, out) == 2
    assert f"cannot load a Keras model from '{text}'" in _error_line(capsys)
    archive = tmp_path / "zip.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "a zip file, not a Keras model")
    assert _export(archive, out) == 2
    assert f"cannot load a Keras model from '{archive}'" in _error_line(capsys)
    assert not out.exists()


def test_output_directory_must_exist(model_path, tmp_path, capsys):
    out = tmp_path / "no_such_dir" / "o.tflite"
    assert _export(model_path, out) == 2
    assert str(tmp_path / "no_such_dir") in _error_line(capsys)


def test_calibration_file_errors(model_path, tmp_path, capsys):
    out = tmp_path / "o.tflite"
    int8 = ("--quantize", "int8", "--calibration")
    missing = tmp_path / "calib.npy"
    assert _export(model_path, out, *int8, missing) == 2
    line = _error_line(capsys)
    assert f"calibration file '{missing}' does not exist" in line

    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((16, 28, 28), np.float32))  # channel axis missing
    assert _export(model_path, out, *int8, wrong) == 2
    line = _error_line(capsys)
    assert str(wrong) in line and "(16, 28, 28)" in line and "(N, 28, 28, 1)" in line
    # The same check guards the float exports' parity inputs.
    assert _export(model_path, out, "--calibration", wrong) == 2
    assert "(N, 28, 28, 1)" in _error_line(capsys)

    text = tmp_path / "text.npy"
    text.write_text("1 2 3\n")
    assert _export(model_path, out, *int8, text) == 2
    assert f"cannot read calibration file '{text}' as a .npy array" in _error_line(capsys)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert _export(model_path, out, *int8, pickled) == 2
    assert str(pickled) in _error_line(capsys)
    npz = tmp_path / "arrays.npy"
    with open(npz, "wb") as f:
        np.savez(f, x=np.zeros((4, 28, 28, 1), np.float32))
    assert _export(model_path, out, *int8, npz) == 2
    assert ".npz archive" in _error_line(capsys)
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array([["a"] * 28] * 28)[None, ..., None])
    assert _export(model_path, out, *int8, strings) == 2
    assert "expected numbers" in _error_line(capsys)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 28, 28, 1), np.float32))
    assert _export(model_path, out, *int8, empty) == 2
    assert "no samples" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("flag,value", [("--num-calibration", "0"),
                                        ("--num-calibration", "many"),
                                        ("--parity-samples", "-1"), ("--threads", "0"),
                                        ("--quantize", "int4")])
def test_bad_flag_values_name_the_flag(model_path, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        _export(model_path, tmp_path / "o.tflite", flag, value)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"argument {flag}" in err and value in err
