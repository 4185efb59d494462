"""Input pipelines for classification: an image-folder tree or a TFDS dataset
(``imagenet2012`` or any image/label dataset), with the ImageNet recipe's
augmentation, built per input pipeline for ``tf.distribute`` and resumable
mid-epoch (deterministic order per epoch, skip the batches already seen).

Layout of an image folder (``root``)::

    root/train/<class_name>/*.jpg|*.jpeg|*.png|*.bmp|*.gif
    root/val/<class_name>/...          (same class names)

Unreadable images never stop a run: before decoding, every image's bytes are
checked (:func:`images.image_file_check`: a JPEG, PNG, GIF, BMP or WebP signature and
an intact end); a file that fails is skipped with a warning on stderr naming it
and the reason, and enters its batch with weight 0 (so batches keep their size
and a resumed epoch stays identical); the trainer reports how many were skipped
at the end of each epoch. A file that passes the check but still fails to
decode stops the run with one error naming it (see
:meth:`ClassificationData.find_unreadable`).

Example:
    >>> from keras_acts.training.synthetic import write_image_folder
    >>> data = image_folder_data(write_image_folder("folder0", 3, 4), image_size=16)
    >>> images, labels, weights = next(iter(data.train_dataset(global_batch_size=4, epoch=0)))
    >>> images.shape, labels.dtype.name, weights.numpy().tolist()
    (TensorShape([4, 16, 16, 3]), 'int32', [1.0, 1.0, 1.0, 1.0])
"""

import os

import numpy as np
import tensorflow as tf

from keras_acts._extras import require
from keras_acts.training.images import decode
from keras_acts.training.images import guarded
from keras_acts.training.pipeline import DataDirError
from keras_acts.training.pipeline import SplitBatches
from keras_acts.training.pipeline import check_splits
from keras_acts.training.pipeline import eval_pipeline
from keras_acts.training.pipeline import tfds_builder
from keras_acts.training.pipeline import train_pipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
FOLDER_LAYOUT = ("<root>/train/<class_name>/<image files> and <root>/val/<class_name>/<image files> "
                 f"(image files: {', '.join(IMAGE_EXTENSIONS)}; the same class folders in both)")

def _list_split(split_dir):
    if not os.path.isdir(split_dir):
        raise DataDirError(f"Data directory {split_dir!r} does not exist. Expected layout: "
                           f"{FOLDER_LAYOUT}.")
    classes = sorted(d for d in os.listdir(split_dir)
                     if os.path.isdir(os.path.join(split_dir, d)) and not d.startswith("."))
    if not classes:
        raise DataDirError(f"Data directory {split_dir!r} has no class sub-folders. Expected "
                           f"layout: {FOLDER_LAYOUT}.")
    paths, labels = [], []
    for label, name in enumerate(classes):
        cdir = os.path.join(split_dir, name)
        files = sorted(f for f in os.listdir(cdir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DataDirError(f"Class folder {cdir!r} holds no image files. Expected layout: "
                               f"{FOLDER_LAYOUT}.")
        paths += [os.path.join(cdir, f) for f in files]
        labels += [label] * len(files)
    return classes, paths, labels


def check_image_folder(root, splits=("train", "val")):
    """Validate an image-folder tree and list it: returns
    ``{split: (class_names, paths, labels)}``. Raises :class:`DataDirError`
    naming the path and the expected layout when ``root`` or a split is
    missing, a split has no class folders, a class folder has no images, or
    the splits' class names differ.

    Example:
>>> from keras_acts.training.synthetic import write_image_folder
        >>> root = write_image_folder("folder1", num_classes=3, per_class=4, val_per_class=2)
        >>> classes, paths, labels = check_image_folder(root)["train"]
        >>> classes, len(paths), labels[:5]
        (['class_0', 'class_1', 'class_2'], 12, [0, 0, 0, 0, 1])
    """
    if not root or not os.path.isdir(root):
        raise DataDirError(f"Data directory {root!r} does not exist. Expected layout: "
                           f"{FOLDER_LAYOUT}.")
    out = {s: _list_split(os.path.join(root, s)) for s in splits}
    names = {s: out[s][0] for s in splits}
    first = splits[0]
    for s in splits[1:]:
        if names[s] != names[first]:
            raise DataDirError(
                f"Class folders of {os.path.join(root, s)!r} ({len(names[s])}) differ from "
                f"those of {os.path.join(root, first)!r} ({len(names[first])}). Expected "
                f"layout: {FOLDER_LAYOUT}.")
    return out

# ---------------------------------------------------------------- augmentation

def _normalize(image):
    image = tf.cast(image, tf.float32)
    return (image - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def train_preprocess(encoded, seed, image_size, area_range=(0.08, 1.0)):
    """Random-resized crop (area 8%-100%, aspect 3/4-4/3), horizontal flip and
    ImageNet normalisation of one encoded image; ``seed`` (shape ``[2]`` int)
    makes it deterministic (stateless random ops).

    Example:
        >>> encoded = tf.io.encode_jpeg(tf.zeros([40, 60, 3], tf.uint8))
        >>> train_preprocess(encoded, tf.constant([1, 2]), 16).shape
        TensorShape([16, 16, 3])
    """
    image = decode(encoded)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seeds[0], min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=area_range, max_attempts=10, use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, size)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    return _normalize(image)


def eval_preprocess(encoded, image_size, crop_fraction=0.875):
    """Resize the shorter side to ``image_size / crop_fraction``, centre-crop
    ``image_size`` and normalise.

    Example:
        >>> encoded = tf.io.encode_jpeg(tf.zeros([40, 60, 3], tf.uint8))
        >>> eval_preprocess(encoded, 16).shape
        TensorShape([16, 16, 3])
    """
    image = decode(encoded)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (image_size / crop_fraction) / tf.reduce_min(shape)
    new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    new = tf.maximum(new, image_size)
    image = tf.image.resize(image, new, method="bilinear")
    top = (new[0] - image_size) // 2
    left = (new[1] - image_size) // 2
    image = image[top:top + image_size, left:left + image_size]
    image.set_shape([image_size, image_size, 3])
    return _normalize(image)

# ---------------------------------------------------------------- datasets

def _read_file(record):
    path, label = record
    return path, tf.io.read_file(path), label


class ClassificationData(SplitBatches):
    """A classification dataset ready for ``tf.distribute``.

    ``train_records(epoch)`` / ``eval_records()`` return a ``tf.data.Dataset``
    of records in a fixed order, and ``load(record)`` turns one record into
    ``(name, encoded_image_bytes, label)`` (``name``: what a warning about
    the image calls it, e.g. its path). Records are shuffled before ``load``,
    so an image folder's shuffle buffer holds paths, not images, and a
    resumed epoch skips without reading. This class shuffles, shards,
    checks (:func:`guarded`), augments and batches them. Build it with
    :func:`image_folder_data` or :func:`tfds_data`.

    Attributes: ``num_classes``, ``num_train``, ``num_eval``, ``class_names``.

    Example:
>>> from keras_acts.training.synthetic import write_image_folder
        >>> root = write_image_folder("folder2", num_classes=3, per_class=4, val_per_class=2)
        >>> data = image_folder_data(root, image_size=16)
        >>> strategy = tf.distribute.get_strategy()
        >>> dist = strategy.distribute_datasets_from_function(
        ...     lambda ctx: data.train_dataset(4, epoch=0, input_context=ctx))
        >>> data.num_classes, data.num_train, data.num_eval, data.steps_per_epoch(4)
        (3, 12, 6, 3)
    """

    def __init__(self, train_records, eval_records, num_classes, num_train, num_eval,
                 image_size=224, class_names=None, seed=0, shuffle_buffer=None,
                 load=_read_file):
        self._train_records = train_records
        self._eval_records = eval_records
        self._load = load
        self.num_classes = int(num_classes)
        self.num_train = int(num_train)
        self.num_eval = int(num_eval)
        self.image_size = int(image_size)
        self.class_names = class_names
        self.seed = int(seed)
        self.shuffle_buffer = shuffle_buffer

    def _train_pipeline(self, global_batch_size, epoch, skip_steps, input_context, steps,
                        preprocess):
        return train_pipeline(self._train_records(epoch), preprocess, global_batch_size,
                              steps or self.steps_per_epoch(global_batch_size), epoch=epoch,
                              skip_steps=skip_steps, input_context=input_context,
                              seed=self.seed, shuffle_buffer=self.shuffle_buffer or self.num_train)

    def train_dataset(self, global_batch_size, epoch=0, skip_steps=0, input_context=None,
                      steps=None):
        """Training batches of ``(images float32 NHWC, labels int32, weights
        float32)`` for one input pipeline (see :func:`train_pipeline`):
        ``steps`` global steps long (default: one pass,
        :meth:`steps_per_epoch`; the split is repeated when ``steps`` asks for
        more), the first ``skip_steps`` of them skipped (resume), augmented
        with per-example stateless seeds keyed by (epoch, index) so a resumed
        epoch sees exactly the same batches. ``weights`` is 0 for an image
        skipped as unreadable (see :func:`guarded`), 1 otherwise.

        Example:
            >>> from keras_acts.training.synthetic import write_image_folder
            >>> data = image_folder_data(write_image_folder("folder3", 3, 4), image_size=16)
            >>> len(list(data.train_dataset(4, epoch=3, skip_steps=1)))   # 3 steps, 1 skipped
            2
        """
        size, load = self.image_size, self._load

        def preprocess(record, key):
            name, encoded, label = load(record)
            image, weight = guarded(name, encoded, lambda e: train_preprocess(e, key, size),
                                    [size, size, 3])
            return image, tf.cast(label, tf.int32), weight

        return self._train_pipeline(global_batch_size, epoch, skip_steps, input_context, steps,
                                    preprocess)

    def find_unreadable(self, global_batch_size, epoch, step, steps=None):
        """Decode every image of global step ``step`` of epoch ``epoch`` (the
        same order :meth:`train_dataset` reads; no augmentation) and return
        ``[(name, error message)]`` for those that fail. Used after a decoding
        error stopped training, to name the file (a file can pass
        :func:`images.image_file_check` and still be undecodable, e.g. with a corrupt
        header).

        Example:
            >>> from keras_acts.training.synthetic import write_image_folder
            >>> data = image_folder_data(write_image_folder("folder4", 3, 4), image_size=16)
            >>> data.find_unreadable(4, epoch=0, step=1)   # every image decodes
            []
        """
        load = self._load

        def names(record, key):
            name, encoded, _ = load(record)
            return name, encoded

        ds = self._train_pipeline(global_batch_size, epoch, step, None, steps, names)
        bad = []
        for batch_names, batch_encoded in ds.take(1):
            for name, encoded in zip(batch_names.numpy(), batch_encoded.numpy()):
                try:
                    decode(encoded)
                except tf.errors.OpError as err:
                    bad.append((name.decode(errors="replace"), err.message.strip()))
        return bad

    def eval_dataset(self, global_batch_size, input_context=None):
        """Evaluation batches of ``(images, labels, weights)``: centre crops, the
        split padded with weight-0 copies to a multiple of the global batch
        (see :func:`eval_pipeline`); unreadable images get weight 0 too.

        Example:
            >>> from keras_acts.training.synthetic import write_image_folder
            >>> root = write_image_folder("folder5", 3, 4, val_per_class=2)
            >>> data = image_folder_data(root, image_size=16)
            >>> [w.numpy().tolist() for _, _, w in data.eval_dataset(4)]   # 6 images
            [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
        """
        size, load = self.image_size, self._load

        def preprocess(record):
            name, encoded, label = load(record)
            image, weight = guarded(name, encoded, lambda e: eval_preprocess(e, size),
                                    [size, size, 3])
            return image, tf.cast(label, tf.int32), weight

        return eval_pipeline(self._eval_records(), preprocess, self.num_eval, global_batch_size,
                             input_context)

def image_folder_data(root, image_size=224, seed=0, train_split="train", eval_split="val"):
    """:class:`ClassificationData` over an image-folder tree (validated first
    with :func:`check_image_folder`; raises :class:`DataDirError`).

    Example:
>>> from keras_acts.training.synthetic import write_image_folder
        >>> root = write_image_folder("folder6", num_classes=3, per_class=4, val_per_class=2)
        >>> data = image_folder_data(root, image_size=16)
        >>> data.num_classes, data.class_names
        (3, ['class_0', 'class_1', 'class_2'])
    """
    listing = check_image_folder(root, (train_split, eval_split))
    classes, tr_paths, tr_labels = listing[train_split]
    _, ev_paths, ev_labels = listing[eval_split]

    def records(paths, labels):  # read after shuffling (ClassificationData's load)
        return tf.data.Dataset.from_tensor_slices((np.array(paths), np.array(labels, np.int32)))

    return ClassificationData(lambda epoch: records(tr_paths, tr_labels),
                              lambda: records(ev_paths, ev_labels),
                              num_classes=len(classes), num_train=len(tr_paths),
                              num_eval=len(ev_paths), image_size=image_size,
                              class_names=classes, seed=seed)

def tfds_data(name, data_dir=None, image_size=224, seed=0, train_split="train",
              eval_split="validation", image_key="image", label_key="label",
              shuffle_buffer=16384, manual_dir=None, download=False):
    """:class:`ClassificationData` over a prepared TFDS image-classification
    dataset (images read undecoded, decoded in the augmentation map; warnings
    name an unreadable image by its ``tfds_id``).

    Example:
        >>> from keras_acts.training.synthetic import build_tfds_classification
        >>> _ = build_tfds_classification("tfds", num_classes=3, train=16,
        ...                               validation=8)  # doctest: +ELLIPSIS
        Downloading and preparing dataset ...
        >>> data = tfds_data("tiny_images", data_dir="tfds", image_size=16)
        >>> data.num_classes, data.num_train, data.num_eval
        (3, 16, 8)
    """
    tfds = require("tensorflow_datasets", feature="TFDS input")

    builder = tfds_builder(name, data_dir, manual_dir, download)
    check_splits(builder, name, data_dir, (train_split, eval_split))
    info = builder.info
    decoders = {image_key: tfds.decode.SkipDecoding()}

    def records(split, epoch=None):
        cfg = tfds.ReadConfig(shuffle_seed=None if epoch is None else seed * 100003 + epoch,
                              interleave_cycle_length=16 if epoch is not None else 1,
                              add_tfds_id=True)
        ds = builder.as_dataset(split=split, decoders=decoders, read_config=cfg,
                                shuffle_files=epoch is not None)
        return ds.map(lambda ex: (ex["tfds_id"], ex[image_key], ex[label_key]))

    return ClassificationData(lambda epoch: records(train_split, epoch),
                              lambda: records(eval_split),
                              num_classes=info.features[label_key].num_classes,
                              num_train=info.splits[train_split].num_examples,
                              num_eval=info.splits[eval_split].num_examples,
                              image_size=image_size, seed=seed,
                              class_names=info.features[label_key].names,
                              shuffle_buffer=shuffle_buffer, load=lambda record: record)
