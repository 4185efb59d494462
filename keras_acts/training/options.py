"""Every option of the two training recipes, each written once with its
default and help: :class:`ClassificationOptions` (``examples/imagenet``,
:func:`classification.train_classifier`) and :class:`DetectionOptions`
(``examples/detection``, :func:`detection.train_detector`). The command-line
flags are generated from these fields (:mod:`flags`), and the recipes take one
options object, so a misspelt option is an error wherever it is written.

Options whose default is the same in both recipes live in
:class:`SharedOptions`; those whose default differs (model size, learning
rate, schedule, image size) are declared by each recipe.

Example:
    >>> opts = ClassificationOptions(data_dir="/data", model_dir="/tmp/run", epochs=2)
    >>> opts.lr, opts.warmup_epochs, DetectionOptions(data_dir="d", model_dir="m").lr
    (0.1, 5.0, 0.01)
    >>> ClassificationOptions(data_dir="/data", model_dir="/tmp/run", epoch=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: ClassificationOptions has no option 'epoch' (did you mean 'epochs'?); ...
"""

import dataclasses
import difflib
import inspect
import typing

from keras_acts.training.schedules import DECAYS
from keras_acts.training.strategy import STRATEGIES

SOURCES = ("keras_hub", "keras_cv", "keras", "keras_acts")
DETECTORS = ("yolov8", "retinanet")

#: Order of the ``--help`` sections.
GROUPS = ("distribution", "model", "data", "recipe", "detection", "bookkeeping")


def option(default=dataclasses.MISSING, help="", group="recipe", choices=None,  # noqa: A002
           minimum=None):
    """A dataclass field carrying what its command-line flag needs in its
    metadata: ``help`` text, ``--help`` ``group``, allowed ``choices`` and
    ``minimum`` value (both checked when an options object is made).

    Example:
        >>> f = option(0.9, "SGD momentum.", minimum=0.0)
        >>> f.default, f.metadata["help"]
        (0.9, 'SGD momentum.')
    """
    metadata = {"help": help, "group": group, "choices": choices, "minimum": minimum}
    return dataclasses.field(default=default, metadata=metadata)


def _suggest(name, allowed):
    close = difflib.get_close_matches(name, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Options:
    """Checks shared by the recipes' option classes: known names, choices and
    minima (a ``ValueError`` names the option, what is allowed and the value)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices, minimum = f.metadata.get("choices"), f.metadata.get("minimum")
            if choices is not None and value not in choices:
                raise ValueError(f"{type(self).__name__}: option {f.name!r} must be one of "
                                 f"{tuple(choices)}; received {value!r}.")
            if minimum is not None and value is not None and value < minimum:
                raise ValueError(f"{type(self).__name__}: option {f.name!r} must be >= "
                                 f"{minimum}; received {value!r}.")

    @classmethod
    def names(cls):
        """The option names of this recipe, in declaration order.

        Example:
            >>> "label_smoothing" in ClassificationOptions.names()
            True
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_names(cls, names):
        """Raise ``TypeError`` naming the first of ``names`` that is not an
        option of this recipe (with the closest option and the full list).

        Example:
            >>> DetectionOptions.check_names(["lr", "detector"])
        """
        allowed = cls.names()
        for name in names:
            if name not in allowed:
                raise TypeError(f"{cls.__name__} has no option {name!r}"
                                f"{_suggest(name, allowed)}; options: {', '.join(allowed)}.")

    @classmethod
    def make(cls, options=None, **values):
        """``options`` (an instance of this class, or ``None`` for the
        defaults) with ``values`` replacing fields; an unknown name is a
        ``TypeError``, a bad value a ``ValueError``.

        Example:
            >>> ClassificationOptions.make(data_dir="/d", model_dir="/m", lr=0.2).lr
            0.2
        """
        cls.check_names(values)
        if options is None:
            return cls(**values)
        if not isinstance(options, cls):
            raise TypeError(f"options must be a {cls.__name__}; received "
                            f"{type(options).__name__}.")
        return dataclasses.replace(options, **values)


def _checked_init(cls):
    """Make ``cls(...)`` report an unknown keyword with :meth:`_Options.check_names`."""
    init = cls.__init__

    def __init__(self, **values):
        type(self).check_names(values)
        init(self, **values)

    __init__.__doc__ = init.__doc__
    __init__.__signature__ = inspect.signature(init)
    cls.__init__ = __init__
    return cls


def options_class(cls):
    """``dataclass(frozen=True, kw_only=True)`` with a clear error for an
    unknown keyword (used for every options class here).

    Example:
        >>> @options_class
        ... class Tiny(_Options):
        ...     steps: int = option(1, "How many.", minimum=1)
        >>> Tiny(steps=3).steps
        3
    """
    return _checked_init(dataclasses.dataclass(frozen=True, kw_only=True)(cls))


@options_class
class SharedOptions(_Options):
    """The options both recipes have with the same default (see the module
    docstring). Not used on its own.

    Example:
        >>> SharedOptions(data_dir="/d", model_dir="/m").momentum
        0.9
    """

    # distribution
    strategy: str = option("default", "tf.distribute strategy (multiworker reads TF_CONFIG; "
                           "tpu uses --tpu).", "distribution", STRATEGIES)
    tpu: typing.Optional[str] = option(None, "TPU name or grpc:// address (strategy tpu).",
                                       "distribution")
    jit_compile: bool = option(False, "XLA-compile the train step.", "distribution")
    mixed_precision: bool = option(False, "mixed_float16 (mixed_bfloat16 on TPU) with loss "
                                   "scaling.", "distribution")
    # model
    activation: str = option("pwlu", "pwlu | acon_c | meta_acon | serf (or a Keras name, "
                             "e.g. relu).", "model")
    # data
    data_dir: str = option(help="dataset location (see --dataset).", group="data")
    download: bool = option(False, "prepare the TFDS dataset first.", "data")
    # recipe
    steps_per_epoch: typing.Optional[int] = option(
        None, "default: one pass over the training split.", minimum=1)
    eval_steps: typing.Optional[int] = option(
        None, "default: the whole evaluation split; 0 disables evaluation.", minimum=0)
    lr_schedule: str = option("cosine", "decay after the warm-up.", choices=DECAYS)
    momentum: float = option(0.9, "SGD momentum.", minimum=0.0)
    nesterov: bool = option(False, "Nesterov momentum.")
    bn_recalibration_steps: int = option(
        0, "after training, re-estimate the batch-norm statistics (BN layers and "
        "Meta-ACON's generator) over this many training batches "
        "(keras_acts.callbacks.recalibrate_batch_norm); 0: off.", minimum=0)
    # bookkeeping
    model_dir: str = option(help="checkpoints, TensorBoard logs and final weights; rerunning "
                            "the same command resumes from its latest checkpoint.",
                            group="bookkeeping")
    checkpoint_every: int = option(1000, "also checkpoint every N steps (always at epoch "
                                   "ends).", "bookkeeping", minimum=1)
    keep_checkpoints: int = option(3, "checkpoints kept.", "bookkeeping", minimum=1)
    log_every: int = option(50, "TensorBoard period in steps.", "bookkeeping", minimum=1)
    seed: int = option(0, "seed of weights, shuffling and augmentation.", "bookkeeping")
    verbose: int = option(1, "1: progress bar per epoch; 0: silent.", "bookkeeping", (0, 1))
    throttle_s: float = option(0.0, "debugging: sleep this long after every step.",
                               "bookkeeping", minimum=0.0)


_BACKBONE_HELP = ("keras_acts.backbones name (classification: resnet18, resnet50, "
                  "mobilenet_v3_small, efficientnet_b0, shufflenet_v2_0.5x ... 2.0x, "
                  "tfnet_0.5 ... 2.0 (built by keras_acts, any --source), ...; "
                  "detection: yolo_v8_xs ... "
                  "yolo_v8_xl, resnet18 / resnet50 with --source keras_cv) or tiny_cnn / "
                  "tiny_pyramid (smoke tests).")
_LR_HELP = "learning rate per 256 images (scaled linearly with --batch-size)."
_WD_HELP = ("decoupled weight decay; never applied to BN or keras_acts activation "
            "parameters.")
_PHASE1_HELP = "PWLU phase I length in epochs (paper: 5); 0 skips phase I."


@options_class
class ClassificationOptions(SharedOptions):
    """Options of the ImageNet classification recipe (the papers' ResNet
    recipe: 90 epochs, SGD 0.1 per 256 images, 5 warm-up epochs, label
    smoothing 0.1).

    Example:
        >>> opts = ClassificationOptions(data_dir="/data/imagenet", model_dir="/tmp/run")
        >>> opts.backbone, opts.batch_size, opts.label_smoothing
        ('resnet50', 256, 0.1)
    """

    backbone: str = option("resnet50", _BACKBONE_HELP, "model")
    source: str = option("keras_hub", "library the backbone comes from.", "model", SOURCES)
    image_size: int = option(224, "square input size in pixels.", "model", minimum=8)
    dataset: str = option("folder", "'folder' (image-folder tree) or a TFDS name, e.g. "
                          "imagenet2012.", "data")
    manual_dir: typing.Optional[str] = option(None, "TFDS manual_dir (imagenet2012 archives).",
                                              "data")
    epochs: int = option(90, "training epochs.", minimum=1)
    batch_size: int = option(256, "global batch size (all replicas and workers).", minimum=1)
    lr: float = option(0.1, _LR_HELP, minimum=0.0)
    warmup_epochs: float = option(5.0, "linear warm-up length in epochs.", minimum=0.0)
    weight_decay: float = option(1e-4, _WD_HELP, minimum=0.0)
    pwlu_phase1_epochs: float = option(5.0, _PHASE1_HELP, minimum=0.0)
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy.", minimum=0.0)


@options_class
class DetectionOptions(SharedOptions):
    """Options of the detection recipe (keras-cv YOLOv8 / RetinaNet on VOC:
    50 epochs, SGD 0.01 per 256 images, 1 warm-up epoch).

    Example:
        >>> opts = DetectionOptions(data_dir="~/tfds", model_dir="/tmp/det")
        >>> opts.detector, opts.source, opts.image_size, opts.warmup_epochs
        ('yolov8', 'keras_cv', 512, 1.0)
    """

    backbone: str = option("tiny_pyramid", _BACKBONE_HELP, "model")
    source: str = option("keras_cv", "library the backbone comes from.", "model", SOURCES)
    image_size: int = option(512, "square input size in pixels.", "model", minimum=8)
    detector: str = option("yolov8", "keras-cv detector.", "detection", DETECTORS)
    dataset: str = option("voc/2007", "TFDS detection dataset name.", "data")
    train_split: str = option("train", "TFDS split to train on.", "data")
    eval_split: str = option("validation", "TFDS split to evaluate on.", "data")
    max_boxes: int = option(32, "boxes kept per image (padding).", "detection", minimum=1)
    epochs: int = option(50, "training epochs.", minimum=1)
    batch_size: int = option(16, "global batch size (all replicas and workers).", minimum=1)
    lr: float = option(0.01, _LR_HELP, minimum=0.0)
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs.", minimum=0.0)
    weight_decay: float = option(5e-4, _WD_HELP, minimum=0.0)
    pwlu_phase1_epochs: float = option(1.0, _PHASE1_HELP, minimum=0.0)
