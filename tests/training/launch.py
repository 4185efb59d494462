"""Run an example script in this process after configuring logical CPUs.

Usage: python launch.py <n_logical_cpus> <script.py> [script args...]
(Logical devices must be configured before TensorFlow initialises, hence a
fresh process per configuration.)
"""

import os
import runpy
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
    n = int(sys.argv[1])
    script = sys.argv[2]
    import tensorflow as tf

    if n > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    sys.argv = [script] + sys.argv[3:]
    runpy.run_path(script, run_name="__main__")
