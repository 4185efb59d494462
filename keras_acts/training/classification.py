"""The ImageNet classification recipe end to end: strategy, precision, data,
model with our activations, SGD + warm-up schedule + weight-decay exclusions,
label smoothing, PWLU phase I in epochs, custom distributed loop, final
weights. ``examples/imagenet/train.py`` is a thin CLI over :func:`train_classifier`.

Example:
    >>> result = train_classifier(data_dir="/data/imagenet", model_dir="/tmp/run",
    ...                           backbone="resnet18", activation="pwlu")
"""

import os

import keras

from keras_acts.training import data as data_lib
from keras_acts.training.loop import ClassificationTask
from keras_acts.training.loop import Trainer
from keras_acts.training.models import build_classifier
from keras_acts.training.optim import make_sgd
from keras_acts.training.schedules import WarmupDecay
from keras_acts.training.schedules import scaled_learning_rate
from keras_acts.training.strategy import create_strategy
from keras_acts.training.strategy import set_mixed_precision
from keras_acts.training.strategy import task_info
from keras_acts.training.strategy import worker_dir


def load_classification_data(dataset, data_dir, image_size, seed=0, manual_dir=None,
                             download=False):
    """``dataset == "folder"``: :func:`data.image_folder_data` on ``data_dir``;
    otherwise the TFDS dataset of that name under ``data_dir``.

    Example:
        >>> data = load_classification_data("imagenet2012", "/data/tfds", 224)
    """
    if dataset == "folder":
        return data_lib.image_folder_data(data_dir, image_size=image_size, seed=seed)
    return data_lib.tfds_data(dataset, data_dir=data_dir, image_size=image_size, seed=seed,
                              manual_dir=manual_dir, download=download)


def final_weights_path(model_dir, strategy):
    """Where a run writes its final weights: ``model_dir/final.weights.h5`` on
    the chief, a worker-private folder elsewhere.

    Example:
        >>> final_weights_path("/tmp/run", tf.distribute.get_strategy())
        '/tmp/run/final.weights.h5'
    """
    return os.path.join(worker_dir(model_dir, strategy), "final.weights.h5")


def train_classifier(*, data_dir, model_dir, dataset="folder", backbone="resnet50",
                     activation="pwlu", source="keras_hub", image_size=224, epochs=90,
                     batch_size=256, steps_per_epoch=None, eval_steps=None, lr=0.1,
                     lr_schedule="cosine", warmup_epochs=5.0, momentum=0.9, nesterov=False,
                     weight_decay=1e-4, label_smoothing=0.1, pwlu_phase1_epochs=5.0,
                     strategy="default", tpu=None, jit_compile=False, mixed_precision=False,
                     checkpoint_every=1000, keep_checkpoints=3, log_every=50, seed=0,
                     verbose=1, throttle_s=0.0, manual_dir=None, download=False,
                     distribution=None, **unused):
    """Train (or resume) an image classifier; returns a dict with ``history``,
    ``model``, ``trainer``, ``strategy``, ``initial_step`` and ``final_step``.

    The data directory is validated before anything is built (clear
    :class:`data.DataDirError`). ``lr`` is per 256 images; the warm-up and
    decay run over the whole training; ``pwlu_phase1_epochs`` (paper: 5) sets
    the PWLU layers' ``phase1_steps`` and realigns any layer still in phase I
    at that epoch's end. ``distribution`` may pass a ready strategy object
    instead of the ``strategy`` name.

    Example:
        >>> out = train_classifier(data_dir="/data/folder", model_dir="/tmp/run",
        ...                        backbone="tiny_cnn", activation="serf", epochs=1,
        ...                        batch_size=8, image_size=32)
        >>> out["final_step"]
    """
    strat = distribution or create_strategy(strategy, tpu=tpu)
    set_mixed_precision(mixed_precision, strategy)
    try:
        data = load_classification_data(dataset, data_dir, image_size, seed, manual_dir, download)
        keras.utils.set_random_seed(seed)
        steps_per_epoch = steps_per_epoch or data.steps_per_epoch(batch_size)
        if eval_steps is None:
            eval_steps = data.eval_steps(batch_size)
        total = epochs * steps_per_epoch
        phase1_steps = int(round(pwlu_phase1_epochs * steps_per_epoch))
        act_kwargs = {"phase1_steps": phase1_steps} if activation == "pwlu" else {}
        realign_epoch = None
        if activation == "pwlu" and pwlu_phase1_epochs and float(pwlu_phase1_epochs).is_integer():
            realign_epoch = int(pwlu_phase1_epochs)
        with strat.scope():
            model = build_classifier(backbone, activation, data.num_classes, image_size,
                                     source=source, **act_kwargs)
            schedule = WarmupDecay(scaled_learning_rate(lr, batch_size), total_steps=total,
                                   warmup_steps=int(warmup_epochs * steps_per_epoch),
                                   decay=lr_schedule)
            optimizer = make_sgd(model, schedule, momentum=momentum, nesterov=nesterov,
                                 weight_decay=weight_decay)
        trainer = Trainer(model, optimizer, ClassificationTask(data.num_classes, label_smoothing),
                          strat, global_batch_size=batch_size, model_dir=model_dir,
                          jit_compile=jit_compile, checkpoint_every=checkpoint_every,
                          keep_checkpoints=keep_checkpoints, log_every=log_every,
                          phase1_epochs=realign_epoch,
                          verbose=verbose, throttle_s=throttle_s)
        if verbose and trainer.initial_step:
            print(f"Resumed from {trainer.checkpoint.latest} at step {trainer.initial_step}.")
        history = trainer.fit(
            lambda epoch, skip, ctx: data.train_dataset(batch_size, epoch, skip, ctx,
                                                        steps=steps_per_epoch),
            epochs, steps_per_epoch,
            eval_fn=lambda ctx: data.eval_dataset(batch_size, ctx), eval_steps=eval_steps)
        path = final_weights_path(model_dir, strat)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.save_weights(path)
        task_type, task_id = task_info(strat)
        return {"history": history, "model": model, "trainer": trainer, "strategy": strat,
                "initial_step": trainer.initial_step, "final_step": trainer.step,
                "weights_path": path, "task": (task_type, task_id)}
    finally:
        if mixed_precision:
            keras.mixed_precision.set_global_policy("float32")
