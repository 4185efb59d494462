"""Int8 full-integer accuracy check on Fashion-MNIST (shared by the tests).

Not a test module itself (no ``test_`` prefix): ``int8_accuracy`` trains
``keras_acts.models.small_cnn`` briefly on real Fashion-MNIST, converts it with
``to_tflite(..., "int8")`` calibrated on training images and compares top-1
accuracy of the Keras float model and the LiteRT int8 model on test images.

Example:
    >>> from int8_check import int8_accuracy
    >>> int8_accuracy("serf", train_samples=8000, epochs=1)
    {'float_acc': 0.83, 'int8_acc': 0.829, ...}
"""

import time

import keras
import numpy as np

from keras_acts.demo import load_data
from keras_acts.export import representative_from_array
from keras_acts.export import run_tflite
from keras_acts.export import to_tflite
from keras_acts.models import make_activation
from keras_acts.models import small_cnn

_DATA = {}


def fashion_mnist():
    """Cached ((x_train, y_train), (x_test, y_test)), images float32 in [0, 1], NHWC."""
    if not _DATA:
        # Real Fashion-MNIST (Debian's dataset-fashion-mnist, installed like the main job
        # does when it is missing).
        (x, y), (xt, yt) = load_data()
        _DATA["d"] = ((x[..., None].astype("float32") / 255.0, y.astype("int32")),
                      (xt[..., None].astype("float32") / 255.0, yt.astype("int32")))
    return _DATA["d"]


def int8_accuracy(activation, train_samples=8000, epochs=1, test_samples=2000, width=16,
                  batch_size=64, calibration=200, seed=0, int8_io=False, bn_momentum=0.9,
                  learning_rate=2e-3):
    """Train briefly, convert to full-integer int8, return accuracies and timings."""
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    (x, y), (xt, yt) = fashion_mnist()
    x, y, xt, yt = x[:train_samples], y[:train_samples], xt[:test_samples], yt[:test_samples]

    def factory():
        if activation == "pwlu":  # short phase I, then realignment, inside fit()
            steps = max(1, (train_samples // batch_size) // 4)
            return make_activation(lambda: __import__("keras_acts").PWLU(phase1_steps=steps))
        return make_activation(activation)

    model = small_cnn(lambda: factory(), width=width, name=f"small_cnn_{activation}")
    for layer in model.layers:  # short runs: moving statistics must converge in ~100 steps
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    train_s = time.perf_counter() - start
    float_logits = model.predict(xt, batch_size=500, verbose=0)
    rep = representative_from_array(x[np.random.default_rng(seed).permutation(len(x))[:calibration]])
    flat = to_tflite(model, quantization="int8", representative_dataset=rep, int8_io=int8_io)
    int8_logits = run_tflite(flat, xt, num_threads=2, batch_size=500)
    float_acc = float(np.mean(float_logits.argmax(1) == yt))
    int8_acc = float(np.mean(int8_logits.argmax(1) == yt))
    return {"activation": activation, "float_acc": float_acc, "int8_acc": int8_acc,
            "drop_points": 100 * (float_acc - int8_acc),
            "top1_agreement": float(np.mean(float_logits.argmax(1) == int8_logits.argmax(1))),
            "size_bytes": len(flat), "train_s": train_s,
            "total_s": time.perf_counter() - start}
