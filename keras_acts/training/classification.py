"""The ImageNet classification recipe end to end: strategy, precision, data,
model with our activations, SGD + warm-up schedule + weight-decay exclusions,
label smoothing, PWLU phase I in epochs, custom distributed loop, final
weights. ``examples/imagenet/train.py`` is a thin CLI over :func:`train_classifier`;
:class:`ClassificationTask` is what the loop (:class:`loop.Trainer`) runs.

Example:
    >>> opts = ClassificationOptions(data_dir="/data/imagenet", model_dir="/tmp/run",
    ...                              backbone="resnet18", activation="pwlu")
    >>> opts.epochs, opts.lr, opts.warmup_epochs   # then: train_classifier(opts)
    (90, 0.1, 5.0)
"""

import keras
import tensorflow as tf

from keras_acts.training import data as data_lib
from keras_acts.training.models import build_classifier
from keras_acts.training.options import ClassificationOptions
from keras_acts.training.recipe import run_recipe


class ClassificationTask:
    """Softmax cross-entropy with label smoothing; reports loss and top-1
    accuracy while training, loss / top-1 / top-5 at evaluation. Batches are
    ``(images, labels)`` for training and ``(images, labels, weights)`` for eval.

    Example:
        >>> task = ClassificationTask(num_classes=1000, label_smoothing=0.1)
    """

    gather_eval = False
    train_metrics = ("loss", "acc")

    def __init__(self, num_classes, label_smoothing=0.0):
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def _losses(self, labels, logits):
        onehot = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        return keras.losses.categorical_crossentropy(
            onehot, tf.cast(logits, tf.float32), from_logits=True,
            label_smoothing=self.label_smoothing)

    def train_step(self, model, batch, global_batch_size):
        """Replica loss (weighted sum / global batch) and report sums. Batches
        are ``(images, labels, weights)``; weight-0 examples (unreadable images
        the pipeline skipped) add nothing to the loss or the metrics and are
        counted under ``"skipped"``.

        Example:
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> task = ClassificationTask(3)
            >>> x, y, w = tf.ones([4, 2]), tf.constant([0, 1, 2, 0]), tf.constant([1., 1, 1, 0])
            >>> loss, sums = task.train_step(model, (x, y, w), 4)
            >>> float(sums["count"]), float(sums["skipped"])
            (3.0, 1.0)
        """
        images, labels, weights = batch
        logits = model(images, training=True)
        per_example = self._losses(labels, logits) * weights
        loss = tf.reduce_sum(per_example) / global_batch_size
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
                          tf.float32)
        count = tf.reduce_sum(weights)
        return loss, {"loss": tf.reduce_sum(per_example), "acc": tf.reduce_sum(correct * weights),
                      "count": count, "skipped": tf.reduce_sum(1.0 - weights)}

    def eval_step(self, model, batch):
        """Weighted sums of loss, top-1 and top-5 hits, and the weight.

        Example:
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
            >>> task = ClassificationTask(3)
            >>> x, y, w = tf.ones([4, 2]), tf.constant([0, 1, 2, 0]), tf.constant([1., 1, 1, 0])
            >>> sums = task.eval_step(model, (x, y, w))
            >>> sorted(sums), float(sums["top5"])
            (['count', 'loss', 'top1', 'top5'], 3.0)
        """
        images, labels, weights = batch
        logits = tf.cast(model(images, training=False), tf.float32)
        per_example = self._losses(labels, logits)
        top1 = tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32)
        top5 = tf.cast(tf.math.in_top_k(labels, logits, min(5, self.num_classes)), tf.float32)
        return {"loss": tf.reduce_sum(per_example * weights), "top1": tf.reduce_sum(top1 * weights),
                "top5": tf.reduce_sum(top5 * weights), "count": tf.reduce_sum(weights)}

    def eval_begin(self):
        """Reset the host-side eval accumulators.

        Example:
            >>> task = ClassificationTask(3)
            >>> task.eval_begin()
            >>> task.eval_result()
            {'loss': 0.0, 'top1': 0.0, 'top5': 0.0}
        """
        self._sums = {}

    def eval_update(self, values):
        """Add one global batch of reduced sums (numpy).

        Example:
            >>> task = ClassificationTask(3)
            >>> task.eval_begin()
            >>> task.eval_update({"loss": 3.0, "top1": 1.0, "top5": 2.0, "count": 4.0})
            >>> task.eval_update({"loss": 1.0, "top1": 1.0, "top5": 2.0, "count": 4.0})
            >>> task.eval_result()
            {'loss': 0.5, 'top1': 0.25, 'top5': 0.5}
        """
        for k, v in values.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)

    def eval_result(self):
        """``{"loss", "top1", "top5"}`` means over the evaluated examples.

        Example:
            >>> task = ClassificationTask(3)
            >>> task.eval_begin()
            >>> task.eval_update({"loss": 3.0, "top1": 1.0, "top5": 2.0, "count": 4.0})
            >>> task.eval_result()["top1"]
            0.25
        """
        n = max(self._sums.get("count", 0.0), 1.0)
        return {k: self._sums.get(k, 0.0) / n for k in ("loss", "top1", "top5")}


def load_classification_data(dataset, data_dir, image_size, seed=0, manual_dir=None,
                             download=False):
    """``dataset == "folder"``: :func:`data.image_folder_data` on ``data_dir``;
    otherwise the TFDS dataset of that name under ``data_dir``.

    Example:
        >>> from keras_acts.training.synthetic import write_image_folder
        >>> data = load_classification_data("folder", write_image_folder("folder"), 16)
        >>> data.num_classes, data.image_size
        (3, 16)
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
        >>> from keras_acts.training.synthetic import write_image_folder
        >>> root = write_image_folder("data", num_classes=2, per_class=4, val_per_class=2)
        >>> out = train_classifier(data_dir=root, model_dir="run", backbone="tiny_cnn",
        ...                        activation="serf", epochs=1, batch_size=4, image_size=16,
        ...                        verbose=0)
        >>> out["final_step"], sorted(out["history"]["eval"][0]), out["weights_path"]
        (2, ['loss', 'top1', 'top5'], 'run/final.weights.h5')
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
