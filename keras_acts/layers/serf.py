"""Keras layer for Serf (x * erf(softplus(x)))."""

import keras

from keras_acts import ops
from keras_acts.ops._common import check_floating
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import check_input_rank


@keras.saving.register_keras_serializable(package="keras_acts")
class Serf(ActivationLayer):
    """Serf activation: f(x) = x * erf(softplus(x)).

    Nag & Bhattacharyya, "SERF: Towards better training of deep neural networks
    using log-Softplus ERror activation Function", WACV 2023. Parameter-free;
    numerically stable for every finite input in float16, bfloat16, float32 and
    float64; the custom gradient keeps only the input.

    Example:
        >>> model = keras.Sequential([keras.Input((28, 28, 1)),
        ...                           keras.layers.Conv2D(8, 3), Serf()])
    """

    def build(self, input_shape):
        check_input_rank(input_shape, type(self).__name__)
        self.built = True

    def call(self, inputs):
        check_floating(inputs, "inputs")
        return ops.serf(inputs)
