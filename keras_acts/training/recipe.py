"""What the classification and detection recipes share: strategy and
precision set-up, the PWLU phase-I length in epochs, SGD with warm-up and
decay built in the strategy's scope, the :class:`loop.Trainer` run with
resume, and the final weights. Each recipe supplies its data, model and task.

Example:
    >>> pwlu_phase1("pwlu", pwlu_phase1_epochs=1, steps_per_epoch=50)
    ({'phase1_steps': 50}, 1)
    >>> final_weights_path("runs/r50", tf.distribute.get_strategy())
    'runs/r50/final.weights.h5'
"""

import os

import keras
import tensorflow as tf

from keras_acts.training.pipeline import DataDirError
from keras_acts.training.loop import Trainer
from keras_acts.training.optim import make_sgd
from keras_acts.training.schedules import WarmupDecay
from keras_acts.training.schedules import scaled_learning_rate
from keras_acts.training.strategy import create_strategy
from keras_acts.training.strategy import set_mixed_precision
from keras_acts.training.strategy import task_info
from keras_acts.training.strategy import worker_dir


def final_weights_path(model_dir, strategy):
    """Where a run writes its final weights: ``model_dir/final.weights.h5`` on
    the chief, a worker-private folder elsewhere.

    Example:
        >>> final_weights_path("/tmp/run", tf.distribute.get_strategy())
        '/tmp/run/final.weights.h5'
    """
    return os.path.join(worker_dir(model_dir, strategy), "final.weights.h5")


def pwlu_phase1(activation, pwlu_phase1_epochs, steps_per_epoch):
    """``(activation kwargs, realign epoch)`` for a PWLU phase I of
    ``pwlu_phase1_epochs`` epochs: ``{"phase1_steps": ...}`` for PWLU (``{}``
    otherwise) and the epoch at whose end the trainer realigns (``None``
    unless PWLU and a whole, non-zero number of epochs).

    Example:
        >>> pwlu_phase1("pwlu", 5, 100)
        ({'phase1_steps': 500}, 5)
    """
    if activation != "pwlu":
        return {}, None
    act_kwargs = {"phase1_steps": int(round(pwlu_phase1_epochs * steps_per_epoch))}
    realign = None
    if pwlu_phase1_epochs and float(pwlu_phase1_epochs).is_integer():
        realign = int(pwlu_phase1_epochs)
    return act_kwargs, realign


def _name_unreadable(data, trainer, batch_size, steps_per_epoch):
    """After an input error stopped ``trainer`` mid-step: a :class:`data.DataDirError`
    naming the images of the failed step that do not decode (``None`` when
    ``data`` cannot tell or every image decodes, i.e. the error was not the
    data's)."""
    find = getattr(data, "find_unreadable", None)
    epoch, step = divmod(trainer.step, steps_per_epoch)
    bad = find(batch_size, epoch, step, steps_per_epoch) if find else []
    if not bad:
        return None
    files = "; ".join(f"{name} ({message.splitlines()[0]})" for name, message in bad)
    return DataDirError(
        f"cannot decode image file(s) {files} (epoch {epoch + 1}, step {step}). Replace or "
        "delete them and rerun the same command: training resumes from the last checkpoint"
        + (f" ({trainer.checkpoint.latest})." if trainer.checkpoint.latest else "."))


def run_recipe(options, *, load_data, build_model, make_task, distribution=None):
    """Train (or resume) ``build_model(data, act_kwargs)`` (called in the
    strategy's scope) on ``load_data()`` (a :class:`data.SplitBatches` with
    ``train_dataset`` / ``eval_dataset``) with task ``make_task(data)``, as
    ``options`` (a :class:`options.SharedOptions` subclass: the recipe's
    :class:`options.ClassificationOptions` or :class:`options.DetectionOptions`)
    say.

    The data is loaded (and validated) before anything is built. ``lr`` is per
    256 images; warm-up and decay run over the whole training. When
    ``options.bn_recalibration_steps`` > 0 the batch-norm statistics are
    re-estimated on that many training batches after the last step, before
    the final weights are written. Returns a dict
    with ``history``, ``model``, ``trainer``, ``strategy``, ``initial_step``,
    ``final_step``, ``weights_path`` and ``task`` (this process'
    ``(task_type, task_id)``). ``distribution`` may pass a ready strategy.

    Example:
        >>> from keras_acts.training.synthetic import write_image_folder
        >>> from keras_acts.training.classification import ClassificationTask
        >>> from keras_acts.training.data import image_folder_data
        >>> from keras_acts.training.models import build_classifier
        >>> from keras_acts.training.options import ClassificationOptions
        >>> root = write_image_folder("data", num_classes=2, per_class=4, val_per_class=2)
        >>> out = run_recipe(
        ...     ClassificationOptions(data_dir=root, model_dir="run", epochs=1, batch_size=4,
        ...                           image_size=16, activation="pwlu", verbose=0),
        ...     load_data=lambda: image_folder_data(root, image_size=16),
        ...     build_model=lambda data, act_kwargs: build_classifier(
        ...         "tiny_cnn", "pwlu", data.num_classes, 16, **act_kwargs),
        ...     make_task=lambda data: ClassificationTask(data.num_classes))
        >>> out["initial_step"], out["final_step"], len(out["history"]["eval"])
        (0, 2, 1)
    """
    o = options
    recalibrate = _batch_norm_recalibration() if o.bn_recalibration_steps else None
    strat = distribution or create_strategy(o.strategy, tpu=o.tpu)
    set_mixed_precision(o.mixed_precision, o.strategy)
    batch_size, epochs = o.batch_size, o.epochs
    try:
        data = load_data()
        keras.utils.set_random_seed(o.seed)
        steps_per_epoch = o.steps_per_epoch or data.steps_per_epoch(batch_size)
        eval_steps = data.eval_steps(batch_size) if o.eval_steps is None else o.eval_steps
        act_kwargs, realign_epoch = pwlu_phase1(o.activation, o.pwlu_phase1_epochs,
                                                steps_per_epoch)
        with strat.scope():
            model = build_model(data, act_kwargs)
            schedule = WarmupDecay(scaled_learning_rate(o.lr, batch_size),
                                   total_steps=epochs * steps_per_epoch,
                                   warmup_steps=int(o.warmup_epochs * steps_per_epoch),
                                   decay=o.lr_schedule)
            optimizer = make_sgd(model, schedule, momentum=o.momentum, nesterov=o.nesterov,
                                 weight_decay=o.weight_decay)
        trainer = Trainer(model, optimizer, make_task(data), strat,
                          global_batch_size=batch_size, model_dir=o.model_dir,
                          jit_compile=o.jit_compile, checkpoint_every=o.checkpoint_every,
                          keep_checkpoints=o.keep_checkpoints, log_every=o.log_every,
                          phase1_epochs=realign_epoch, verbose=o.verbose,
                          throttle_s=o.throttle_s)
        verbose = o.verbose
        if verbose and trainer.initial_step:
            print(f"Resumed from {trainer.checkpoint.latest} at step {trainer.initial_step}.")
        try:
            history = trainer.fit(
                lambda epoch, skip, ctx: data.train_dataset(batch_size, epoch, skip, ctx,
                                                            steps=steps_per_epoch),
                epochs, steps_per_epoch,
                eval_fn=lambda ctx: data.eval_dataset(batch_size, ctx), eval_steps=eval_steps)
        except tf.errors.InvalidArgumentError as err:
            raise _name_unreadable(data, trainer, batch_size, steps_per_epoch) or err
        if recalibrate is not None:
            with strat.scope():
                batches = data.train_dataset(batch_size, epoch=epochs,
                                             steps=o.bn_recalibration_steps)
                recalibrate(model, batches.map(lambda images, *_: images),
                            o.bn_recalibration_steps)
        path = final_weights_path(o.model_dir, strat)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.save_weights(path)
        return {"history": history, "model": model, "trainer": trainer, "strategy": strat,
                "initial_step": trainer.initial_step, "final_step": trainer.step,
                "weights_path": path, "task": task_info(strat)}
    finally:
        if o.mixed_precision:
            keras.mixed_precision.set_global_policy("float32")


def _batch_norm_recalibration():
    """``keras_acts.callbacks.recalibrate_batch_norm`` (imported lazily: it
    is looked up before training starts, so a missing one fails at once)."""
    from keras_acts import callbacks

    fn = getattr(callbacks, "recalibrate_batch_norm", None)
    if fn is None:
        raise NotImplementedError(
            "bn_recalibration_steps > 0 needs keras_acts.callbacks.recalibrate_batch_norm("
            "model, dataset, steps), which this version of keras_acts does not have yet; "
            "set bn_recalibration_steps=0 (--bn-recalibration-steps 0).")
    return fn
