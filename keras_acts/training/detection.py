"""The object-detection recipe: keras-cv ``YOLOV8Detector`` or ``RetinaNet``
on a backbone whose activations are keras_acts', TFDS ``voc`` / ``coco`` (or
any dataset with ``image`` and ``objects/{bbox,label}``) input with box-format
conversion and flip augmentation, COCO-style mAP (keras-cv ``BoxCOCOMetrics``,
pycocotools) over predictions gathered from every replica, and the same
distributed loop / checkpoint / XLA / mixed-precision machinery as
classification. ``examples/detection/train.py`` is a thin CLI over
:func:`train_detector`.

Example:
    >>> out = train_detector(data_dir="~/tfds", dataset="voc/2007", model_dir="/tmp/det",
    ...                      detector="yolov8", backbone="resnet50", activation="serf")
"""

import numpy as np
import tensorflow as tf

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
        >>> data = DetectionData("voc/2007", "~/tfds", image_size=512)
        >>> images, targets = next(iter(data.train_dataset(16, epoch=0)))
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
            >>> ds = data.train_dataset(16, epoch=2, skip_steps=5)
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
            >>> for images, targets, weights in data.eval_dataset(16): ...
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
        >>> with strategy.scope():
        ...     build_compiled_loss(model)
    """
    # private: moved to keras_acts/_private.py by the lead (Keras' CompileLoss
    # and its _user_loss have no public handle)
    compile_loss = getattr(model, "_compile_loss", None)
    if compile_loss is None or compile_loss.built:
        return
    user_loss = getattr(compile_loss, "_user_loss", None)
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
            >>> loss, sums = task.train_step(model, (images, targets), 16)
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
            >>> out = task.eval_step(model, (images, targets, weights))
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
            >>> task.eval_begin()
        """
        keras_cv = require("keras_cv", feature="the detection pipeline")
        require("pycocotools", feature="COCO mAP (keras-cv BoxCOCOMetrics)")
        self._metric = keras_cv.metrics.BoxCOCOMetrics(bounding_box_format=BOX_FORMAT,
                                                       evaluate_freq=1)

    def eval_update(self, values):
        """Add one gathered global batch (numpy), padded examples dropped.

        Example:
            >>> task.eval_update(gathered)
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
            >>> task.eval_result()["mAP50"]
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
        >>> out = train_detector(data_dir="/tmp/tfds", dataset="tiny_voc", model_dir="/tmp/d",
        ...                      image_size=64, batch_size=4, epochs=1, steps_per_epoch=2)
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
