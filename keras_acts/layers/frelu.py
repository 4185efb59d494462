"""Keras layers for FReLU (Ma et al., "Funnel Activation for Visual
Recognition", ECCV 2020) and ACON-FReLU (Ma et al., "Activate or Not: Learning
Customized Activation", CVPR 2021, as in the official TFNet code).

Both use the funnel condition ``T(x) = BN(depthwise 3x3 conv(x))`` and need
spatial, channels-last input (rank 4: batch, height, width, channels): they
replace an activation inside a convolutional block, never one after global
pooling or a Dense layer.

Conventions of the official PyTorch code, kept here:

* the depthwise conv is ``Conv2d(C, C, 3, stride, padding=1, groups=C, bias=True)``:
  one pixel of zeros on every side, then a valid convolution (for stride 2 this
  is not Keras' ``"same"`` padding, which pads only after on even sizes);
* ACON-FReLU's stride-2 branch ``x1`` is ``MaxPool2d(3, 2, padding=1)`` (pads
  with -inf);
* the batch norms are ``keras.layers.BatchNormalization(momentum=0.9,
  epsilon=1e-5)``: PyTorch ``BatchNorm2d``'s defaults (Keras momentum 0.9 =
  PyTorch momentum 0.1), normalising with the biased batch variance in
  training as PyTorch does. One difference remains: PyTorch updates the
  running variance with the unbiased batch variance, Keras with the biased one,
  a factor n / (n - 1) on the batch term with n = batch x height x width per
  channel (1 + 1/1567 at batch 32 on 7x7 maps). Keras' fused batch norm was
  chosen over :class:`keras_acts.layers.GeneratorBatchNorm` (which matches the
  unbiased update) because the latter's robust training path keeps six
  input-sized tensors for the backward pass where Keras' keeps one, and these
  batch norms run on full feature maps. The price: in training, a channel
  whose batch variance is beyond the float range (float32 feature maps with
  values of order 1e18 and beyond) gives NaN, where GeneratorBatchNorm would not;
* the depthwise kernel starts as N(0, 0.01^2) and its bias at 0 (TFNet's
  initialisation of its "frelu" convs); batch norms start at gamma 1, beta 0
  (TFNet sets beta to 1e-4; pass ``bn_beta_initializer`` to match it).
"""

import keras
from keras import ops as K

from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import check_float
from keras_acts.ops._common import check_floating
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.frelu import smooth_max

STRIDES = (1, 2)


def _check_channels_last(axis, layer_name):
    if isinstance(axis, bool) or axis not in (-1, 3):
        raise ValueError(
            f"{layer_name} supports channels-last input only: `axis` must be -1 or 3; "
            f"received axis={axis!r}. Transpose channels-first tensors to NHWC first.")
    return int(axis)


def check_spatial_input(input_shape, layer_name):
    """Raise ``ValueError`` unless ``input_shape`` is NHWC with known channels.

    Example:
        >>> check_spatial_input((None, 8, 8, 16), "FReLU")
        16
    """
    if len(input_shape) != 4:
        raise ValueError(
            f"{layer_name} needs spatial input of rank 4 (batch, height, width, channels): "
            "its funnel condition is a depthwise 3x3 convolution, so it can replace an "
            "activation inside a convolutional block but not one after global pooling, "
            f"Flatten or Dense; received input_shape={tuple(input_shape)} of rank "
            f"{len(input_shape)}.")
    if input_shape[-1] is None:
        raise ValueError(f"{layer_name} needs a known number of channels; received "
                         f"input_shape={tuple(input_shape)}.")
    return int(input_shape[-1])


def _pad_hw(x, value):
    return K.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=value)


class _Funnel(ActivationLayer):
    """Shared part: the funnel condition T(x) = BN(depthwise 3x3 conv(x))."""

    _config_args = ("axis", "bn_momentum", "bn_epsilon")
    _strides = 1

    def __init__(self, axis=-1, bn_momentum=0.9, bn_epsilon=1e-5, kernel_initializer=None,
                 bias_initializer="zeros", kernel_regularizer=None,
                 bn_beta_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.axis = _check_channels_last(axis, name)
        self.bn_momentum = check_float(bn_momentum, "bn_momentum", 0.0, 1.0)
        self.bn_epsilon = check_float(bn_epsilon, "bn_epsilon", 0.0, low_inclusive=False)
        self._set_keras_objects(
            kernel_initializer=kernel_initializer or keras.initializers.RandomNormal(
                mean=0.0, stddev=0.01),
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bn_beta_initializer=bn_beta_initializer)
        self.bn1 = self._batch_norm("bn1")

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon,
            beta_initializer=self.bn_beta_initializer, name=name, dtype=self.dtype_policy)

    def build(self, input_shape):
        c = check_spatial_input(input_shape, type(self).__name__)
        self.kernel = self.add_weight(shape=(3, 3, c, 1), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight(shape=(c,), name="bias", initializer=self.bias_initializer)
        self.bn1.build(self.compute_output_shape(input_shape))
        self.built = True

    def funnel_condition(self, inputs, training=False):
        """T(x) = BN(depthwise 3x3 conv(x) + bias), PyTorch padding 1 (see module docstring).

        Example:
            >>> layer = FReLU(); x = K.ones([2, 5, 5, 3])
            >>> tuple(layer.funnel_condition(x).shape)
            (2, 5, 5, 3)
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        h = K.depthwise_conv(_pad_hw(inputs, 0.0), K.cast(self.kernel, inputs.dtype),
                             strides=self._strides, padding="valid")
        h = h + K.cast(self.bias, inputs.dtype)
        return self.bn1(h, training=training)

    def compute_output_shape(self, input_shape):
        if self._strides == 1:
            return tuple(input_shape)
        n, h, w, c = input_shape
        return (n, None if h is None else (h - 1) // 2 + 1,
                None if w is None else (w - 1) // 2 + 1, c)


@keras.saving.register_keras_serializable(package="keras_acts")
class FReLU(_Funnel):
    """FReLU: f(x) = max(x, T(x)), T(x) = BN(depthwise 3x3 conv(x)).

    Ma et al., "Funnel Activation for Visual Recognition", ECCV 2020: a ReLU
    whose condition ``0`` is replaced by a learned spatial one. Channels-last
    rank-4 input only (see the module docstring for the PyTorch conventions
    kept: padding, batch-norm momentum 0.9 / epsilon 1e-5, and the one
    difference, the running variance's n / (n - 1)). Weights: ``kernel``
    (3, 3, C, 1), ``bias`` (C,) and the batch norm ``bn1``.

    Args:
        axis: must be -1 or 3 (channels-last); anything else raises.
        bn_momentum, bn_epsilon: the batch norm's (Keras terms; defaults as PyTorch's).
        kernel_initializer, bias_initializer, kernel_regularizer: the depthwise conv's.
        bn_beta_initializer: the batch norm's beta initializer.

    Example:
        >>> model = keras.Sequential([keras.Input((16, 16, 3)),
        ...                           keras.layers.Conv2D(8, 3, padding="same"), FReLU()])
        >>> tuple(model.output_shape)
        (None, 16, 16, 8)
    """

    def call(self, inputs, training=False):
        check_floating(inputs, "inputs")
        t = K.cast(self.funnel_condition(inputs, training=training), inputs.dtype)
        if export_mode_enabled():  # TFLite export: int8 needs another form of the max
            from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

            return builtin.funnel_max(inputs, t)
        return K.maximum(inputs, t)


@keras.saving.register_keras_serializable(package="keras_acts")
class AconFReLU(_Funnel):
    """ACON-FReLU: f(x) = BN2((x1 - T(x)) sigmoid(x1 - T(x)) + T(x)), the official TFNet form.

    Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021:
    the smooth maximum of FReLU's pair (x1, T(x)), with T(x) = BN1(depthwise
    3x3 conv(x), stride ``strides``) and x1 = x (stride 1) or a 3x3/2 max-pool of
    x (stride 2: height and width become ``(n - 1) // 2 + 1``). Channels-last
    rank-4 input only. Weights: ``kernel`` (3, 3, C, 1), ``bias`` (C,), the batch
    norms ``bn1`` (of T) and ``bn2`` (of the output), PyTorch conventions
    (module docstring). The elementwise part is
    :func:`keras_acts.ops.frelu.smooth_max` (memory-lean gradient).

    Args:
        strides: 1 or 2.
        axis, bn_momentum, bn_epsilon, kernel_initializer, bias_initializer,
        kernel_regularizer, bn_beta_initializer: as :class:`FReLU`.

    Example:
        >>> layer = AconFReLU(strides=2)
        >>> tuple(layer(K.ones([2, 7, 7, 4])).shape)
        (2, 4, 4, 4)
    """

    _config_args = _Funnel._config_args + ("strides",)

    def __init__(self, strides=1, axis=-1, **kwargs):
        # `axis` is named here so that swap_activations sees it and passes
        # channels-first sites' axis=1, which is then refused clearly.
        if isinstance(strides, bool) or strides not in STRIDES:
            raise ValueError(f"`strides` must be one of {STRIDES}; received "
                             f"strides={strides!r}.")
        self.strides = int(strides)
        self._strides = self.strides
        super().__init__(axis=axis, **kwargs)
        self.bn2 = self._batch_norm("bn2")

    def build(self, input_shape):
        super().build(input_shape)
        self.bn2.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=False):
        check_floating(inputs, "inputs")
        t = K.cast(self.funnel_condition(inputs, training=training), inputs.dtype)
        if self.strides == 2 and export_mode_enabled():
            # TFLite export: the same pool without an infinite padding value (int8-safe).
            from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

            x1 = builtin.max_pool_3x3_s2(inputs)
        elif self.strides == 2:
            x1 = K.max_pool(_pad_hw(inputs, float("-inf")), 3, strides=2, padding="valid")
        else:
            x1 = inputs
        return self.bn2(smooth_max(x1, t), training=training)
