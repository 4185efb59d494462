"""Generic parts of the input pipelines, shared by classification and
detection: the data-directory error, batch arithmetic, the resumable
shuffled / sharded / batched training pipeline and the padded evaluation
pipeline for ``tf.distribute``, and opening a prepared TFDS dataset.

Example:
    >>> records = tf.data.Dataset.range(10)
    >>> ds = train_pipeline(records, lambda r, key: r, 4, steps=2, epoch=0)
    >>> [b.shape.as_list() for b in ds]
    [[4], [4]]
"""

import os

import tensorflow as tf

from keras_acts._extras import require


class DataDirError(ValueError):
    """A data directory is missing or does not have the expected layout.

    Example:
        >>> try:
        ...     tfds_builder("mnist", data_dir="/nonexistent")
        ... except DataDirError as err:
        ...     print(str(err)[:55])
        TFDS data directory '/nonexistent' does not exist. Expe
    """


class SplitBatches:
    """Batch arithmetic shared by the pipelines' data objects (which set
    ``num_train`` and ``num_eval``).

    Example:
        >>> class Split(SplitBatches):
        ...     num_train, num_eval = 1000, 100
        >>> Split().steps_per_epoch(256), Split().eval_steps(256)
        (3, 1)
    """

    num_train = 0
    num_eval = 0

    def steps_per_epoch(self, global_batch_size):
        """Full global batches in one pass over the training split.

        Example:
            >>> split = SplitBatches()
            >>> split.num_train = 1000
            >>> split.steps_per_epoch(256)
            3
        """
        return max(self.num_train // global_batch_size, 1)

    def eval_steps(self, global_batch_size):
        """Global eval batches covering the split once (last one padded).

        Example:
            >>> split = SplitBatches()
            >>> split.num_eval = 100
            >>> split.eval_steps(64)
            2
        """
        return -(-self.num_eval // global_batch_size)


def train_pipeline(records, preprocess, global_batch_size, steps, *, epoch=0, skip_steps=0,
                   input_context=None, seed=0, shuffle_buffer=1):
    """One input pipeline's training batches for one epoch: ``records``
    shuffled with seed ``(seed, epoch)`` (same order on a resumed epoch),
    repeated, sharded by ``input_context``, ``steps`` global steps long with
    the first ``skip_steps`` skipped, mapped by ``preprocess(record, key)``
    (``key``: a per-example stateless seed ``(seed * 1000 + epoch, index)``),
    batched at the per-replica batch size (remainder dropped), prefetched.

    Example:
        >>> records = tf.data.Dataset.range(100)
        >>> ds = train_pipeline(records, lambda r, key: r, 8, steps=3, epoch=3, skip_steps=1)
        >>> len(list(ds))
        2
    """
    ctx = input_context or tf.distribute.InputContext()
    batch = ctx.get_per_replica_batch_size(global_batch_size)
    per_pipeline = global_batch_size // ctx.num_input_pipelines
    ds = records.shuffle(shuffle_buffer, seed=seed * 100003 + epoch,
                         reshuffle_each_iteration=False)
    ds = ds.repeat().enumerate()
    if ctx.num_input_pipelines > 1:
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
    ds = ds.take(steps * per_pipeline).skip(skip_steps * per_pipeline)

    def prep(index, record):
        key = tf.stack([tf.cast(seed * 1000 + epoch, tf.int64), index])
        return preprocess(record, key)

    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    return _no_autoshard(ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def eval_pipeline(records, preprocess, num_examples, global_batch_size, input_context=None):
    """One input pipeline's eval batches ``(*outputs, weight)`` where
    ``preprocess(record)`` returns ``(*outputs, weight)``: the
    ``num_examples`` records padded with weight-0 repeats to whole global
    batches, so every replica gets full batches (exact metrics, static
    shapes); the padding's weights are set to 0.

    Example:
        >>> ds = eval_pipeline(tf.data.Dataset.range(5), lambda r: (r, 1.0), 5, 4)
        >>> [w.numpy().tolist() for _, w in ds]
        [[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
    """
    ctx = input_context or tf.distribute.InputContext()
    batch = ctx.get_per_replica_batch_size(global_batch_size)
    padded = -(-num_examples // global_batch_size) * global_batch_size
    ds = records.repeat().take(padded).enumerate()
    if ctx.num_input_pipelines > 1:
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)

    def prep(index, record):
        *out, weight = preprocess(record)
        return (*out, weight * tf.cast(index < num_examples, tf.float32))

    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    return _no_autoshard(ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def _no_autoshard(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return ds.with_options(options)


def tfds_builder(name, data_dir=None, manual_dir=None, download=False):
    """The prepared TFDS builder ``name`` under ``data_dir``. With
    ``download=True`` it is prepared first (``manual_dir`` holds the archives of
    manual datasets such as ``imagenet2012``); otherwise a missing dataset
    raises :class:`DataDirError` naming ``data_dir`` and what to do.

    Example:
        >>> try:
        ...     tfds_builder("imagenet2012", data_dir="/nonexistent/tfds")
        ... except DataDirError as err:
        ...     print(str(err)[:51])
        TFDS data directory '/nonexistent/tfds' does not ex
    """
    tfds = require("tensorflow_datasets", feature="TFDS input")

    if data_dir is not None and not os.path.isdir(data_dir):
        raise DataDirError(f"TFDS data directory {data_dir!r} does not exist. Expected "
                           f"layout: <data_dir>/{name.split('/')[0]}/<config>/<version>/ "
                           "as written by `tfds build` / download_and_prepare.")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001 - unknown names, bad versions
        raise DataDirError(f"Cannot open TFDS dataset {name!r} in {data_dir!r}: {err}") from err
    if download:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    elif not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        raise DataDirError(
            f"TFDS dataset {name!r} is not prepared in {data_dir!r} (looked for "
            f"{builder.data_dir!r}/dataset_info.json). Expected layout: "
            f"<data_dir>/{name.split('/')[0]}/<config>/<version>/ as written by `tfds build "
            f"{name} --data_dir {data_dir}` (for imagenet2012 put the archives in "
            "--manual_dir), or pass --download.")
    return builder


def check_splits(builder, name, data_dir, splits):
    """Raise :class:`DataDirError` unless the TFDS ``builder`` has every split.

    Example:
        >>> from types import SimpleNamespace
        >>> builder = SimpleNamespace(info=SimpleNamespace(splits={"train": 10}))
        >>> try:
        ...     check_splits(builder, "voc/2007", "/data/tfds", ("train", "validation"))
        ... except DataDirError as err:
        ...     print(err)
        TFDS dataset 'voc/2007' in '/data/tfds' has no split 'validation' (it has ['train']).
    """
    for split in splits:
        if split not in builder.info.splits:
            raise DataDirError(f"TFDS dataset {name!r} in {data_dir!r} has no split {split!r} "
                               f"(it has {sorted(builder.info.splits)}).")
