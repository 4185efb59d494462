"""Checkpoints that survive a killed process: model weights (trainable and
non-trainable, PWLU phase and statistics included), optimizer slots and
iteration counter, and the global step, written with ``tf.train.Checkpoint``
(atomic: the ``checkpoint`` index file is replaced after the data files, so a
kill during a save leaves the previous checkpoint as the latest).

Under multi-worker training every worker saves (saving is collective); only the
chief's copy is kept in ``<dir>``, the others go to ``<dir>/workers/...``.

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> ckpt = TrainingCheckpoint("run/checkpoints", model=model)
    >>> ckpt.restore()     # 0 when there is none
    0
    >>> ckpt.save(step=1000)
    'run/checkpoints/ckpt-1000'
    >>> TrainingCheckpoint("run/checkpoints", model=model).restore()
    1000
"""

import os
import shutil

import tensorflow as tf

from keras_acts.training.strategy import is_chief
from keras_acts.training.strategy import worker_dir


class TrainingCheckpoint:
    """Save / restore ``objects`` (``model=..., optimizer=...``) plus an int64
    global ``step`` variable created in ``strategy.scope()``.

    Create it after the optimizer is built (``optimizer.build(vars)``) so its
    slots restore immediately.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        >>> optimizer.build(model.trainable_variables)
        >>> ckpt = TrainingCheckpoint("ckpts", tf.distribute.get_strategy(), model=model,
        ...                           optimizer=optimizer)
        >>> ckpt.restore(), ckpt.save(10), ckpt.latest
        (0, 'ckpts/ckpt-10', 'ckpts/ckpt-10')
    """

    def __init__(self, directory, strategy=None, max_to_keep=3, **objects):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.directory = directory
        self.chief = is_chief(self.strategy)
        self.write_dir = worker_dir(directory, self.strategy)
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.write_dir, max_to_keep=max_to_keep if self.chief else 1)

    @property
    def latest(self):
        """Path of the latest checkpoint in the chief's directory, or ``None``.

        Example:
            >>> ckpt = TrainingCheckpoint("latest", weight=tf.Variable(1.0))
            >>> ckpt.latest is None
            True
            >>> ckpt.save(1000) == ckpt.latest == 'latest/ckpt-1000'
            True
        """
        return tf.train.latest_checkpoint(self.directory)

    def restore(self):
        """Restore the latest checkpoint (the chief's; this worker's own copy
        when the chief's directory is not visible). Returns the restored global
        step, 0 when there is no checkpoint.

        Example:
            >>> weight = tf.Variable(1.0)
            >>> ckpt = TrainingCheckpoint("restore", weight=weight)
            >>> ckpt.save(7)
            'restore/ckpt-7'
            >>> _ = weight.assign(5.0)
            >>> ckpt.restore(), float(weight.numpy())
            (7, 1.0)
        """
        path = self.latest or tf.train.latest_checkpoint(self.write_dir)
        if path is None:
            return 0
        self.checkpoint.restore(path).expect_partial()
        return int(self.step.numpy())

    def save(self, step):
        """Write a checkpoint numbered ``step`` (every worker must call it).
        Returns its path on this worker.

        Example:
            >>> TrainingCheckpoint("save", weight=tf.Variable(1.0)).save(500)
            'save/ckpt-500'
        """
        self.step.assign(int(step))
        path = self.manager.save(checkpoint_number=int(step))
        return path

    def cleanup(self):
        """Remove this worker's throw-away copies (non-chief workers only).

        Example:
            >>> TrainingCheckpoint("cleanup", weight=tf.Variable(1.0)).cleanup()  # chief: no-op
        """
        if not self.chief and os.path.isdir(self.write_dir):
            shutil.rmtree(self.write_dir, ignore_errors=True)
