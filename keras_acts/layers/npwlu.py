"""Keras layer for non-uniform PWLU, with PWLU's two-phase learning method."""

import keras
import numpy as np
from keras import ops as K

from keras_acts.layers import pwlu as _pwlu
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import channels
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_bool
from keras_acts.layers._validation import check_float
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import check_int
from keras_acts.layers._validation import normalize_axis
from keras_acts.ops._common import check_floating
from keras_acts.ops._common import dtype_name
from keras_acts.ops.npwlu import inverse_softplus
from keras_acts.ops.npwlu import npwlu
from keras_acts.ops.pwlu import INIT_SHAPES
from keras_acts.ops.pwlu import realigned_parameters

# The stored parameters (anchor + offset each), in the order of ops.npwlu's
# arguments; "width_logits" are the widths before softplus.
PARAMETERS = ("left_bound", "width_logits", "start_value", "slopes", "left_slope",
              "right_slope")


@keras.saving.register_keras_serializable(package="keras_acts")
class NPWLU(ActivationLayer):
    """Non-uniform piecewise linear unit (N-PWLU) with statistic-based realignment.

    Zhu & Dong, ICPR 2022, and Zhou et al., TPAMI 2023 (where 4 non-uniform
    intervals match 16 uniform ones). N intervals of learnable widths from a
    learnable left bound B_L, cumulative values (each interval's right value is
    its left value plus slope times width), learnable outer slopes::

        knots     k_0 = B_L,  k_{i+1} = k_i + w_i,     w_i = softplus(width_logits_i)
        values    Y_{i+1} = Y_i + s_i w_i              (Y_0 = start_value)
        f(x)      = Y_0 + K_L (x - k_0)                x < k_0
                  = Y_i + s_i (x - k_i)                k_i <= x < k_{i+1}
                  = Y_N + K_R (x - k_N)                x >= k_N

    Where the papers leave details open, this formulation chooses:

    * widths are ``softplus`` of unconstrained variables (``exp`` grows too
      fast under a large step; a ``relu`` or clipping would stop their
      gradient), clamped to ``[0, max / (4 (N + 1))]`` and B_L to
      ``[-max / 4, max / 4]`` of the dtype, so the knots are ordered and finite
      after ANY optimiser step (a width that underflows to 0 is an empty
      interval, harmless: the maths never divides by a width);
    * the learnable values are Y_0 and the N slopes (the cumulative
      definition), so moving one interval's slope moves the rest of the curve
      right of it instead of bending two neighbouring segments;
    * the evaluation is the gather-free hinge sum of :mod:`keras_acts.ops.npwlu`.

    Learning method, as :class:`keras_acts.PWLU` (the same phase-I code):
    phase I (``phase1_steps`` training batches) is ReLU with frozen parameters
    while running mean / std are collected (momentum ``momentum``; global
    batch under ``tf.distribute``); at realignment the N intervals are set
    uniform over mean -/+ 3 std, Y_0 and the slopes follow ``init`` there (K_L
    = 0, K_R = 1 for "relu"), and every parameter trains in phase II. Storage
    is anchor (non-trainable, set by realignment) + offset (trainable).

    Args:
        num_intervals: N >= 1 (default 4, the papers' non-uniform setting).
        channelwise: one set of parameters per channel, or one shared set.
        axis: channel axis.
        phase1_steps: statistics batches (0 skips phase I; None waits for
            ``realign()``).
        init: "relu", "identity", "swish" or a callable.
        momentum: running statistics momentum in [0, 1).
        slopes_regularizer: regularizer of the offsets of Y_0, the slopes and
            the outer slopes.
        bounds_regularizer: regularizer of the offsets of B_L and the width logits.

    Example:
        >>> layer = NPWLU(phase1_steps=0)
        >>> y = layer(K.ones([2, 5, 5, 3]))
        >>> [round(float(v), 3) for v in layer.knots[0]]      # ReLU on [-3, 3]
        [-3.0, -1.5, 0.0, 1.5, 3.0]
    """

    _config_args = ("num_intervals", "channelwise", "axis", "phase1_steps", "momentum")

    def __init__(self, num_intervals=4, channelwise=True, axis=-1, phase1_steps=1000,
                 init="relu", momentum=0.9, slopes_regularizer=None, bounds_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_intervals = check_int(num_intervals, "num_intervals", 1)
        self.channelwise = check_bool(channelwise, "channelwise")
        self.axis = check_axis_arg(axis)
        if phase1_steps is not None:
            phase1_steps = check_int(phase1_steps, "phase1_steps", 0)
        self.phase1_steps = phase1_steps
        if isinstance(init, dict):
            init = keras.saving.deserialize_keras_object(init)
        if not callable(init) and init not in INIT_SHAPES:
            raise ValueError(
                f"`init` must be one of {INIT_SHAPES} or a callable; received init={init!r}.")
        self.init = init
        self.momentum = check_float(momentum, "momentum", 0.0, 1.0)
        self._set_keras_objects(slopes_regularizer=slopes_regularizer,
                                bounds_regularizer=bounds_regularizer)

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        name = type(self).__name__
        rank = check_input_rank(input_shape, name)
        self._axis = normalize_axis(self.axis, rank, name)
        self._rank = rank
        stat_shape = (channels(input_shape, self._axis, name),) if self.channelwise else ()
        n = self.num_intervals
        # Initial parameters: ReLU on [-3, 3] in N uniform intervals (realignment at mean 0, std 1).
        values = self._realigned(np.zeros(stat_shape), np.ones(stat_shape))
        regularizers = dict(left_bound=self.bounds_regularizer,
                            width_logits=self.bounds_regularizer)
        for param in PARAMETERS:
            shape = stat_shape + ((n,) if param in ("width_logits", "slopes") else ())
            setattr(self, f"{param}_offset", self.add_weight(
                shape=shape, name=f"{param}_offset", initializer="zeros",
                regularizer=regularizers.get(param, self.slopes_regularizer), autocast=False))
        state = dict(trainable=False, autocast=False)
        for param, value in zip(PARAMETERS, values):
            value = keras.ops.convert_to_numpy(value)
            setattr(self, f"{param}_anchor", self.add_weight(
                shape=value.shape, name=f"{param}_anchor", **state,
                initializer=keras.initializers.Constant(value)))
        self.phase = self.add_weight(
            shape=(), dtype="int32", name="phase", **state,
            initializer=keras.initializers.Constant(int(self.phase1_steps == 0)))
        self.step = self.add_weight(shape=(), dtype="int32", name="step",
                                    initializer="zeros", **state)
        self.running_mean = self.add_weight(shape=stat_shape, name="running_mean",
                                            initializer="zeros", **state)
        self.running_std = self.add_weight(shape=stat_shape, name="running_std",
                                           initializer="ones", **state)
        self.built = True

    def _realigned(self, mean, std):
        """Stored values (anchor targets, PARAMETERS order) for a realignment."""
        left, right, points, kl, kr = realigned_parameters(
            K.convert_to_tensor(mean), std, self.num_intervals, self.init)
        width = (right - left) / self.num_intervals
        slopes = (points[..., 1:] - points[..., :-1]) / K.expand_dims(width, -1)
        logits = inverse_softplus(K.expand_dims(width, -1) + K.zeros_like(slopes))
        return left, logits, points[..., 0], slopes, kl, kr

    # ------------------------------------------------------------ parameters
    def _stored(self, param):
        return (K.convert_to_tensor(getattr(self, f"{param}_anchor"))
                + K.convert_to_tensor(getattr(self, f"{param}_offset")))

    def _op_parameters(self):
        """(B_L, widths, Y_0, slopes, K_L, K_R) as ops.npwlu takes them, clamped finite."""
        left, logits, start, slopes, kl, kr = (self._stored(p) for p in PARAMETERS)
        big = float(np.finfo(dtype_name(left)).max)
        left = K.clip(left, -big / 4.0, big / 4.0)
        widths = K.minimum(K.softplus(logits), big / (4.0 * (self.num_intervals + 1)))
        return left, widths, start, slopes, kl, kr

    def parameters(self):
        """The function's parameters as a dict of tensors: ``left_bound``,
        ``widths``, ``start_value``, ``slopes``, ``left_slope``, ``right_slope``.

        Example:
            >>> layer = NPWLU(); layer.build((None, 3))
            >>> tuple(layer.parameters()["widths"].shape)
            (3, 4)
        """
        names = ("left_bound", "widths", "start_value", "slopes", "left_slope", "right_slope")
        return dict(zip(names, self._op_parameters()))

    @property
    def knots(self):
        """k_0..k_N, shape (C, N + 1) or (N + 1,): B_L then B_L + cumsum(widths).

        Example:
            >>> layer = NPWLU(num_intervals=2, channelwise=False); layer.build((None, 3))
            >>> [float(v) for v in layer.knots]
            [-3.0, 0.0, 3.0]
        """
        left, widths = self._op_parameters()[:2]
        return K.concatenate([K.expand_dims(left, -1),
                              K.expand_dims(left, -1) + K.cumsum(widths, axis=-1)], axis=-1)

    @property
    def values(self):
        """Y_0..Y_N at the knots, shape of :attr:`knots`: Y_0 + cumsum(slopes * widths).

        Example:
            >>> layer = NPWLU(num_intervals=2, channelwise=False); layer.build((None, 3))
            >>> [float(v) for v in layer.values]
            [0.0, 0.0, 3.0]
        """
        _, widths, start, slopes, _, _ = self._op_parameters()
        start = K.expand_dims(start, -1)
        return K.concatenate([start, start + K.cumsum(slopes * widths, axis=-1)], axis=-1)

    def set_parameters(self, **values):
        """Set function parameters (names of :meth:`parameters`): anchors to the
        values (widths through the inverse softplus), offsets to 0.

        Example:
            >>> layer = NPWLU(phase1_steps=0); layer.build((None, 2))
            >>> layer.set_parameters(widths=np.full((2, 4), 0.5))
            >>> [round(float(v), 4) for v in layer.knots[0]]
            [-3.0, -2.5, -2.0, -1.5, -1.0]
        """
        names = {"left_bound": "left_bound", "widths": "width_logits",
                 "start_value": "start_value", "slopes": "slopes", "left_slope": "left_slope",
                 "right_slope": "right_slope"}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"Unknown NPWLU parameter(s) {unknown}; allowed: {list(names)}.")
        for key, value in values.items():
            anchor = getattr(self, f"{names[key]}_anchor")
            value = K.cast(K.reshape(K.convert_to_tensor(value), anchor.shape), anchor.dtype)
            if key == "widths":
                if not np.all(keras.ops.convert_to_numpy(value) > 0):
                    raise ValueError("`widths` must all be > 0.")
                value = inverse_softplus(value)
            anchor.assign(value)
            offset = getattr(self, f"{names[key]}_offset")
            offset.assign(K.zeros(offset.shape, offset.dtype))

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=False):
        check_floating(inputs, "inputs")
        active = K.greater(self.phase, _pwlu.PHASE_STATISTICS)
        params = self._op_parameters()
        if training and self.phase1_steps != 0 and self.trainable:
            self._phase1_update(inputs)
        return npwlu(inputs, *params, axis=self._axis, active=active)

    # Phase I is PWLU's own code (statistics, distribution, bad batches); only
    # the realignment target differs (_assign_realigned below).
    _reduce_axes = _pwlu.PWLU._reduce_axes
    _batch_statistics = _pwlu.PWLU._batch_statistics
    _phase1_update = _pwlu.PWLU._phase1_update

    @property
    def in_phase1(self):
        """True while the layer collects statistics (acts as ReLU).

        Example:
            >>> NPWLU(phase1_steps=0).in_phase1
            False
        """
        return _pwlu.PWLU.in_phase1.fget(self)

    def _assign_realigned(self, mean, std, when):
        for param, value in zip(PARAMETERS, self._realigned(mean, std)):
            anchor = getattr(self, f"{param}_anchor")
            offset = K.convert_to_tensor(getattr(self, f"{param}_offset"))
            target = K.cast(K.reshape(value, anchor.shape), anchor.dtype) - offset
            anchor.assign(K.where(when, target, K.convert_to_tensor(anchor)))
        self.phase.assign(K.where(when, _pwlu.PHASE_TRAINING, K.convert_to_tensor(self.phase)))

    def realign(self):
        """End phase I now: N uniform intervals over running mean -/+ 3 running std.

        Example:
            >>> layer = NPWLU(phase1_steps=None)
            >>> _ = layer(K.convert_to_tensor(np.random.normal(size=(64, 8)), "float32"),
            ...           training=True)
            >>> layer.realign(); int(layer.phase.numpy())
            1
        """
        if not self.built:
            raise ValueError("NPWLU.realign() needs a built layer; call it on data first.")
        self._assign_realigned(K.convert_to_tensor(self.running_mean),
                               K.convert_to_tensor(self.running_std), K.convert_to_tensor(True))

    def get_config(self):
        config = super().get_config()
        config["init"] = (self.init if isinstance(self.init, str)
                          else keras.saving.serialize_keras_object(self.init))
        return config
