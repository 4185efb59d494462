"""ACON-C: f(x) = (p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x
(Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021).

``p1``, ``p2`` and ``beta`` broadcast against ``x``: per channel for ACON-C,
per sample and channel for Meta-ACON (``beta`` generated from the input).

With d = p1 - p2, z = beta * d * x, s = sigmoid(z), g = s * (1 + z * (1 - s))::

    df/dx    = d * g + p2
    df/dp1   = x * g
    df/dp2   = x - x * g
    df/dbeta = s * (1 - s) * (d * x)**2

The custom gradient keeps ``x`` and the three (small) parameter tensors only.
"""

import tensorflow as tf

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops._common import fused
from keras_acts.ops._common import reduce_columns_to_shapes


def acon_c_forward(x, p1, p2, beta):
    """Pure forward of ACON-C (all arguments already in one dtype).

    Example:
        >>> float(acon_c_forward(tf.constant(1.0), 1.0, 0.0, 1.0))  # sigmoid(1)
        0.7310...
    """
    dx = (p1 - p2) * x
    z = beta * dx
    # dx * sigmoid(z) tends to 0 as z -> -inf (where it evaluates to -inf * 0).
    switched = tf.where(tf.equal(z, float("-inf")), tf.zeros_like(dx), dx * tf.sigmoid(z))
    return switched + p2 * x


def acon_c_backward(x, p1, p2, beta, dy):
    """Pure backward: (dL/dx, dL/dp1, dL/dp2, dL/dbeta), unreduced (shape of x).

    One sigmoid, shared by every gradient.

    Example:
        >>> gx, g1, g2, gb = acon_c_backward(tf.constant(1.0), 1.0, 0.0, 1.0, 1.0)
    """
    d = p1 - p2
    dx = d * x
    z = beta * dx
    s = tf.sigmoid(z)
    s1 = s * (1.0 - s)
    g = s + z * s1
    g = tf.where(tf.math.is_inf(z), tf.where(z > 0, tf.ones_like(g), tf.zeros_like(g)), g)
    dy_g = dy * g
    grad_x = dy_g * d + dy * p2
    grad_p1 = dy_g * x
    grad_p2 = dy * x - grad_p1
    grad_beta = dy * s1 * dx * dx
    return grad_x, grad_p1, grad_p2, grad_beta


def _acon_c_forward_kernel(x, p1, p2, beta):
    cdt = compute_dtype(x.dtype)
    return tf.cast(acon_c_forward(*(tf.cast(t, cdt) for t in (x, p1, p2, beta))), x.dtype)


def _acon_c_backward_kernel(x, p1, p2, beta, dy):
    cdt = compute_dtype(x.dtype)
    gx, g1, g2, gb = acon_c_backward(*(tf.cast(t, cdt) for t in (x, p1, p2, beta, dy)))
    r1, r2, rb = reduce_columns_to_shapes(
        [g1, g2, gb], [tf.shape(p1), tf.shape(p2), tf.shape(beta)])
    return (tf.cast(gx, x.dtype), tf.cast(r1, p1.dtype), tf.cast(r2, p2.dtype),
            tf.cast(rb, beta.dtype))


@tf.custom_gradient
def _acon_c_custom(x, p1, p2, beta):
    y = fused(_acon_c_forward_kernel)(x, p1, p2, beta)

    def grad(dy):
        return fused(_acon_c_backward_kernel)(x, p1, p2, beta, dy)

    return y, grad


def acon_c(x, p1, p2, beta):
    """ACON-C activation with a memory-lean custom gradient.

    ``p1``, ``p2`` and ``beta`` must broadcast against ``x`` (e.g. shape
    ``(1, 1, 1, C)`` for NHWC, or ``(B, 1, 1, C)`` for Meta-ACON's beta); their
    gradients are summed back to their own shapes. Computation runs in float32
    for 16-bit inputs; the output has ``x``'s dtype.

    Example:
        >>> x = tf.random.normal([2, 8, 8, 4])
        >>> p = tf.ones([1, 1, 1, 4])
        >>> y = acon_c(x, p, 0.25 * p, p)
    """
    x = tf.convert_to_tensor(x)
    check_floating(x, "x")
    p1, p2, beta = (tf.convert_to_tensor(t, dtype_hint=x.dtype) for t in (p1, p2, beta))
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.acon_c(x, p1, p2, beta)
    return _acon_c_custom(x, p1, p2, beta)
