"""The object-detection recipe: keras-cv ``YOLOV8Detector`` or ``RetinaNet``
on a backbone whose activations are keras_acts', TFDS ``voc`` / ``coco`` (or
any dataset with ``image`` and ``objects/{bbox,label}``) input with box-format
conversion and flip augmentation, COCO-style mAP (keras-cv ``BoxCOCOMetrics``,
pycocotools) over predictions gathered from every replica, and the same
distributed loop / checkpoint / XLA / mixed-precision machinery as
classification. ``examples/detection/train.py`` is a thin CLI over
:func:`train_detector`.

Example:
    >>> opts = DetectionOptions(data_dir="~/tfds", dataset="voc/2007", model_dir="/tmp/det",
    ...                         detector="yolov8", backbone="yolo_v8_xs", activation="serf")
    >>> opts.epochs, opts.lr, opts.warmup_epochs   # then: train_detector(opts)
    (50, 0.01, 1.0)
"""

import numpy as np
import tensorflow as tf

from keras_acts import _private
from keras_acts._extras import require

from keras_acts.training import pipeline
from keras_acts.training.models import build_backbone
from keras_acts.training.options import DETECTORS
from keras_acts.training.options import DetectionOptions
from keras_acts.training.recipe import run_recipe

BOX_FORMAT = "xyxy"


# ---------------------------------------------------------------- data

class DetectionData(pipeline.SplitBatches):
    """A TFDS detection dataset as dense padded batches for ``tf.distribute``:
    ``images`` (float32 in [0, 255], resized to ``image_size`` square) and
    ``{"boxes": [B, max_boxes, 4] xyxy pixels, "classes": [B, max_boxes]}``
    (padding: class -1, box -1). Training flips horizontally at random
    (stateless, keyed by epoch and index: a resumed epoch is identical).

    Example:
        >>> from keras_acts.training.synthetic import build_tfds_detection
        >>> _ = build_tfds_detection("tfds0")  # doctest: +ELLIPSIS
        Downloading and preparing dataset ...
        >>> data = DetectionData("tiny_voc", "tfds0", image_size=32, max_boxes=4)
        >>> images, targets = next(iter(data.train_dataset(4, epoch=0)))
        >>> images.shape, targets["boxes"].shape, targets["classes"].shape
        (TensorShape([4, 32, 32, 3]), TensorShape([4, 4, 4]), TensorShape([4, 4]))
    """

    def __init__(self, name, data_dir, image_size=512, max_boxes=32, seed=0,
                 train_split="train", eval_split="validation", download=False):
        tfds = require("tensorflow_datasets", feature="the detection pipeline")

        self.builder = pipeline.tfds_builder(name, data_dir, download=download)
        pipeline.check_splits(self.builder, name, data_dir, (train_split, eval_split))
        info = self.builder.info
        try:
            objects = info.features["objects"]
            label_feature = objects["label"]
            objects["bbox"]  # noqa: B018 - presence check
        except (KeyError, TypeError):
            raise pipeline.DataDirError(
                f"TFDS dataset {name!r} in {data_dir!r} is not a detection dataset: expected "
                "features 'image' and 'objects' with 'bbox' and 'label' (like voc / coco).") from None
        self.num_classes = label_feature.num_classes
        self.class_names = label_feature.names
        self.num_train = info.splits[train_split].num_examples
        self.num_eval = info.splits[eval_split].num_examples
        self.image_size, self.max_boxes, self.seed = int(image_size), int(max_boxes), int(seed)
        self._splits = (train_split, eval_split)
        self._tfds = tfds

    def _records(self, split, epoch=None):
        cfg = self._tfds.ReadConfig(shuffle_seed=None if epoch is None else self.seed + epoch)
        ds = self.builder.as_dataset(split=split, read_config=cfg, shuffle_files=epoch is not None,
                                     decoders={"image": self._tfds.decode.SkipDecoding()})
        return ds.map(lambda ex: (ex["image"], ex["objects"]["bbox"], ex["objects"]["label"]))

    def _prepare(self, encoded, rel_yxyx, labels, flip_seed=None):
        size = self.image_size
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [size, size])
        ymin, xmin, ymax, xmax = tf.unstack(tf.reshape(rel_yxyx, [-1, 4]), axis=-1)
        if flip_seed is not None:
            flip = tf.random.stateless_uniform([], flip_seed) < 0.5
            image = tf.where(flip, tf.reverse(image, axis=[1]), image)
            xmin, xmax = (tf.where(flip, 1.0 - xmax, xmin), tf.where(flip, 1.0 - xmin, xmax))
        boxes = tf.stack([xmin, ymin, xmax, ymax], axis=-1) * float(size)
        classes = tf.cast(labels, tf.float32)
        n = tf.minimum(tf.shape(boxes)[0], self.max_boxes)
        pad = self.max_boxes - n
        boxes = tf.pad(boxes[:n], [[0, pad], [0, 0]], constant_values=-1.0)
        classes = tf.pad(classes[:n], [[0, pad]], constant_values=-1.0)
        boxes.set_shape([self.max_boxes, 4])
        classes.set_shape([self.max_boxes])
        return image, {"boxes": boxes, "classes": classes}

    def train_dataset(self, global_batch_size, epoch=0, skip_steps=0, input_context=None,
                      steps=None):
        """Training batches ``(images, {"boxes", "classes"})`` for one input
        pipeline (same sharding / resume semantics as
        :meth:`data.ClassificationData.train_dataset`).

        Example:
            >>> from keras_acts.training.synthetic import build_tfds_detection
            >>> _ = build_tfds_detection("tfds1")  # doctest: +ELLIPSIS
            Downloading and preparing dataset ...
            >>> data = DetectionData("tiny_voc", "tfds1", image_size=32, max_boxes=4)
            >>> data.steps_per_epoch(4), len(list(data.train_dataset(4, epoch=2, skip_steps=1)))
            (4, 3)
        """
        return pipeline.train_pipeline(
            self._records(self._splits[0], epoch),
            lambda record, key: self._prepare(*record, flip_seed=key), global_batch_size,
            steps or self.steps_per_epoch(global_batch_size), epoch=epoch,
            skip_steps=skip_steps, input_context=input_context, seed=self.seed,
            shuffle_buffer=min(self.num_train, 4096))

    def eval_dataset(self, global_batch_size, input_context=None):
        """Eval batches ``(images, targets, weights)``, padded with weight-0
        copies to full global batches.

        Example:
            >>> from keras_acts.training.synthetic import build_tfds_detection
            >>> _ = build_tfds_detection("tfds2")  # doctest: +ELLIPSIS
            Downloading and preparing dataset ...
            >>> data = DetectionData("tiny_voc", "tfds2", image_size=32, max_boxes=4)
            >>> [w.numpy().tolist() for _, _, w in data.eval_dataset(4)]   # 6 images
            [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
        """
        return pipeline.eval_pipeline(self._records(self._splits[1]),
                                      lambda record: (*self._prepare(*record), 1.0),
                                      self.num_eval, global_batch_size, input_context)


# ---------------------------------------------------------------- models

def build_detector(detector, backbone, activation, num_classes, image_size, source="keras_cv",
                   **act_kwargs):
    """keras-cv ``YOLOV8Detector`` (``detector="yolov8"``) or ``RetinaNet`` on
    backbone ``backbone`` (built by :func:`models.build_backbone`: ``"tiny_pyramid"``,
    or ``keras_acts.backbones.build(..., source=source)``, e.g. ``"yolo_v8_xs"``
    with ``source="keras_cv"``), which must expose ``pyramid_level_inputs``.
    The compiled loss is built at once (see :func:`build_compiled_loss`).
    Boxes are ``xyxy`` pixels.

    Example:
        >>> model = build_detector("yolov8", "tiny_pyramid", "pwlu", 20, 64)
        >>> type(model).__name__, model.backbone.name
        ('YOLOV8Detector', 'tiny_pyramid')
    """
    keras_cv = require("keras_cv", feature="the detection pipeline")

    bb = build_backbone(backbone, activation, (image_size, image_size, 3), source,
                        **act_kwargs)
    if not getattr(bb, "pyramid_level_inputs", None):
        raise ValueError(f"Backbone {backbone!r} ({source}) has no `pyramid_level_inputs`, "
                         "which keras-cv detectors need; use a detector backbone such as "
                         "'yolo_v8_xs' ... 'yolo_v8_xl' or 'resnet18' / 'resnet50' with "
                         "source 'keras_cv', or 'tiny_pyramid'.")
    if detector == "yolov8":
        model = keras_cv.models.YOLOV8Detector(num_classes=num_classes,
                                               bounding_box_format=BOX_FORMAT,
                                               backbone=bb, fpn_depth=1)
        model.compile(classification_loss="binary_crossentropy", box_loss="ciou",
                      optimizer="sgd", jit_compile=False)
    elif detector == "retinanet":
        model = keras_cv.models.RetinaNet(num_classes=num_classes,
                                          bounding_box_format=BOX_FORMAT, backbone=bb)
        model.compile(classification_loss="focal", box_loss="smoothl1", optimizer="sgd",
                      jit_compile=False)
    else:
        raise ValueError(f"detector must be one of {DETECTORS}; received {detector!r}.")
    build_compiled_loss(model)
    return model


def build_compiled_loss(model):
    """Create the variables of ``model``'s compiled loss now (call inside
    ``strategy.scope()``; a no-op when already built or not compiled).

    keras-cv detectors' ``compute_loss`` ends in ``keras.Model.compute_loss``,
    whose ``CompileLoss`` builds lazily on first use and then adds one ``Mean``
    tracker per loss term (``box_loss``, ``class_loss``): variables created
    inside the first call of the distributed ``tf.function`` train step.
    Under ``MirroredStrategy`` their initialisers cannot be lifted out of the
    function, TensorFlow falls back to its ``fn_with_cond`` initialisation
    path, and the step fails with ``InvalidArgumentError ...
    __inference_fn_with_cond``. Building the loss here, with placeholders of
    the loss dict's structure, keeps variable creation out of the step.

    Example:
        >>> import keras_cv
        >>> backbone = build_backbone("tiny_pyramid", "serf", (64, 64, 3))
        >>> with tf.distribute.get_strategy().scope():
        ...     model = keras_cv.models.RetinaNet(num_classes=3, bounding_box_format="xyxy",
        ...                                       backbone=backbone)
        ...     model.compile(classification_loss="focal", box_loss="smoothl1")
        ...     build_compiled_loss(model)
        >>> {"box_loss", "classification_loss"} <= {m.name for m in model.metrics}
        True
    """
    compile_loss, user_loss = _private.compile_loss(model)  # no public handle
    if compile_loss is None or compile_loss.built:
        return
    if isinstance(user_loss, dict):
        dummy = {key: np.zeros((1, 1), "float32") for key in user_loss}
    else:
        dummy = np.zeros((1, 1), "float32")
    compile_loss.build(dummy, dummy)


# ---------------------------------------------------------------- task

class DetectionTask:
    """Loss from the detector's own ``compute_loss`` (label assignment
    included); evaluation decodes predictions (NMS), gathers them with the
    ground truth from every replica and worker, and computes COCO metrics on
    the host with keras-cv ``BoxCOCOMetrics`` (pycocotools).

    Example:
        >>> task = DetectionTask()
    """

    gather_eval = True
    train_metrics = ("loss",)

    def train_step(self, model, batch, global_batch_size):
        """Replica loss scaled for summation over replicas, and report sums.

        Example:
            >>> model = build_detector("yolov8", "tiny_pyramid", "serf", 3, 64)
            >>> images = tf.zeros([2, 64, 64, 3])
            >>> targets = {"boxes": tf.constant([[[8.0, 8, 40, 40]]] * 2),
            ...            "classes": tf.constant([[1.0]] * 2)}
            >>> loss, sums = DetectionTask().train_step(model, (images, targets), 2)
            >>> sorted(sums), float(sums["count"])
            (['count', 'loss'], 2.0)
        """
        images, targets = batch
        pred = model(images, training=True)
        loss = tf.cast(model.compute_loss(x=images, y=targets, y_pred=pred, sample_weight=None),
                       tf.float32)
        n = tf.cast(tf.shape(images)[0], tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas, {"loss": loss * n, "count": n}

    def eval_step(self, model, batch):
        """Decoded predictions, ground truth and example weights of one batch.

        Example:
            >>> model = build_detector("yolov8", "tiny_pyramid", "serf", 3, 64)
            >>> images = tf.zeros([2, 64, 64, 3])
            >>> targets = {"boxes": tf.constant([[[8.0, 8, 40, 40]]] * 2),
            ...            "classes": tf.constant([[1.0]] * 2)}
            >>> out = DetectionTask().eval_step(model, (images, targets, tf.ones([2])))
            >>> sorted(out)
            ['gt_boxes', 'gt_classes', 'pred_boxes', 'pred_classes', 'pred_confidence', 'weights']
        """
        images, targets, weights = batch
        pred = model.decode_predictions(model(images, training=False), images)
        return {"pred_boxes": tf.cast(pred["boxes"], tf.float32),
                "pred_classes": tf.cast(pred["classes"], tf.float32),
                "pred_confidence": tf.cast(pred["confidence"], tf.float32),
                "gt_boxes": targets["boxes"], "gt_classes": targets["classes"],
                "weights": weights}

    def eval_begin(self):
        """Start a fresh COCO metric.

        Example:
            >>> task = DetectionTask()
            >>> task.eval_begin()   # a fresh metric
        """
        keras_cv = require("keras_cv", feature="the detection pipeline")
        require("pycocotools", feature="COCO mAP (keras-cv BoxCOCOMetrics)")
        self._metric = keras_cv.metrics.BoxCOCOMetrics(bounding_box_format=BOX_FORMAT,
                                                       evaluate_freq=1)

    def eval_update(self, values):
        """Add one gathered global batch (numpy), padded examples dropped.

        Example:
>>> boxes = np.array([[[2, 2, 20, 20], [30, 30, 60, 50], [-1, -1, -1, -1]]], np.float32)
            >>> classes = np.array([[0, 2, -1]], np.float32)
            >>> gathered = {"gt_boxes": boxes, "gt_classes": classes, "pred_boxes": boxes,
            ...             "pred_classes": classes, "pred_confidence": np.array([[0.9, 0.8, -1]]),
            ...             "weights": np.array([1.0])}   # perfect predictions
            >>> task = DetectionTask()
            >>> task.eval_begin()
            >>> task.eval_update(gathered)
            >>> round(task.eval_result()["mAP"], 6)
            1.0
        """
        keep = values["weights"] > 0
        if not keep.any():
            return
        y_true = {"boxes": values["gt_boxes"][keep], "classes": values["gt_classes"][keep]}
        y_pred = {"boxes": values["pred_boxes"][keep], "classes": values["pred_classes"][keep],
                  "confidence": values["pred_confidence"][keep]}
        self._metric.update_state(y_true, y_pred)

    def eval_result(self):
        """``{"mAP", "mAP50", "mAP75", "recall100"}`` (COCO definitions).

        Example:
>>> boxes = np.array([[[2, 2, 20, 20], [30, 30, 60, 50], [-1, -1, -1, -1]]], np.float32)
            >>> classes = np.array([[0, 2, -1]], np.float32)
            >>> gathered = {"gt_boxes": boxes, "gt_classes": classes, "pred_boxes": boxes,
            ...             "pred_classes": classes, "pred_confidence": np.array([[0.9, 0.8, -1]]),
            ...             "weights": np.array([1.0])}   # perfect predictions
            >>> task = DetectionTask()
            >>> task.eval_begin()
            >>> task.eval_update(gathered)
            >>> {k: round(v, 6) for k, v in task.eval_result().items()}
            {'mAP': 1.0, 'mAP50': 1.0, 'mAP75': 1.0, 'recall100': 1.0}
        """
        r = {k: float(np.asarray(v)) for k, v in self._metric.result(force=True).items()}
        return {"mAP": r["MaP"], "mAP50": r["MaP@[IoU=50]"], "mAP75": r["MaP@[IoU=75]"],
                "recall100": r["Recall@[max_detections=100]"]}


# ---------------------------------------------------------------- recipe

def train_detector(options=None, /, *, distribution=None, **values):
    """Train (or resume) a detector as ``options`` (a
    :class:`options.DetectionOptions`) say, fields replaced by ``values`` (an
    unknown keyword is a ``TypeError``); returns a dict like
    :func:`classification.train_classifier`'s (``history["eval"]`` holds
    COCO mAP / mAP50 / mAP75 / recall100 per epoch). ``lr`` is per 256 images.

    Example:
        >>> try:
        ...     train_detector(data_dir="absent", dataset="tiny_voc", model_dir="det",
        ...                    image_size=64, batch_size=4, epochs=1, steps_per_epoch=2)
        ... except pipeline.DataDirError as err:   # checked before anything is built
        ...     print(str(err)[:45])
        TFDS data directory 'absent' does not exist.
    """
    o = DetectionOptions.make(options, **values)
    return run_recipe(
        o,
        load_data=lambda: DetectionData(o.dataset, o.data_dir, o.image_size, o.max_boxes,
                                        o.seed, o.train_split, o.eval_split, o.download),
        build_model=lambda data, act_kwargs: build_detector(
            o.detector, o.backbone, o.activation, data.num_classes, o.image_size, o.source,
            **act_kwargs),
        make_task=lambda data: DetectionTask(),
        distribution=distribution)
