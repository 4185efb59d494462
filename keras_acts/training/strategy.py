"""Creating a ``tf.distribute`` strategy from a name, the small facts a
training loop needs about it (chief or not, worker-private directories,
mixed-precision policy), and averaging replica-local state across replicas.

Example:
    >>> from keras_acts.training import strategy as st
    >>> strategy = st.create_strategy("mirrored")
    >>> st.is_chief(strategy)
    True
"""

import json
import os
import weakref

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
    """True on the process that writes logs and the real checkpoints
    (``strategy.extended.should_checkpoint``): every process but the
    non-chief workers of a multi-worker cluster (the chief, or worker 0 when
    the cluster has no chief).

    Example:
        >>> is_chief(tf.distribute.get_strategy())
        True
    """
    return bool(strategy.extended.should_checkpoint)


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


_SYNC_CACHE = weakref.WeakKeyDictionary()


def sync_replica_state(strategy, model):
    """Average every float non-trainable variable (BN moving statistics,
    ...) over all replicas and workers, so every replica holds the same
    state. Keras 3's BatchNormalization updates its moving statistics per
    replica under ``strategy.run``; the trainer calls this before each
    checkpoint, evaluation and at the end. Collective: every worker must call
    it. A no-op with one replica.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
        >>> sync_replica_state(tf.distribute.get_strategy(), model)   # one replica: no-op
    """
    if strategy.num_replicas_in_sync <= 1:
        return
    cached = _SYNC_CACHE.get(model)
    if cached is None or cached[0] is not strategy:
        variables = [v for v in model.non_trainable_variables
                     if v.dtype in ("float16", "bfloat16", "float32", "float64")
                     and getattr(getattr(v, "value", v), "synchronization", None)
                     != tf.VariableSynchronization.ON_READ]

        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            values = ctx.all_reduce(tf.distribute.ReduceOp.MEAN,
                                    [tf.identity(tf.convert_to_tensor(v)) for v in variables])
            for v, value in zip(variables, values):
                v.assign(value)

        fn = tf.function(lambda: strategy.run(replica_fn)) if variables else (lambda: None)
        cached = (strategy, fn)
        _SYNC_CACHE[model] = cached
    cached[1]()
