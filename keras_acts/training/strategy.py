"""Creating a ``tf.distribute`` strategy from a name, and the small facts a
training loop needs about it (chief or not, worker-private directories,
mixed-precision policy).

Example:
    >>> from keras_acts.training import strategy as st
    >>> strategy = st.create_strategy("mirrored")
    >>> st.is_chief(strategy)
    True
"""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def create_strategy(name="default", tpu=None, devices=None):
    """Return the ``tf.distribute.Strategy`` named ``name``.

    * ``"default"``: the default (no-op) strategy: one device.
    * ``"mirrored"``: ``MirroredStrategy`` over ``devices`` (default: all GPUs, or
      the CPU when there is none; logical CPU devices configured beforehand are
      used when there is no GPU and more than one logical CPU).
    * ``"multiworker"``: ``MultiWorkerMirroredStrategy``; the cluster comes from
      the ``TF_CONFIG`` environment variable (one worker when it is unset). It
      must be created before any other TensorFlow op runs in the process.
    * ``"tpu"``: ``TPUStrategy`` on the TPU named by ``tpu`` (``""``/``None``:
      the local TPU VM or the one set in ``TPU_NAME``).

    Raises ``ValueError`` for an unknown name.

    Example:
        >>> strategy = create_strategy("default")
        >>> strategy.num_replicas_in_sync
        1
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None and not tf.config.list_logical_devices("GPU"):
            cpus = tf.config.list_logical_devices("CPU")
            if len(cpus) > 1:
                devices = [d.name for d in cpus]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        tf_config = os.environ.get("TF_CONFIG")
        if tf_config:
            try:
                json.loads(tf_config)
            except ValueError as err:
                raise ValueError(f"TF_CONFIG is not valid JSON: {tf_config!r}") from err
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def task_info(strategy):
    """``(task_type, task_id)`` of this process (``("worker", 0)`` when single).

    Example:
        >>> task_info(tf.distribute.get_strategy())
        ('worker', 0)
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(
            resolver, tf.distribute.cluster_resolver.TPUClusterResolver):
        return "worker", 0
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return "worker", 0
    return task_type, int(task_id or 0)


def is_chief(strategy):
    """True on the process that writes logs and the real checkpoints: every
    process but the non-chief workers of a multi-worker cluster.

    Example:
        >>> is_chief(tf.distribute.get_strategy())
        True
    """
    task_type, task_id = task_info(strategy)
    if task_type == "chief":
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = False
    if resolver is not None and task_type is not None:
        try:
            has_chief = "chief" in resolver.cluster_spec().as_dict()
        except Exception:  # noqa: BLE001 - resolvers without a cluster spec
            has_chief = False
    return (not has_chief) and task_type in ("worker", None) and task_id == 0


def worker_dir(base_dir, strategy):
    """Directory this process writes its checkpoints to: ``base_dir`` on the
    chief, ``base_dir/workers/<type>_<id>`` on the other workers (they must
    save too, collectively, but their copies are throw-away).

    Example:
        >>> worker_dir("/tmp/run", tf.distribute.get_strategy())
        '/tmp/run'
    """
    if is_chief(strategy):
        return base_dir
    task_type, task_id = task_info(strategy)
    return os.path.join(base_dir, "workers", f"{task_type}_{task_id}")


def set_mixed_precision(enabled, strategy_name="default"):
    """Set Keras' global dtype policy: ``mixed_bfloat16`` on TPU,
    ``mixed_float16`` elsewhere when ``enabled``, else ``float32``.
    Returns the policy name. Call before building the model.

    Example:
        >>> set_mixed_precision(False)
        'float32'
    """
    if not enabled:
        policy = "float32"
    elif strategy_name == "tpu":
        policy = "mixed_bfloat16"
    else:
        policy = "mixed_float16"
    keras.mixed_precision.set_global_policy(policy)
    return policy
