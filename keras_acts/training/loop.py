"""A custom distributed training loop: ``strategy.run`` over
``strategy.distribute_datasets_from_function`` (works under every strategy,
MultiWorkerMirroredStrategy included, where Keras 3's ``model.fit`` does not),
with a progress bar (loss, accuracy, learning rate, images/s), TensorBoard
logs, periodic evaluation, resumable checkpoints and the PWLU phase-I switch at
an epoch boundary.

What a task supplies (see :class:`classification.ClassificationTask`): ``train_step`` (the
replica's loss, already divided by the global batch size, and a dict of
per-replica sums to report; a ``"skipped"`` sum counts examples the input
pipeline could not read, reported at each epoch's end), ``eval_step`` (a dict
of tensors), whether eval outputs are summed or gathered, and host-side
``eval_*`` accumulation.

Example: see :class:`Trainer`.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_acts.training.checkpoint import TrainingCheckpoint
from keras_acts.callbacks import realign_pwlu
from keras_acts.training.optim import current_learning_rate
from keras_acts.training.strategy import is_chief
from keras_acts.training.strategy import sync_replica_state

# What tf.summary.scalar writes (the scalars plugin's metadata): tf.summary.scalar
# itself lives in the tensorboard package, which TensorFlow 2.21 does not install.
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


class Trainer:
    """Runs ``task`` on ``model`` with ``optimizer`` under ``strategy``.

    Create the model and optimizer inside ``strategy.scope()`` first. The
    checkpoint under ``model_dir/checkpoints`` is restored on construction
    (``initial_step``), so restarting the same command resumes where the
    killed run stopped.

    Args:
        global_batch_size: examples per step over all replicas.
        model_dir: checkpoints in ``model_dir/checkpoints``, TensorBoard logs in
            ``model_dir/logs/{train,eval}`` (chief only).
        jit_compile: XLA-compile the per-replica step.
        checkpoint_every: also save every this many steps (epoch ends always).
        log_every: TensorBoard scalar period, in steps.
        phase1_epochs: call :func:`realign_pwlu` at the end of this epoch.
        verbose: 1 progress bar per epoch (chief), 0 silent.
        throttle_s: sleep after each step (debugging, tests).

    Example:
        >>> from keras_acts.training.classification import ClassificationTask
        >>> from keras_acts.training.optim import make_sgd
        >>> def batches(epoch, skip, ctx=None):   # 8 examples, 3 classes, 2 steps of 4
        ...     x = tf.random.stateless_normal([8, 2], [epoch, 0])
        ...     y, w = tf.constant([0, 1, 2, 0, 1, 2, 0, 1]), tf.ones([8])
        ...     return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4).skip(skip)
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
        >>> trainer = Trainer(model, make_sgd(model, 0.1), ClassificationTask(3),
        ...                   global_batch_size=4, model_dir="run_class", verbose=0)
        >>> history = trainer.fit(batches, epochs=2, steps_per_epoch=2)
        >>> trainer.step, sorted(history["train"][0])
        (4, ['acc', 'loss'])
        >>> Trainer(model, trainer.optimizer, ClassificationTask(3), global_batch_size=4,
        ...         model_dir="run_class", verbose=0).initial_step   # resumes
        4
    """

    def __init__(self, model, optimizer, task, strategy=None, *, global_batch_size, model_dir,
                 jit_compile=False, checkpoint_every=None, keep_checkpoints=3, log_every=20,
                 phase1_epochs=None, verbose=1, throttle_s=0.0):
        self.model = model
        self.optimizer = optimizer
        self.task = task
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch_size = int(global_batch_size)
        self.model_dir = model_dir
        self.jit_compile = bool(jit_compile)
        self.checkpoint_every = checkpoint_every
        self.log_every = max(int(log_every), 1)
        self.phase1_epochs = phase1_epochs
        self.chief = is_chief(self.strategy)
        self.verbose = verbose if self.chief else 0
        self.throttle_s = float(throttle_s)
        self.checkpoint = TrainingCheckpoint(os.path.join(model_dir, "checkpoints"),
                                             self.strategy, max_to_keep=keep_checkpoints,
                                             model=model, optimizer=optimizer)
        self.initial_step = self.checkpoint.restore()
        self.step = self.initial_step
        self._writers = None
        self._train_fn = None
        self._eval_fn = None

    # ------------------------------------------------------------ steps
    def _make_train_function(self):
        model, optimizer, task, strategy = self.model, self.optimizer, self.task, self.strategy
        gbs = self.global_batch_size

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss, sums = task.train_step(model, batch, gbs)
                if model.losses:
                    loss += tf.add_n([tf.cast(l, tf.float32) for l in model.losses]) / \
                        strategy.num_replicas_in_sync
                scaled = optimizer.scale_loss(loss)
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return sums

        if self.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

        @tf.function
        def train_function(iterator):
            sums = strategy.run(replica_step, args=(next(iterator),))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in sums.items()}

        return train_function

    def _make_eval_function(self):
        model, task, strategy = self.model, self.task, self.strategy

        def replica_step(batch):
            return task.eval_step(model, batch)

        if self.jit_compile and not task.gather_eval:
            replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

        @tf.function
        def eval_function(iterator):
            out = strategy.run(replica_step, args=(next(iterator),))
            if task.gather_eval:
                return {k: strategy.gather(v, axis=0) for k, v in out.items()}
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in out.items()}

        return eval_function

    # ------------------------------------------------------------ logging
    def _writer(self, name):
        if not self.chief:
            return None
        if self._writers is None:
            self._writers = {}
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(
                os.path.join(self.model_dir, "logs", name))
        return self._writers[name]

    def _log(self, name, values, step):
        writer = self._writer(name)
        if writer is None:
            return
        with writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.write(k.replace("/", "_per_"), tf.constant(float(v), tf.float32),
                                 metadata=_SCALAR_METADATA)
        writer.flush()

    # ------------------------------------------------------------ public
    def save(self):
        """Synchronise replica state and write a checkpoint at the current step
        (collective: every worker calls it). Returns this worker's path.

        Example:
            >>> from keras_acts.training.classification import ClassificationTask
            >>> from keras_acts.training.optim import make_sgd
            >>> def batches(epoch, skip, ctx=None):   # 8 examples, 3 classes, 2 steps of 4
            ...     x = tf.random.stateless_normal([8, 2], [epoch, 0])
            ...     y, w = tf.constant([0, 1, 2, 0, 1, 2, 0, 1]), tf.ones([8])
            ...     return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4).skip(skip)
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> trainer = Trainer(model, make_sgd(model, 0.1), ClassificationTask(3),
            ...                   global_batch_size=4, model_dir="run_save", verbose=0)
            >>> trainer.save()
            'run_save/checkpoints/ckpt-0'
        """
        sync_replica_state(self.strategy, self.model)
        return self.checkpoint.save(self.step)

    def evaluate(self, eval_fn, steps):
        """Run ``steps`` global eval batches from ``eval_fn(input_context)``;
        returns the task's ``eval_result()`` (also logged to TensorBoard).

        Example:
            >>> from keras_acts.training.classification import ClassificationTask
            >>> from keras_acts.training.optim import make_sgd
            >>> def batches(epoch, skip, ctx=None):   # 8 examples, 3 classes, 2 steps of 4
            ...     x = tf.random.stateless_normal([8, 2], [epoch, 0])
            ...     y, w = tf.constant([0, 1, 2, 0, 1, 2, 0, 1]), tf.ones([8])
            ...     return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4).skip(skip)
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> trainer = Trainer(model, make_sgd(model, 0.1), ClassificationTask(3),
            ...                   global_batch_size=4, model_dir="run_eval", verbose=0)
            >>> trainer.evaluate(lambda ctx: batches(0, 0), 2)
            {'loss': ..., 'top1': ..., 'top5': ...}
        """
        sync_replica_state(self.strategy, self.model)
        if self._eval_fn is None:
            self._eval_fn = self._make_eval_function()
        iterator = iter(self.strategy.distribute_datasets_from_function(eval_fn))
        self.task.eval_begin()
        for _ in range(steps):
            out = self._eval_fn(iterator)
            self.task.eval_update({k: np.asarray(v) for k, v in out.items()})
        result = self.task.eval_result()
        self._log("eval", result, self.step)
        return result

    def fit(self, train_fn, epochs, steps_per_epoch, eval_fn=None, eval_steps=None):
        """Train to ``epochs * steps_per_epoch`` global steps from the restored
        step. ``train_fn(epoch, skip_steps, input_context)`` returns the
        per-pipeline dataset of one epoch with its first ``skip_steps`` steps
        skipped. Evaluates after each epoch when ``eval_fn`` is given. Returns
        ``{"train": [per-epoch dicts], "eval": [...]}``.

        Example:
            >>> from keras_acts.training.classification import ClassificationTask
            >>> from keras_acts.training.optim import make_sgd
            >>> def batches(epoch, skip, ctx=None):   # 8 examples, 3 classes, 2 steps of 4
            ...     x = tf.random.stateless_normal([8, 2], [epoch, 0])
            ...     y, w = tf.constant([0, 1, 2, 0, 1, 2, 0, 1]), tf.ones([8])
            ...     return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4).skip(skip)
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> trainer = Trainer(model, make_sgd(model, 0.1), ClassificationTask(3),
            ...                   global_batch_size=4, model_dir="run_fit", verbose=0)
            >>> history = trainer.fit(batches, 1, 2, eval_fn=lambda ctx: batches(0, 0), eval_steps=2)
            >>> len(history["train"]), len(history["eval"])
            (1, 1)
        """
        history = {"train": [], "eval": []}
        if self._train_fn is None:
            self._train_fn = self._make_train_function()
        total = epochs * steps_per_epoch
        names = tuple(self.task.train_metrics)
        while self.step < total:
            epoch, skip = divmod(self.step, steps_per_epoch)
            dist = self.strategy.distribute_datasets_from_function(
                lambda ctx, e=epoch, s=skip: train_fn(e, s, ctx))
            iterator = iter(dist)
            if self.verbose:
                print(f"Epoch {epoch + 1}/{epochs}" + (f" (resuming at step {skip})" if skip
                                                        else ""), flush=True)
            bar = keras.utils.Progbar(steps_per_epoch, verbose=self.verbose,
                                      stateful_metrics=names + ("lr", "img/s"))
            if skip and self.verbose:
                bar.update(skip)
            sums, window_t, window_n = {}, time.perf_counter(), 0
            for _ in range(skip, steps_per_epoch):
                out = self._train_fn(iterator)
                self.step += 1
                window_n += 1
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count = max(sums.get("count", 1.0), 1.0)
                now = time.perf_counter()
                values = {k: sums.get(k, 0.0) / count for k in names}
                values["lr"] = current_learning_rate(self.optimizer)
                values["img/s"] = window_n * self.global_batch_size / max(now - window_t, 1e-9)
                bar.update(self.step - epoch * steps_per_epoch, list(values.items()))
                if self.step % self.log_every == 0:
                    self._log("train", values, self.step)
                    window_t, window_n = now, 0
                if self.throttle_s:
                    time.sleep(self.throttle_s)
                if (self.checkpoint_every and self.step % self.checkpoint_every == 0
                        and self.step % steps_per_epoch):
                    self.save()
            count = max(sums.get("count", 1.0), 1.0)
            epoch_values = {k: sums.get(k, 0.0) / count for k in names}
            skipped = int(round(sums.get("skipped", 0.0)))
            if skipped:
                epoch_values["skipped"] = skipped
                if self.verbose:
                    print(f"Epoch {epoch + 1}: skipped {skipped} unreadable image(s) (named in "
                          "the warnings above).", flush=True)
            history["train"].append(epoch_values)
            self._log("train_epoch", epoch_values, self.step)
            if self.phase1_epochs and epoch + 1 == self.phase1_epochs:
                n = realign_pwlu(self.model, self.strategy)
                if n and self.verbose:
                    print(f"PWLU: phase I ended for {n} layer(s) after epoch {epoch + 1}.")
            self.save()
            if eval_fn is not None and eval_steps:
                result = self.evaluate(eval_fn, eval_steps)
                history["eval"].append(result)
                if self.verbose:
                    print("eval: " + "  ".join(f"{k}={v:.4f}" for k, v in result.items()),
                          flush=True)
        sync_replica_state(self.strategy, self.model)
        self.checkpoint.cleanup()
        return history
