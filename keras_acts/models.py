"""Small reference models shared by the main job, the export checks and benchmarks."""

import keras

from keras_acts.registry import make_activation  # noqa: F401 (re-exported)


def small_cnn(activation="relu", input_shape=(28, 28, 1), num_classes=10, width=32,
              name=None, bn_momentum=0.99):
    """Two conv blocks with BN (Fashion-MNIST README baselines style) + classifier.

    conv3x3(width)-BN-act-conv3x3(width)-BN-act-maxpool, conv3x3(2 width)-BN-act-
    conv3x3(2 width)-BN-act-maxpool, global average pool, dense(num_classes)
    logits. Each activation site gets a fresh layer from
    :func:`keras_acts.registry.make_activation`.
    ``bn_momentum`` is the BN layers' moving-average momentum (0.9 suits short
    runs of a few hundred steps; Keras' default 0.99 lags behind there).

    Example:
        >>> model = small_cnn("acon_c")
        >>> model.output_shape
        (None, 10)
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for block, filters in enumerate((width, 2 * width)):
        for conv in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    name=f"block{block + 1}_conv{conv + 1}")(x)
            x = keras.layers.BatchNormalization(momentum=bn_momentum,
                                                name=f"block{block + 1}_bn{conv + 1}")(x)
            x = make_activation(activation)(x)
        x = keras.layers.MaxPooling2D(name=f"block{block + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    label = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    label = "".join(ch for ch in str(label) if ch.isalnum() or ch == "_") or "custom"
    return keras.Model(inputs, outputs, name=name or f"small_cnn_{label}")
