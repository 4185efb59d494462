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


def build_backbone(name, activation, input_shape, source="keras_hub", **act_kwargs):
    """Feature extractor ``name`` with keras_acts activation ``activation``:
    ``"tiny_cnn"`` is built here, anything else by
    ``keras_acts.backbones.build(name, activation=..., source=..., input_shape=...)``
    (no pretrained weights are downloaded by this function).

    Example:
        >>> backbone = build_backbone("resnet50", "meta_acon", (224, 224, 3))
    """
    if name == "tiny_cnn":
        return tiny_cnn(input_shape, activation_factory(activation, **act_kwargs))
    try:
        from keras_acts import backbones
    except ImportError as err:
        raise ValueError(f"Backbone {name!r} needs keras_acts.backbones, which is not "
                         "available; use 'tiny_cnn'.") from err
    if activation in ACTIVATIONS and act_kwargs:
        try:
            return backbones.build(name, activation=activation_factory(activation, **act_kwargs),
                                   source=source, input_shape=input_shape)
        except (TypeError, ValueError):
            pass
    return backbones.build(name, activation=activation, source=source, input_shape=input_shape)


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


def pwlu_layers(model):
    """Every PWLU layer in ``model`` (nested models included).

    Example:
        >>> for layer in pwlu_layers(model): layer.realign()
    """
    import keras_acts

    return [l for l in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(l, keras_acts.PWLU)]
