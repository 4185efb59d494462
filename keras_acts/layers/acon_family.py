"""Keras layers for ACON-A and ACON-B, the ACON paper's smooth forms of Swish
and PReLU (ACON-C's special cases, :mod:`keras_acts.ops.acon_family`)."""

import keras
from keras import ops as K

from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers.acon_c import check_shared_axes
from keras_acts.layers.acon_c import parameter_shape
from keras_acts.ops._common import check_floating
from keras_acts.ops.acon_family import acon_a
from keras_acts.ops.acon_family import acon_b


class _AconParams(ActivationLayer):
    """Per-channel (or ``shared_axes``) parameters named in ``_params``, as AconC's."""

    _config_args = ("axis", "shared_axes")
    _params = ()

    def __init__(self, axis=-1, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = check_axis_arg(axis)
        self.shared_axes = check_shared_axes(shared_axes)

    def build(self, input_shape):
        name = type(self).__name__
        rank = check_input_rank(input_shape, name)
        shape = parameter_shape(name, self.axis, self.shared_axes, input_shape, rank)
        for param in self._params:
            setattr(self, param, self.add_weight(
                shape=shape, name=param, autocast=False,
                initializer=getattr(self, param + "_initializer"),
                regularizer=getattr(self, param + "_regularizer"),
                constraint=getattr(self, param + "_constraint")))
        self.built = True

    def _batched(self):
        return [K.expand_dims(getattr(self, p), 0) for p in self._params]


@keras.saving.register_keras_serializable(package="keras_acts")
class AconA(_AconParams):
    """ACON-A: f(x) = x * sigmoid(beta * x), learnable ``beta`` per channel.

    Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021: the
    smooth maximum of (x, 0), i.e. Swish with a learnable beta (beta -> inf
    gives ReLU, beta = 0 gives x / 2). ACON-C with p1 = 1, p2 = 0.

    Args:
        axis: channel axis (-1 channels-last, 1 channels-first).
        shared_axes: as in :class:`keras_acts.AconC` (``None``: channel-wise).
        beta_initializer, beta_regularizer, beta_constraint: names or objects
            (default beta = 1, as ACON-C's official code).

    Example:
        >>> layer = AconA()
        >>> y = layer(K.ones([2, 4, 4, 3]))
        >>> tuple(layer.beta.shape)
        (1, 1, 3)
    """

    _params = ("beta",)

    def __init__(self, axis=-1, shared_axes=None, beta_initializer="ones",
                 beta_regularizer=None, beta_constraint=None, **kwargs):
        super().__init__(axis=axis, shared_axes=shared_axes, **kwargs)
        self._set_keras_objects(beta_initializer=beta_initializer,
                                beta_regularizer=beta_regularizer,
                                beta_constraint=beta_constraint)

    def call(self, inputs):
        check_floating(inputs, "inputs")
        return acon_a(inputs, *self._batched())


@keras.saving.register_keras_serializable(package="keras_acts")
class AconB(_AconParams):
    """ACON-B: f(x) = (1 - p) x sigmoid(beta (1 - p) x) + p x, learnable ``p``, ``beta``.

    Ma et al., CVPR 2021: the smooth maximum of (x, p x), i.e. a smooth PReLU
    (beta -> inf gives ``max(x, p x)`` for p < 1). ACON-C with p1 = 1, p2 = p.
    One ``p`` and one ``beta`` per channel by default; ``p`` starts at 0.25
    (PyTorch's PReLU initial slope; the paper does not give one), beta at 1.

    Args:
        axis: channel axis (-1 channels-last, 1 channels-first).
        shared_axes: as in :class:`keras_acts.AconC` (``None``: channel-wise).
        p_initializer, beta_initializer: names or objects.
        p_regularizer, beta_regularizer, p_constraint, beta_constraint: names or objects.

    Example:
        >>> layer = AconB()
        >>> y = layer(K.ones([2, 5]))
        >>> float(layer.p[0])
        0.25
    """

    _params = ("p", "beta")

    def __init__(self, axis=-1, shared_axes=None, p_initializer=None, beta_initializer="ones",
                 p_regularizer=None, beta_regularizer=None, p_constraint=None,
                 beta_constraint=None, **kwargs):
        super().__init__(axis=axis, shared_axes=shared_axes, **kwargs)
        self._set_keras_objects(
            p_initializer=p_initializer or keras.initializers.Constant(0.25),
            beta_initializer=beta_initializer, p_regularizer=p_regularizer,
            beta_regularizer=beta_regularizer, p_constraint=p_constraint,
            beta_constraint=beta_constraint)

    def call(self, inputs):
        check_floating(inputs, "inputs")
        return acon_b(inputs, *self._batched())
