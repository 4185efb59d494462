"""The main job (``python -m keras_acts.demo``) end to end, as a user runs it, on a
tiny synthetic IDX directory: tables, recalibration figures, PNGs, TFLite export."""

import json
import math
import os
import subprocess
import sys

import matplotlib.image
import numpy as np

from fashion_mnist_fake import write_fake_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, TEST = 256, 128


def _demo(*args, timeout=600):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "keras_acts.demo", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _png_ok(path):
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.std(image[..., :3])) > 0.01


def test_demo_end_to_end(tmp_path):
    data = write_fake_fashion_mnist(tmp_path / "idx", train=TRAIN, test=TEST)
    out = tmp_path / "out"
    done = _demo("--data-dir", str(data), "--out", str(out), "--epochs", "1", "--seeds", "2",
                 "--activations", "relu,pwlu", "--batch_size", "64", "--width", "4",
                 "--recalibration-steps", "3", "--no-install")
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    # The summary table: one row per activation, in order, paired delta with its CI.
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    summary = rows[:rows.index(next(r for r in rows[1:] if r.startswith("| activation")))]
    assert [r.split("|")[1].strip() for r in summary[1:]] == ["relu", "pwlu"]
    assert "Δ vs ReLU, pp (95 % CI)" in summary[0] and "verdict" in summary[0]
    pwlu_row = summary[2].split("|")
    assert "[" in pwlu_row[3] and pwlu_row[4].strip() in ("better", "within noise", "worse")
    results = json.loads((out / "results.json").read_text())
    assert results["test_images"] == TEST and results["train_images"] == TRAIN
    assert results["config"]["batch_size"] == 64 and results["config"]["protocol"] == "default"
    # PWLU left phase I after half of the first epoch (4 steps of 64 -> 2).
    assert results["config"]["pwlu_phase1_steps"] == 2
    runs = results["runs"]
    assert [(r["activation"], r["seed"]) for r in runs] == [
        ("relu", 0), ("relu", 1), ("pwlu", 0), ("pwlu", 1)]
    for r in runs:
        for key in ("test_accuracy", "accuracy_before_recalibration",
                    "batch_statistics_accuracy"):
            assert 0.0 <= r[key] <= 1.0
        assert r["gap_after"] == abs(r["test_accuracy"] - r["batch_statistics_accuracy"])
        assert r["run_seconds"] >= r["fit_seconds"] > 0 and len(r["load_average"]) == 2
        assert len(r["history"]["batch_loss"]) == 4
        assert all(math.isfinite(v) for v in r["history"]["batch_loss"])
    assert all(r["pwlu_layers_still_in_phase1"] == 0 for r in runs if r["activation"] == "pwlu")
    summary_rows = results["summary"]
    assert summary_rows[1]["delta_vs_relu"]["n"] == 2
    assert summary_rows[1]["trainable_parameters"] > summary_rows[0]["trainable_parameters"]
    # Figures: learning curves and the shapes of the learnable activations.
    assert set(results["figures"]) == {"learning_curves", "shapes_pwlu"}
    for path in results["figures"].values():
        _png_ok(path)
    # Export of the best keras_acts model (not ReLU), float32, with parity.
    tfl = results["tflite"]
    assert tfl["status"] == "ok" and tfl["activation"] == "pwlu", tfl
    assert tfl["parity"]["max_rel"] < 1e-4 and tfl["parity"]["argmax_agreement"] >= 0.99
    assert os.path.getsize(tfl["path"]) > 1000
    assert (out / "results.md").read_text().startswith("| activation")


def test_command_line_errors(tmp_path):
    done = _demo("--data-dir", str(tmp_path), "--no-install", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr        # one error line, no traceback
    assert "dataset-fashion-mnist" in errors[0] and "--data-dir" in errors[0]
    assert str(tmp_path) in errors[0] and "Traceback" not in done.stderr
    done = _demo("--activations", "gelu")
    assert done.returncode == 2 and "unknown activation(s) ['gelu']" in done.stderr
    done = _demo("--protocol", "short")
    assert done.returncode == 2 and "'default', 'long'" in done.stderr
