"""The ImageNet classification recipe end to end: strategy, precision, data,
model with our activations, SGD + warm-up schedule + weight-decay exclusions,
label smoothing, PWLU phase I in epochs, custom distributed loop, final
weights. ``examples/imagenet/train.py`` is a thin CLI over :func:`train_classifier`.

Example:
    >>> result = train_classifier(data_dir="/data/imagenet", model_dir="/tmp/run",
    ...                           backbone="resnet18", activation="pwlu")
"""

from keras_acts.training import data as data_lib
from keras_acts.training.loop import ClassificationTask
from keras_acts.training.models import build_classifier
from keras_acts.training.recipe import recipe_options
from keras_acts.training.recipe import run_recipe


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


def train_classifier(*, data_dir, model_dir, dataset="folder", backbone="resnet50",
                     activation="pwlu", source="keras_hub", image_size=224, epochs=90,
                     batch_size=256, steps_per_epoch=None, eval_steps=None, lr=0.1,
                     lr_schedule="cosine", warmup_epochs=5.0, momentum=0.9, nesterov=False,
                     weight_decay=1e-4, label_smoothing=0.1, pwlu_phase1_epochs=5.0,
                     strategy="default", tpu=None, jit_compile=False, mixed_precision=False,
                     checkpoint_every=1000, keep_checkpoints=3, log_every=50, seed=0,
                     verbose=1, throttle_s=0.0, manual_dir=None, download=False,
                     distribution=None, **unused):
    """Train (or resume) an image classifier; returns :func:`recipe.run_recipe`'s
    dict (``history``, ``model``, ``trainer``, ``strategy``, ``initial_step``,
    ``final_step``, ``weights_path``, ``task``).

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
    options = dict(locals())
    return run_recipe(
        load_data=lambda: load_classification_data(dataset, data_dir, image_size, seed,
                                                   manual_dir, download),
        build_model=lambda data, act_kwargs: build_classifier(
            backbone, activation, data.num_classes, image_size, source=source, **act_kwargs),
        make_task=lambda data: ClassificationTask(data.num_classes, label_smoothing),
        **recipe_options(options))
