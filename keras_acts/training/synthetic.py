"""Tiny datasets in the real on-disk formats, for smoke runs and tests
without downloads: an image-folder tree of JPEG/PNG files and locally built
TFDS datasets (classification, and VOC-like detection).

Example:
    >>> write_image_folder("folder", num_classes=3, per_class=8)
    'folder'
    >>> builder = build_tfds_classification("tfds", num_classes=3, train=16,
    ...                                     validation=8)  # doctest: +ELLIPSIS
    Downloading and preparing dataset ...
"""

import os

import numpy as np

from keras_acts._extras import require


def _image(rng, size, label, num_classes):
    # A class-dependent colour plus noise: learnable in a few steps.
    base = np.zeros((size, size, 3), np.float32)
    base[..., label % 3] = 80 + 150 * (label / max(num_classes - 1, 1))
    noisy = base + rng.normal(0, 25, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_image_folder(root, num_classes=3, per_class=8, val_per_class=4, size=40, seed=0,
                       formats=("jpg", "png")):
    """Write ``root/{train,val}/class_<k>/img_<i>.<fmt>`` (formats alternate).
    Returns ``root``.

    Example:
        >>> write_image_folder("two_classes", num_classes=2, per_class=4)
        'two_classes'
        >>> sorted(os.listdir("two_classes/train/class_1"))
        ['img_0.jpg', 'img_1.png', 'img_2.jpg', 'img_3.png']
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", val_per_class)):
        for k in range(num_classes):
            d = os.path.join(root, split, f"class_{k}")
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                fmt = formats[i % len(formats)]
                img = _image(rng, size + (i % 3) * 4, k, num_classes)
                enc = tf.io.encode_png(img) if fmt == "png" else tf.io.encode_jpeg(img)
                with open(os.path.join(d, f"img_{i}.{fmt}"), "wb") as f:
                    f.write(enc.numpy())
    return root


def build_tfds_classification(data_dir, name="tiny_images", num_classes=3, train=16,
                              validation=8, size=40, seed=0):
    """Build a TFDS image-classification dataset ``name`` (features ``image``,
    ``label``; splits ``train``, ``validation``) under ``data_dir`` with a local
    ``GeneratorBasedBuilder`` (no download). Returns the builder.

    Example:
        >>> builder = build_tfds_classification("tfds")
        >>> builder.info.splits["train"].num_examples
        16
    """
    tfds = require("tensorflow_datasets", feature="synthetic TFDS datasets")

    counts = {"train": train, "validation": validation}

    class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")
        _checksums_path = None  # nothing to download (and no importlib_resources needed)

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(num_classes=num_classes)}))

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(s) for s in counts}

        def _generate_examples(self, split):
            rng = np.random.default_rng(seed + (split == "validation"))
            for i in range(counts[split]):
                label = i % num_classes
                yield i, {"image": _image(rng, size, label, num_classes), "label": label}

    Builder.name = name
    builder = Builder(data_dir=data_dir)
    builder.download_and_prepare()
    return builder


def build_tfds_detection(data_dir, name="tiny_voc", num_classes=3, train=16, validation=6,
                         size=64, seed=0):
    """Build a VOC/COCO-like TFDS detection dataset ``name`` under ``data_dir``:
    ``image`` plus ``objects`` (a sequence of ``bbox`` in TFDS' normalised
    (ymin, xmin, ymax, xmax) and ``label``), splits ``train`` / ``validation``;
    each image holds 1-3 coloured rectangles whose colour is the class.
    Returns the builder.

    Example:
        >>> builder = build_tfds_detection("tfds")  # doctest: +ELLIPSIS
        Downloading and preparing dataset ...
        >>> builder.info.features["objects"]["label"].num_classes
        3
    """
    tfds = require("tensorflow_datasets", feature="synthetic TFDS datasets")

    counts = {"train": train, "validation": validation}
    colours = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])

    def example(rng):
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 4))):
            label = int(rng.integers(0, num_classes))
            h, w = rng.integers(size // 5, size // 2, 2)
            y0, x0 = rng.integers(0, size - h), rng.integers(0, size - w)
            img[y0:y0 + h, x0:x0 + w] = colours[label % len(colours)]
            boxes.append(np.array([y0, x0, y0 + h, x0 + w], np.float32) / size)
            labels.append(label)
        return {"image": img, "objects": {"bbox": np.stack(boxes), "label": labels}}

    class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")
        _checksums_path = None

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(num_classes=num_classes)})}))

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(s) for s in counts}

        def _generate_examples(self, split):
            rng = np.random.default_rng(seed + (split == "validation"))
            for i in range(counts[split]):
                yield i, example(rng)

    Builder.name = name
    builder = Builder(data_dir=data_dir)
    builder.download_and_prepare()
    return builder
