"""Plain TensorFlow formulations differentiated by autodiff (test-only baseline).

Straight transcriptions of the formulas, no custom gradients.
"""

import tensorflow as tf


def serf(x):
    return x * tf.math.erf(tf.math.softplus(x))


def acon_c(x, p1, p2, beta):
    d = (p1 - p2) * x
    return d * tf.sigmoid(beta * d) + p2 * x


def pwlu_layerwise(x, left, right, points, kl, kr):
    n = points.shape[-1] - 1
    d = (right - left) / n
    u = (x - left) / d
    idx = tf.clip_by_value(tf.floor(u), 0.0, n - 1.0)
    t = u - idx
    i = tf.cast(idx, tf.int32)
    y0, y1 = tf.gather(points, i), tf.gather(points, i + 1)
    inside = y0 + t * (y1 - y0)
    out = tf.where(x < left, points[0] + kl * (x - left), inside)
    return tf.where(x > right, points[-1] + kr * (x - right), out)
