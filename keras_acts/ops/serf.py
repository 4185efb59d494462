"""Serf: f(x) = x * erf(softplus(x))  (Nag & Bhattacharyya, "SERF: Towards better
training of deep neural networks using log-Softplus ERror activation Function",
WACV 2023).

Forward and backward are small pure functions; :func:`serf` wires them into a
``tf.custom_gradient`` whose backward keeps only ``x`` and recomputes the rest.

Derivative::

    f'(x) = erf(sp) + x * (2 / sqrt(pi)) * exp(-sp**2) * sigmoid(x),   sp = softplus(x)

Numerical stability: softplus is evaluated as ``max(x, 0) + log1p(exp(-|x|))``
(never ``log(1 + exp(x))``, which overflows to inf at x ~ 89 in float32 and
x ~ 11 in float16), and 16-bit inputs are computed in float32 and cast back.
For every finite input of every float dtype the output and gradient are finite;
NaN gives NaN, +inf gives +inf, and -inf gives the limit 0 (value and slope).
"""

import math

import tensorflow as tf

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import export_mode_enabled
from keras_acts.ops._common import fused
from keras_acts.ops._common import export_quantization

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# erf as z * P(z^2) / Q(z^2) on z clamped to [-3.8325, 3.8325] (the rational
# approximation of Eigen/XLA's float32 erf). Only MUL, ADD, DIV, MINIMUM, MAXIMUM:
# all TFLite builtins. Measured over float32 (tests/ops/test_serf_op.py): absolute
# and relative error about 3.4e-7, like tf.math.erf itself; the stated bound is 1e-6.
_ERF_CLAMP = 3.832506856900711
_ERF_P = (1.128379143519084, 0.18520832239976145, 0.050955695062380861,
          0.0034082910107109506, 0.00022905065861350646)
_ERF_Q = (1.0, 0.49746925110067538, 0.11098505178285362, 0.014070470171167667,
          0.0010179625278914885, 0.000023547966471313185, -1.1791602954361697e-7)
ERF_BUILTIN_MAX_ABS_ERROR = 1e-6


def stable_softplus(x):
    """softplus(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)).

    Finite for every finite ``x``; equals ``x`` for large positive ``x`` and
    ``exp(x)`` (no underflow to a wrong value) for large negative ``x``.

    Example:
        >>> stable_softplus(tf.constant([0.0, 100.0])).numpy()
        array([  0.6931472, 100.       ], dtype=float32)
    """
    return tf.maximum(x, 0) + tf.math.log1p(tf.exp(-tf.abs(x)))


def _polynomial(coefficients, z):
    # Horner from the leading coefficient (no zeros_like * z: two fewer TFLite ops).
    result = coefficients[-1] * z + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result = result * z + c
    return result


def erf_builtin(z):
    """erf(z) from TFLite-builtin ops only (MUL, ADD, DIV, MINIMUM, MAXIMUM).

    Rational approximation z P(z^2) / Q(z^2) on z clamped to [-3.83, 3.83];
    absolute and relative error below ``ERF_BUILTIN_MAX_ABS_ERROR`` (1e-6) over
    float32 (measured: 3.4e-7, as tf.math.erf). Accurate near 0 too, so
    x * erf(softplus(x)) keeps its relative accuracy for negative x.

    Example:
        >>> float(erf_builtin(tf.constant(0.5)))   # erf(0.5) = 0.5204999
        0.52049...
    """
    z = tf.clip_by_value(z, -_ERF_CLAMP, _ERF_CLAMP)
    z2 = z * z
    return z * _polynomial(_ERF_P, z2) / _polynomial(_ERF_Q, z2)


def serf_forward(x):
    """Pure forward: x * erf(softplus(x)) in ``x``'s dtype (no up-cast here).

    Example:
        >>> float(serf_forward(tf.constant(1.0)))   # 1 * erf(log(1 + e))
        0.8659...
    """
    y = x * _erf_of_softplus(stable_softplus(x))
    return _at_minus_inf(x, y)


def serf_backward(x, dy):
    """Pure backward: dy * f'(x), recomputed from ``x`` alone.

    ``exp(-|x|)`` is evaluated once and shared by softplus and the sigmoid
    (``sigmoid(x) = 1 / (1 + e)`` for x >= 0, ``e / (1 + e)`` below, e = exp(-|x|)).

    Example:
        >>> serf_backward(tf.constant(0.0), tf.constant(1.0)).numpy()  # erf(log 2)
        0.6778...
    """
    e = tf.exp(-tf.abs(x))
    sp = tf.maximum(x, 0) + tf.math.log1p(e)
    sig = tf.where(x >= 0, tf.ones_like(e), e) / (1.0 + e)
    # (x * sigmoid(x)) first: it is 0, not -inf * 0, at the most negative finite x.
    dfdx = _erf_of_softplus(sp) + (x * sig) * tf.exp(-sp * sp) * _TWO_OVER_SQRT_PI
    return dy * _at_minus_inf(x, dfdx)


def _erf_of_softplus(sp):
    # erf(sp) for sp >= 0; erf(10) == 1 in every float dtype, and tf.math.erf
    # returns NaN for huge float64 arguments (e.g. 1e200), so clamp first.
    return tf.math.erf(tf.minimum(sp, 10.0))


def _at_minus_inf(x, value):
    # f and f' tend to 0 at -inf, where x * erf(softplus(x)) evaluates to -inf * 0.
    return tf.where(tf.equal(x, float("-inf")), tf.zeros_like(value), value)


def _serf_forward_kernel(x):
    return tf.cast(serf_forward(tf.cast(x, compute_dtype(x.dtype))), x.dtype)


def _serf_backward_kernel(x, dy):
    cdt = compute_dtype(x.dtype)
    return tf.cast(serf_backward(tf.cast(x, cdt), tf.cast(dy, cdt)), x.dtype)


@tf.custom_gradient
def _serf_custom(x):
    y = fused(_serf_forward_kernel)(x)

    def grad(dy):
        return fused(_serf_backward_kernel)(x, dy)

    return y, grad


def serf_builtin(x):
    """Serf from TFLite-builtin ops: softplus as max(x,0)+log(1+exp(-|x|)) and
    :func:`erf_builtin`. Inference only (used under ``export_mode``).

    Under ``export_mode(quantization="int8")`` it returns
    :func:`serf_int8_builtin` instead: each op of the rational erf would be
    requantized to 8 bits (measured: 34 points of top-1 lost on Fashion-MNIST).

    Example:
        >>> serf_builtin(tf.constant([1.0]))
    """
    if export_quantization() == "int8":
        return serf_int8_builtin(x)
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    sp = tf.maximum(xc, 0) + tf.math.log(1.0 + tf.exp(-tf.abs(xc)))
    # No -inf guard here: EQUAL/SELECT would split the XNNPACK delegate's graph at
    # every Serf site; the exported model gives NaN (not 0) for x = -inf only.
    return tf.cast(xc * erf_builtin(sp), dtype)


# Serf for full-integer int8 export: x * sigmoid(P(q)), q = clip(x, -9, 3.5), P a
# cubic fitted (float64, Lawson-weighted least squares towards minimax) to
# x * erf(softplus(x)) on [-14, 14]. P is increasing; sigmoid(P(-9)) = 9.8e-7,
# 1 - sigmoid(P(3.5)) = 2.9e-5. Max abs error 0.0065 on [-14, 14] (|x| <= 14 covers
# BN-normalised activations); beyond, |error| <= 2.9e-5 |x|.
_SERF_INT8_CLIP = (-9.0, 3.5)
_SERF_INT8_P = (0.8026012622550618, 1.662126470371396, 0.2260069340237381,
                0.024677605071689323)
SERF_INT8_MAX_ABS_ERROR = 0.0066  # on |x| <= 14 (measured 0.006533)


def serf_int8_builtin(x):
    """Serf for full-integer int8 export: ``x * sigmoid(P(clip(x, -9, 3.5)))``.

    ``P`` is a cubic (Horner form) fitted in float64 (weighted least squares
    iterated towards minimax) so that the whole function has max abs error
    ``SERF_INT8_MAX_ABS_ERROR`` (0.0066; measured 0.00653) against
    x * erf(softplus(x)) for |x| <= 14, and at most 2.9e-5 |x| beyond (the clip
    bounds are where sigmoid(P) is within 1e-6 of 0 / 2.9e-5 of 1). Nine ops
    (MAXIMUM, MINIMUM, three MUL/ADD pairs, LOGISTIC, MUL), every intermediate
    bounded (|q| <= 9, sigmoid input in [-14, 10.5]) and the nonlinearity in
    TFLite's int8 LOGISTIC lookup table, so int8 requantization costs about one
    output LSB (simulated: 1.1 LSB) instead of compounding over ~30 ops of
    :func:`erf_builtin`. Float accuracy is int8-grade only: used solely under
    ``export_mode(quantization="int8")``.

    Example:
        >>> float(serf_int8_builtin(tf.constant(1.0)))   # serf(1) = 0.8659
        0.86...
    """
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    q = tf.clip_by_value(xc, *_SERF_INT8_CLIP)
    a0, a1, a2, a3 = _SERF_INT8_P
    logit = ((a3 * q + a2) * q + a1) * q + a0
    return tf.cast(xc * tf.sigmoid(logit), dtype)


def serf(x):
    """Serf activation f(x) = x * erf(softplus(x)) with a memory-lean gradient.

    Accepts float16, bfloat16, float32 and float64 tensors of any shape and
    returns the same dtype. The backward pass keeps only ``x``. Under
    :func:`keras_acts.ops.export_mode` it traces the builtin-op formulation.

    Example:
        >>> import keras_acts
        >>> keras_acts.serf(tf.constant([-1.0, 0.0, 2.0]))
    """
    x = tf.convert_to_tensor(x)
    check_floating(x, "x")
    if export_mode_enabled():
        return serf_builtin(x)
    return _serf_custom(x)
