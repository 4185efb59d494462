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

import os

import keras
import numpy as np
import tensorflow as tf

from keras_acts.training import data as data_lib
from keras_acts.training.loop import Trainer
from keras_acts.training.models import activation_factory
from keras_acts.training.optim import make_sgd
from keras_acts.training.schedules import WarmupDecay
from keras_acts.training.schedules import scaled_learning_rate
from keras_acts.training.strategy import create_strategy
from keras_acts.training.strategy import set_mixed_precision
from keras_acts.training.strategy import worker_dir

DETECTORS = ("yolov8", "retinanet")
BOX_FORMAT = "xyxy"


# ---------------------------------------------------------------- data

class DetectionData:
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
        import tensorflow_datasets as tfds

        self.builder = data_lib.tfds_builder(name, data_dir, download=download)
        info = self.builder.info
        for split in (train_split, eval_split):
            if split not in info.splits:
                raise data_lib.DataDirError(
                    f"TFDS dataset {name!r} in {data_dir!r} has no split {split!r} (it has "
                    f"{sorted(info.splits)}).")
        try:
            objects = info.features["objects"]
            label_feature = objects["label"]
            objects["bbox"]  # noqa: B018 - presence check
        except (KeyError, TypeError):
            raise data_lib.DataDirError(
                f"TFDS dataset {name!r} in {data_dir!r} is not a detection dataset: expected "
                "features 'image' and 'objects' with 'bbox' and 'label' (like voc / coco).") from None
        self.num_classes = label_feature.num_classes
        self.class_names = label_feature.names
        self.num_train = info.splits[train_split].num_examples
        self.num_eval = info.splits[eval_split].num_examples
        self.image_size, self.max_boxes, self.seed = int(image_size), int(max_boxes), int(seed)
        self._splits = (train_split, eval_split)
        self._tfds = tfds

    def steps_per_epoch(self, global_batch_size):
        """Full global batches in one pass over the training split.

        Example:
            >>> data.steps_per_epoch(64)
        """
        return max(self.num_train // global_batch_size, 1)

    def eval_steps(self, global_batch_size):
        """Global eval batches covering the split (last one padded).

        Example:
            >>> data.eval_steps(64)
        """
        return -(-self.num_eval // global_batch_size)

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
        ctx = input_context or tf.distribute.InputContext()
        batch = ctx.get_per_replica_batch_size(global_batch_size)
        per_pipeline = global_batch_size // ctx.num_input_pipelines
        steps = steps or self.steps_per_epoch(global_batch_size)
        ds = self._records(self._splits[0], epoch)
        ds = ds.shuffle(min(self.num_train, 4096), seed=self.seed * 100003 + epoch,
                        reshuffle_each_iteration=False).repeat().enumerate()
        if ctx.num_input_pipelines > 1:
            ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        ds = ds.take(steps * per_pipeline).skip(skip_steps * per_pipeline)
        seed = self.seed

        def prep(index, record):
            key = tf.stack([tf.cast(seed * 1000 + epoch, tf.int64), index])
            return self._prepare(*record, flip_seed=key)

        ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
        return data_lib._no_autoshard(ds.batch(batch, drop_remainder=True)
                                      .prefetch(tf.data.AUTOTUNE))

    def eval_dataset(self, global_batch_size, input_context=None):
        """Eval batches ``(images, targets, weights)``, padded with weight-0
        copies to full global batches.

        Example:
            >>> for images, targets, weights in data.eval_dataset(16): ...
        """
        ctx = input_context or tf.distribute.InputContext()
        batch = ctx.get_per_replica_batch_size(global_batch_size)
        n = self.num_eval
        padded = self.eval_steps(global_batch_size) * global_batch_size
        ds = self._records(self._splits[1]).repeat().take(padded).enumerate()
        if ctx.num_input_pipelines > 1:
            ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)

        def prep(index, record):
            image, target = self._prepare(*record)
            return image, target, tf.cast(index < n, tf.float32)

        ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
        return data_lib._no_autoshard(ds.batch(batch, drop_remainder=True)
                                      .prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------- models

def tiny_pyramid_backbone(input_shape, activation, width=8):
    """A 5-stage conv-BN-activation backbone with ``pyramid_level_inputs``
    (P3-P5 layer names) as keras-cv detectors expect; for tests and smoke runs.

    Example:
        >>> bb = tiny_pyramid_backbone((64, 64, 3), activation_factory("serf"))
        >>> bb.pyramid_level_inputs["P5"]
        'P5'
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for i, mult in enumerate((1, 1, 2, 4, 4)):
        x = keras.layers.Conv2D(width * mult, 3, strides=2, padding="same", use_bias=False,
                                name=f"conv{i + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = activation()(x)
        if i >= 2:
            x = keras.layers.Identity(name=f"P{i + 1}")(x)
    model = keras.Model(inputs, x, name="tiny_pyramid")
    model.pyramid_level_inputs = {f"P{i}": f"P{i}" for i in (3, 4, 5)}
    return model


def build_detector(detector, backbone, activation, num_classes, image_size, source="keras_cv",
                   **act_kwargs):
    """keras-cv ``YOLOV8Detector`` (``detector="yolov8"``) or ``RetinaNet`` on
    backbone ``backbone``: ``"tiny_pyramid"`` is built here; anything else by
    ``keras_acts.backbones.build(..., source=source)``, which must return a
    model with ``pyramid_level_inputs``. Boxes are ``xyxy`` pixels.

    Example:
        >>> model = build_detector("yolov8", "tiny_pyramid", "pwlu", 20, 64)
    """
    import keras_cv

    input_shape = (image_size, image_size, 3)
    if backbone == "tiny_pyramid":
        bb = tiny_pyramid_backbone(input_shape, activation_factory(activation, **act_kwargs))
    else:
        from keras_acts import backbones

        if not hasattr(backbones, "build"):
            raise ValueError(f"Backbone {backbone!r} needs keras_acts.backbones.build; use "
                             "'tiny_pyramid'.")
        bb = backbones.build(backbone, activation=activation, source=source,
                             input_shape=input_shape)
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
    return model


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
        import keras_cv

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

def train_detector(*, data_dir, model_dir, dataset="voc/2007", detector="yolov8",
                   backbone="tiny_pyramid", activation="pwlu", source="keras_cv", image_size=512,
                   max_boxes=32, epochs=50, batch_size=16, steps_per_epoch=None, eval_steps=None,
                   lr=0.01, lr_schedule="cosine", warmup_epochs=1.0, momentum=0.9,
                   nesterov=False, weight_decay=5e-4, pwlu_phase1_epochs=1.0,
                   strategy="default", tpu=None, jit_compile=False, mixed_precision=False,
                   checkpoint_every=1000, keep_checkpoints=3, log_every=50, seed=0, verbose=1,
                   throttle_s=0.0, download=False, train_split="train",
                   eval_split="validation", distribution=None, **unused):
    """Train (or resume) a detector; returns a dict like
    :func:`classification.train_classifier`'s (``history["eval"]`` holds
    COCO mAP / mAP50 / mAP75 / recall100 per epoch). ``lr`` is per 256 images.

    Example:
        >>> out = train_detector(data_dir="/tmp/tfds", dataset="tiny_voc", model_dir="/tmp/d",
        ...                      image_size=64, batch_size=4, epochs=1, steps_per_epoch=2)
    """
    strat = distribution or create_strategy(strategy, tpu=tpu)
    set_mixed_precision(mixed_precision, strategy)
    try:
        data = DetectionData(dataset, data_dir, image_size, max_boxes, seed, train_split,
                             eval_split, download)
        keras.utils.set_random_seed(seed)
        steps_per_epoch = steps_per_epoch or data.steps_per_epoch(batch_size)
        if eval_steps is None:
            eval_steps = data.eval_steps(batch_size)
        phase1_steps = int(round(pwlu_phase1_epochs * steps_per_epoch))
        act_kwargs = {"phase1_steps": phase1_steps} if activation == "pwlu" else {}
        realign_epoch = None
        if activation == "pwlu" and pwlu_phase1_epochs and float(pwlu_phase1_epochs).is_integer():
            realign_epoch = int(pwlu_phase1_epochs)
        with strat.scope():
            model = build_detector(detector, backbone, activation, data.num_classes, image_size,
                                   source, **act_kwargs)
            schedule = WarmupDecay(scaled_learning_rate(lr, batch_size),
                                   total_steps=epochs * steps_per_epoch,
                                   warmup_steps=int(warmup_epochs * steps_per_epoch),
                                   decay=lr_schedule)
            optimizer = make_sgd(model, schedule, momentum=momentum, nesterov=nesterov,
                                 weight_decay=weight_decay)
        trainer = Trainer(model, optimizer, DetectionTask(), strat, global_batch_size=batch_size,
                          model_dir=model_dir, jit_compile=jit_compile,
                          checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                          log_every=log_every, phase1_epochs=realign_epoch, verbose=verbose,
                          throttle_s=throttle_s)
        if verbose and trainer.initial_step:
            print(f"Resumed from {trainer.checkpoint.latest} at step {trainer.initial_step}.")
        history = trainer.fit(
            lambda epoch, skip, ctx: data.train_dataset(batch_size, epoch, skip, ctx,
                                                        steps=steps_per_epoch),
            epochs, steps_per_epoch,
            eval_fn=lambda ctx: data.eval_dataset(batch_size, ctx), eval_steps=eval_steps)
        path = os.path.join(worker_dir(model_dir, strat), "final.weights.h5")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.save_weights(path)
        return {"history": history, "model": model, "trainer": trainer, "strategy": strat,
                "initial_step": trainer.initial_step, "final_step": trainer.step,
                "weights_path": path}
    finally:
        if mixed_precision:
            keras.mixed_precision.set_global_policy("float32")
