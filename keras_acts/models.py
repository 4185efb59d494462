"""Small reference models shared by the main job, the export checks and benchmarks."""

import keras
import numpy as np

from keras_acts.registry import make_activation  # noqa: F401 (re-exported)


HEADS = ("gap", "flatten")


def small_cnn(activation="relu", input_shape=(28, 28, 1), num_classes=10, width=32,
              name=None, bn_momentum=0.99, convs_per_block=2, head="gap"):
    """Two conv blocks with BN (Fashion-MNIST README baselines style) + classifier.

    Block b (b = 1, 2) is ``convs_per_block`` times conv3x3(b * width, no bias)-
    BN-activation, then 2x2 max pooling; the head is a dense layer of
    ``num_classes`` logits on the globally average-pooled features
    (``head="gap"``, the default) or on the flattened 7x7 feature map
    (``head="flatten"``: more parameters in the head, but position-aware
    features learn much faster, see the README's main job). Each activation
    site gets a fresh layer from
    :func:`keras_acts.registry.make_activation`. ``bn_momentum`` is the BN
    layers' moving-average momentum (0.9 suits short runs; Keras' default 0.99
    lags behind there; :func:`keras_acts.recalibration.recalibrate_batch_norm`
    removes the lag after training).

    Example:
        >>> small_cnn("acon_c").output_shape
        (None, 10)
        >>> small_cnn("relu", convs_per_block=1, head="flatten").count_params()
        50474
    """
    convs_per_block = _positive_int(convs_per_block, "convs_per_block")
    width = _positive_int(width, "width")
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}; received {head!r}.")
    inputs = keras.Input(input_shape)
    x = inputs
    for block, filters in enumerate((width, 2 * width)):
        for conv in range(convs_per_block):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    name=f"block{block + 1}_conv{conv + 1}")(x)
            x = keras.layers.BatchNormalization(momentum=bn_momentum,
                                                name=f"block{block + 1}_bn{conv + 1}")(x)
            x = make_activation(activation)(x)
        x = keras.layers.MaxPooling2D(name=f"block{block + 1}_pool")(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    label = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    label = "".join(ch for ch in str(label) if ch.isalnum() or ch == "_") or "custom"
    return keras.Model(inputs, outputs, name=name or f"small_cnn_{label}")


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1; received {value!r}.")
    return int(value)
