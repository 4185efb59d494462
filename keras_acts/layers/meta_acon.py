"""Keras layer for Meta-ACON (ACON-C with a generated, per-sample beta)."""

import keras
import tensorflow as tf

from keras_acts import ops
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import broadcast_shape
from keras_acts.layers._validation import channels
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import check_int
from keras_acts.layers._validation import normalize_axis
from keras_acts.layers.acon_c import paper_normal


@keras.saving.register_keras_serializable(package="keras_acts")
class MetaAcon(ActivationLayer):
    """Meta-ACON: ACON-C with beta generated per sample and channel.

    Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021::

        f(x)  = (p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x
        beta  = sigmoid(BN2(W2 @ BN1(W1 @ mean_spatial(x) + b1) + b2))

    ``W1`` maps C channels to ``max(reduction, C // reduction)`` and ``W2`` back to
    C (the official code's 1x1 convolutions on the pooled input), with no
    nonlinearity between them. For rank-2 input the pooled input is the input.
    The BN layers (``use_bn=True``) normalise over the batch in training; with a
    batch of one sample they use their moving statistics instead (and leave them
    unchanged), so training and inference work at batch size 1.

    Args:
        reduction: r >= 1; hidden width max(r, C // r).
        use_bn: keep the two BN layers of the official code.
        axis: channel axis (-1 channels-last, 1 channels-first).
        bn_momentum, bn_epsilon: BN moving-average momentum and epsilon (PyTorch
            defaults of the official code: 0.9 in Keras terms and 1e-5).
        p1_initializer, p2_initializer: names or objects (default N(0, 1)).
        kernel_initializer, bias_initializer: for W1, W2, b1, b2.
        p1_regularizer, p2_regularizer, kernel_regularizer: names or objects.

    Example:
        >>> model = keras.Sequential([keras.Input((32, 32, 3)),
        ...                           keras.layers.Conv2D(32, 3), MetaAcon()])
    """

    _config_args = ("reduction", "use_bn", "axis", "bn_momentum", "bn_epsilon")

    def __init__(self, reduction=16, use_bn=True, axis=-1, bn_momentum=0.9,
                 bn_epsilon=1e-5, p1_initializer=None, p2_initializer=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 p1_regularizer=None, p2_regularizer=None, kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_int(reduction, "reduction", 1)
        if not isinstance(use_bn, bool):
            raise ValueError(f"`use_bn` must be True or False; received use_bn={use_bn!r}.")
        self.use_bn = use_bn
        self.axis = check_axis_arg(axis)
        if not 0.0 <= float(bn_momentum) < 1.0:
            raise ValueError(f"`bn_momentum` must be in [0, 1); received {bn_momentum!r}.")
        if not float(bn_epsilon) > 0.0:
            raise ValueError(f"`bn_epsilon` must be > 0; received {bn_epsilon!r}.")
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self._set_keras_objects(
            p1_initializer=p1_initializer or paper_normal(),
            p2_initializer=p2_initializer or paper_normal(),
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            p1_regularizer=p1_regularizer, p2_regularizer=p2_regularizer,
            kernel_regularizer=kernel_regularizer)

    def _bn_weights(self, name, size):
        kw = dict(shape=(size,), autocast=False)
        return {
            "gamma": self.add_weight(name=f"{name}_gamma", initializer="ones", **kw),
            "beta": self.add_weight(name=f"{name}_beta", initializer="zeros", **kw),
            "mean": self.add_weight(name=f"{name}_moving_mean", initializer="zeros",
                                    trainable=False, **kw),
            "var": self.add_weight(name=f"{name}_moving_variance", initializer="ones",
                                   trainable=False, **kw),
        }

    def build(self, input_shape):
        name = type(self).__name__
        rank = check_input_rank(input_shape, name)
        self._axis = normalize_axis(self.axis, rank, name)
        self._rank = rank
        c = channels(input_shape, self._axis, name)
        hidden = max(self.reduction, c // self.reduction)
        self.hidden_units = hidden
        self.p1 = self.add_weight(shape=(c,), name="p1", initializer=self.p1_initializer,
                                  regularizer=self.p1_regularizer, autocast=False)
        self.p2 = self.add_weight(shape=(c,), name="p2", initializer=self.p2_initializer,
                                  regularizer=self.p2_regularizer, autocast=False)
        dense = dict(initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                     autocast=False)
        self.kernel1 = self.add_weight(shape=(c, hidden), name="kernel1", **dense)
        self.bias1 = self.add_weight(shape=(hidden,), name="bias1",
                                     initializer=self.bias_initializer, autocast=False)
        self.kernel2 = self.add_weight(shape=(hidden, c), name="kernel2", **dense)
        self.bias2 = self.add_weight(shape=(c,), name="bias2",
                                     initializer=self.bias_initializer, autocast=False)
        if self.use_bn:
            self.bn1 = self._bn_weights("bn1", hidden)
            self.bn2 = self._bn_weights("bn2", c)
        self.built = True

    def _batch_norm(self, h, bn, training):
        bn = {key: tf.cast(var, h.dtype) if key in ("gamma", "beta") else var
              for key, var in bn.items()}
        if training:
            batch_mean, batch_var = tf.nn.moments(h, axes=[0])
            use_batch = tf.shape(h)[0] > 1
            moving_mean = tf.cast(bn["mean"], h.dtype)
            moving_var = tf.cast(bn["var"], h.dtype)
            mean = tf.where(use_batch, batch_mean, moving_mean)
            var = tf.where(use_batch, batch_var, moving_var)
            m = self.bn_momentum
            new_mean = tf.where(use_batch, m * moving_mean + (1 - m) * batch_mean, moving_mean)
            new_var = tf.where(use_batch, m * moving_var + (1 - m) * batch_var, moving_var)
            bn["mean"].assign(tf.cast(new_mean, bn["mean"].dtype))
            bn["var"].assign(tf.cast(new_var, bn["var"].dtype))
        else:
            mean, var = tf.cast(bn["mean"], h.dtype), tf.cast(bn["var"], h.dtype)
        return (h - mean) * tf.math.rsqrt(var + self.bn_epsilon) * bn["gamma"] + bn["beta"]

    def generate_beta(self, inputs, training=False):
        """beta of shape (batch, C) for ``inputs`` (see class docstring), computed in
        float32 for 16-bit inputs and in the input's dtype otherwise.

        Example:
            >>> layer = MetaAcon(); _ = layer(tf.zeros([2, 8, 8, 32]))
            >>> layer.generate_beta(tf.zeros([2, 8, 8, 32])).shape
            TensorShape([2, 32])
        """
        dtype = ops._common.compute_dtype(inputs.dtype)
        x = tf.cast(inputs, dtype)
        w = {name: tf.cast(getattr(self, name), dtype)
             for name in ("kernel1", "bias1", "kernel2", "bias2")}
        spatial = [a for a in range(1, self._rank) if a != self._axis]
        pooled = tf.reduce_mean(x, axis=spatial) if spatial else x
        h = tf.matmul(pooled, w["kernel1"]) + w["bias1"]
        if self.use_bn:
            h = self._batch_norm(h, self.bn1, training)
        h = tf.matmul(h, w["kernel2"]) + w["bias2"]
        if self.use_bn:
            h = self._batch_norm(h, self.bn2, training)
        return tf.sigmoid(h)

    def call(self, inputs, training=False):
        ops._common.check_floating(inputs, "inputs")
        beta = self.generate_beta(inputs, training=bool(training))
        shape = [-1] + [1] * (self._rank - 1)
        shape[self._axis] = beta.shape[-1]
        beta = tf.reshape(beta, shape)
        bshape = broadcast_shape(self._rank, self._axis, -1)
        p1 = tf.reshape(tf.convert_to_tensor(self.p1), bshape)
        p2 = tf.reshape(tf.convert_to_tensor(self.p2), bshape)
        return ops.acon_c(inputs, p1, p2, beta)
