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
    result = tf.zeros_like(z)
    for c in reversed(coefficients):
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

    Example:
        >>> serf_backward(tf.constant(0.0), tf.constant(1.0)).numpy()  # erf(log 2)
        0.6778...
    """
    sp = stable_softplus(x)
    # (x * sigmoid(x)) first: it is 0, not -inf * 0, at the most negative finite x.
    dfdx = _erf_of_softplus(sp) + (x * tf.sigmoid(x)) * tf.exp(-sp * sp) * _TWO_OVER_SQRT_PI
    return dy * _at_minus_inf(x, dfdx)


def _erf_of_softplus(sp):
    # erf(sp) for sp >= 0; erf(10) == 1 in every float dtype, and tf.math.erf
    # returns NaN for huge float64 arguments (e.g. 1e200), so clamp first.
    return tf.math.erf(tf.minimum(sp, 10.0))


def _at_minus_inf(x, value):
    # f and f' tend to 0 at -inf, where x * erf(softplus(x)) evaluates to -inf * 0.
    return tf.where(tf.equal(x, float("-inf")), tf.zeros_like(value), value)


@tf.custom_gradient
def _serf_custom(x):
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    y = tf.cast(serf_forward(xc), dtype)

    def grad(dy):
        dyc = tf.cast(dy, xc.dtype)
        return tf.cast(serf_backward(tf.cast(x, xc.dtype), dyc), dtype)

    return y, grad


def serf_builtin(x):
    """Serf from TFLite-builtin ops: softplus as max(x,0)+log(1+exp(-|x|)) and
    :func:`erf_builtin`. Inference only (used under ``export_mode``).

    Example:
        >>> serf_builtin(tf.constant([1.0]))
    """
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    sp = tf.maximum(xc, 0) + tf.math.log(1.0 + tf.exp(-tf.abs(xc)))
    return tf.cast(_at_minus_inf(xc, xc * erf_builtin(sp)), dtype)


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
