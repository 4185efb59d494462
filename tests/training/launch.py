"""Run an example script in this process after configuring logical CPUs.

Usage: python launch.py <n_logical_cpus> <script.py> [script args...]
(Logical devices must be configured before TensorFlow initialises, hence a
fresh process per configuration.)

With ``KILL_AFTER_CHECKPOINT=<dir>/ckpt-<n>`` in the environment, a watcher
thread sends this process SIGKILL as soon as that checkpoint is complete (the
``checkpoint`` state file in ``<dir>`` names it as the latest): kill -9 at a
known point, without racing a watcher in another process.
"""

import os
import runpy
import signal
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _kill_after_checkpoint(prefix):
    state = os.path.join(os.path.dirname(prefix), "checkpoint")
    line = f'model_checkpoint_path: "{os.path.basename(prefix)}"'
    while True:
        try:
            with open(state) as f:
                if f.readline().strip() == line:
                    break
        except OSError:
            pass
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    n = int(sys.argv[1])
    script = sys.argv[2]
    import tensorflow as tf

    if n > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    if os.environ.get("KILL_AFTER_CHECKPOINT"):
        threading.Thread(target=_kill_after_checkpoint,
                         args=(os.environ["KILL_AFTER_CHECKPOINT"],), daemon=True).start()
    sys.argv = [script] + sys.argv[3:]
    runpy.run_path(script, run_name="__main__")
