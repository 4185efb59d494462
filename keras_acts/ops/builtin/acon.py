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
    * Per-sample ``beta`` (Meta-ACON, leading dimension not 1) in float:
      MUL, LOGISTIC, MUL, ADD, MUL on ``x``.
    * Every full-integer int8 export: :func:`acon_c_int8_builtin` (the
      product form with its per-channel constants in depthwise convolutions;
      the wide-range ``d / k``, ``p2 / k`` terms of the folded form cost
      accuracy there).

    Inference only (used under ``export_mode``); for x = -inf it gives NaN or
    -inf instead of the limit handling of :func:`acon_c_forward`.

    Example:
        >>> one = tf.constant([1.0])
        >>> round(float(acon_c_builtin(one, one, tf.constant([0.0]), one)[0]), 4)  # sigmoid(1)
        0.7311
    """
    if export_quantization() == "int8":
        return acon_c_int8_builtin(x, p1, p2, beta)
    d = p1 - p2
    k = beta * d
    shared = all(t.shape.rank < x.shape.rank or t.shape[0] == 1 for t in (p1, p2, beta))
    if not shared:
        return x * (d * tf.sigmoid(k * x) + p2)
    k = tf.where(tf.abs(k) < _MIN_FOLDED_SCALE, tf.constant(_MIN_FOLDED_SCALE, k.dtype), k)
    a = k * x
    return a * (tf.sigmoid(a) * (d / k) + p2 / k)


def _per_channel(w, channels):
    """``w`` as a (channels,) vector if it varies along the last axis only, else None."""
    lead = w.shape[:-1] if w.shape.rank else []
    if (w.shape.rank > 4 or any(n != 1 for n in lead)
            or (w.shape.rank and w.shape[-1] not in (1, channels))):
        return None
    return tf.broadcast_to(tf.reshape(w, [-1]), [channels])


def _channel_affine(x, w, b=None):
    """``w * x (+ b)`` for per-channel ``w``, ``b``: one 1x1 DEPTHWISE_CONV_2D for NHWC ``x``.

    A full-integer int8 converter quantises the constant operand of a MUL or ADD
    with one scale for the whole tensor, so channels whose ``w`` is small
    against the largest keep only a few significant levels; a depthwise
    convolution gets one weight scale per channel and an int32 bias. Used when
    ``x`` is rank 4 with a known channel count and ``w`` (and ``b``) vary
    along the last axis only; MUL (and ADD) otherwise.

    Example:
        >>> w = tf.constant([[[[1.0, 2.0, 3.0]]]])
        >>> _channel_affine(tf.ones([1, 2, 2, 3]), w, 0.5)[0, 0, 0].numpy().tolist()
        [1.5, 2.5, 3.5]
    """
    b = None if b is None else tf.convert_to_tensor(b, x.dtype)
    channels = x.shape[-1] if x.shape.rank == 4 else None
    wv = None if channels is None else _per_channel(w, channels)
    bv = None if (b is None or wv is None) else _per_channel(b, channels)
    if wv is None or (b is not None and bv is None):
        return w * x if b is None else w * x + b
    kernel = tf.reshape(tf.cast(wv, x.dtype), [1, 1, channels, 1])
    y = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")
    return y if b is None else y + tf.cast(bv, x.dtype)


def acon_c_int8_builtin(x, p1, p2, beta):
    """ACON-C for full-integer int8 export, with per-channel constants kept per channel::

        u = (p1 - p2) x;    f(x) = x * ((p1 - p2) * sigmoid(beta * u) + p2)

    (the same function as :func:`acon_c_builtin`). For NHWC input ``u`` and
    the factor ``(p1 - p2) s + p2`` (s the sigmoid) are 1x1 depthwise
    convolutions (:func:`_channel_affine`): their weights get one int8 scale
    per channel and ``p2`` is an int32 bias, where MULs and ADDs by the
    constant vectors ``p1 - p2`` and ``p2`` get one scale for all channels.
    Ops: DEPTHWISE_CONV_2D, MUL, LOGISTIC, DEPTHWISE_CONV_2D, MUL. Other
    layouts use MULs and an ADD. Inference only; x = -inf gives NaN.

    Example:
        >>> x = tf.constant([[[[-1.0, 0.0, 2.0]]]])
        >>> p1, p2, beta = tf.constant(1.0), tf.constant(0.25), tf.constant([[[[1.0, 2.0, 0.5]]]])
        >>> y = acon_c_int8_builtin(x, p1, p2, beta)
        >>> bool(tf.reduce_all(tf.abs(y - acon_c_builtin(x, p1, p2, beta)) < 1e-6))
        True
    """
    d = p1 - p2
    return x * _channel_affine(tf.sigmoid(beta * _channel_affine(x, d)), d, p2)
