"""Keras layer for PWLU, with its two-phase learning method built in."""

import keras
import numpy as np
from keras import ops as K

from keras_acts import ops
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import channels
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_bool
from keras_acts.layers._validation import check_float
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import check_int
from keras_acts.layers._validation import normalize_axis
from keras_acts.ops._common import check_floating
from keras_acts.ops.moments import scaled_moments
from keras_acts.ops.pwlu import INIT_SHAPES
from keras_acts.ops.pwlu import realigned_parameters

PHASE_STATISTICS = 0
PHASE_TRAINING = 1
# The five parameters, in the order of keras_acts.ops.pwlu's arguments.
PARAMETERS = ("left_bound", "right_bound", "points", "left_slope", "right_slope")


@keras.saving.register_keras_serializable(package="keras_acts")
class PWLU(ActivationLayer):
    """Piecewise linear unit with statistic-based realignment.

    Zhou et al., "Learning Specialized Activation Functions with the Piecewise
    Linear Unit", ICCV 2021. N uniform intervals on [B_L, B_R], N + 1 learnable
    points Y_i at B_i = B_L + i (B_R - B_L) / N, learnable bounds and outer slopes::

        f(x) = Y_0 + K_L (x - B_L)                      x < B_L
             = linear interpolation of Y_i, Y_{i+1}      B_i <= x <= B_{i+1}
             = Y_N + K_R (x - B_R)                      x > B_R

    Learning method (no user code needed inside ``model.fit``, on every backend):

    * phase I (``phase == 0``), the first ``phase1_steps`` training batches: the
      layer is ReLU, its parameters receive zero gradients, and it keeps running
      mean and std of its input (momentum ``momentum``, started at the first
      batch's statistics; per channel when ``channelwise``). Statistics are
      those of the global batch: all-gathered across replicas under
      ``tf.distribute``, and global by construction under JAX data
      parallelism. A batch that is empty, holds NaN or +-inf, or whose moments
      would not be finite does not enter them (nor count as a step); moments
      are computed scaled by the largest magnitude, so no finite batch overflows.
    * statistic-based realignment at the end of phase I: B_L = mean - 3 std,
      B_R = mean + 3 std, K_L = 0, K_R = 1, Y_i = init(B_i) (``init`` "relu" as in
      the paper, or "identity", "swish", a callable; for shapes other than relu
      K_L, K_R are init's slopes at the bounds). A channel's std is at least
      ``1e-3 * max(1, |mean|)`` (a constant channel gets a small interval, never
      a zero width) and the bounds stay finite. Also callable as
      ``realign()``, e.g. by ``keras_acts.PWLUPhaseCallback`` at an epoch boundary.
    * phase II (``phase == 1``): every parameter trains.

    Storage: each parameter is ``anchor + offset``. The anchors
    (``*_anchor``) are non-trainable state that realignment sets, as Keras'
    BatchNormalization sets its moving statistics inside ``call`` (this is what
    works on JAX, whose training step keeps only non-trainable updates made in
    ``call``); the offsets (``*_offset``) are the trainable variables, 0 at
    realignment. The properties ``left_bound``, ``right_bound``, ``points``,
    ``left_slope``, ``right_slope`` return the parameters themselves, and
    :meth:`set_parameters` sets them. Regularizers apply to the offsets, i.e.
    they penalise the change from the realigned shape.

    ``phase``, ``step`` (statistics batches seen), ``running_mean`` and
    ``running_std`` are non-trainable weights too, saved in ``.keras`` files
    and checkpoints. Before realignment the layer computes ReLU, also at
    inference.

    Args:
        num_intervals: N >= 1 (paper: 16).
        channelwise: one set of parameters per channel (True) or one shared set.
        axis: channel axis (-1 channels-last, 1 channels-first).
        phase1_steps: statistics batches of phase I (int >= 0; 0 skips phase I
            and trains from the initial ReLU-shaped parameters on [-3, 3]);
            ``None`` keeps phase I until ``realign()`` is called.
        init: initial shape at realignment: "relu", "identity", "swish" or a
            callable of ``keras.ops`` (registered with Keras to survive ``.keras``
            saving).
        momentum: running statistics momentum in [0, 1) (paper: 0.9).
        points_regularizer, bounds_regularizer, slopes_regularizer: regularizers
            (names or objects) for the offsets of Y, (B_L, B_R) and (K_L, K_R).

    Example:
        >>> model = keras.Sequential([keras.Input((28, 28, 1)),
        ...                           keras.layers.Conv2D(16, 3),
        ...                           PWLU(num_intervals=16, phase1_steps=500)])
        >>> tuple(model.layers[-1].points.shape)
        (16, 17)
    """

    _config_args = ("num_intervals", "channelwise", "axis", "phase1_steps", "momentum")

    def __init__(self, num_intervals=16, channelwise=True, axis=-1, phase1_steps=1000,
                 init="relu", momentum=0.9, points_regularizer=None,
                 bounds_regularizer=None, slopes_regularizer=None, **kwargs):
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
        grid = np.broadcast_to(np.linspace(-3.0, 3.0, self.num_intervals + 1),
                               stat_shape + (self.num_intervals + 1,))
        initial = dict(left_bound=np.full(stat_shape, -3.0), right_bound=np.full(stat_shape, 3.0),
                       points=np.maximum(grid, 0.0), left_slope=np.zeros(stat_shape),
                       right_slope=np.ones(stat_shape))
        regularizers = dict(left_bound=self.bounds_regularizer,
                            right_bound=self.bounds_regularizer,
                            points=self.points_regularizer, left_slope=self.slopes_regularizer,
                            right_slope=self.slopes_regularizer)
        for param in PARAMETERS:
            shape = initial[param].shape
            setattr(self, f"{param}_offset", self.add_weight(
                shape=shape, name=f"{param}_offset", initializer="zeros",
                regularizer=regularizers[param], autocast=False))
        state = dict(trainable=False, autocast=False)
        for param in PARAMETERS:
            value = initial[param]
            setattr(self, f"{param}_anchor", self.add_weight(
                shape=value.shape, name=f"{param}_anchor", **state,
                initializer=keras.initializers.Constant(value)))
        starts_trained = self.phase1_steps == 0
        self.phase = self.add_weight(
            shape=(), dtype="int32", name="phase", **state,
            initializer=keras.initializers.Constant(int(starts_trained)))
        self.step = self.add_weight(shape=(), dtype="int32", name="step",
                                    initializer="zeros", **state)
        self.running_mean = self.add_weight(shape=stat_shape, name="running_mean",
                                            initializer="zeros", **state)
        self.running_std = self.add_weight(shape=stat_shape, name="running_std",
                                           initializer="ones", **state)
        self.built = True

    # ------------------------------------------------------------ parameters
    def _parameter(self, param):
        return (K.convert_to_tensor(getattr(self, f"{param}_anchor"))
                + K.convert_to_tensor(getattr(self, f"{param}_offset")))

    left_bound = property(lambda self: self._parameter("left_bound"),
                          doc="B_L (anchor + offset), shape (C,) or ().")
    right_bound = property(lambda self: self._parameter("right_bound"),
                           doc="B_R (anchor + offset), shape (C,) or ().")
    points = property(lambda self: self._parameter("points"),
                      doc="Y_0..Y_N (anchor + offset), shape (C, N + 1) or (N + 1,).")
    left_slope = property(lambda self: self._parameter("left_slope"),
                          doc="K_L (anchor + offset), shape (C,) or ().")
    right_slope = property(lambda self: self._parameter("right_slope"),
                           doc="K_R (anchor + offset), shape (C,) or ().")

    def parameters(self):
        """The five parameters as a dict of tensors (anchor + offset).

        Example:
            >>> layer = PWLU(num_intervals=4); layer.build((None, 3))
            >>> sorted(layer.parameters())
            ['left_bound', 'left_slope', 'points', 'right_bound', 'right_slope']
        """
        return {param: self._parameter(param) for param in PARAMETERS}

    def set_parameters(self, **values):
        """Set parameters (any of ``PARAMETERS``): anchors to the values, offsets to 0.

        Example:
            >>> layer = PWLU(num_intervals=4, phase1_steps=0); layer.build((None, 3))
            >>> layer.set_parameters(left_slope=np.full(3, 0.1))
            >>> [round(float(v), 3) for v in layer.left_slope]
            [0.1, 0.1, 0.1]
        """
        unknown = sorted(set(values) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"Unknown PWLU parameter(s) {unknown}; allowed: {list(PARAMETERS)}.")
        for param, value in values.items():
            anchor = getattr(self, f"{param}_anchor")
            anchor.assign(K.cast(K.reshape(K.convert_to_tensor(value), anchor.shape),
                                 anchor.dtype))
            offset = getattr(self, f"{param}_offset")
            offset.assign(K.zeros(offset.shape, offset.dtype))

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=False):
        check_floating(inputs, "inputs")
        # Read before any update: the step that realigns still acts as ReLU.
        active = K.greater(self.phase, PHASE_STATISTICS)
        params = [self._parameter(param) for param in PARAMETERS]
        if training and self.phase1_steps != 0 and self.trainable:
            self._phase1_update(inputs)
        return ops.pwlu(inputs, *params, axis=self._axis, active=active)

    def _reduce_axes(self):
        return [a for a in range(self._rank) if not (self.channelwise and a == self._axis)]

    def _batch_statistics(self, x):
        """(mean, std, finite) of one batch, per channel; scaled so nothing overflows."""
        scale, mean_hat, var_hat = scaled_moments(x, self._reduce_axes())
        mean = scale * mean_hat
        std = scale * K.sqrt(var_hat)
        finite = K.all(K.isfinite(scale)) & K.all(K.isfinite(mean)) & K.all(K.isfinite(std))
        return mean, std, finite

    def _phase1_update(self, inputs):
        dtype = self.running_mean.dtype
        x = K.cast(inputs, dtype)
        count = 1
        for a in self._reduce_axes():
            count = None if count is None or x.shape[a] is None else count * x.shape[a]
        if count == 0:
            return       # an empty batch (static shape): nothing to learn from
        in_phase1 = K.equal(self.phase, PHASE_STATISTICS)
        old_mean = K.convert_to_tensor(self.running_mean)
        old_std = K.convert_to_tensor(self.running_std)
        replicas = _tf_replica_context()
        if replicas is not None:
            mean, std, valid = _all_gathered_statistics(replicas, x, self._reduce_axes(),
                                                        in_phase1)
        else:
            mean, std, valid = K.cond(
                in_phase1, lambda: self._batch_statistics(x),
                lambda: (old_mean, old_std, K.convert_to_tensor(False)))
        accept = in_phase1 & valid
        first = K.equal(self.step, 0)
        m = self.momentum
        new_mean = K.where(first, mean, m * old_mean + (1.0 - m) * mean)
        new_std = K.where(first, std, m * old_std + (1.0 - m) * std)
        new_mean = K.where(accept, new_mean, old_mean)
        new_std = K.where(accept, new_std, old_std)
        new_step = self.step + K.cast(accept, "int32")
        self.running_mean.assign(new_mean)
        self.running_std.assign(new_std)
        self.step.assign(new_step)
        if self.phase1_steps is None:
            return
        realign = accept & K.greater_equal(new_step, self.phase1_steps)
        self._assign_realigned(new_mean, new_std, realign)

    def _assign_realigned(self, mean, std, when):
        values = realigned_parameters(mean, std, self.num_intervals, self.init)
        for param, value in zip(PARAMETERS, values):
            anchor = getattr(self, f"{param}_anchor")
            offset = K.convert_to_tensor(getattr(self, f"{param}_offset"))
            target = K.cast(K.reshape(value, anchor.shape), anchor.dtype) - offset
            anchor.assign(K.where(when, target, K.convert_to_tensor(anchor)))
        self.phase.assign(K.where(when, PHASE_TRAINING, K.convert_to_tensor(self.phase)))

    # -------------------------------------------------------------- public API
    def realign(self):
        """End phase I now: statistic-based realignment from the running stats.

        Sets B_L/B_R = running_mean -/+ 3 running_std, K_L = 0, K_R = 1 (for
        ``init="relu"``), Y_i = init(B_i), and ``phase = 1``. Call it outside
        ``model.fit``'s step, e.g. from a callback at an epoch boundary.

        Example:
            >>> layer = PWLU(phase1_steps=None)
            >>> _ = layer(K.convert_to_tensor(np.random.normal(size=(64, 8)), "float32"),
            ...           training=True)
            >>> layer.realign(); int(layer.phase.numpy())
            1
        """
        if not self.built:
            raise ValueError("PWLU.realign() needs a built layer; call it on data first.")
        self._assign_realigned(K.convert_to_tensor(self.running_mean),
                               K.convert_to_tensor(self.running_std), K.convert_to_tensor(True))

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

    # ------------------------------------------------------------- saving
    def load_own_variables(self, store):
        """Load weights; also reads keras-acts 0.1 files, whose 9 variables were
        the five parameters themselves (trainable) then phase, step, running
        mean and std: the parameters become the anchors, the offsets 0.

        Example:
            >>> layer = PWLU(num_intervals=4); layer.build((None, 3))
            >>> layer.load_own_variables({str(i): w for i, w in enumerate(layer.weights)})
        """
        if len(store.keys()) == 9:
            legacy = [store[str(i)] for i in range(9)]
            self.set_parameters(**dict(zip(PARAMETERS, legacy[:5])))
            for var, value in zip((self.phase, self.step, self.running_mean,
                                   self.running_std), legacy[5:]):
                var.assign(K.cast(K.convert_to_tensor(np.asarray(value)), var.dtype))
            return
        super().load_own_variables(store)


def _tf_replica_context():
    """The tf.distribute replica context when several replicas run, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf  # noqa: PLC0415 (TensorFlow backend only)

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return None
    return ctx


def _all_gathered_statistics(ctx, x, axes, in_phase1):
    """Global-batch (mean, std, finite) under tf.distribute, like SyncBatchNorm.

    Each replica's scaled moments and element count (zero outside phase I: the
    local work sits in a cond) are all-gathered, outside the cond, and combined
    without overflow: mean = sum_r w_r s_r m_r with w_r = n_r / n, and
    var / S^2 = sum_r w_r ((s_r / S)^2 v_r + ((s_r m_r - mean) / S)^2), S = max_r s_r.
    """
    import tensorflow as tf  # noqa: PLC0415

    def local():
        scale, mean_hat, var_hat = scaled_moments(x, axes)
        count = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(scale), x.dtype)
        empty = tf.equal(count, 0.0)    # this replica's batch is empty: weight 0
        return (tf.where(empty, tf.ones_like(scale), scale),
                tf.where(empty, tf.zeros_like(mean_hat), mean_hat),
                tf.where(empty, tf.zeros_like(var_hat), var_hat), count)

    shape = [x.shape[a] for a in range(len(x.shape)) if a not in axes]
    zeros = tf.zeros(shape, x.dtype)
    scale, mean_hat, var_hat, count = tf.cond(
        in_phase1, local, lambda: (tf.ones_like(zeros), zeros, zeros, tf.zeros([], x.dtype)))
    stacked = tf.stack([scale, mean_hat, var_hat, tf.broadcast_to(count, tf.shape(scale))], 0)
    gathered = ctx.all_gather(stacked[None], axis=0)      # (replicas, 4, ...)
    scales, mean_hats, var_hats, counts = (gathered[:, i] for i in range(4))
    total = tf.reduce_sum(counts, axis=0)
    weights = counts / tf.maximum(total, 1.0)
    means = scales * mean_hats
    mean = tf.reduce_sum(weights * means, axis=0)
    big = tf.reduce_max(scales, axis=0)
    var_hat = tf.reduce_sum(weights * (tf.square(scales / big) * var_hats
                                       + tf.square((means - mean) / big)), axis=0)
    std = big * tf.sqrt(var_hat)
    finite = (tf.reduce_all(tf.math.is_finite(mean)) & tf.reduce_all(tf.math.is_finite(std))
              & tf.reduce_all(total > 0))
    return mean, std, finite
