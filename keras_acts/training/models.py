"""Models for the pipelines and the training-step benchmark: name -> fresh
activation layer over keras_acts' registry (Keras names as
``keras.layers.Activation``), tiny backbones for tests and smoke runs, and the
one classifier = backbone + head, built through ``keras_acts.backbones.build``
for the real networks.

Example:
    >>> model = build_classifier("tiny_cnn", "pwlu", num_classes=10, image_size=32)
    >>> model.output_shape
    (None, 10)
"""

import keras

from keras_acts.registry import make_activation  # noqa: F401 (the one name -> layer)
from keras_acts.registry import names


def tiny_cnn(input_shape, activation, width=8, name="tiny_cnn"):
    """A 3-stage conv-BN-activation feature extractor (for tests and smoke
    runs): ``activation`` is a zero-argument factory of fresh layers.
    Returns a functional ``keras.Model`` with a 4-D feature-map output.

    Example:
        >>> backbone = tiny_cnn((32, 32, 3), lambda: make_activation("serf"))
        >>> backbone.output_shape
        (None, 4, 4, 32)
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for i, mult in enumerate((1, 2, 4)):
        x = keras.layers.Conv2D(width * mult, 3, strides=2, padding="same", use_bias=False,
                                name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = activation()(x)
    return keras.Model(inputs, x, name=name)


def tiny_pyramid_backbone(input_shape, activation, width=8):
    """A 5-stage conv-BN-activation backbone with ``pyramid_level_inputs``
    (P3-P5 layer names) as keras-cv detectors expect; for tests and smoke runs.

    Example:
        >>> bb = tiny_pyramid_backbone((64, 64, 3), lambda: make_activation("serf"))
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


TINY_BACKBONES = {"tiny_cnn": tiny_cnn, "tiny_pyramid": tiny_pyramid_backbone}

#: Backbones keras_acts builds itself (``keras_acts.backbones.acon_nets``):
#: ``shufflenet_v2_0.5x`` ... ``2.0x`` (ReLU swapped for ``activation``) and
#: ``tfnet_0.5`` ... ``tfnet_2.0`` (``activation=None``: ACON-FReLU).
OWN_BACKBONES = ("shufflenet_v2_0.5x", "shufflenet_v2_1.0x", "shufflenet_v2_1.5x",
                 "shufflenet_v2_2.0x", "tfnet_0.5", "tfnet_1.0", "tfnet_1.5", "tfnet_2.0")


def _backbone_activation(activation, **act_kwargs):
    """The ``activation`` argument of ``keras_acts.backbones.build``: our
    layer as a template (cloned per site with the site's name, dtype and
    channel axis, so ``act_kwargs`` such as PWLU's ``phase1_steps`` reach every
    site), or for a Keras name a factory ``f(site)`` of named
    ``keras.layers.Activation`` layers."""
    layer = make_activation(activation, **act_kwargs)  # validates name and arguments now
    if isinstance(layer, keras.layers.Activation):
        return lambda site: make_activation(activation, name=site.name, **act_kwargs)
    return layer


def build_backbone(name, activation, input_shape, source="keras_hub", match=None,
                   **act_kwargs):
    """Feature extractor ``name`` with activation ``activation`` (see
    :func:`make_activation`; ``None``: the backbone's own activations):
    ``"tiny_cnn"`` / ``"tiny_pyramid"`` are built here, the ACON paper's
    ShuffleNetV2 and TFNet (:data:`OWN_BACKBONES`) by ``keras_acts`` itself
    (``source`` is ignored for them), anything else by
    ``keras_acts.backbones.builders.build(name, activation=..., source=...,
    input_shape=..., match=...)`` (random weights; nothing is downloaded).
    Detector backbones expose ``pyramid_level_inputs``.

    Example:
        >>> backbone = build_backbone("tiny_cnn", "meta_acon", (32, 32, 3))
        >>> backbone = build_backbone("mobilenet_v3_small", "pwlu", (64, 64, 3),
        ...                           source="keras", phase1_steps=100)
        >>> backbone.output_shape[-1] > 0
        True
        >>> build_backbone("tfnet_0.5", "acon_c", (32, 32, 3)).output_shape
        (None, 1, 1, 1024)
    """
    if name in TINY_BACKBONES:
        if activation is None:
            raise ValueError(f"backbone {name!r} has no activation of its own; pass one of "
                             f"{list(names())} or a Keras activation name.")
        make_activation(activation, **act_kwargs)  # validates name and arguments now
        return TINY_BACKBONES[name](input_shape,
                                    lambda: make_activation(activation, **act_kwargs))
    from keras_acts.backbones.builders import build

    if name in OWN_BACKBONES:
        source = "keras_acts"  # built by keras_acts itself, whatever the library default
    swapped = None if activation is None else _backbone_activation(activation, **act_kwargs)
    return build(name, activation=swapped, source=source, input_shape=input_shape, match=match)


def build_classifier(backbone, activation, num_classes, image_size=224, source="keras_hub",
                     dropout=0.0, match=None, **act_kwargs):
    """Backbone (see :func:`build_backbone`; ``activation=None`` keeps its
    own, ``match`` selects which sites are swapped) + global average pooling
    (of the last feature map when the backbone returns a dict of levels) +
    (dropout) + dense logits head kept in float32 under mixed precision.
    Returns a functional ``keras.Model`` mapping NHWC float images to
    ``num_classes`` logits. The pipelines' and ``benchmarks/train_step.py``'s
    classifier.

    Example:
        >>> model = build_classifier("tiny_cnn", "pwlu", 10, 32, phase1_steps=100)
        >>> model.output_shape, model.layers[-1].dtype_policy.name
        ((None, 10), 'float32')
    """
    input_shape = (image_size, image_size, 3)
    features = build_backbone(backbone, activation, input_shape, source, match, **act_kwargs)
    inputs = keras.Input(input_shape, name="images")
    x = features(inputs)
    if isinstance(x, dict):
        x = x[sorted(x)[-1]]
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=f"{backbone}_{activation or 'original'}_classifier")
