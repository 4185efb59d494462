"""End-to-end tests of examples/imagenet/train.py on tiny generated data:
every activation, TFDS input with XLA and mixed precision, data-dir errors,
MirroredStrategy over 2 logical CPUs, and kill / restart resumption."""

import importlib.util
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from training_support import IMAGENET
from training_support import LAUNCH
from training_support import corrupt_image_folder
from training_support import run_script
from training_support import tiny_flags


def _script():
    spec = importlib.util.spec_from_file_location("imagenet_train", IMAGENET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_recipe_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        _script().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--strategy", "--jit-compile", "--mixed-precision", "--label-smoothing",
                 "--weight-decay", "--pwlu-phase1-epochs", "--lr-schedule", "--warmup-epochs",
                 "--momentum", "--model-dir", "--data-dir", "--dataset",
                 "--bn-recalibration-steps"):
        assert flag in out
    assert "--batch_size" not in out  # the underscore aliases are accepted, not listed
    assert "(default: 0.1)" in out and "(default: 256)" in out


def test_dashed_and_underscore_flags_give_the_same_options():
    dashed = _script().parse_args(["--data-dir", "d", "--model-dir", "m", "--batch-size", "8",
                                   "--jit-compile", "--warmup-epochs", "0"])
    underscore = _script().parse_args(["--data_dir", "d", "--model_dir", "m", "--batch_size",
                                       "8", "--jit_compile", "--warmup_epochs", "0"])
    assert dashed == underscore
    assert (dashed.batch_size, dashed.jit_compile, dashed.warmup_epochs) == (8, True, 0.0)
    assert dashed.lr == 0.1 and dashed.epochs == 90  # the classification recipe's defaults


@pytest.mark.parametrize("argv,message", [
    (["--data-dir", "d"], "required: --model-dir"),
    (["--data-dir", "d", "--model-dir", "m", "--batch-sise", "8"], "unrecognized arguments"),
    (["--data-dir", "d", "--model-dir", "m", "--lr-schedule", "step"], "invalid choice"),
    (["--data-dir", "d", "--model-dir", "m", "--epochs", "0"], "'epochs' must be >= 1"),
])
def test_bad_command_lines_exit_with_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _script().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("activation", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_trains_each_activation(image_folder, tmp_path, activation, capsys):
    from keras_acts.training.classification import train_classifier

    args = _script().parse_args(tiny_flags(image_folder, str(tmp_path), activation=activation,
                                           epochs=2))
    out = train_classifier(args)
    assert out["final_step"] == 4 and out["initial_step"] == 0
    assert len(out["history"]["eval"]) == 2
    assert 0.0 <= out["history"]["eval"][-1]["top1"] <= 1.0
    assert os.path.exists(os.path.join(tmp_path, "final.weights.h5"))
    assert os.listdir(os.path.join(tmp_path, "logs", "train"))
    printed = capsys.readouterr().out
    for key in ("loss:", "acc:", "lr:", "img/s:", "top5="):
        assert key in printed
    if activation == "pwlu":
        from keras_acts.training import pwlu_layers

        layers = pwlu_layers(out["model"])
        assert layers and not any(layer.in_phase1 for layer in layers)


def test_tfds_with_xla_and_mixed_precision(tfds_dir, tmp_path):
    from keras_acts.training.classification import train_classifier

    args = _script().parse_args(tiny_flags(tfds_dir, str(tmp_path), dataset="tiny_images",
                                           activation="acon_c", jit_compile=True,
                                           mixed_precision=True))
    out = train_classifier(args)
    assert out["final_step"] == 2
    assert out["model"].layers[1].dtype_policy.name == "mixed_float16"
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_missing_data_dir_fails_before_training(tmp_path, capsys):
    code = _script().main(tiny_flags(str(tmp_path / "absent"), str(tmp_path / "run")))
    assert code == 2
    err = capsys.readouterr().err
    assert "absent" in err and "Expected layout" in err and "train/<class_name>" in err
    assert not os.path.exists(tmp_path / "run")


def test_unreadable_images_are_skipped_and_named(tmp_path, capfd):
    """Issue 11 item 8: a truncated JPEG and a text file named .jpg in train/, an
    empty .png in val/: training runs through, each file is named in a warning
    with the reason, and the epoch summary counts the skipped training images."""
    from keras_acts.training.classification import train_classifier

    root, bad = corrupt_image_folder(str(tmp_path / "data"))  # 16 training files
    args = _script().parse_args(tiny_flags(root, str(tmp_path / "run"), steps_per_epoch=2))
    out = train_classifier(args)  # 2 steps x 8 = every training file once
    printed = capfd.readouterr()
    assert out["final_step"] == 2
    assert out["history"]["train"][0]["skipped"] == 2
    assert "Epoch 1: skipped 2 unreadable image(s)" in printed.out
    warnings = [line for line in printed.err.splitlines() if "skipping unreadable image" in line]
    for key, reason in (("truncated", "truncated JPEG file"),
                        ("text", "not a JPEG, PNG, GIF, BMP or WebP file"),
                        ("empty", "empty file")):
        assert any(bad[key] in line and reason in line for line in warnings), (key, warnings)
    assert 0.0 <= out["history"]["eval"][0]["top1"] <= 1.0
    assert "Traceback" not in printed.err


def test_undecodable_image_stops_with_its_name(tmp_path, capfd):
    """A JPEG with intact start and end markers but a corrupt header passes the
    cheap check and fails to decode: the run stops with one error line naming
    it (exit status 2), not a traceback."""
    from keras_acts.training.synthetic import write_image_folder

    root = write_image_folder(str(tmp_path / "data"), num_classes=2, per_class=4,
                              val_per_class=2)
    path = os.path.join(root, "train", "class_1", "img_0.jpg")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[20:220] = bytes(range(200))
    with open(path, "wb") as f:
        f.write(bytes(data))
    code = _script().main(tiny_flags(root, str(tmp_path / "run"), steps_per_epoch=1))
    err = capfd.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and path in lines[0] and "epoch 1, step 0" in lines[0], err[-2000:]
    assert "Traceback" not in err


def test_mirrored_two_logical_cpus(image_folder, tmp_path):
    proc = run_script(IMAGENET, tiny_flags(image_folder, str(tmp_path), activation="pwlu",
                                           strategy="mirrored", epochs=2), logical_cpus=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: step 4" in proc.stdout
    assert "top1=" in proc.stdout


def _weights(path):
    """``{dataset path: array}`` of a ``.weights.h5`` file."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _kill_flags(image_folder, model_dir, activation, verbose=0):
    return tiny_flags(image_folder, str(model_dir), activation=activation, steps_per_epoch=4,
                      epochs=2, checkpoint_every=2, pwlu_phase1_epochs=1, verbose=verbose)


KILL_ACTIVATIONS = ("pwlu", "acon_c", "meta_acon", "serf")


@pytest.fixture(scope="module")
def killed_runs(image_folder, tmp_path_factory):
    """One run of examples/imagenet/train.py per activation, all started at
    once in the background (throttled to 0.5 s per step), each killed with
    SIGKILL as soon as its step-6 checkpoint is complete (epoch 1 ends at
    step 4: mid-epoch 2; see launch.py's KILL_AFTER_CHECKPOINT). ``{activation:
    (model_dir, process)}``."""
    runs = {}
    for activation in KILL_ACTIVATIONS:
        model_dir = tmp_path_factory.mktemp(f"killed_{activation}")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   KILL_AFTER_CHECKPOINT=str(model_dir / "checkpoints" / "ckpt-6"))
        runs[activation] = (model_dir, subprocess.Popen(
            [sys.executable, LAUNCH, "1", IMAGENET, "--throttle_s", "0.5"] +
            _kill_flags(image_folder, model_dir, activation), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env))
    yield runs
    for _, proc in runs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


@pytest.mark.parametrize("activation", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_killed_run_resumes_bit_identical(image_folder, tmp_path, killed_runs, activation,
                                          capsys):
    """Issue 11 item 1: kill -9 mid-epoch 2 (after the step-6 checkpoint), rerun
    the same command: it resumes at step 6 and its final weights (every
    variable: PWLU phase and statistics, BN moving statistics, MetaAcon's
    generator) are bit-identical to those of an uninterrupted run."""
    from keras_acts.training.classification import train_classifier

    # The uninterrupted reference, in this process while the killed run goes on.
    args = _script().parse_args(_kill_flags(image_folder, tmp_path / "ref", activation))
    reference = train_classifier(args)
    assert reference["final_step"] == 8
    model_dir, proc = killed_runs[activation]
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == -signal.SIGKILL, output[-3000:]
    ckpt_dir = model_dir / "checkpoints"
    assert (ckpt_dir / "ckpt-6.index").exists(), output[-3000:]
    assert not (ckpt_dir / "ckpt-8.index").exists()

    capsys.readouterr()
    assert _script().main(_kill_flags(image_folder, model_dir, activation, verbose=1)) == 0
    printed = capsys.readouterr().out
    assert re.search(r"Resumed from .*ckpt-6 at step 6", printed), printed
    assert "Epoch 2/2 (resuming at step 2)" in printed
    assert "Epoch 1/2" not in printed
    assert "done: step 8" in printed

    want = _weights(reference["weights_path"])
    got = _weights(model_dir / "final.weights.h5")
    assert sorted(got) == sorted(want)
    differ = {name: float(np.max(np.abs(got[name].astype(np.float64) - want[name])))
              for name in want if got[name].tobytes() != want[name].tobytes()}
    assert not differ, f"{len(differ)} of {len(want)} weights differ (max abs diff): {differ}"


def _train_real_backbone(image_folder, tmp_path, backbone, source, activation):
    from keras_acts.training.classification import train_classifier

    args = _script().parse_args(tiny_flags(image_folder, str(tmp_path), backbone=backbone,
                                           source=source, activation=activation,
                                           batch_size=4, eval_steps=1))
    out = train_classifier(args)
    assert out["final_step"] == 2
    assert 0.0 <= out["history"]["eval"][-1]["top1"] <= 1.0
    return out


def test_resnet18_keras_hub_pwlu(image_folder, tmp_path):
    from keras_acts.training import pwlu_layers

    out = _train_real_backbone(image_folder, tmp_path, "resnet18", "keras_hub", "pwlu")
    layers = pwlu_layers(out["model"])  # every ReLU of ResNet-18, realigned after epoch 1
    assert len(layers) == 17 and not any(layer.in_phase1 for layer in layers)


@pytest.mark.slow
@pytest.mark.parametrize("backbone,source,activation", [
    ("resnet18", "keras_hub", "acon_c"), ("resnet18", "keras_hub", "meta_acon"),
    ("resnet18", "keras_hub", "serf"), ("resnet18", "keras_cv", "pwlu"),
    ("mobilenet_v3_small", "keras", "pwlu"), ("mobilenet_v3_small", "keras", "acon_c"),
    ("mobilenet_v3_small", "keras", "meta_acon"), ("mobilenet_v3_small", "keras", "serf"),
])
def test_real_backbones(image_folder, tmp_path, backbone, source, activation):
    _train_real_backbone(image_folder, tmp_path, backbone, source, activation)


def test_bn_recalibration_runs_after_training_before_final_weights(image_folder, tmp_path,
                                                                   monkeypatch):
    """The pipeline's call site of keras_acts.callbacks.recalibrate_batch_norm
    (issue 12; replaced here by a recording stand-in): called once after the
    last step with the model, a dataset of image batches and the steps, and
    what it changes is in the final weights."""
    import keras

    from keras_acts import callbacks
    from keras_acts.training.classification import train_classifier

    calls = []

    def fake(model, dataset, steps):
        batches = list(dataset.take(steps))
        calls.append((model, steps, [tuple(b.shape) for b in batches]))
        bn = model.get_layer("tiny_cnn").get_layer("bn0")
        bn.moving_mean.assign(keras.ops.full(bn.moving_mean.shape, 42.0))

    monkeypatch.setattr(callbacks, "recalibrate_batch_norm", fake, raising=False)
    args = _script().parse_args(tiny_flags(image_folder, str(tmp_path),
                                           bn_recalibration_steps=3))
    out = train_classifier(args)
    assert len(calls) == 1 and calls[0][0] is out["model"] and calls[0][1] == 3
    assert calls[0][2] == [(8, 32, 32, 3)] * 3
    saved = _weights(out["weights_path"])
    assert any(np.all(v == 42.0) for v in saved.values())


def test_bn_recalibration_with_keras_acts_recalibrate_batch_norm(image_folder, tmp_path):
    """bn_recalibration_steps wired to the real keras_acts.callbacks.recalibrate_batch_norm
    (issue 12): the same run with and without it ends with the same trained
    weights, and different batch-norm moving statistics."""
    from keras_acts.training.classification import train_classifier

    runs = {}
    for steps in (0, 2):
        args = _script().parse_args(tiny_flags(image_folder, str(tmp_path / f"r{steps}"),
                                               activation="meta_acon",
                                               bn_recalibration_steps=steps))
        runs[steps] = _weights(train_classifier(args)["weights_path"])
    assert sorted(runs[0]) == sorted(runs[2])
    differ = {name for name in runs[0] if runs[0][name].tobytes() != runs[2][name].tobytes()}
    # Only vars 2 and 3 of batch norms (moving mean, moving variance; the CNN's and
    # Meta-ACON's generator's) change.
    other = [name for name in differ if not name.endswith(("vars/2", "vars/3"))]
    assert differ and not other, other
