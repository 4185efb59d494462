"""PWLU from TFLite builtin ops (inference only; used under ``export_mode``).

Float exports: the sum of hinges on a broadcast knot axis (:func:`pwlu_broadcast`,
a fixed op count for any N; :func:`pwlu_hinges` -- 3 ops per knot -- and the lookup
are the other measured candidates, :data:`FLOAT_FORMS`); full-integer int8 exports:
a per-segment table lookup (:func:`pwlu_builtin`).
"""

import contextlib

import tensorflow as tf

from keras_acts.ops.pwlu import MIN_WIDTH
from keras_acts.ops.pwlu import segment_tables

def pwlu_tables(left_bound, right_bound, points, left_slope, right_slope, dtype=tf.float32):
    """Per-segment line tables of PWLU for the export (table-lookup) form.

    Returns ``(scale, shift, intercept, slope)`` such that with
    ``v = x * scale + shift`` (= u + 1, u = (x - B_L) / d) and segment
    ``k = clip(floor(v), 0, N + 1)``, ``f(x) = intercept[k] + slope[k] * v``.
    The lines are written in v, not x, so that the TFLite converter can fold
    ``x * scale + shift`` into a preceding convolution. They come from
    :func:`segment_tables`: ``slope = D`` and ``intercept = V - D * max(k, 1)``
    (tau = v - max(k, 1)). ``intercept`` and ``slope`` have shape ``(N+2,)``
    (layer-wise) or ``(C, N+2)`` (channel-wise). Built from constants only, so
    the converter folds them.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> scale, shift, a, s = pwlu_tables(-3.0, 3.0, pts, 0.0, 1.0)
        >>> a.shape
        TensorShape([18])
    """
    lb, rb = (tf.cast(p, dtype) for p in (left_bound, right_bound))
    n = points.shape[-1] - 1
    width = tf.maximum(rb - lb, MIN_WIDTH)
    scale = n / width
    shift = 1.0 - lb * scale
    values, deltas = segment_tables(points, width, left_slope, right_slope, dtype)
    origin = tf.maximum(tf.range(n + 2, dtype=dtype), 1.0)
    intercept = values - deltas * origin
    if points.shape.rank == 1:
        intercept, deltas = intercept[0], deltas[0]
    return scale, shift, intercept, deltas


def _export_lines(x, left_bound, right_bound, points, left_slope, right_slope, axis):
    """What both export forms start from: ``(n, bshape, v, pwlu_tables(...))``.

    ``bshape`` broadcasts a per-channel ``(C,)`` tensor against ``x`` (all ones
    layer-wise) and ``v = x * scale + shift`` is the input in units of d.
    """
    points = tf.convert_to_tensor(points)
    n = points.shape[-1] - 1
    bshape = [1] * x.shape.rank
    if points.shape.rank == 2:
        bshape[axis % x.shape.rank] = points.shape[0]
    tables = pwlu_tables(left_bound, right_bound, points, left_slope, right_slope, x.dtype)
    scale, shift = tables[:2]
    v = x * tf.reshape(scale, bshape) + tf.reshape(shift, bshape)
    return n, bshape, v, tables


def pwlu_builtin(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU as a table lookup from TFLite-builtin ops (inference only; int8 exports).

    f(x) = intercept[k] + slope[k] * x with k = clip(floor(x * scale + shift), 0, N + 1)
    the segment of x and the lines of :func:`pwlu_tables` rewritten in x
    (``slope * scale``, ``intercept + slope * shift``): MUL, ADD, MINIMUM, CAST,
    MAXIMUM, MINIMUM, (ADD), GATHER x2, MUL, ADD once the parameters are frozen
    constants. Lines in x, not v, because under full-integer int8 the product
    with the wide-range v loses accuracy (figures in the README's TFLite section). Equal to
    :func:`pwlu_forward` up to float rounding for finite inputs (the same line
    on each segment; at a knot both neighbours agree). The index is clamped in
    int32 after the cast, so NaN and huge inputs never read outside the table.
    Differences: NaN gives NaN; +-inf on an outer segment with slope 0 gives NaN
    (``pwlu_forward`` gives the limit Y_0 / Y_N). Used under
    ``export_mode(quantization="int8")``.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu_builtin(tf.constant([-4.0, 0.5, 4.0]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> [round(float(v), 4) for v in y]
        [0.0, 0.5, 4.0]
    """
    n, bshape, v, (scale, shift, intercept, slope) = _export_lines(
        x, left_bound, right_bound, points, left_slope, right_slope, axis)
    intercept = intercept + slope * shift[..., None]
    slope = slope * scale[..., None]
    # Clamp above in float (huge/inf inputs), cast, clamp in int32 (NaN, -huge).
    idx = tf.cast(tf.minimum(v, float(n + 1)), tf.int32)
    idx = tf.minimum(tf.maximum(idx, 0), n + 1)
    channels = max(bshape)
    if channels > 1:
        idx = idx + tf.reshape(tf.range(channels, dtype=tf.int32) * (n + 2), bshape)
    a = tf.gather(tf.reshape(intercept, [-1]), idx)
    s = tf.gather(tf.reshape(slope, [-1]), idx)
    return a + s * x


def pwlu_hinges(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU as a sum of hinges, from elementwise TFLite-builtin ops (inference only).

    With v = x * scale + shift and the lines of :func:`pwlu_tables` (knots at the
    integers v = 1..N+1, i.e. x = B_L + i d)::

        f = intercept[0] + slope[0] * v + sum_{j=1}^{N+1} (slope[j] - slope[j-1]) * relu(v - j)

    3 elementwise ops per knot (ADD with fused ReLU, MUL, ADD), all of which
    run in LiteRT's XNNPACK delegate, where the table lookup of
    :func:`pwlu_builtin` needs two GATHERs and int32 clamps that run in
    reference kernels (latency: ``benchmarks/tflite.py --pwlu-forms``). A float
    candidate beside the broadcast form; full-integer int8 keeps
    the lookup (one requantisation per op would cost accuracy). NaN gives NaN;
    +-inf gives +-inf or NaN (where hinges of both signs meet).

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu_hinges(tf.constant([-4.0, 0.5, 4.0]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> [round(float(v), 4) for v in y]
        [0.0, 0.5, 4.0]
    """
    n, bshape, v, (_, _, intercept, slope) = _export_lines(
        x, left_bound, right_bound, points, left_slope, right_slope, axis)
    column = lambda t, j: tf.reshape(t[..., j], bshape)  # noqa: E731
    y = column(intercept, 0) + column(slope, 0) * v
    kinks = slope[..., 1:] - slope[..., :-1]
    for j in range(1, n + 2):
        y = y + column(kinks, j - 1) * tf.nn.relu(v - float(j))
    return y


def pwlu_broadcast(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU as one broadcast sum of hinges: a fixed number of builtin ops for any N.

    The sum of :func:`pwlu_hinges` evaluated for all N + 1 knots at once, on a
    trailing knot axis::

        h = relu(v[..., None] - [1, 2, ..., N+1])       # one SUB with fused RELU
        f = intercept[0] + slope[0] * v + sum(kinks * h, axis=-1)

    with ``kinks[j] = slope[j+1] - slope[j]`` (``(N+1,)`` layer-wise, ``(C, N+1)``
    channel-wise). In TFLite: RESHAPE, SUB(+RELU), MUL, SUM, MUL, ADD, ADD --
    the same ops for N = 8 or N = 32 (the intermediate is N + 1 times the
    activation). ``v = x * scale + shift`` is only used through v, so the
    converter folds it into a preceding convolution. NaN gives NaN.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu_broadcast(tf.constant([-4.0, 0.5, 4.0]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> [round(float(v), 4) for v in y]
        [0.0, 0.5, 4.0]
    """
    points = tf.convert_to_tensor(points)
    n, bshape, v, (_, _, intercept, slope) = _export_lines(
        x, left_bound, right_bound, points, left_slope, right_slope, axis)
    column = lambda t, j: tf.reshape(t[..., j], bshape)  # noqa: E731
    kinks = slope[..., 1:] - slope[..., :-1]                      # (..., N+1)
    knots = tf.range(1, n + 2, dtype=v.dtype)
    rank = x.shape.rank
    channel_axis = axis % rank if rank else 0
    if points.shape.rank == 2 and channel_axis != rank - 1:
        # kinks broadcast as (C, 1, ..., 1, N+1) against v[..., None]
        kinks = tf.reshape(kinks, [points.shape[0]] + [1] * (rank - 1 - channel_axis)
                           + [n + 1])
    # v[..., None] as a RESHAPE to a constant shape (-1 for the batch): XNNPACK
    # refuses EXPAND_DIMS, which would split its graph at every site.
    static = [-1 if d is None else d for d in v.shape] + [1]
    if static.count(-1) > 1:  # more than one unknown dimension: shape at run time
        static = tf.concat([tf.shape(v), [1]], 0)
    hinges = tf.nn.relu(tf.reshape(v, static) - knots)
    return column(intercept, 0) + column(slope, 0) * v + tf.reduce_sum(hinges * kinks, -1)


# The float-export forms of PWLU, by name. ``benchmarks/tflite.py`` times each
# (``--pwlu-forms``); the default is the fastest that holds float32 parity 1e-5.
FLOAT_FORMS = {"broadcast": pwlu_broadcast, "hinges": pwlu_hinges, "lookup": pwlu_builtin}
DEFAULT_FLOAT_FORM = "broadcast"
_float_form = [DEFAULT_FLOAT_FORM]


def float_form():
    """The PWLU formulation float exports trace now (a :data:`FLOAT_FORMS` function).

    Example:
        >>> float_form() is FLOAT_FORMS[DEFAULT_FLOAT_FORM]
        True
    """
    return FLOAT_FORMS[_float_form[0]]


@contextlib.contextmanager
def use_float_form(name):
    """Within the context, float exports of PWLU trace ``FLOAT_FORMS[name]``.

    For measuring the candidates (``benchmarks/tflite.py --pwlu-forms``); int8
    exports always use the lookup (:func:`pwlu_builtin`).

    Example:
        >>> with use_float_form("hinges"):
        ...     assert float_form() is pwlu_hinges
    """
    if name not in FLOAT_FORMS:
        raise ValueError(f"`name` must be one of {sorted(FLOAT_FORMS)}; received {name!r}.")
    previous = _float_form[0]
    _float_form[0] = name
    try:
        yield
    finally:
        _float_form[0] = previous
