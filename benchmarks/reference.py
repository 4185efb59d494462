"""Plain autodiff implementations of each formula, for the benchmarks and tests.

These are the straightforward TensorFlow expressions of the same formulas as
``keras_acts.ops``, differentiated by TensorFlow's autodiff (no custom gradient):
they are the baselines the benchmarks compare against and the memory test shows
to keep more for the backward pass. Not part of the package API.

Example:
    >>> import tensorflow as tf
    >>> from benchmarks.reference import plain_serf
    >>> plain_serf(tf.constant([0.0, 1.0]))
"""

import tensorflow as tf


def plain_serf(x):
    """x * erf(softplus(x)) with autodiff."""
    return x * tf.math.erf(tf.math.softplus(x))


def plain_acon_c(x, p1, p2, beta):
    """(p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x with autodiff."""
    dx = (p1 - p2) * x
    return dx * tf.sigmoid(beta * dx) + p2 * x


def plain_pwlu(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU through a gather of the point table, with autodiff (scatter gradient).

    Channel-wise parameters: ``(C,)`` and ``(C, N+1)`` with the channel on ``axis``;
    layer-wise: scalars and ``(N+1,)``.
    """
    n = points.shape[-1] - 1
    rank = x.shape.rank
    axis = axis % rank
    bshape = [1] * rank
    if points.shape.rank == 2:
        c = points.shape[0]
        bshape[axis] = c
        offset = tf.reshape(tf.range(c) * (n + 1), bshape)
    else:
        offset = tf.zeros(bshape, tf.int32)
    L, R, KL, KR = (tf.reshape(p, bshape) for p in
                    (left_bound, right_bound, left_slope, right_slope))
    u = (x - L) * (n / (R - L))
    idx_f = tf.clip_by_value(tf.floor(u), 0.0, float(n - 1))
    t = u - idx_f
    idx = tf.cast(idx_f, tf.int32) + offset
    table = tf.reshape(points, [-1])
    y0 = tf.gather(table, idx)
    y1 = tf.gather(table, idx + 1)
    inside = y0 + t * (y1 - y0)
    first = tf.gather(table, offset)
    last = tf.gather(table, offset + n)
    left = first + KL * (x - L)
    right = last + KR * (x - R)
    return tf.where(x < L, left, tf.where(x > R, right, inside))
