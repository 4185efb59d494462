"""Keras layer for PWLU, with its two-phase learning method built in."""

import keras
import numpy as np
import tensorflow as tf

from keras_acts import ops
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import broadcast_shape
from keras_acts.layers._validation import channels
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import check_int
from keras_acts.layers._validation import normalize_axis
from keras_acts.ops.pwlu import INIT_SHAPES
from keras_acts.ops.pwlu import realigned_parameters

PHASE_STATISTICS = 0
PHASE_TRAINING = 1


@keras.saving.register_keras_serializable(package="keras_acts")
class PWLU(ActivationLayer):
    """Piecewise linear unit with statistic-based realignment.

    Zhou et al., "Learning Specialized Activation Functions with the Piecewise
    Linear Unit", ICCV 2021. N uniform intervals on [B_L, B_R], N + 1 learnable
    points Y_i at B_i = B_L + i (B_R - B_L) / N, learnable bounds and outer slopes::

        f(x) = Y_0 + K_L (x - B_L)                      x < B_L
             = linear interpolation of Y_i, Y_{i+1}      B_i <= x <= B_{i+1}
             = Y_N + K_R (x - B_R)                      x > B_R

    Learning method (no user code needed inside ``model.fit``):

    * phase I (``phase == 0``), the first ``phase1_steps`` training steps: the
      layer is ReLU, its parameters receive zero gradients, and it keeps running
      mean and std of its input (momentum ``momentum``, started at the first
      batch's statistics; per channel when ``channelwise``). Under
      ``tf.distribute`` the batch statistics are all-reduced across replicas.
    * statistic-based realignment at the end of phase I: B_L = mean - 3 std,
      B_R = mean + 3 std, K_L = 0, K_R = 1, Y_i = init(B_i) (``init`` "relu" as in
      the paper, or "identity", "swish", a callable; for shapes other than relu
      K_L, K_R are init's slopes at the bounds). Also callable as ``realign()``,
      e.g. by ``keras_acts.callbacks.PWLUPhaseCallback`` at an epoch boundary.
    * phase II (``phase == 1``): every parameter trains.

    ``phase``, ``step``, ``running_mean`` and ``running_std`` are non-trainable
    weights, saved in ``.keras`` files and checkpoints. Before realignment the
    layer computes ReLU, also at inference.

    Args:
        num_intervals: N >= 1 (paper: 16).
        channelwise: one set of parameters per channel (True) or one shared set.
        axis: channel axis (-1 channels-last, 1 channels-first).
        phase1_steps: training steps of phase I (int >= 0; 0 skips phase I and
            trains from the initial ReLU-shaped parameters on [-3, 3]); ``None``
            keeps phase I until ``realign()`` is called.
        init: initial shape at realignment: "relu", "identity", "swish" or a
            callable (registered with Keras to survive ``.keras`` saving).
        momentum: running statistics momentum (paper: 0.9).
        points_regularizer, bounds_regularizer, slopes_regularizer: regularizers
            (names or objects) for Y, (B_L, B_R) and (K_L, K_R).

    Example:
        >>> model = keras.Sequential([keras.Input((28, 28, 1)),
        ...                           keras.layers.Conv2D(16, 3),
        ...                           PWLU(num_intervals=16, phase1_steps=500)])
    """

    _config_args = ("num_intervals", "channelwise", "axis", "phase1_steps", "momentum")

    def __init__(self, num_intervals=16, channelwise=True, axis=-1, phase1_steps=1000,
                 init="relu", momentum=0.9, points_regularizer=None,
                 bounds_regularizer=None, slopes_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_intervals = check_int(num_intervals, "num_intervals", 1)
        if not isinstance(channelwise, bool):
            raise ValueError(
                f"`channelwise` must be True or False; received channelwise={channelwise!r}.")
        self.channelwise = channelwise
        self.axis = check_axis_arg(axis)
        if phase1_steps is not None:
            check_int(phase1_steps, "phase1_steps", 0)
        self.phase1_steps = phase1_steps
        if isinstance(init, dict):
            init = keras.saving.deserialize_keras_object(init)
        if not callable(init) and init not in INIT_SHAPES:
            raise ValueError(
                f"`init` must be one of {INIT_SHAPES} or a callable; received init={init!r}.")
        self.init = init
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); received momentum={momentum!r}.")
        self.momentum = float(momentum)
        self._set_keras_objects(points_regularizer=points_regularizer,
                                bounds_regularizer=bounds_regularizer,
                                slopes_regularizer=slopes_regularizer)

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        name = type(self).__name__
        rank = check_input_rank(input_shape, name)
        self._axis = normalize_axis(self.axis, rank, name)
        self._rank = rank
        stat_shape = (channels(input_shape, self._axis, name),) if self.channelwise else ()
        # Initial parameters: ReLU on [-3, 3] (what realignment gives for mean 0, std 1).
        grid = np.broadcast_to(np.linspace(-3.0, 3.0, self.num_intervals + 1, dtype=np.float32),
                               stat_shape + (self.num_intervals + 1,))
        initial = [np.full(stat_shape, -3.0, np.float32), np.full(stat_shape, 3.0, np.float32),
                   np.maximum(grid, 0.0), np.zeros(stat_shape, np.float32),
                   np.ones(stat_shape, np.float32)]

        def const(value):
            return lambda shape, dtype=None: tf.constant(value, dtype=dtype or "float32")

        def param(name, value, regularizer):
            return self.add_weight(shape=value.shape, name=name, initializer=const(value),
                                   regularizer=regularizer, autocast=False)

        self.left_bound = param("left_bound", initial[0], self.bounds_regularizer)
        self.right_bound = param("right_bound", initial[1], self.bounds_regularizer)
        self.points = param("points", initial[2], self.points_regularizer)
        self.left_slope = param("left_slope", initial[3], self.slopes_regularizer)
        self.right_slope = param("right_slope", initial[4], self.slopes_regularizer)
        starts_trained = self.phase1_steps == 0
        state = dict(trainable=False, autocast=False)
        self.phase = self.add_weight(
            shape=(), dtype="int32", name="phase", **state,
            initializer=keras.initializers.Constant(int(starts_trained)))
        self.step = self.add_weight(shape=(), dtype="int64", name="step",
                                    initializer="zeros", **state)
        self.running_mean = self.add_weight(shape=stat_shape, name="running_mean",
                                            initializer="zeros", **state)
        self.running_std = self.add_weight(shape=stat_shape, name="running_std",
                                           initializer="ones", **state)
        self.built = True

    # ------------------------------------------------------------------- call
    def _parameters(self):
        return [tf.convert_to_tensor(w) for w in (
            self.left_bound, self.right_bound, self.points, self.left_slope,
            self.right_slope)]

    def call(self, inputs, training=False):
        ops._common.check_floating(inputs, "inputs")
        active = tf.greater(tf.convert_to_tensor(self.phase), PHASE_STATISTICS)
        if training and self.phase1_steps != 0:
            self._phase1_update(inputs)
        return ops.pwlu(inputs, *self._parameters(), axis=self._axis, active=active)

    def _reduce_axes(self):
        return [a for a in range(self._rank) if not (self.channelwise and a == self._axis)]

    def _local_moments(self, inputs, shift):
        # Per-replica sums of (x - shift) and (x - shift)^2, and the element count.
        x = tf.cast(inputs, tf.float32)
        if self.channelwise:
            shift = tf.reshape(shift, broadcast_shape(self._rank, self._axis, -1))
        centred = x - shift
        axes = self._reduce_axes()
        count = tf.cast(tf.size(x), tf.float32) / tf.cast(
            tf.size(self.running_mean), tf.float32)
        return (tf.reduce_sum(centred, axis=axes), tf.reduce_sum(tf.square(centred), axis=axes),
                count)

    def _phase1_update(self, inputs):
        in_phase1 = tf.equal(self.phase, PHASE_STATISTICS)
        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            def update():
                mean, var = tf.nn.moments(tf.cast(inputs, tf.float32), axes=self._reduce_axes())
                return self._update_statistics(mean, tf.sqrt(var))

            tf.cond(in_phase1, update, lambda: tf.constant(False))
            return
        # Synchronised across replicas and workers, like SyncBatchNorm. All-reduce
        # cannot sit inside a cond: the (skipped in phase II) local sums are inside,
        # the small all-reduce of per-channel sums outside.
        shift = tf.convert_to_tensor(self.running_mean)
        zeros = tf.zeros_like(shift)
        local = tf.cond(in_phase1, lambda: self._local_moments(inputs, shift),
                        lambda: (zeros, zeros, tf.constant(0.0)))
        total, total_sq, count = ctx.all_reduce("sum", list(local))
        count = tf.maximum(count, 1.0)
        mean_c = total / count
        var = tf.maximum(total_sq / count - tf.square(mean_c), 0.0)
        tf.cond(in_phase1, lambda: self._update_statistics(shift + mean_c, tf.sqrt(var)),
                lambda: tf.constant(False))

    def _update_statistics(self, mean, std):
        first = tf.equal(self.step, 0)
        m = self.momentum
        self.running_mean.assign(tf.where(first, mean, m * self.running_mean + (1 - m) * mean))
        self.running_std.assign(tf.where(first, std, m * self.running_std + (1 - m) * std))
        self.step.assign_add(1)
        if self.phase1_steps is not None:
            tf.cond(self.step >= self.phase1_steps, self._assign_realigned,
                    lambda: tf.constant(False))
        return tf.constant(True)

    def _assign_realigned(self):
        values = realigned_parameters(
            tf.convert_to_tensor(self.running_mean), tf.convert_to_tensor(self.running_std),
            self.num_intervals, self.init)
        targets = (self.left_bound, self.right_bound, self.points, self.left_slope,
                   self.right_slope)
        for var, value in zip(targets, values):
            var.assign(tf.cast(tf.reshape(value, var.shape), var.dtype))
        self.phase.assign(PHASE_TRAINING)
        return tf.constant(True)

    # -------------------------------------------------------------- public API
    def realign(self):
        """End phase I now: statistic-based realignment from the running stats.

        Sets B_L/B_R = running_mean -/+ 3 running_std, K_L = 0, K_R = 1 (for
        ``init="relu"``), Y_i = init(B_i), and ``phase = 1``. Call it outside
        ``model.fit``'s graph, e.g. from a callback at an epoch boundary.

        Example:
            >>> layer = PWLU(phase1_steps=None)
            >>> _ = layer(tf.random.normal([64, 8]), training=True)
            >>> layer.realign(); int(layer.phase.numpy())
            1
        """
        if not self.built:
            raise ValueError("PWLU.realign() needs a built layer; call it on data first.")
        self._assign_realigned()

    @property
    def in_phase1(self):
        """True while the layer collects statistics (acts as ReLU).

        Example:
            >>> PWLU(phase1_steps=0).in_phase1  # unbuilt: phase I unless skipped
            False
        """
        if not self.built:
            return self.phase1_steps != 0
        return int(keras.ops.convert_to_numpy(self.phase)) == PHASE_STATISTICS

    def get_config(self):
        config = super().get_config()
        config["init"] = (self.init if isinstance(self.init, str)
                          else keras.saving.serialize_keras_object(self.init))
        return config
