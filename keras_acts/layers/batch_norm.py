"""Batch norm with PyTorch's conventions, as used by Meta-ACON's generator."""

import keras
import numpy as np
from keras import ops as K

from keras_acts.layers._validation import check_float
from keras_acts.ops._common import compute_dtype
from keras_acts.ops.moments import scaled_moments


@keras.saving.register_keras_serializable(package="keras_acts")
class GeneratorBatchNorm(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with the conventions of PyTorch's
    ``BatchNorm`` (the official Meta-ACON code's), robust to extreme batches.

    Training (``training=True``): normalises with the batch mean and biased
    variance; updates ``moving_mean`` and ``moving_variance`` with momentum
    ``momentum`` (Keras terms: ``new = momentum * old + (1 - momentum) * batch``;
    PyTorch's momentum 0.1 is 0.9 here) using the **unbiased** batch variance
    ``var * n / (n - 1)``, as PyTorch does. Defaults: ``momentum=0.9``,
    ``epsilon=1e-5``. Inference: the moving statistics.

    Robustness:

    * a batch of one sample normalises with the moving statistics and leaves
      them unchanged (PyTorch would fail), so training works at batch size 1;
    * batch moments are computed scaled by the largest magnitude, so no
      finite batch overflows; values are clamped to the finite range first;
    * a feature whose batch holds NaN or +-inf (or whose moments would overflow)
      does not enter the moving statistics: one bad batch cannot poison them.

    ``momentum`` is read at call time, like Keras' own BN, so statistics can be
    re-estimated by changing it between eager calls.

    Example:
        >>> bn = GeneratorBatchNorm()
        >>> y = bn(K.convert_to_tensor(np.random.normal(size=(8, 4)), "float32"),
        ...        training=True)
        >>> tuple(y.shape)
        (8, 4)
    """

    def __init__(self, axis=-1, momentum=0.9, epsilon=1e-5, **kwargs):
        momentum = check_float(momentum, "momentum", 0.0, 1.0)
        epsilon = check_float(epsilon, "epsilon", 0.0, low_inclusive=False)
        super().__init__(axis=axis, momentum=momentum, epsilon=epsilon, **kwargs)

    def affine(self):
        """Inference-mode BN as ``(scale, shift)``: ``bn(h) = h * scale + shift`` (float32).

        Example:
            >>> bn = GeneratorBatchNorm(); bn.build((None, 3))
            >>> scale, shift = bn.affine()
        """
        dtype = compute_dtype(self.moving_mean.dtype)
        mean = K.cast(self.moving_mean, dtype)
        scale = K.rsqrt(K.cast(self.moving_variance, dtype) + self.epsilon)
        if self.scale:
            scale = scale * K.cast(self.gamma, dtype)
        shift = -mean * scale
        if self.center:
            shift = shift + K.cast(self.beta, dtype)
        return scale, shift

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            return super().call(inputs, training=training, mask=mask)
        dtype = compute_dtype(inputs.dtype)
        x = K.cast(inputs, dtype)
        moving_mean = K.cast(self.moving_mean, dtype)
        moving_var = K.cast(self.moving_variance, dtype)
        bshape = [1] * len(x.shape)
        axis = self.axis if isinstance(self.axis, int) else self.axis[0]
        bshape[axis] = -1
        reduce_axes = [a for a in range(len(x.shape)) if a != axis % len(x.shape)]
        count = 1
        for a in reduce_axes:
            count = None if (count is None or x.shape[a] is None) else count * x.shape[a]
        if not (training and self.trainable) or count in (0, 1):
            return self._normalize(x, moving_mean, moving_var, bshape)
        big = float(np.finfo(dtype).max)
        finite_in = K.all(K.isfinite(x), axis=reduce_axes)
        xc = K.clip(x, -big, big)
        scale, mean_hat, var_hat = scaled_moments(xc, reduce_axes)
        if count is None:
            n = K.cast(K.size(x) // K.shape(x)[axis], dtype)
            correction = n / K.maximum(n - 1.0, 1.0)
        else:
            n = float(count)
            correction = n / max(n - 1.0, 1.0)
        use_batch = n > 1.0
        mean = scale * mean_hat
        var = (scale * scale) * var_hat
        unbiased = var * correction
        update = use_batch & finite_in & K.isfinite(unbiased) & K.isfinite(mean)
        m = self.momentum
        self.moving_mean.assign(K.cast(
            K.where(update, moving_mean * m + mean * (1.0 - m), moving_mean),
            self.moving_mean.dtype))
        self.moving_variance.assign(K.cast(
            K.where(update, moving_var * m + unbiased * (1.0 - m), moving_var),
            self.moving_variance.dtype))
        # Normalise in the scaled domain: (x - mean) / sqrt(var + eps) without
        # forming an overflowing x - mean or var.
        # eps / scale^2 is kept above the smallest normal number (for huge scales
        # it would underflow to 0 and a constant feature would give 0 * inf), and
        # formed as eps / scale / scale (scale^2 overflows, and so would its
        # derivative 2 * scale).
        scale_b = K.reshape(scale, bshape)
        eps = K.maximum(self.epsilon / scale_b / scale_b, float(np.finfo(dtype).tiny))
        normalized = ((xc / scale_b - K.reshape(mean_hat, bshape))
                      * K.rsqrt(K.reshape(var_hat, bshape) + eps))
        batch = self._affine(normalized, bshape, dtype)
        if count is None:   # unknown batch size: a 1-sample batch uses the moving statistics
            moving = self._normalize(x, moving_mean, moving_var, bshape)
            batch = K.where(use_batch, batch, moving)
        return K.cast(batch, self.compute_dtype)

    def _affine(self, normalized, bshape, dtype):
        if self.scale:
            normalized = normalized * K.reshape(K.cast(self.gamma, dtype), bshape)
        if self.center:
            normalized = normalized + K.reshape(K.cast(self.beta, dtype), bshape)
        return normalized

    def _normalize(self, x, mean, var, bshape):
        normalized = (x - K.reshape(mean, bshape)) * K.reshape(K.rsqrt(var + self.epsilon),
                                                                bshape)
        return K.cast(self._affine(normalized, bshape, x.dtype), self.compute_dtype)
