"""MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1 (TF_CONFIG)
train the ImageNet pipeline (and, slow, the YOLOv8 detection pipeline);
afterwards every weight, BN statistic and PWLU state variable is identical
across the workers."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from training_support import DETECTION
from training_support import IMAGENET
from training_support import LAUNCH
from training_support import free_port
from training_support import tiny_flags


def _h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _run_two_workers(script, flags, tmp_path, timeout=180):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                      "index": i}}))
        log = open(tmp_path / f"worker{i}.log", "w")
        procs.append((subprocess.Popen([sys.executable, LAUNCH, "1", script] + flags,
                                       stdout=log, stderr=subprocess.STDOUT, env=env), log))
    try:
        codes = [p.wait(timeout=timeout) for p, _ in procs]
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(l[-3000:] for l in logs)
    return logs


def _assert_identical_final_weights(tmp_path):
    chief = _h5_arrays(tmp_path / "final.weights.h5")
    other = _h5_arrays(tmp_path / "workers" / "worker_1" / "final.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 10
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    return chief


def test_two_workers_end_with_identical_state(image_folder, tmp_path):
    flags = tiny_flags(image_folder, str(tmp_path), activation="pwlu", strategy="multiworker",
                       epochs=2, steps_per_epoch=2, checkpoint_every=3)
    logs = _run_two_workers(IMAGENET, flags, tmp_path)
    assert "done: step 4" in logs[0] and "top1=" in logs[0]
    assert "Epoch" not in logs[1]  # only the chief reports progress
    chief = _assert_identical_final_weights(tmp_path)
    names = " ".join(chief)
    assert "moving_mean" in names or "batch_normalization" in names or "bn" in names
    assert (tmp_path / "checkpoints" / "ckpt-4.index").exists()


@pytest.mark.slow
def test_yolov8_two_workers(tfds_detection_dir, tmp_path):
    flags = tiny_flags(tfds_detection_dir, str(tmp_path), dataset="tiny_voc",
                       backbone="tiny_pyramid", activation="pwlu", strategy="multiworker",
                       image_size=64, batch_size=4, lr=0.01, eval_steps=1)
    logs = _run_two_workers(DETECTION, flags, tmp_path, timeout=500)
    assert "done: step 2" in logs[0] and "mAP50=" in logs[0]
    _assert_identical_final_weights(tmp_path)
