"""The main job (``python -m keras_acts.demo``) end to end, as a user runs it, on a
tiny synthetic IDX directory: tables, recalibration figures, PNGs, TFLite export."""

import json
import math
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from fashion_mnist_fake import write_fake_fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, TEST = 256, 128
NAMES = ["relu", "pwlu", "npwlu", "acon_frelu"]   # the fast end-to-end test's subset


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
                 "--activations", ",".join(NAMES), "--batch_size", "64", "--width", "4",
                 "--recalibration-steps", "3", "--no-install")
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    # The summary table: one row per activation, in order, paired delta with its CI.
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    summary = rows[:rows.index(next(r for r in rows[1:] if r.startswith("| activation")))]
    assert [r.split("|")[1].strip() for r in summary[1:]] == NAMES
    assert "Δ vs ReLU, pp (95 % CI)" in summary[0] and "verdict" in summary[0]
    for row in summary[2:]:     # every keras_acts row, the family's included: paired verdict
        cells = row.split("|")
        assert "[" in cells[3] and cells[4].strip() in ("better", "within noise", "worse")
    results = json.loads((out / "results.json").read_text())
    assert results["test_images"] == TEST and results["train_images"] == TRAIN
    assert results["config"]["batch_size"] == 64 and results["config"]["protocol"] == "default"
    # PWLU left phase I after half of the first epoch (4 steps of 64 -> 2).
    assert results["config"]["pwlu_phase1_steps"] == 2
    runs = results["runs"]
    assert [(r["activation"], r["seed"]) for r in runs] == [
        (name, seed) for name in NAMES for seed in (0, 1)]
    for r in runs:
        for key in ("test_accuracy", "accuracy_before_recalibration",
                    "batch_statistics_accuracy"):
            assert 0.0 <= r[key] <= 1.0
        assert r["gap_after"] == abs(r["test_accuracy"] - r["batch_statistics_accuracy"])
        assert r["run_seconds"] >= r["fit_seconds"] > 0 and len(r["load_average"]) == 2
        assert len(r["history"]["batch_loss"]) == 4
        assert all(math.isfinite(v) for v in r["history"]["batch_loss"])
    # PWLU and N-PWLU both left phase I (N-PWLU's own default, 1000 steps, would not).
    two_phase = [r for r in runs if r["activation"] in ("pwlu", "npwlu")]
    assert len(two_phase) == 4 and all(r["pwlu_layers_still_in_phase1"] == 0 for r in two_phase)
    summary_rows = results["summary"]
    assert [row["delta_vs_relu"]["n"] for row in summary_rows[1:]] == [2, 2, 2]
    relu_params = summary_rows[0]["trainable_parameters"]
    assert all(row["trainable_parameters"] > relu_params for row in summary_rows[1:])
    # Figures: learning curves and the shapes of the learnable activations.
    assert set(results["figures"]) == {"learning_curves", "shapes_pwlu", "shapes_npwlu",
                                       "shapes_acon_frelu"}
    for path in results["figures"].values():
        _png_ok(path)
    # Export of the best keras_acts run (never ReLU), float32, with parity.
    tfl = results["tflite"]
    best = max((r for r in runs if r["activation"] != "relu"), key=lambda r: r["test_accuracy"])
    assert tfl["status"] == "ok" and tfl["activation"] == best["activation"], tfl
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


def test_small_cnn_sites_are_all_spatial():
    """ACON-FReLU needs NHWC input: every activation site of the main job's model is a
    conv-BN-activation inside a block (the head is flatten -> dense logits, no
    activation), so ACON-FReLU replaces each of them."""
    import keras

    from keras_acts.demo import _factory
    from keras_acts.demo import parse_args
    from keras_acts.layers import AconFReLU
    from keras_acts.layers import ActivationLayer
    from keras_acts.models import small_cnn
    from keras_acts.registry import iter_layers

    args = parse_args([])
    relu = small_cnn("relu", width=4, convs_per_block=1, head="flatten")
    sites = [layer for layer in relu.layers if isinstance(layer, keras.layers.Activation)]
    model = small_cnn(_factory("acon_frelu", args), width=4, convs_per_block=1, head="flatten")
    ours = list(iter_layers(model, types=ActivationLayer))
    assert len(ours) == len(sites) == 2 and all(isinstance(a, AconFReLU) for a in ours)
    assert [len(a.input.shape) for a in ours] == [4, 4]
    assert [a.strides for a in ours] == [1, 1]     # the pooling stays in the model's max-pool
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 1 and dense[0].activation.__name__ == "linear"
    # A non-spatial site (after Flatten or Dense) would be refused clearly, not mis-built.
    with pytest.raises(ValueError, match="rank 4.*received input_shape=.None, 10. of rank 2"):
        AconFReLU()(keras.Input((10,)))


def _trained_like(name, x):
    """A small main-job model of ``name`` with non-trivial weights: N-PWLU realigned to
    non-uniform knots, ACON-FReLU's batch norms with moved statistics."""
    import keras

    from keras_acts.demo import _factory
    from keras_acts.demo import parse_args
    from keras_acts.layers import ActivationLayer
    from keras_acts.models import small_cnn
    from keras_acts.registry import iter_layers

    keras.utils.set_random_seed(0)
    args = parse_args(["--pwlu-phase1-steps", "0"])
    model = small_cnn(_factory(name, args), width=4, convs_per_block=1, head="flatten",
                      bn_momentum=0.9)
    model(x[:2])
    rng = np.random.default_rng(3)
    for layer in iter_layers(model, types=ActivationLayer):
        if name == "npwlu":
            c = layer.knots.shape[0]
            layer.set_parameters(left_bound=rng.uniform(-2.0, -1.0, c),
                                 widths=rng.uniform(0.1, 1.5, (c, 4)),
                                 slopes=rng.normal(size=(c, 4)))
    for bn in iter_layers(model, types=keras.layers.BatchNormalization):
        bn.moving_mean.assign(rng.normal(scale=0.3, size=bn.moving_mean.shape))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, bn.moving_variance.shape))
    return model


def test_export_best_family_rows(tmp_path):
    """Whichever activation wins, export_best converts it: N-PWLU (non-uniform knots) and
    ACON-FReLU to builtin-op float32 TFLite with parity; a failure is reported, not raised."""
    from keras_acts import demo

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 64).astype("int32")
    for name in ("npwlu", "acon_frelu"):
        model = _trained_like(name, x)
        result = demo.export_best(model, name, x, y, str(tmp_path))
        assert result["status"] == "ok", result
        assert result["activation"] == name and os.path.getsize(result["path"]) > 1000
        assert result["parity"]["max_rel"] < 1e-4
        assert result["parity"]["argmax_agreement"] == 1.0
        keras_accuracy = np.mean(np.asarray(model.predict(x, verbose=0)).argmax(-1) == y)
        assert result["tflite_test_accuracy"] == keras_accuracy


def test_export_best_reports_a_failed_conversion(tmp_path, monkeypatch, capsys):
    import keras_acts.export

    from keras_acts import demo

    def refuse(model, path, *args, **kwargs):
        raise ValueError("op FOO is not a TFLite builtin\nsecond line")

    monkeypatch.setattr(keras_acts.export, "to_tflite", refuse)
    x = np.zeros((4, 28, 28, 1), "float32")
    result = demo.export_best(_trained_like("acon_frelu", x), "acon_frelu", x,
                              np.zeros(4, "int32"), str(tmp_path))
    assert result == {"status": "failed", "activation": "acon_frelu",
                      "reason": "ValueError: op FOO is not a TFLite builtin second line"}
    printed = capsys.readouterr().out
    assert "TFLite export of the best acon_frelu run FAILED: ValueError: op FOO" in printed
