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
from keras_acts.ops._common import export_mode_enabled
from keras_acts.ops._common import export_quantization
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


# |beta (p1 - p2)| below this is replaced by it in the folded export form (the
# sigmoid's argument then moves by less than 1e-12 |x|, invisible in float32).
_MIN_FOLDED_SCALE = 1e-12


def acon_c_builtin(x, p1, p2, beta):
    """ACON-C for export: x * ((p1 - p2) * sigmoid(beta (p1 - p2) x) + p2).

    The same function as :func:`acon_c_forward`, rearranged for TFLite builtin
    ops with no SELECT (which the XNNPACK delegate cannot run); ``beta * d`` and
    the other parameter terms are computed on the small parameter tensors.

    * Parameters shared by every sample (ACON-C): with k = beta (p1 - p2) and
      a = k x, ``a * (sigmoid(a) * (d / k) + p2 / k)``. Only ``a`` is used, so
      the converter folds ``k * x`` into a preceding convolution, leaving
      LOGISTIC, MUL, ADD, MUL. ``|k|`` below 1e-12 is replaced by 1e-12 (the
      identity holds for any non-zero k; the sigmoid argument moves by at most
      1e-12 |x|).
    * Per-sample ``beta`` (Meta-ACON, leading dimension not 1), and every
      full-integer int8 export (where the wide-range ``d / k``, ``p2 / k``
      terms cost 9.7 points of accuracy): MUL, LOGISTIC, MUL, ADD, MUL on ``x``.

    Inference only (used under ``export_mode``); for x = -inf it gives NaN or
    -inf instead of the limit handling of :func:`acon_c_forward`.

    Example:
        >>> float(acon_c_builtin(tf.constant(1.0), 1.0, 0.0, 1.0))  # sigmoid(1)
        0.7310...
    """
    d = p1 - p2
    k = beta * d
    shared = all(t.shape.rank < x.shape.rank or t.shape[0] == 1 for t in (p1, p2, beta))
    if not shared or export_quantization() == "int8":
        return x * (d * tf.sigmoid(k * x) + p2)
    k = tf.where(tf.abs(k) < _MIN_FOLDED_SCALE, tf.constant(_MIN_FOLDED_SCALE, k.dtype), k)
    a = k * x
    return a * (tf.sigmoid(a) * (d / k) + p2 / k)


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
        cdt = compute_dtype(x.dtype)
        y = acon_c_builtin(*(tf.cast(t, cdt) for t in (x, p1, p2, beta)))
        return tf.cast(y, x.dtype)
    return _acon_c_custom(x, p1, p2, beta)
