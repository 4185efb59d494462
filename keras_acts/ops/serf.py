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
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops._common import fused

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

def stable_softplus(x):
    """softplus(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)).

    Finite for every finite ``x``; equals ``x`` for large positive ``x`` and
    ``exp(x)`` (no underflow to a wrong value) for large negative ``x``.

    Example:
        >>> stable_softplus(tf.constant([0.0, 100.0])).numpy()
        array([  0.6931472, 100.       ], dtype=float32)
    """
    return tf.maximum(x, 0) + tf.math.log1p(tf.exp(-tf.abs(x)))


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
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.serf(x)
    return _serf_custom(x)
