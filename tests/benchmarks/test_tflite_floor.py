"""The TFLite benchmark's floor rows: k elementwise ops per site that stay k ops."""

import keras
import pytest

from benchmarks.tflite import ElementwiseChain
from benchmarks.tflite import with_floor
from keras_acts.export import to_tflite
from keras_acts.export.flatbuffer import _op_table


def _op_counts(flatbuffer):
    return {name: len(outputs) for name, _, outputs in _op_table(flatbuffer)}


def _conv_relu_model():
    inputs = keras.Input((8, 8, 4))
    h = keras.layers.Conv2D(6, 3, padding="same")(inputs)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(6, 1)(h)
    h = keras.layers.Activation("relu")(h)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(h))


@pytest.mark.parametrize("ops", [1, 2, 4])
def test_floor_ops_are_not_folded_into_the_convolutions(ops):
    # The floor is only a floor if the converter keeps every op: a MUL/ADD by a
    # constant would be folded into the preceding convolution and cost nothing.
    model, sites = with_floor(_conv_relu_model(), ops)
    assert sites == 2
    counts = _op_counts(to_tflite(model))
    assert counts.get("MUL", 0) == sites * ((ops + 1) // 2), counts
    assert counts.get("ADD", 0) == sites * (ops // 2), counts
    assert "RELU" not in counts


def test_chain_values():
    x = keras.ops.convert_to_tensor([[-2.0, 0.5, 3.0]])
    y = ElementwiseChain(3)(x)  # ((x * x) + x) * x
    expected = [((v * v) + v) * v for v in (-2.0, 0.5, 3.0)]
    assert keras.ops.convert_to_numpy(y).tolist() == [expected]
