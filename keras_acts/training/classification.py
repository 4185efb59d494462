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
from keras_acts.training.options import ClassificationOptions
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


def train_classifier(options=None, /, *, distribution=None, **values):
    """Train (or resume) an image classifier as ``options`` (a
    :class:`options.ClassificationOptions`) say, fields replaced by ``values``
    (``train_classifier(data_dir=..., model_dir=...)`` builds the options from
    keywords; an unknown keyword is a ``TypeError``). Returns
    :func:`recipe.run_recipe`'s dict (``history``, ``model``, ``trainer``,
    ``strategy``, ``initial_step``, ``final_step``, ``weights_path``, ``task``).

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
    o = ClassificationOptions.make(options, **values)
    return run_recipe(
        o,
        load_data=lambda: load_classification_data(o.dataset, o.data_dir, o.image_size, o.seed,
                                                   o.manual_dir, o.download),
        build_model=lambda data, act_kwargs: build_classifier(
            o.backbone, o.activation, data.num_classes, o.image_size, source=o.source,
            **act_kwargs),
        make_task=lambda data: ClassificationTask(data.num_classes, o.label_smoothing),
        distribution=distribution)
