"""Keras layer for ACON-C."""

import numbers

import keras
from keras import ops as K

from keras_acts import ops
from keras_acts.ops._common import check_floating
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import normalize_axis


def paper_normal():
    """N(0, 1) initializer: the official ACON code's ``torch.randn`` for p1, p2.

    Example:
        >>> layer = AconC(p1_initializer=paper_normal())
    """
    return keras.initializers.RandomNormal(mean=0.0, stddev=1.0)


@keras.saving.register_keras_serializable(package="keras_acts")
class AconC(ActivationLayer):
    """ACON-C: f(x) = (p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x.

    Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021.
    Learnable ``p1``, ``p2``, ``beta``, one of each per channel by default
    (p1, p2 ~ N(0, 1) and beta = 1, as in the official code).

    Args:
        axis: channel axis (-1 channels-last, 1 channels-first).
        shared_axes: like ``keras.layers.PReLU``: the axes (1-based, batch
            excluded) along which the parameters are shared. ``None`` shares over
            every axis but ``axis`` (channel-wise); e.g. ``[1, 2, 3]`` on NHWC input
            makes the parameters layer-wise.
        p1_initializer, p2_initializer, beta_initializer: names or objects.
        p1_regularizer, p2_regularizer, beta_regularizer: names or objects.
        p1_constraint, p2_constraint, beta_constraint: names or objects.

    Example:
        >>> model = keras.Sequential([keras.Input((32, 32, 3)),
        ...                           keras.layers.Conv2D(16, 3), AconC()])
    """

    _config_args = ("axis", "shared_axes")

    def __init__(self, axis=-1, shared_axes=None,
                 p1_initializer=None, p2_initializer=None, beta_initializer="ones",
                 p1_regularizer=None, p2_regularizer=None, beta_regularizer=None,
                 p1_constraint=None, p2_constraint=None, beta_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = check_axis_arg(axis)
        shared_axes = check_shared_axes(shared_axes)
        self.shared_axes = shared_axes
        self._set_keras_objects(
            p1_initializer=p1_initializer or paper_normal(),
            p2_initializer=p2_initializer or paper_normal(),
            beta_initializer=beta_initializer, p1_regularizer=p1_regularizer,
            p2_regularizer=p2_regularizer, beta_regularizer=beta_regularizer,
            p1_constraint=p1_constraint, p2_constraint=p2_constraint,
            beta_constraint=beta_constraint)

    def _param_shape(self, input_shape, rank):
        return parameter_shape(type(self).__name__, self.axis, self.shared_axes,
                               input_shape, rank)

    def build(self, input_shape):
        rank = check_input_rank(input_shape, type(self).__name__)
        shape = self._param_shape(input_shape, rank)
        for name in ("p1", "p2", "beta"):
            weight = self.add_weight(
                shape=shape, name=name, autocast=False,
                initializer=getattr(self, name + "_initializer"),
                regularizer=getattr(self, name + "_regularizer"),
                constraint=getattr(self, name + "_constraint"))
            setattr(self, name, weight)
        self.built = True

    def call(self, inputs):
        check_floating(inputs, "inputs")
        p1, p2, beta = (K.expand_dims(w, 0) for w in (self.p1, self.p2, self.beta))
        return ops.acon_c(inputs, p1, p2, beta)


def check_shared_axes(shared_axes):
    """Constructor check of ``shared_axes`` (as in ``keras.layers.PReLU``): None or
    non-zero integer axes (1-based, batch excluded); returned as a list of ints.

    Example:
        >>> check_shared_axes(2)
        [2]
    """
    if shared_axes is None:
        return None
    if isinstance(shared_axes, numbers.Integral):
        shared_axes = [shared_axes]
    if not isinstance(shared_axes, (list, tuple)) or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool)
            and type(a).__name__ not in ("bool_", "bool") and a != 0 for a in shared_axes):
        raise ValueError(
            "`shared_axes` must be None or a list of non-zero integer axes "
            f"(1-based, batch excluded); received shared_axes={shared_axes!r}.")
    return [int(a) for a in shared_axes]


def parameter_shape(layer_name, axis, shared_axes, input_shape, rank):
    """Shape (batch axis excluded) of a per-channel parameter of the ACON layers.

    One value per channel on ``axis`` and per position on every non-shared
    axis; ``shared_axes=None`` shares every axis but ``axis``.

    Example:
        >>> parameter_shape("AconC", -1, None, (None, 8, 8, 16), 4)
        (1, 1, 16)
    """
    axis = normalize_axis(axis, rank, layer_name)
    if shared_axes is None:
        shared = [a for a in range(1, rank) if a != axis]
    else:
        shared = [normalize_axis(a, rank, layer_name + " (shared_axes)") for a in shared_axes]
    shape = []
    for a in range(1, rank):
        if a in shared:
            shape.append(1)
        elif input_shape[a] is None:
            raise ValueError(
                f"{layer_name}: axis {a} of input_shape={tuple(input_shape)} is unknown and "
                "not in `shared_axes`; parameters need a static size there.")
        else:
            shape.append(int(input_shape[a]))
    return tuple(shape)
