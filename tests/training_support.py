"""Shared by tests/training and tests/examples: paths, tiny command-line
flags and subprocess launchers for the pipeline tests (the tiny-dataset
fixtures live in tests/conftest.py)."""

import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "tests", "training", "launch.py")
IMAGENET = os.path.join(REPO, "examples", "imagenet", "train.py")
DETECTION = os.path.join(REPO, "examples", "detection", "train.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_flags(data_dir, model_dir, **overrides):
    flags = {"data_dir": data_dir, "model_dir": model_dir, "backbone": "tiny_cnn",
             "activation": "serf", "image_size": "32", "batch_size": "8", "epochs": "1",
             "steps_per_epoch": "2", "log_every": "1", "pwlu_phase1_epochs": "1",
             "warmup_epochs": "0", "lr": "0.5"}
    flags.update({k: str(v) for k, v in overrides.items()})
    out = []
    for k, v in flags.items():
        if v == "True":
            out.append(f"--{k}")
        elif v != "False":
            out += [f"--{k}", v]
    return out


def run_script(script, args, logical_cpus=1, env=None, timeout=240):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, LAUNCH, str(logical_cpus), script] + args,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def corrupt_image_folder(root, num_classes=2, per_class=7):
    """An image folder (see ``write_image_folder``) whose train split also holds
    a truncated JPEG (class_0) and a text file named ``.jpg`` (class_1), and
    whose val split holds an empty ``.png``: ``num_classes * per_class + 2``
    training files. Returns ``(root, {"truncated": path, "text": path,
    "empty": path})``."""
    from keras_acts.training.synthetic import write_image_folder

    write_image_folder(root, num_classes=num_classes, per_class=per_class, val_per_class=3)
    good = os.path.join(root, "train", "class_0", "img_0.jpg")
    with open(good, "rb") as f:
        data = f.read()
    bad = {"truncated": os.path.join(root, "train", "class_0", "truncated.jpg"),
           "text": os.path.join(root, "train", "class_1", "notes.jpg"),
           "empty": os.path.join(root, "val", "class_0", "empty.png")}
    with open(bad["truncated"], "wb") as f:
        f.write(data[:len(data) // 2])
    with open(bad["text"], "w") as f:
        f.write("not an image\n")
    open(bad["empty"], "wb").close()
    return root, bad
