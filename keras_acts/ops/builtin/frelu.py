"""FReLU / ACON-FReLU pieces from TFLite builtin ops (inference only; ``export_mode``).

The funnel condition ``T(x) = BN(depthwise 3x3 conv(x))`` needs nothing here:
in inference the converter folds the batch norm into the builtin
DEPTHWISE_CONV_2D. What does need a builtin form:

* FReLU's ``max(x, T(x))`` under full-integer int8 (:func:`funnel_max`):
  TFLite's int8 MAXIMUM gives its inputs the output's scale, which clips the
  shared input tensor x (and so T(x), computed from it) to the range of the
  maximum;
* ACON-FReLU's elementwise part (:func:`smooth_max_builtin`): the training op
  guards its limits with SELECTs, which XNNPACK cannot run;
* the stride-2 branch ``x1 = MaxPool2d(3, 2, padding=1)`` (PyTorch pads with
  -inf; :func:`max_pool_3x3_s2` pads by repeating the edge instead, which
  leaves every window's maximum unchanged and quantizes to int8, where an
  infinite padding value breaks the tensor's quantization range).
"""

import tensorflow as tf

from keras_acts.ops.export_mode import export_quantization


def funnel_max(x, t):
    """FReLU's ``max(x, t)`` for export: MAXIMUM in float exports, ``x + relu(t - x)``
    (SUB with fused RELU, ADD) under full-integer int8.

    The int8 MAXIMUM kernel needs one scale for its inputs and output, so the
    converter gives x -- the tensor the depthwise conv of T(x) also reads --
    the range of max(x, T(x)), whose lower end is much higher than x's: x and
    then T(x) are clipped (measured: 11 % of the output's range max error on
    the calibration inputs of ``tests/export/test_family_export.py``). SUB and
    ADD rescale their inputs, so x keeps its own range.

    Example:
        >>> [float(v) for v in funnel_max(tf.constant([1.0, -2.0]), tf.constant([0.0, 0.0]))]
        [1.0, 0.0]
    """
    if export_quantization() == "int8":
        return x + tf.nn.relu(t - x)
    return tf.maximum(x, t)


def smooth_max_builtin(a, t):
    """``(a - t) sigmoid(a - t) + t``: SUB, LOGISTIC, MUL, ADD.

    :func:`keras_acts.ops.frelu.smooth_max` without its limit handling (a = -inf
    gives NaN here instead of t); inference only.

    Example:
        >>> y = smooth_max_builtin(tf.constant([3.0, -3.0]), tf.constant([0.0, 0.0]))
        >>> [round(float(v), 4) for v in y]
        [2.8577, -0.1423]
    """
    z = a - t
    return z * tf.sigmoid(z) + t


def _edge_pad(x, axis):
    """Repeat the first entry along ``axis`` once, and the last one unless the static
    size is even (slices, CONCATENATION): what a VALID 3x3/2 pool needs to give
    PyTorch's windows."""
    n = x.shape[axis]
    first = [slice(None)] * x.shape.rank
    last = list(first)
    first[axis], last[axis] = slice(0, 1), slice(-1, None)
    parts = [x[tuple(first)], x]
    if n is None or n % 2 == 1:
        parts.append(x[tuple(last)])
    return tf.concat(parts, axis)


def max_pool_3x3_s2(x):
    """PyTorch's ``MaxPool2d(3, 2, padding=1)`` on NHWC ``x`` from builtin ops.

    Output size ``(n - 1) // 2 + 1`` per spatial axis, window i covering input
    rows ``2i - 1 .. 2i + 1`` (the missing row -1 / n ignored, as PyTorch's -inf
    padding does). Odd static sizes: TFLite's SAME max pool (pads 1 on each side
    and ignores the padding): one MAX_POOL_2D. Otherwise the edge rows and
    columns are repeated once before (and after, for odd or unknown sizes; an
    even size's last window already ends at its last row) -- a repeated entry
    is already in its window, so no maximum changes -- and the pool is VALID:
    slices, CONCATENATION and MAX_POOL_2D, all int8-safe.

    Example:
        >>> x = tf.reshape(tf.range(16.0), [1, 4, 4, 1])
        >>> [float(v) for v in tf.reshape(max_pool_3x3_s2(x), [-1])]
        [5.0, 7.0, 13.0, 15.0]
    """
    h, w = x.shape[1], x.shape[2]
    if h is not None and w is not None and h % 2 == 1 and w % 2 == 1:
        return tf.nn.max_pool2d(x, 3, 2, "SAME")
    return tf.nn.max_pool2d(_edge_pad(_edge_pad(x, 1), 2), 3, 2, "VALID")
