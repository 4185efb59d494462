"""Models for the pipelines: an activation factory over keras_acts' registry,
a tiny CNN for tests and smoke runs, and a classifier = backbone + head built
through ``keras_acts.backbones.build`` for the real networks.

Example:
    >>> model = build_classifier("tiny_cnn", "pwlu", num_classes=10, image_size=32)
"""

import keras

ACTIVATIONS = ("pwlu", "acon_c", "meta_acon", "serf")


def activation_factory(name, **kwargs):
    """A zero-argument callable returning a fresh activation layer per call.

    ``name`` is one of keras_acts' activations ("pwlu", "acon_c",
    "meta_acon", "serf"; ``kwargs`` go to the layer's constructor, e.g.
    ``phase1_steps`` for PWLU) or any Keras activation name ("relu",
    "swish", ...; ``kwargs`` ignored) for baselines.

    Example:
        >>> make = activation_factory("pwlu", phase1_steps=5000)
        >>> layer = make()
    """
    if name not in ACTIVATIONS:
        keras.activations.get(name)  # validates the name
        return lambda: keras.layers.Activation(name)
    import keras_acts

    keras_acts.get(name, **kwargs)  # validates name and arguments now
    return lambda: keras_acts.get(name, **kwargs)


def tiny_cnn(input_shape, activation, width=8, name="tiny_cnn"):
    """A 3-stage conv-BN-activation feature extractor (for tests and smoke
    runs): ``activation`` is a factory (see :func:`activation_factory`).
    Returns a functional ``keras.Model`` with a 4-D feature-map output.

    Example:
        >>> backbone = tiny_cnn((32, 32, 3), activation_factory("serf"))
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


TINY_BACKBONES = {"tiny_cnn": tiny_cnn, "tiny_pyramid": tiny_pyramid_backbone}


def swap_activation(activation, **act_kwargs):
    """The ``activation`` argument for ``keras_acts.backbones.build``: a
    keras_acts layer used as a template (cloned per site with the site's name,
    dtype and channel axis, so ``act_kwargs`` such as PWLU's ``phase1_steps``
    reach every layer), or, for a Keras activation name (baselines), a
    factory ``f(site)`` of ``keras.layers.Activation`` layers.

    Example:
        >>> template = swap_activation("pwlu", phase1_steps=5000)
    """
    if activation in ACTIVATIONS:
        import keras_acts

        return keras_acts.get(activation, **act_kwargs)
    keras.activations.get(activation)  # validates the name
    return lambda site: keras.layers.Activation(activation, name=site.name)


def build_backbone(name, activation, input_shape, source="keras_hub", **act_kwargs):
    """Feature extractor ``name`` with activation ``activation``:
    ``"tiny_cnn"`` / ``"tiny_pyramid"`` are built here, anything else by
    ``keras_acts.backbones.builders.build(name, activation=..., source=...,
    input_shape=...)`` (random weights; nothing is downloaded). Detector backbones expose
    ``pyramid_level_inputs``.

    Example:
        >>> backbone = build_backbone("resnet50", "meta_acon", (224, 224, 3))
        >>> backbone = build_backbone("yolo_v8_xs", "pwlu", (64, 64, 3), "keras_cv",
        ...                           phase1_steps=100)
    """
    if name in TINY_BACKBONES:
        return TINY_BACKBONES[name](input_shape, activation_factory(activation, **act_kwargs))
    from keras_acts.backbones.builders import build

    return build(name, activation=swap_activation(activation, **act_kwargs), source=source,
                 input_shape=input_shape)


def build_classifier(backbone, activation, num_classes, image_size=224, source="keras_hub",
                     dropout=0.0, **act_kwargs):
    """Backbone (see :func:`build_backbone`) + global average pooling +
    (dropout) + dense softmax-logits head kept in float32 under mixed
    precision. Returns a functional ``keras.Model`` mapping NHWC float
    images to ``num_classes`` logits.

    Example:
        >>> model = build_classifier("resnet18", "pwlu", 1000, 224, phase1_steps=25000)
    """
    input_shape = (image_size, image_size, 3)
    features = build_backbone(backbone, activation, input_shape, source, **act_kwargs)
    inputs = keras.Input(input_shape, name="images")
    x = features(inputs)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=f"{backbone}_{activation}_classifier")
