"""PWLU from TFLite builtin ops (inference only; used under ``export_mode``).

Float exports: the sum of hinges with the knot axis before the channel axis,
reduced by one depthwise convolution (:func:`pwlu_knot_major`, a fixed op count
for any N). The other measured candidates are in :data:`FLOAT_FORMS`: the same
hinges reduced by MUL + SUM, the broadcast hinges on a trailing knot axis
(:func:`pwlu_broadcast`), a depthwise + grouped convolution pair
(:func:`pwlu_conv`), the unrolled hinges (:func:`pwlu_hinges`, 3 ops per knot) and
the lookup. Full-integer int8 exports: the same knot-major hinges by default
(:data:`INT8_FORMS`; the per-segment table lookup :func:`pwlu_builtin` on request).
"""

import contextlib
import functools

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
    (``pwlu_forward`` gives the limit Y_0 / Y_N). An :data:`INT8_FORMS` candidate
    (``use_int8_form("lookup")``): the most accurate under int8, but its GATHERs and
    MINIMUM run outside XNNPACK.

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
    candidate (:data:`FLOAT_FORMS`); its op count grows with N. NaN gives NaN;
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



def pwlu_conv(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """PWLU as two convolutions: one 1x1 DEPTHWISE_CONV_2D with fused RELU, one grouped CONV_2D.

    With v = x * scale + shift and the lines of :func:`pwlu_tables` (knots at
    v = 1..N+1, Y_L the value at v = 1)::

        f = Y_L - slope[0] * relu(1 - v) + slope[1] * relu(v - 1)
                + sum_{j=2}^{N+1} (slope[j] - slope[j-1]) * relu(v - j)

    The N + 2 hinges of each channel are one depthwise 1x1 convolution with
    depth multiplier N + 2 (weights +-scale, biases from shift and the knots,
    fused RELU); their weighted sum is one 1x1 convolution with ``groups = C``
    (filter ``(1, 1, N+2, C)``, bias Y_L). In TFLite: DEPTHWISE_CONV_2D and
    CONV_2D, both run by XNNPACK, for any N (plus RESHAPEs for inputs that are
    not ``(B, H, W, C)``). Layer-wise tables are tiled over the C channels. The
    channel axis must be the last one with every dimension but the batch known;
    otherwise this falls back to :func:`pwlu_broadcast`. NaN gives NaN.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu_conv(tf.constant([[-4.0, 0.5, 4.0]]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> [round(float(v), 4) for v in y[0]]
        [0.0, 0.5, 4.0]
    """
    points = tf.convert_to_tensor(points)
    rank = x.shape.rank
    dims = x.shape.as_list()
    if not rank or rank > 4 or axis % rank != rank - 1 or None in dims[1:]:
        return pwlu_broadcast(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    channels = dims[-1]
    n = points.shape[-1] - 1
    scale, shift, intercept, slope = pwlu_tables(left_bound, right_bound, points, left_slope,
                                                 right_slope, x.dtype)
    scale = tf.broadcast_to(scale, [channels])[:, None]                  # (C, 1)
    shift = tf.broadcast_to(shift, [channels])[:, None]
    slope = tf.broadcast_to(slope, [channels, n + 2])                    # (C, N+2)
    intercept = tf.broadcast_to(intercept, [channels, n + 2])
    sign = tf.constant([-1.0] + [1.0] * (n + 1), x.dtype)                # (N+2,)
    offset = tf.constant([1.0] + [-float(j) for j in range(1, n + 2)], x.dtype)
    dw_weight = sign * scale                                             # (C, N+2)
    dw_bias = sign * shift + offset                                      # relu(sign v + offset)
    coef = tf.concat([-slope[:, :1], slope[:, 1:2], slope[:, 2:] - slope[:, 1:-1]], 1)
    y_left = intercept[:, 1] + slope[:, 1]                               # f at v = 1
    shape4 = {4: None, 3: [-1, 1] + dims[1:], 2: [-1, 1, 1, channels]}[rank]
    x4 = x if shape4 is None else tf.reshape(x, shape4)
    h = tf.nn.depthwise_conv2d(x4, tf.reshape(dw_weight, [1, 1, channels, n + 2]),
                               [1, 1, 1, 1], "VALID")
    h = tf.nn.relu(h + tf.reshape(dw_bias, [-1]))
    # groups = C: filter in-channels N+2 against C*(N+2) input channels.
    y = tf.nn.conv2d(h, tf.reshape(tf.transpose(coef), [1, 1, n + 2, channels]),
                     [1, 1, 1, 1], "VALID") + y_left
    return y if shape4 is None else tf.reshape(y, [-1] + dims[1:])



def pwlu_knot_major(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1,
                    reduce="depthwise", units="v"):
    """PWLU as a broadcast sum of hinges with the knot axis before the channel axis.

    The sum of :func:`pwlu_broadcast` with the hinges laid out ``(P, N+1, C)``
    (P = every position but the channel; C innermost, so every op works on
    contiguous channel vectors and the reduction is a depthwise convolution)::

        h = relu(reshape(v, (P, 1, C)) - [[1], [2], ..., [N+1]])    # SUB + RELU
        f = slope[0] * v + (intercept[0] + sum_j kinks[j] * h[:, j, :])

    with ``kinks[j] = slope[j+1] - slope[j]``. ``reduce="depthwise"`` (the
    default, the float export): the bracket is one 1 x (N+1) DEPTHWISE_CONV_2D over
    ``(P, 1, N+1, C)`` (weights: the kinks, bias: intercept[0]); ``reduce="sum"``:
    MUL by the ``(N+1, C)`` kink table, SUM over the knot axis, ADD. In TFLite
    (depthwise): RESHAPE, SUB(+RELU), DEPTHWISE_CONV_2D, RESHAPE, MUL, ADD for
    any N, all run by XNNPACK; ``v = x * scale + shift`` folds into a preceding
    convolution. The (N+1)-fold hinge tensor is written once and read once
    (:func:`pwlu_broadcast` writes it twice and reduces along a short inner axis).
    The channel axis must be the last with a static size; otherwise this falls
    back to :func:`pwlu_broadcast`. NaN gives NaN.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu_knot_major(tf.constant([[-4.0, 0.5, 4.0]]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> [round(float(v), 4) for v in y[0]]
        [0.0, 0.5, 4.0]
    """
    if reduce not in ("sum", "depthwise"):
        raise ValueError(f"`reduce` must be 'sum' or 'depthwise'; received {reduce!r}.")
    points = tf.convert_to_tensor(points)
    rank = x.shape.rank
    if not rank or axis % rank != rank - 1 or x.shape[-1] is None:
        return pwlu_broadcast(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    channels = x.shape[-1]
    if units not in ("v", "x"):
        raise ValueError(f"`units` must be 'v' or 'x'; received {units!r}.")
    n, bshape, v, (scale, shift, intercept, slope) = _export_lines(
        x, left_bound, right_bound, points, left_slope, right_slope, axis)
    kinks = tf.reshape(tf.transpose(slope[..., 1:] - slope[..., :-1]), [n + 1, -1])
    kinks = tf.broadcast_to(kinks, [n + 1, channels])                # (N+1, C)
    knots = tf.range(1, n + 2, dtype=v.dtype)[:, None]               # (N+1, 1)
    # intercept[0] rides on the reduction (the depthwise bias), slope[0] * v is one MUL.
    intercept0 = tf.broadcast_to(tf.reshape(intercept[..., 0], [-1]), [channels])
    slope0 = slope[..., 0]
    if units == "x":  # the same hinges on x itself: knots x_j = (j - shift) / scale
        col = lambda t: tf.reshape(tf.broadcast_to(tf.reshape(t, [-1]), [channels]), [1, -1])  # noqa: E731
        knots = (knots - col(shift)) / col(scale)                      # (N+1, C)
        kinks = kinks * col(scale)
        intercept0 = intercept0 + tf.reshape(slope0 * shift, [-1])
        slope0 = slope0 * scale
        v = x
    if reduce == "sum":
        hinges = tf.nn.relu(tf.reshape(v, [-1, 1, channels]) - knots)   # (P, N+1, C)
        total = tf.reduce_sum(hinges * kinks, -2) + intercept0
    else:
        hinges = tf.nn.relu(tf.reshape(v, [-1, 1, 1, channels]) - knots)  # (P, 1, N+1, C)
        total = tf.nn.depthwise_conv2d(hinges, tf.reshape(kinks, [1, n + 1, channels, 1]),
                                       [1, 1, 1, 1], "VALID") + intercept0
    shape = [-1 if d is None else d for d in x.shape]
    if shape.count(-1) > 1:
        shape = tf.shape(x)
    return tf.reshape(slope0, bshape) * v + tf.reshape(total, shape)


# The float-export forms of PWLU, by name. ``benchmarks/tflite.py`` times each
# (``--pwlu-forms``); the default is the fastest that holds float32 parity 1e-5
# (MobileNetV3-Small, LiteRT 2 threads: figures in the README's TFLite section).
FLOAT_FORMS = {"knots_dw": pwlu_knot_major,
               "knots_sum": functools.partial(pwlu_knot_major, reduce="sum"),
               "broadcast": pwlu_broadcast,
               "conv": pwlu_conv,
               "hinges": pwlu_hinges,
               "lookup": pwlu_builtin}
DEFAULT_FLOAT_FORM = "knots_dw"


class _FormChoice:
    """Which of ``forms`` (name -> function) the exports trace now; :meth:`use` swaps it."""

    def __init__(self, forms, default):
        self.forms, self.name = forms, default

    def current(self):
        return self.forms[self.name]

    @contextlib.contextmanager
    def use(self, name):
        if name not in self.forms:
            raise ValueError(f"`name` must be one of {sorted(self.forms)}; received {name!r}.")
        previous, self.name = self.name, name
        try:
            yield
        finally:
            self.name = previous


_float_choice = _FormChoice(FLOAT_FORMS, DEFAULT_FLOAT_FORM)


def float_form():
    """The PWLU formulation float exports trace now (a :data:`FLOAT_FORMS` function).

    Example:
        >>> float_form() is FLOAT_FORMS[DEFAULT_FLOAT_FORM]
        True
    """
    return _float_choice.current()


def use_float_form(name):
    """Within the context, float exports of PWLU trace ``FLOAT_FORMS[name]``.

    For measuring the candidates (``benchmarks/tflite.py --pwlu-forms``); int8
    exports use :func:`use_int8_form`'s choice. An unknown ``name`` raises
    ``ValueError`` listing the allowed names.

    Example:
        >>> with use_float_form("hinges"):
        ...     assert float_form() is pwlu_hinges
    """
    return _float_choice.use(name)


# The full-integer int8 forms of PWLU, by name (``benchmarks/tflite.py --pwlu-forms``
# times each; the default is the fastest within 1 point of float top-1 on the
# Fashion-MNIST check, ``int8_accuracy("pwlu", **FULL)``: knots_dw 80.52% -> 79.55%
# (drop 0.97, at the edge), knots_dw_x 1.19, lookup -0.13 but 3.5x slower on
# MobileNetV3-Small). Not here: pwlu_conv, whose int8 conversion of MobileNetV3-Small
# had not finished after 10 minutes (the others take ~1).
INT8_FORMS = {"lookup": pwlu_builtin, "knots_dw": pwlu_knot_major,
              "knots_dw_x": functools.partial(pwlu_knot_major, units="x")}
DEFAULT_INT8_FORM = "knots_dw"
_int8_choice = _FormChoice(INT8_FORMS, DEFAULT_INT8_FORM)


def int8_form():
    """The PWLU formulation full-integer int8 exports trace now (an :data:`INT8_FORMS` function).

    Example:
        >>> int8_form() is INT8_FORMS[DEFAULT_INT8_FORM]
        True
    """
    return _int8_choice.current()


def use_int8_form(name):
    """Within the context, full-integer int8 exports of PWLU trace ``INT8_FORMS[name]``.

    For measuring the candidates (``benchmarks/tflite.py --pwlu-forms``). An
    unknown ``name`` raises ``ValueError`` listing the allowed names.

    Example:
        >>> with use_int8_form("knots_dw"):
        ...     assert int8_form() is pwlu_knot_major
    """
    return _int8_choice.use(name)
