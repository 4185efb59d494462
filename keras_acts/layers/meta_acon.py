"""Keras layer for Meta-ACON (ACON-C with a generated, per-sample beta)."""

import keras
import numpy as np
from keras import ops as K

from keras_acts import ops
from keras_acts.layers._base import ActivationLayer
from keras_acts.layers._validation import broadcast_shape
from keras_acts.layers._validation import channels
from keras_acts.layers._validation import check_axis_arg
from keras_acts.layers._validation import check_bool
from keras_acts.layers._validation import check_float
from keras_acts.layers._validation import check_input_rank
from keras_acts.layers._validation import check_int
from keras_acts.layers._validation import normalize_axis
from keras_acts.layers.acon_c import paper_normal
from keras_acts.layers.batch_norm import GeneratorBatchNorm
from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.acon import saturating_sigmoid
from keras_acts.ops.acon import split_mean
from keras_acts.ops.moments import magnitude

_INF = float("inf")


@keras.saving.register_keras_serializable(package="keras_acts")
class MetaAcon(ActivationLayer):
    """Meta-ACON: ACON-C with beta generated per sample and channel.

    Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021::

        f(x)  = (p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x
        beta  = sigmoid(BN2(W2 @ BN1(W1 @ mean_spatial(x) + b1) + b2))

    ``W1`` maps C channels to ``max(reduction, C // reduction)`` and ``W2`` back to
    C (the official code's 1x1 convolutions on the pooled input), with no
    nonlinearity between them. For rank-2 input the pooled input is the input.

    The two batch norms (``use_bn=True``) are :class:`GeneratorBatchNorm`
    sublayers ``bn1`` and ``bn2`` with the official code's PyTorch conventions:
    epsilon 1e-5, momentum 0.9 in Keras terms (PyTorch's 0.1), unbiased running
    variance; a batch of one sample uses the moving statistics (training works
    at batch size 1), and a batch with non-finite statistics does not enter
    them. Their moving statistics lag the weights during training; re-estimate
    them on training data after ``fit`` (see ``keras_acts`` statistics
    re-estimation) before evaluating, saving or exporting.

    Extreme inputs: the spatial mean is taken as a sum of ``x / n`` (no
    overflow for finite x; :func:`keras_acts.ops.acon.split_mean`, whose
    backward keeps only x). In inference mode the generator is affine up to the
    sigmoid, and is evaluated so that huge or infinite inputs give what the
    float64 layer gives at +-1e300 (saturated beta), never NaN; in training mode
    finite inputs never give NaN.

    Args:
        reduction: r >= 1; hidden width max(r, C // r).
        use_bn: keep the two BN layers of the official code.
        axis: channel axis (-1 channels-last, 1 channels-first).
        bn_momentum, bn_epsilon: BN moving-average momentum (Keras terms) and epsilon.
        p1_initializer, p2_initializer: names or objects (default N(0, 1)).
        kernel_initializer, bias_initializer: for W1, W2, b1, b2.
        p1_regularizer, p2_regularizer, kernel_regularizer: names or objects.

    Example:
        >>> model = keras.Sequential([keras.Input((32, 32, 3)),
        ...                           keras.layers.Conv2D(32, 3), MetaAcon()])
        >>> ["/".join(w.path.split("/")[-2:]) for w in model.layers[-1].weights][-4:]
        ['bn2/gamma', 'bn2/beta', 'bn2/moving_mean', 'bn2/moving_variance']
    """

    _config_args = ("reduction", "use_bn", "axis", "bn_momentum", "bn_epsilon")

    def __init__(self, reduction=16, use_bn=True, axis=-1, bn_momentum=0.9,
                 bn_epsilon=1e-5, p1_initializer=None, p2_initializer=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 p1_regularizer=None, p2_regularizer=None, kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_int(reduction, "reduction", 1)
        self.use_bn = check_bool(use_bn, "use_bn")
        self.axis = check_axis_arg(axis)
        self.bn_momentum = check_float(bn_momentum, "bn_momentum", 0.0, 1.0)
        self.bn_epsilon = check_float(bn_epsilon, "bn_epsilon", 0.0, low_inclusive=False)
        self._set_keras_objects(
            p1_initializer=p1_initializer or paper_normal(),
            p2_initializer=p2_initializer or paper_normal(),
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            p1_regularizer=p1_regularizer, p2_regularizer=p2_regularizer,
            kernel_regularizer=kernel_regularizer)
        if self.use_bn:
            # The generator computes in float32 (float64 for a float64 layer)
            # whatever the mixed-precision policy.
            bn = dict(momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                      dtype=self.dtype_policy.variable_dtype)
            self.bn1 = GeneratorBatchNorm(name="bn1", **bn)
            self.bn2 = GeneratorBatchNorm(name="bn2", **bn)

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
            self.bn1.build((None, hidden))
            self.bn2.build((None, c))
        self.built = True

    # ------------------------------------------------------------- generator
    def _weights(self, dtype):
        return [K.cast(w, dtype) for w in (self.kernel1, self.bias1, self.kernel2, self.bias2)]

    def _spatial_mean(self, x):
        """(finite part, infinite direction) of the spatial mean of ``x`` (see
        :func:`keras_acts.ops.acon.split_mean`); for rank-2 input, of ``x`` itself."""
        spatial = [a for a in range(1, self._rank) if a != self._axis]
        if not spatial:
            inf = K.abs(x) == _INF
            return K.where(inf, K.zeros_like(x), x), K.where(inf, K.sign(x), K.zeros_like(x))
        stacked = split_mean(x, spatial)
        return stacked[0], stacked[1]

    def _plain_logits(self, pooled, training):
        w1, b1, w2, b2 = self._weights(pooled.dtype)
        h = K.matmul(pooled, w1) + b1
        if self.use_bn:
            h = self.bn1(h, training=training)
        h = K.matmul(h, w2) + b2
        if self.use_bn:
            h = self.bn2(h, training=training)
        return h

    def _folded_logits(self, pooled):
        """Inference logits with each batch norm folded into its dense layer (export).

        ``BN(h W + b) = h (W * g) + (b * g + c)`` with ``(g, c)`` from
        :meth:`GeneratorBatchNorm.affine`: two fully connected ops and nothing
        between them. The TFLite converter does not fold the batch norms itself
        (it leaves SUB, MUL, MUL, ADD after each FC), and under full-integer
        int8 those ops quantise the per-channel BN constants with one scale per
        tensor and requantise the logits four more times.
        """
        w1, b1, w2, b2 = self._weights(pooled.dtype)
        if self.use_bn:
            g1, c1 = (K.cast(t, pooled.dtype) for t in self.bn1.affine())
            g2, c2 = (K.cast(t, pooled.dtype) for t in self.bn2.affine())
            w1, b1 = w1 * g1, b1 * g1 + c1
            w2, b2 = w2 * g2, b2 * g2 + c2
        return K.matmul(K.matmul(pooled, w1) + b1, w2) + b2

    def _training_logits(self, fin, direction):
        # Rows with infinite entries use the largest finite value instead; the
        # first product is formed as s * ((p / s) @ W1): finite for finite p
        # up to the final multiply, whose overflow GeneratorBatchNorm clamps.
        big = float(np.finfo(dtype_name(fin)).max)
        p = K.where(direction != 0, K.sign(direction) * big, fin)
        s = magnitude(p, -1)
        w1, b1, w2, b2 = self._weights(p.dtype)
        h = s * K.matmul(p / s, w1) + b1
        h = self.bn1(h, training=True)
        h = K.matmul(h, w2) + b2
        return self.bn2(h, training=True)

    def _affine_logits(self, fin, direction):
        """Inference logits as ``L(p) + k`` (L linear), evaluated without overflow to NaN."""
        dtype = fin.dtype
        w1, b1, w2, b2 = self._weights(dtype)
        if self.use_bn:
            g1, c1 = (K.cast(t, dtype) for t in self.bn1.affine())
            g2, c2 = (K.cast(t, dtype) for t in self.bn2.affine())
        else:
            g1 = g2 = 1.0
            c1 = c2 = 0.0

        def linear(v):
            return K.matmul(K.matmul(v, w1) * g1, w2) * g2

        constant = (K.matmul(b1 * g1 + c1, w2) + b2) * g2 + c2
        s = magnitude(fin, -1)
        finite_part = s * linear(fin / s) + constant
        infinite_part = linear(direction)
        return K.where(infinite_part > 0, _INF, K.where(infinite_part < 0, -_INF, finite_part))

    def generate_beta(self, inputs, training=False):
        """beta of shape (batch, C) for ``inputs`` (see class docstring), computed in
        float32 for 16-bit inputs and in the input's dtype otherwise.

        Example:
            >>> layer = MetaAcon(); _ = layer(K.zeros([2, 8, 8, 32]))
            >>> tuple(layer.generate_beta(K.zeros([2, 8, 8, 32])).shape)
            (2, 32)
        """
        x = K.convert_to_tensor(inputs)
        dtype = compute_dtype(x.dtype)
        x = K.cast(x, dtype)
        if export_mode_enabled():   # MEAN, FC, FC, LOGISTIC (batch norms folded)
            spatial = [a for a in range(1, self._rank) if a != self._axis]
            pooled = K.mean(x, axis=spatial) if spatial else x
            return K.sigmoid(self._folded_logits(pooled))
        fin, direction = self._spatial_mean(x)
        if training and self.use_bn:
            return saturating_sigmoid(self._training_logits(fin, direction))
        # Plain evaluation where it is finite (rows without overflow or inf),
        # the affine form elsewhere; the plain branch sees 0 in the other rows
        # so that its gradient stays finite there.
        probe = K.stop_gradient(self._plain_logits(K.stop_gradient(fin), training=False))
        ok = K.all(K.isfinite(probe), axis=-1, keepdims=True) & K.all(
            direction == 0, axis=-1, keepdims=True)
        plain = self._plain_logits(K.where(ok, fin, K.zeros_like(fin)), training=False)
        return saturating_sigmoid(K.where(ok, plain, self._affine_logits(fin, direction)))

    def call(self, inputs, training=False):
        check_floating(inputs, "inputs")
        beta = self.generate_beta(inputs, training=bool(training))
        shape = [-1] + [1] * (self._rank - 1)
        shape[self._axis] = beta.shape[-1]
        beta = K.reshape(beta, shape)
        bshape = broadcast_shape(self._rank, self._axis, -1)
        return ops.acon_c(inputs, K.reshape(self.p1, bshape), K.reshape(self.p2, bshape),
                          beta)

    # ------------------------------------------------------------- saving
    def load_own_variables(self, store):
        """Load weights; also reads the layout of keras-acts 0.1 files, where the
        batch norms' 8 variables were the layer's own (14 in all: p1, p2,
        kernel1, bias1, kernel2, bias2, bn1/bn2 gamma and beta, then bn1/bn2
        moving mean and variance).

        Example:
            >>> layer = MetaAcon(); layer.build((None, 32))
            >>> layer.load_own_variables({str(i): w for i, w in enumerate(layer.weights[:6])})
        """
        if self.use_bn and len(store.keys()) == 14:
            legacy = [store[str(i)] for i in range(14)]
            own = (self.p1, self.p2, self.kernel1, self.bias1, self.kernel2, self.bias2)
            for var, value in zip(own, legacy[:6]):   # the order build() made them in
                var.assign(value)
            for bn, (gamma, beta, mean, var) in ((self.bn1, (6, 7, 10, 11)),
                                                 (self.bn2, (8, 9, 12, 13))):
                for variable, index in zip((bn.gamma, bn.beta, bn.moving_mean,
                                            bn.moving_variance), (gamma, beta, mean, var)):
                    variable.assign(legacy[index])
            return
        super().load_own_variables(store)
