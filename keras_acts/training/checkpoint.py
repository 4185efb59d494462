"""Checkpoints that survive a killed process: model weights (trainable and
non-trainable, PWLU phase and statistics included), optimizer slots and
iteration counter, and the global step, written with ``tf.train.Checkpoint``
(atomic: the ``checkpoint`` index file is replaced after the data files, so a
kill during a save leaves the previous checkpoint as the latest).

Under multi-worker training every worker saves (saving is collective); only the
chief's copy is kept in ``<dir>``, the others go to ``<dir>/workers/...``.

Example:
    >>> ckpt = TrainingCheckpoint("/tmp/run/checkpoints", strategy, model=model,
    ...                           optimizer=optimizer)
    >>> start_step = ckpt.restore()     # 0 when there is none
    >>> ckpt.save(step=1000)
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
        >>> ckpt = TrainingCheckpoint("/tmp/ckpts", strategy, model=m, optimizer=o)
        >>> ckpt.restore(), ckpt.save(10), ckpt.latest
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
            >>> ckpt.latest
            '/tmp/ckpts/ckpt-1000'
        """
        return tf.train.latest_checkpoint(self.directory)

    def restore(self):
        """Restore the latest checkpoint (the chief's; this worker's own copy
        when the chief's directory is not visible). Returns the restored global
        step, 0 when there is no checkpoint.

        Example:
            >>> step = ckpt.restore()
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
            >>> ckpt.save(500)
        """
        self.step.assign(int(step))
        path = self.manager.save(checkpoint_number=int(step))
        return path

    def cleanup(self):
        """Remove this worker's throw-away copies (non-chief workers only).

        Example:
            >>> ckpt.cleanup()
        """
        if not self.chief and os.path.isdir(self.write_dir):
            shutil.rmtree(self.write_dir, ignore_errors=True)
