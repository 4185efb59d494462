"""Non-uniform PWLU from TFLite builtin ops (inference only; used under ``export_mode``).

N-PWLU's knots ``k_0 = B_L, k_{i+1} = k_i + w_i`` are arbitrary (not on a grid),
so PWLU's lookup (an index from ``floor((x - B_L) / d)``) does not apply. Both
forms below evaluate every interval at once on a trailing knot axis -- no
GATHER, no interval search, and a fixed number of ops for any N:

* float exports: :func:`npwlu_broadcast`, the sum of hinges (7 ops);
* full-integer int8 exports: :func:`npwlu_clipped`, the sum of clipped
  intervals, whose every intermediate has a bounded range (the hinge sum's
  terms grow with x and cancel, which int8 requantisation does not survive).

Parameters as :func:`keras_acts.ops.npwlu.npwlu` takes them: B_L, Y_0, K_L,
K_R scalars (layer-wise) or ``(C,)`` (channel-wise, channel on ``axis``),
widths and slopes ``(N,)`` or ``(C, N)``; negative widths count as 0.
"""

import tensorflow as tf


def npwlu_tables(left_bound, widths, start_value, slopes, left_slope, right_slope,
                 dtype=tf.float32):
    """The knots, the kinks and the line left of the first knot.

    Returns ``(knots, kinks, intercept)``: ``knots`` ``k_0..k_N`` and ``kinks``
    ``c_j = slope_j - slope_{j-1}`` (``slope_{-1} = K_L``, ``slope_j = s_j``,
    ``slope_N = K_R``), both of shape ``(N + 1,)`` or ``(C, N + 1)``, and
    ``intercept = Y_0 - K_L k_0`` (scalar or ``(C,)``), so that for every x::

        f(x) = intercept + K_L x + sum_j c_j relu(x - k_j)

    (left of k_0 only the line is left; each knot adds its change of slope).
    Built from constants only, so the converter folds them.

    Example:
        >>> knots, kinks, b = npwlu_tables(-1.0, tf.constant([1.0, 3.0]), 0.0,
        ...                                tf.constant([1.0, 0.5]), 0.0, 1.0)
        >>> [float(v) for v in knots], [float(v) for v in kinks], float(b)
        ([-1.0, 0.0, 3.0], [1.0, -0.5, 0.5], 0.0)
    """
    widths = tf.maximum(tf.cast(widths, dtype), 0.0)
    left, start, kl, kr = (tf.cast(t, dtype) for t in (left_bound, start_value, left_slope,
                                                        right_slope))
    slopes = tf.cast(slopes, dtype)
    knots = tf.concat([left[..., None], left[..., None] + tf.cumsum(widths, axis=-1)], -1)
    every = tf.concat([kl[..., None], slopes, kr[..., None]], -1)      # (..., N + 2)
    kinks = every[..., 1:] - every[..., :-1]
    return knots, kinks, start - kl * left


def _layout(x, table, axis):
    """``(bshape, shaped)``: ``bshape`` broadcasts a ``(C,)`` tensor against ``x``;
    ``shaped(t)`` reshapes a ``(C, M)`` / ``(M,)`` table to broadcast against
    ``x[..., None]`` (channel on ``axis``, the M entries on a trailing axis)."""
    rank = x.shape.rank
    bshape = [1] * rank
    channelwise = table.shape.rank == 2
    axis = axis % rank
    if channelwise:
        bshape[axis] = table.shape[0]

    def shaped(t):
        if channelwise and axis != rank - 1:
            return tf.reshape(t, [t.shape[0]] + [1] * (rank - 1 - axis) + [t.shape[-1]])
        return t

    return bshape, shaped


def _with_knot_axis(x):
    """``x[..., None]`` as a RESHAPE to a constant shape (-1 for the batch):
    XNNPACK refuses EXPAND_DIMS, which would split its graph at every site."""
    static = [-1 if d is None else d for d in x.shape] + [1]
    if static.count(-1) > 1:  # more than one unknown dimension: shape at run time
        static = tf.concat([tf.shape(x), [1]], 0)
    return tf.reshape(x, static)


def npwlu_broadcast(x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                    axis=-1):
    """N-PWLU as one broadcast sum of hinges: float exports, a fixed op count for any N.

    With the tables of :func:`npwlu_tables` (knots anywhere, not on a grid)::

        h = relu(x[..., None] - [k_0, ..., k_N])         # one SUB with fused RELU
        f = intercept + K_L x + sum(c * h, axis=-1)

    In TFLite: RESHAPE, SUB(+RELU), MUL, SUM, MUL, ADD, ADD -- the same ops for
    N = 4 or N = 16 (the intermediate is N + 1 times the activation), no GATHER.
    Equal to :func:`keras_acts.ops.npwlu.npwlu_forward` up to float rounding
    (both are the same continuous piecewise-linear function). NaN gives NaN.

    Example:
        >>> y = npwlu_broadcast(tf.constant([-3.0, 0.5, 3.0]), -2.0, tf.constant([4.0]), 0.0,
        ...                     tf.constant([1.0]), 0.0, 1.0)
        >>> [float(v) for v in y]       # one interval [-2, 2] of slope 1, K_R = 1
        [0.0, 2.5, 5.0]
    """
    knots, kinks, intercept = npwlu_tables(left_bound, widths, start_value, slopes,
                                           left_slope, right_slope, x.dtype)
    bshape, shaped = _layout(x, knots, axis)
    kl = tf.reshape(tf.cast(left_slope, x.dtype), bshape)
    hinges = tf.nn.relu(_with_knot_axis(x) - shaped(knots))
    return (tf.reshape(intercept, bshape) + kl * x
            + tf.reduce_sum(hinges * shaped(kinks), -1))


def npwlu_clipped(x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                  axis=-1):
    """N-PWLU as a broadcast sum of clipped intervals: full-integer int8 exports.

    The definition of :mod:`keras_acts.ops.npwlu` with the N intervals on a
    trailing axis::

        u = min(relu(x[..., None] - [k_0, ..., k_{N-1}]), [w_0, ..., w_{N-1}])
        f = Y_0 + K_L min(x - k_0, 0) + sum(s * u, axis=-1) + K_R relu(x - k_N)

    Every intermediate is bounded by the widths or by the output's range (the
    hinge sum of :func:`npwlu_broadcast` adds terms that grow with x and
    cancel), so each int8 requantisation loses at most half a step of a range
    the output needs anyway. No GATHER; about 15 ops for any N. Equal to
    :func:`keras_acts.ops.npwlu.npwlu_forward` up to float rounding.

    Example:
        >>> y = npwlu_clipped(tf.constant([-3.0, 0.5, 3.0]), -2.0, tf.constant([4.0]), 0.0,
        ...                   tf.constant([1.0]), 0.0, 1.0)
        >>> [float(v) for v in y]
        [0.0, 2.5, 5.0]
    """
    knots, _, _ = npwlu_tables(left_bound, widths, start_value, slopes, left_slope,
                               right_slope, x.dtype)
    bshape, shaped = _layout(x, knots, axis)
    col = lambda t: tf.reshape(tf.cast(t, x.dtype), bshape)  # noqa: E731
    w = tf.maximum(tf.cast(widths, x.dtype), 0.0)
    inside = tf.minimum(tf.nn.relu(_with_knot_axis(x) - shaped(knots[..., :-1])), shaped(w))
    inside = tf.reduce_sum(inside * shaped(tf.cast(slopes, x.dtype)), -1)
    k0, kn = tf.reshape(knots[..., 0], bshape), tf.reshape(knots[..., -1], bshape)
    return (col(start_value) + col(left_slope) * tf.minimum(x - k0, 0.0) + inside
            + col(right_slope) * tf.nn.relu(x - kn))
