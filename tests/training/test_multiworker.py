"""MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1 (TF_CONFIG)
train the ImageNet pipeline; afterwards every weight, BN statistic and PWLU
state variable is identical across the workers."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np

from training_helpers import IMAGENET
from training_helpers import LAUNCH
from training_helpers import free_port
from training_helpers import tiny_flags


def _h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_two_workers_end_with_identical_state(image_folder, tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    flags = tiny_flags(image_folder, str(tmp_path), activation="pwlu", strategy="multiworker",
                       epochs=2, steps_per_epoch=2, checkpoint_every=3)
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                      "index": i}}))
        log = open(tmp_path / f"worker{i}.log", "w")
        procs.append((subprocess.Popen([sys.executable, LAUNCH, "1", IMAGENET] + flags,
                                       stdout=log, stderr=subprocess.STDOUT, env=env), log))
    try:
        codes = [p.wait(timeout=180) for p, _ in procs]
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(l[-3000:] for l in logs)
    assert "done: step 4" in logs[0] and "top1=" in logs[0]
    assert "Epoch" not in logs[1]  # only the chief reports progress
    chief = _h5_arrays(tmp_path / "final.weights.h5")
    other = _h5_arrays(tmp_path / "workers" / "worker_1" / "final.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 10
    names = " ".join(chief)
    assert "moving_mean" in names or "batch_normalization" in names or "bn" in names
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    assert (tmp_path / "checkpoints" / "ckpt-4.index").exists()
