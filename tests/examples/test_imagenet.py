"""End-to-end tests of examples/imagenet/train.py on tiny generated data:
every activation, TFDS input with XLA and mixed precision, data-dir errors,
MirroredStrategy over 2 logical CPUs, and kill / restart resumption."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from training_support import IMAGENET
from training_support import LAUNCH
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
    for flag in ("--strategy", "--jit_compile", "--mixed_precision", "--label_smoothing",
                 "--weight_decay", "--pwlu_phase1_epochs", "--lr_schedule", "--warmup_epochs",
                 "--momentum", "--model_dir", "--data_dir", "--dataset"):
        assert flag in out


@pytest.mark.parametrize("activation", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_trains_each_activation(image_folder, tmp_path, activation, capsys):
    from keras_acts.training.classification import train_classifier

    args = _script().parse_args(tiny_flags(image_folder, str(tmp_path), activation=activation,
                                           epochs=2))
    out = train_classifier(**vars(args))
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
    out = train_classifier(**vars(args))
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


def test_mirrored_two_logical_cpus(image_folder, tmp_path):
    proc = run_script(IMAGENET, tiny_flags(image_folder, str(tmp_path), activation="pwlu",
                                           strategy="mirrored", epochs=2), logical_cpus=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: step 4" in proc.stdout
    assert "top1=" in proc.stdout


def test_killed_run_resumes_from_last_checkpoint(image_folder, tmp_path):
    flags = tiny_flags(image_folder, str(tmp_path), activation="pwlu", steps_per_epoch=4,
                       epochs=2, checkpoint_every=2, pwlu_phase1_epochs=1)
    ckpt_dir = tmp_path / "checkpoints"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, LAUNCH, "1", IMAGENET] + flags +
                            ["--throttle_s", "1.5"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 150
        # Kill mid-epoch 2: after the step-6 checkpoint (epoch 1 ends at step 4).
        while time.time() < deadline and not (ckpt_dir / "ckpt-6.index").exists():
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.1)
        assert (ckpt_dir / "ckpt-6.index").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert not (ckpt_dir / "ckpt-8.index").exists()
    resumed = run_script(IMAGENET, flags)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"Resumed from .*ckpt-6 at step 6", resumed.stdout), resumed.stdout
    assert "Epoch 2/2 (resuming at step 2)" in resumed.stdout
    assert "Epoch 1/2" not in resumed.stdout
    assert "done: step 8" in resumed.stdout
    assert (ckpt_dir / "ckpt-8.index").exists()


def _train_real_backbone(image_folder, tmp_path, backbone, source, activation):
    from keras_acts.training.classification import train_classifier

    args = _script().parse_args(tiny_flags(image_folder, str(tmp_path), backbone=backbone,
                                           source=source, activation=activation,
                                           batch_size=4, eval_steps=1))
    out = train_classifier(**vars(args))
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
    ("mobilenet_v3_small", "keras_cv", "pwlu"), ("mobilenet_v3_small", "keras_cv", "acon_c"),
    ("mobilenet_v3_small", "keras_cv", "meta_acon"), ("mobilenet_v3_small", "keras_cv", "serf"),
])
def test_real_backbones(image_folder, tmp_path, backbone, source, activation):
    _train_real_backbone(image_folder, tmp_path, backbone, source, activation)
