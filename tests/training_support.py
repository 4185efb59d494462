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
