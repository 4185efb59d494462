"""The papers' backbones, built from config (never downloading), activations swapped.

Every builder constructs the library model from its constructor arguments (the
architecture of the corresponding preset, random weights) and then calls
:func:`~keras_acts.backbones.swap.swap_activations` when ``activation`` is given.

Sources:

* ``"keras"`` (no extra needed): ``keras.applications.MobileNetV2`` and
  ``MobileNetV3Small`` / ``MobileNetV3Large`` (``weights=None``,
  ``include_top=False``, ``include_preprocessing=False``). Their hard-swish is
  an ``Activation("hard_swish")`` layer and their squeeze-and-excite gate a
  ``ReLU(6)(x + 3) / 6`` sub-graph (a gate, not a hidden site); the
  squeeze-and-excite ReLUs are graph layers, hence sites (keras-cv hid them
  inside a custom layer): 32 / 39 sites, 23 / 31 without them.
* ``"keras_hub"`` (extra ``backbones``): ``keras_hub.models.ResNetBackbone``,
  ``EfficientNetBackbone`` (v1 blocks, timm's B0 configuration) and
  ``RetinaNetBackbone`` (ResNet-50 image encoder, P3-P7 FPN as in
  ``retinanet_resnet50_fpn_coco``).
* ``"keras_cv"`` (extra ``detection``; the frozen keras-cv 0.9 is kept only where
  nothing else builds the model): ``YOLOV8Backbone`` (the YOLOv8 detector's
  CSPDarkNet-style backbone) and ``ResNetBackbone`` (v1, with the
  ``pyramid_level_inputs`` keras-cv's detectors read), with
  ``include_rescaling=False``.
* ``"keras_acts"`` (built here, :mod:`keras_acts.backbones.acon_nets`): the
  ACON paper's ShuffleNetV2 (``shufflenet_v2_0.5x`` ... ``2.0x``, ReLU at its
  37 sites before the swap; megvii-model/ShuffleNet-Series and nmaac/acon) and
  TFNet (``tfnet_0.5`` ... ``tfnet_2.0``, ACON-FReLU at its 33 sites, built
  with ``activation`` directly; nmaac/acon ``TFNet/network.py``). Extra
  argument ``num_classes`` (``None``: the feature map) and ``use_bias``.

Combinations listed in :data:`UNSUPPORTED` raise ``ValueError`` with the reason.
"""

import keras

from keras_acts._extras import require
from keras_acts.backbones import acon_nets
from keras_acts.backbones.swap import swap_activations

RESNET_STAGES = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet50": ("bottleneck", [3, 4, 6, 3])}

# EfficientNet-B0 stages (Tan & Le, ICML 2019, table 1).
EFFICIENTNET_B0 = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
)

# keras-cv YOLOv8 backbones: (stackwise_channels, stackwise_depth).
YOLO_V8 = {
    "yolo_v8_xs": ([32, 64, 128, 256], [1, 2, 2, 1]),
    "yolo_v8_s": ([64, 128, 256, 512], [1, 2, 2, 1]),
    "yolo_v8_m": ([96, 192, 384, 576], [2, 4, 4, 2]),
    "yolo_v8_l": ([128, 256, 512, 512], [3, 6, 6, 3]),
    "yolo_v8_xl": ([160, 320, 640, 640], [3, 6, 6, 3]),
}


def _keras_hub(name):
    return require("keras_hub", feature=f"backbone {name!r} from source 'keras_hub'")


def _keras_cv(name):
    return require("keras_cv", feature=f"backbone {name!r} from source 'keras_cv'")


def _hub_resnet(name, input_shape, **kwargs):
    keras_hub = _keras_hub(name)

    block, blocks = RESNET_STAGES[name]
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=blocks,
        stackwise_num_strides=[1, 2, 2, 2], block_type=f"{block}_block",
        image_shape=input_shape, **kwargs)


def _cv_resnet(name, input_shape, **kwargs):
    keras_cv = _keras_cv(name)

    block, blocks = RESNET_STAGES[name]
    kwargs.setdefault("include_rescaling", False)
    return keras_cv.models.ResNetBackbone(
        stackwise_filters=[64, 128, 256, 512], stackwise_blocks=blocks,
        stackwise_strides=[1, 2, 2, 2], block_type="basic_block" if block == "basic" else "block",
        input_shape=input_shape, **kwargs)


def _keras_mobilenet_v3(name, input_shape, **kwargs):
    build_fn = {"mobilenet_v3_small": keras.applications.MobileNetV3Small,
                "mobilenet_v3_large": keras.applications.MobileNetV3Large}[name]
    return build_fn(input_shape=input_shape, include_top=False, weights=None,
                    include_preprocessing=False, **kwargs)


def _keras_mobilenet_v2(name, input_shape, **kwargs):
    return keras.applications.MobileNetV2(
        input_shape=input_shape, include_top=False, weights=None, **kwargs)


def _hub_efficientnet_b0(name, input_shape, **kwargs):
    keras_hub = _keras_hub(name)

    config = dict(
        EFFICIENTNET_B0, stackwise_width_coefficients=[1.0] * 7,
        stackwise_depth_coefficients=[1.0] * 7,
        stackwise_squeeze_and_excite_ratios=[0.25] * 7, stackwise_block_types=["v1"] * 7,
        min_depth=None, include_stem_padding=True, use_depth_divisor_as_min_depth=True,
        cap_round_filter_decrease=True, stem_conv_padding="valid", batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5, dropout=0, projection_activation=None)
    config.update(kwargs)
    return keras_hub.models.EfficientNetBackbone(input_shape=input_shape, **config)


def _cv_yolo_v8(name, input_shape, **kwargs):
    keras_cv = _keras_cv(name)

    channels, depth = YOLO_V8[name]
    kwargs.setdefault("include_rescaling", False)
    return keras_cv.models.YOLOV8Backbone(
        stackwise_channels=channels, stackwise_depth=depth, input_shape=input_shape,
        **kwargs)


def _hub_retinanet(name, input_shape, **kwargs):
    keras_hub = _keras_hub(name)

    config = dict(min_level=3, max_level=7, use_p5=False, use_fpn_batch_norm=False)
    config.update(kwargs)
    encoder = _hub_resnet("resnet50", input_shape)
    return keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, image_shape=input_shape, **config)


# (name, source) -> builder(name, input_shape, **kwargs) returning the unswapped model.
BUILDERS = {
    ("resnet18", "keras_hub"): _hub_resnet,
    ("resnet18", "keras_cv"): _cv_resnet,
    ("resnet50", "keras_hub"): _hub_resnet,
    ("resnet50", "keras_cv"): _cv_resnet,
    ("mobilenet_v2", "keras"): _keras_mobilenet_v2,
    ("mobilenet_v3_small", "keras"): _keras_mobilenet_v3,
    ("mobilenet_v3_large", "keras"): _keras_mobilenet_v3,
    ("efficientnet_b0", "keras_hub"): _hub_efficientnet_b0,
    **{(name, "keras_cv"): _cv_yolo_v8 for name in YOLO_V8},
    ("retinanet_resnet50", "keras_hub"): _hub_retinanet,
    **{(name, "keras_acts"): acon_nets.shufflenet_v2
       for name in acon_nets.SHUFFLENET_V2_CHANNELS},
    **{(name, "keras_acts"): acon_nets.tfnet for name in acon_nets.TFNET_WIDTHS},
}

# Builders that place ``activation`` themselves (``build`` passes it, no swap).
BUILDS_ACTIVATION = frozenset(acon_nets.TFNET_WIDTHS)

# Source used when ``source=None``.
DEFAULT_SOURCE = {}
for _name, _source in BUILDERS:
    DEFAULT_SOURCE.setdefault(_name, _source)

_OPAQUE = ("builds its activations inside subclassed block layers, which graph surgery "
           "cannot reach")
_SAME_ELSEWHERE = ("source {!r} builds the same network; the frozen keras-cv is used only for "
                   "YOLOv8 and the detectors' ResNets")
UNSUPPORTED = {
    ("mobilenet_v2", "keras_hub"): f"keras-hub's MobileNetBackbone {_OPAQUE}",
    ("mobilenet_v3_small", "keras_hub"): f"keras-hub's MobileNetBackbone {_OPAQUE}",
    ("mobilenet_v3_large", "keras_hub"): f"keras-hub's MobileNetBackbone {_OPAQUE}",
    ("mobilenet_v2", "keras_cv"): "keras-cv 0.9 has no MobileNetV2 backbone",
    ("mobilenet_v3_small", "keras_cv"): _SAME_ELSEWHERE.format("keras"),
    ("mobilenet_v3_large", "keras_cv"): _SAME_ELSEWHERE.format("keras"),
    ("efficientnet_b0", "keras_cv"): _SAME_ELSEWHERE.format("keras_hub"),
    ("csp_darknet", "keras_cv"): (
        f"keras-cv's CSPDarkNetBackbone {_OPAQUE} (CrossStagePartial) and with Python "
        "lambdas that a saved model cannot reload; use 'yolo_v8_xs' ... 'yolo_v8_xl', "
        "the YOLOv8 detector's CSPDarkNet-style backbone"),
}
SOURCES = ("keras_hub", "keras_cv", "keras", "keras_acts")


def available():
    """Sorted ``(name, source)`` pairs that :func:`build` accepts.

    Example:
        >>> ("resnet18", "keras_hub") in available()
        True
    """
    return sorted(BUILDERS)


def build(name, activation=None, source=None, input_shape=(None, None, 3), match=None,
          placement="all", **kwargs):
    """Build backbone ``name`` from config and put ``activation`` at its sites.

    Nothing is downloaded: the model is constructed from its architecture
    arguments with random weights (keras-cv models without input rescaling).

    Args:
        name: ``"resnet18"``, ``"resnet50"``, ``"mobilenet_v2"``,
            ``"mobilenet_v3_small"``, ``"mobilenet_v3_large"``,
            ``"efficientnet_b0"``, ``"yolo_v8_xs"`` ... ``"yolo_v8_xl"``,
            ``"retinanet_resnet50"``, ``"shufflenet_v2_0.5x"`` ...
            ``"shufflenet_v2_2.0x"`` or ``"tfnet_0.5"`` ... ``"tfnet_2.0"``
            (see :func:`available`).
        activation: ``None`` for the original activations, else anything
            :func:`swap_activations` accepts (``"pwlu"``, ``"acon_c"``,
            ``"meta_acon"``, ``"serf"``, a class, a factory ``f(site)``).
            For TFNet ``None`` is its own ACON-FReLU and ``activation`` is
            placed at its sites while building (``match`` and ``placement``
            must stay at their defaults).
        source: ``"keras_hub"``, ``"keras_cv"``, ``"keras"``, ``"keras_acts"`` or ``None`` for the
            name's default (:data:`DEFAULT_SOURCE`).
        input_shape: ``(height, width, channels)``; ``None`` sizes allowed.
        match, placement: as in :func:`swap_activations` (e.g.
            ``placement="acon_resnet"``).
        **kwargs: overrides of the library constructor's arguments.

    Returns:
        The library model when ``activation`` is ``None``, else the swapped one
        (a ``SwappedModel``; a ``RetinaNetBackbone`` for ``"retinanet_resnet50"``).

    Raises:
        ValueError: unknown ``name`` or ``source`` (listing the allowed values),
            or an unsupported combination (saying why).

    Example:
        >>> model = build("resnet18", activation="acon_c", input_shape=(64, 64, 3))
        >>> sum(type(layer).__name__ == "AconC" for layer in model.layers)
        17
    """
    names = sorted({n for n, _ in BUILDERS})
    if name not in names and not any(n == name for n, _ in UNSUPPORTED):
        raise ValueError(f"Unknown backbone {name!r}; allowed names: {names}.")
    if source is not None and source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; allowed sources: {list(SOURCES)}.")
    if source is None:
        source = DEFAULT_SOURCE.get(name) or next(s for n, s in UNSUPPORTED if n == name)
    if (name, source) not in BUILDERS:
        reason = UNSUPPORTED.get((name, source), f"no {source} builder")
        allowed = sorted(s for n, s in BUILDERS if n == name)
        raise ValueError(f"Backbone {name!r} is not available from source {source!r}: "
                         f"{reason}. Sources for {name!r}: {allowed}.")
    if name in BUILDS_ACTIVATION:
        if match is not None or placement not in (None, "all"):
            raise ValueError(f"Backbone {name!r} places `activation` at its own sites while "
                             "building; `match` and `placement` must be None and 'all'; "
                             f"received match={match!r}, placement={placement!r}.")
        return BUILDERS[(name, source)](name, tuple(input_shape), activation=activation,
                                        **kwargs)
    model = BUILDERS[(name, source)](name, tuple(input_shape), **kwargs)
    if activation is None:
        return model
    return swap_activations(model, activation, match=match, placement=placement)
