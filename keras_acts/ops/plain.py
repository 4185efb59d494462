"""Plain autodiff formulations of each activation (no custom gradient), in
``keras.ops`` for every backend: the baselines that ``benchmarks/ops.py``
times and that the tests compare gradients and saved memory against.

They compute the same functions as :mod:`keras_acts.ops` (without its handling
of infinities and extreme values) and let the backend's autodiff keep whatever
it needs. Not what a model should use.

Example:
    >>> from keras import ops as K
    >>> [round(float(v), 4) for v in plain_serf(K.convert_to_tensor([0.0, 1.0]))]
    [0.0, 0.9367]
"""

from keras import ops as K


def plain_serf(x):
    """x * erf(softplus(x)) with autodiff.

    Example:
        >>> float(plain_serf(K.convert_to_tensor(0.0)))
        0.0
    """
    return x * K.erf(K.softplus(x))


def plain_acon_c(x, p1, p2, beta):
    """(p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x with autodiff.

    Example:
        >>> round(float(plain_acon_c(K.convert_to_tensor(1.0), 1.0, 0.0, 1.0)), 4)
        0.7311
    """
    dx = (p1 - p2) * x
    return dx * K.sigmoid(beta * dx) + p2 * x


def plain_pwlu(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU through a gather of the point table, with autodiff (scatter gradient).

    Channel-wise parameters: ``(C,)`` and ``(C, N+1)`` with the channel on ``axis``;
    layer-wise: scalars and ``(N+1,)``.

    Example:
        >>> pts = K.relu(K.linspace(-2.0, 2.0, 5))
        >>> [float(v) for v in plain_pwlu(K.convert_to_tensor([-3.0, 0.5]), -2.0, 2.0,
        ...                               pts, 0.0, 1.0)]
        [0.0, 0.5]
    """
    points = K.convert_to_tensor(points)
    n = points.shape[-1] - 1
    rank = len(x.shape)
    axis = axis % rank
    bshape = [1] * rank
    if len(points.shape) == 2:
        bshape[axis] = points.shape[0]
        offset = K.reshape(K.arange(points.shape[0], dtype="int32") * (n + 1), bshape)
    else:
        offset = K.zeros(bshape, "int32")
    left, right, kl, kr = (K.reshape(K.cast(p, x.dtype), bshape) for p in
                           (left_bound, right_bound, left_slope, right_slope))
    u = (x - left) * (n / (right - left))
    idx_f = K.clip(K.floor(u), 0.0, float(n - 1))
    t = u - idx_f
    idx = K.cast(idx_f, "int32") + offset
    table = K.reshape(K.cast(points, x.dtype), (-1,))
    y0 = K.take(table, idx)
    y1 = K.take(table, idx + 1)
    inside = y0 + t * (y1 - y0)
    first = K.take(table, offset)
    last = K.take(table, offset + n)
    left_line = first + kl * (x - left)
    right_line = last + kr * (x - right)
    return K.where(x < left, left_line, K.where(x > right, right_line, inside))
