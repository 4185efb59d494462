"""ACON-C from TFLite builtin ops (inference only; used under ``export_mode``)."""

import tensorflow as tf

from keras_acts.ops.export_mode import export_quantization

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
      terms cost accuracy; figures in the README): MUL, LOGISTIC, MUL, ADD, MUL on ``x``.

    Inference only (used under ``export_mode``); for x = -inf it gives NaN or
    -inf instead of the limit handling of :func:`acon_c_forward`.

    Example:
        >>> one = tf.constant([1.0])
        >>> round(float(acon_c_builtin(one, one, tf.constant([0.0]), one)[0]), 4)  # sigmoid(1)
        0.7311
    """
    d = p1 - p2
    k = beta * d
    shared = all(t.shape.rank < x.shape.rank or t.shape[0] == 1 for t in (p1, p2, beta))
    if not shared or export_quantization() == "int8":
        return x * (d * tf.sigmoid(k * x) + p2)
    k = tf.where(tf.abs(k) < _MIN_FOLDED_SCALE, tf.constant(_MIN_FOLDED_SCALE, k.dtype), k)
    a = k * x
    return a * (tf.sigmoid(a) * (d / k) + p2 / k)
