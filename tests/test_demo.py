"""The main job (keras_acts.demo) end to end on a tiny synthetic IDX directory."""

import gzip
import json
import math
import struct
import sys
import types

import matplotlib.image
import numpy as np
import pytest

from keras_acts import demo
from keras_acts.data.fashion_mnist import read_idx

TRAIN, TEST = 256, 128


def write_idx(path, array):
    """Write a uint8 array as a (gzipped when ``path`` ends in .gz) IDX file."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fake_fashion_mnist(directory, train=TRAIN, test=TEST, seed=0):
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


def _fake_export(calls):
    """Stand-in for keras_acts.export: float TFLite == the Keras model up to 1e-6."""
    module = types.ModuleType("keras_acts.export")

    def to_tflite(model, path, quantization=None, representative_dataset=None):
        calls["model"], calls["quantization"] = model, quantization
        with open(path, "wb") as f:
            f.write(b"TFL3" + bytes(100))

    def run_tflite(path, inputs, num_threads=None):
        return np.asarray(calls["model"].predict(inputs, verbose=0)) + 1e-6

    module.to_tflite, module.run_tflite = to_tflite, run_tflite
    return module


def _png_ok(path):
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.std(image[..., :3])) > 0.01


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    data = write_fake_fashion_mnist(tmp_path / "idx")
    out = tmp_path / "out"
    calls = {}
    monkeypatch.setitem(sys.modules, "keras_acts.export", _fake_export(calls))
    code = demo.main(["--data-dir", str(data), "--out", str(out), "--epochs", "1",
                      "--seeds", "1", "--activations", "relu,pwlu",
                      "--batch-size", "64", "--no-install"])
    printed = capsys.readouterr().out
    assert code == 0
    # The markdown table: header, separator, one row per activation, in order.
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["relu", "pwlu"]
    assert "test accuracy" in rows[0] and "time ratio to ReLU" in rows[0]
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]
    assert [row["activation"] for row in summary] == ["relu", "pwlu"]
    for row in summary:
        assert 0.0 <= row["accuracy_mean"] <= 1.0 and math.isfinite(row["accuracy_mean"])
        assert row["seconds_per_epoch"] > 0 and row["trainable_parameters"] > 0
    assert summary[0]["accuracy_delta_vs_relu"] == 0.0
    assert summary[0]["time_ratio_vs_relu"] == 1.0
    assert summary[1]["trainable_parameters"] > summary[0]["trainable_parameters"]
    assert results["test_images"] == TEST and results["train_images"] == TRAIN
    # PWLU left phase I after half of the first epoch (4 steps of 64 -> 2).
    assert results["pwlu_phase1_steps"] == 2
    pwlu_run = [r for r in results["runs"] if r["activation"] == "pwlu"][0]
    assert pwlu_run["pwlu_layers_still_in_phase1"] == 0
    assert len(pwlu_run["history"]["batch_loss"]) == 4
    assert all(math.isfinite(v) for v in pwlu_run["history"]["batch_loss"])
    # Figures: learning curves and the shapes of the learnable activations.
    assert set(results["figures"]) == {"learning_curves", "shapes_pwlu"}
    for path in results["figures"].values():
        _png_ok(path)
    # Export of the best keras_acts model (not ReLU), float32, with parity.
    tfl = results["tflite"]
    assert tfl["status"] == "ok" and tfl["activation"] == "pwlu"
    assert calls["quantization"] is None
    assert tfl["max_abs_logit_diff"] == pytest.approx(1e-6, rel=0.1)
    assert tfl["argmax_agreement"] == 1.0
    assert tfl["tflite_test_accuracy"] == tfl["keras_test_accuracy"]
    assert "TFLite (" in printed and (out / (results["tflite"]["path"].split("/")[-1])).exists()
    assert (out / "results.md").read_text().startswith("| activation")


def test_export_unavailable_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "keras_acts.export", None)  # import raises ImportError
    result = demo.export_and_check(None, "pwlu", np.zeros((2, 28, 28, 1)), np.zeros(2), ".")
    assert result["status"] == "unavailable"
    assert "export unavailable" in capsys.readouterr().out


def test_missing_data_gives_a_clear_message(tmp_path, capsys):
    code = demo.main(["--data-dir", str(tmp_path), "--no-install", "--out",
                      str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "ERROR" in err and "dataset-fashion-mnist" in err and "--data-dir" in err


def test_installs_the_debian_package_when_missing(tmp_path, monkeypatch):
    default = tmp_path / "fashion-mnist"
    monkeypatch.setattr(demo, "DEFAULT_DIR", str(default))
    monkeypatch.setattr(demo, "_apt_prefix", lambda: ([], None))
    commands, messages = [], []

    def runner(cmd):
        commands.append(cmd)
        ok = cmd[-1] == "update" or len(commands) > 1  # first install fails, then works
        if ok and cmd[-1] == demo.APT_PACKAGE:
            write_fake_fashion_mnist(default, train=20, test=10)
        return types.SimpleNamespace(returncode=0 if ok else 100)

    (x, y), (xt, yt) = demo.load_data(str(default), runner=runner, log=messages.append)
    assert x.shape == (20, 28, 28) and yt.shape == (10,)
    assert commands == [["apt-get", "install", "-y", "dataset-fashion-mnist"],
                        ["apt-get", "update"],
                        ["apt-get", "install", "-y", "dataset-fashion-mnist"]]
    text = "\n".join(messages)
    assert "Installing Debian's dataset-fashion-mnist" in text and "apt-get update" in text


def test_install_failure_is_explained(tmp_path, monkeypatch):
    default = tmp_path / "fashion-mnist"
    monkeypatch.setattr(demo, "DEFAULT_DIR", str(default))
    monkeypatch.setattr(demo, "_apt_prefix", lambda: (None, "apt-get is not available"))
    messages = []
    with pytest.raises(demo.DatasetUnavailable, match="could not be installed"):
        demo.load_data(str(default), log=messages.append)
    assert "apt-get is not available" in messages[-1]


def test_idx_reader_rejects_malformed_files(tmp_path):
    good = tmp_path / "ok-idx1-ubyte"
    write_idx(good, np.arange(5))
    assert read_idx(str(good)).tolist() == [0, 1, 2, 3, 4]
    truncated = tmp_path / "short-idx3-ubyte.gz"
    with gzip.open(truncated, "wb") as f:  # header says 3x28x28, body has 100 bytes
        f.write(struct.pack(">HBBIII", 0, 8, 3, 3, 28, 28) + bytes(100))
    with pytest.raises(ValueError, match="expected 2352 values"):
        read_idx(str(truncated))
    wrong_magic = tmp_path / "float-idx1-ubyte"
    wrong_magic.write_bytes(struct.pack(">HBBI", 0, 0x0D, 1, 1) + bytes(4))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(str(wrong_magic))
    (tmp_path / "tiny").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(str(tmp_path / "tiny"))


def test_malformed_dataset_is_reported_by_the_demo(tmp_path, capsys):
    data = write_fake_fashion_mnist(tmp_path / "idx", train=8, test=4)
    with gzip.open(data / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08")
    code = demo.main(["--data-dir", str(data), "--no-install", "--out", str(tmp_path / "o")])
    assert code == 2 and "too short" in capsys.readouterr().err


def test_flags():
    args = demo.parse_args([])
    assert args.activations == list(demo.ACTIVATIONS)
    assert (args.epochs, args.seeds, args.jit, args.out) == (2, 2, False, "outputs/demo")
    assert demo.parse_args(["--activations", "PWLU, serf", "--jit"]).activations == [
        "pwlu", "serf"]
    with pytest.raises(SystemExit):
        demo.parse_args(["--activations", "gelu"])


def test_recorder_recovers_per_step_values():
    recorder = demo.RunRecorder(num_samples=10, batch_size=4)  # batches of 4, 4, 2
    recorder.on_epoch_begin(0)
    for b, running in enumerate([(1.0, 0.25), (1.5, 0.5), (1.8, 0.6)]):
        recorder.on_train_batch_end(b, {"loss": running[0], "accuracy": running[1]})
    recorder.on_test_begin()
    recorder.on_epoch_end(0)
    np.testing.assert_allclose(recorder.per_step["loss"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(recorder.per_step["accuracy"], [0.25, 0.75, 1.0])
    assert len(recorder.epoch_seconds) == 1


def test_summary_without_relu():
    records = [{"activation": "serf", "seed": s, "test_accuracy": a, "trainable_parameters": 7,
                "epoch_seconds": [9.0, t]} for s, a, t in ((0, 0.8, 2.0), (1, 0.9, 4.0))]
    rows = demo.summarize(records, ["serf"])
    assert rows[0]["accuracy_mean"] == pytest.approx(0.85)
    assert rows[0]["accuracy_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert rows[0]["seconds_per_epoch"] == 3.0  # first (tracing) epochs left out
    table = demo.markdown_table(rows)
    assert "| serf | 85.00 ± 7.07 (n=2) | n/a | 7 | 3.0 | n/a |" in table
