"""PWLU: piecewise linear unit (Zhou et al., "Learning Specialized Activation
Functions with the Piecewise Linear Unit", ICCV 2021).

N uniform intervals on [B_L, B_R] (width d = (B_R - B_L) / N, grid B_i = B_L + i d),
N + 1 points Y_i, outer slopes K_L, K_R::

    f(x) = Y_0 + K_L (x - B_L)                          x < B_L
         = Y_i + t (Y_{i+1} - Y_i),  u = (x - B_L) / d,  i = floor(u),  t = u - i
                                                        B_L <= x <= B_R
         = Y_N + K_R (x - B_R)                          x > B_R

Channel-wise parameters have shapes ``(C,)`` (bounds, slopes) and ``(C, N+1)``
(points), the channel living on ``axis`` of ``x``; layer-wise parameters are
scalars and ``(N+1,)``. The point table is read with one gather per neighbour;
the index is clamped to [0, N-1] after NaNs are mapped to 0, so NaN/Inf inputs
never index out of range. Outer-slope terms with a zero slope contribute exactly
0 (so f(-inf) = Y_0 when K_L = 0, the limit of the function), NaN inputs give NaN.

Gradients (s = (Y_{i+1} - Y_i) / d the local slope)::

    df/dx   = K_L | s | K_R                       (left | inside | right)
    df/dY_i = 1 - t,   df/dY_{i+1} = t            (t = 0 left of B_L, 1 right of B_R)
    df/dB_L = -K_L | s (u - N) / N | 0
    df/dB_R = 0    | -s u / N      | -K_R
    df/dK_L = x - B_L (left only),  df/dK_R = x - B_R (right only)

The backward keeps ``x`` and the parameters only and recomputes the index.
"""

import tensorflow as tf

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops._common import fused
from keras_acts.ops._common import materialized

# Smallest interval width allowed (bounds that cross or meet are clamped).
MIN_WIDTH = 1e-6


class _Geometry:
    """Per-element quantities shared by forward and backward (recomputed).

    Every element falls in one of ``N + 2`` bins per channel:
    ``bin = clip(floor(u) + 1, 0, N + 1)`` with ``u = (x - B_L) / d`` -- 0 left of
    B_L, ``1 + i`` in interval i, ``N + 1`` right of B_R. ``key`` is the bin
    offset by ``channel * (N + 2)`` (a flat index into per-bin tables) and
    ``tau = u - max(bin - 1, 0)`` the local coordinate in units of d (``u`` on
    the left, ``t`` inside, ``u - N`` on the right), so that
    ``f = V[key] + D[key] * tau`` with ``V = (Y_0, Y_0..Y_{N-1}, Y_N)`` and
    ``D = (K_L d, Y_1 - Y_0, ..., Y_N - Y_{N-1}, K_R d)``. No where-chains: one
    clamp decides the region, which keeps the XLA loop vectorised. The index is
    clamped again in int32, so NaN (whose cast is implementation-defined) and
    +-inf never index out of range; NaN stays NaN through ``tau``.
    """

    def __init__(self, x, left_bound, right_bound, points, left_slope, right_slope, axis):
        n = points.shape[-1] - 1
        rank = x.shape.rank
        channelwise = points.shape.rank == 2
        bshape = [1] * rank
        if channelwise:
            c = points.shape[0]
            bshape[axis] = c
            offset = tf.reshape(tf.range(c, dtype=tf.int32) * (n + 2), bshape)
        else:
            offset = None
        self.n = n
        self.bshape = bshape
        self.channelwise = channelwise
        dtype = x.dtype
        cast = lambda t: tf.reshape(tf.cast(t, dtype), bshape)  # noqa: E731
        self.L, self.R = cast(left_bound), cast(right_bound)
        self.KL, self.KR = cast(left_slope), cast(right_slope)
        self.width = tf.maximum(self.R - self.L, MIN_WIDTH)
        self.inv_d = n / self.width
        u = (x - self.L) * self.inv_d
        bin_f = tf.clip_by_value(tf.floor(u) + 1.0, 0.0, float(n + 1))
        self.tau = u - tf.maximum(bin_f - 1.0, 0.0)
        key = tf.clip_by_value(tf.cast(bin_f, tf.int32), 0, n + 1)
        self.key = key if offset is None else key + offset

    def tables(self, points):
        """Flat per-bin tables (V, D) of shape (C * (N + 2),) in x's dtype.

        Each is :func:`materialized`, so XLA gathers from a computed buffer
        instead of rebuilding the table for every element.
        """
        values, deltas = segment_tables(points, self.width, self.KL, self.KR, self.L.dtype)
        return materialized(tf.reshape(values, [-1])), materialized(tf.reshape(deltas, [-1]))


def segment_tables(points, width, left_slope, right_slope, dtype=tf.float32):
    """Per-bin tables ``(V, D)`` of PWLU, shape ``(C, N + 2)`` (``(1, N + 2)`` layer-wise).

    Bin 0 is x < B_L, bins 1..N the intervals, bin N+1 is x > B_R. With tau the
    local coordinate in units of d = W / N (see :class:`_Geometry`),
    ``f = V[bin] + D[bin] * tau`` where ``V = (Y_0, Y_0..Y_{N-1}, Y_N)`` and
    ``D = (K_L d, Y_1 - Y_0, ..., Y_N - Y_{N-1}, K_R d)``. The one definition of
    the tables, used by training (:func:`pwlu_forward`/:func:`pwlu_backward`)
    and by the export forms (:mod:`keras_acts.ops.builtin.pwlu`).

    Example:
        >>> v, d = segment_tables(tf.nn.relu(tf.linspace(-2.0, 2.0, 5)), 4.0, 0.0, 1.0)
        >>> d.shape
        TensorShape([1, 6])
    """
    y = tf.cast(points, dtype)
    n = y.shape[-1] - 1
    if y.shape.rank == 1:
        y = y[None]
    d = tf.reshape(tf.cast(width, dtype) / n, [-1, 1])
    kl, kr = (tf.reshape(tf.cast(t, dtype), [-1, 1]) * d for t in (left_slope, right_slope))
    first, last = y[:, :1], y[:, -1:]
    values = tf.concat([first, y[:, :-1], last], axis=1)
    deltas = tf.concat([kl, y[:, 1:] - y[:, :-1], kr], axis=1)
    return values, deltas


def _times_tau(delta, tau):
    # delta * tau, exactly 0 where delta == 0 and tau is infinite (the outer
    # regions' limit: f(-inf) = Y_0 when K_L = 0); NaN tau stays NaN.
    prod = delta * tau
    return tf.where(tf.math.is_inf(tau) & tf.equal(delta, 0), tf.zeros_like(prod), prod)


def pwlu_forward(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1):
    """Pure forward of PWLU in ``x``'s dtype (``axis`` non-negative).

    One gather per table: ``f = V[key] + D[key] * tau`` (see :class:`_Geometry`),
    which inside the bounds is ``Y_i + t (Y_{i+1} - Y_i)``.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-2.0, 2.0, 5))
        >>> pwlu_forward(tf.constant([-3.0, 0.5, 3.0]), -2.0, 2.0, pts, 0.0, 1.0)
    """
    g = _Geometry(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    values, deltas = g.tables(points)
    return tf.gather(values, g.key) + _times_tau(tf.gather(deltas, g.key), g.tau)


def _bin_sums(data, key, num_bins):
    # Per-bin sums of the trailing 2 columns of `data`: one segment sum (an XLA
    # scatter of 2-wide windows, one update per element).
    return tf.math.unsorted_segment_sum(
        tf.reshape(data, [-1, 2]), tf.reshape(key, [-1]), num_bins)


def pwlu_backward(x, left_bound, right_bound, points, left_slope, right_slope, dy, axis=-1):
    """Pure backward: gradients for (x, B_L, B_R, Y, K_L, K_R), each in its own shape.

    Every parameter gradient follows from two per-bin sums, ``S0 = sum dy`` and
    ``S1 = sum dy * tau``, taken in one pass over the elements::

        dY_i   += S0[i] - S1[i] (interval i),  dY_{i+1} += S1[i];  dY_0 += S0[left],
                  dY_N += S0[right]
        dK_L    = d S1[left],   dK_R = d S1[right]          (tau in units of d)
        dB_L    = sum_i (Y_{i+1} - Y_i) ((i - N) S0[i] + S1[i]) / W - K_L S0[left]
        dB_R    = -sum_i (Y_{i+1} - Y_i) (i S0[i] + S1[i]) / W - K_R S0[right]
                  (W = B_R - B_L)

    Example:
        >>> grads = pwlu_backward(x, -2.0, 2.0, pts, 0.0, 1.0, tf.ones_like(x))
    """
    g = _Geometry(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    n = g.n
    _, deltas = g.tables(points)
    # df/dx = D[bin] / d on every bin: K_L, (Y_{i+1} - Y_i) / d, K_R.
    grad_x = dy * tf.gather(deltas, g.key) * g.inv_d

    sums = _bin_sums(tf.stack([dy, dy * g.tau], axis=-1), g.key, tf.size(deltas))
    sums = tf.reshape(sums, [-1, n + 2, 2])
    s0, s1 = sums[..., 0], sums[..., 1]
    s0_in, s1_in = s0[:, 1:-1], s1[:, 1:-1]
    zero = tf.zeros_like(s0[:, :1])
    grad_points = (tf.concat([s0_in - s1_in, zero], 1) + tf.concat([zero, s1_in], 1)
                   + tf.concat([s0[:, :1], tf.zeros_like(s0_in)], 1)
                   + tf.concat([tf.zeros_like(s0_in), s0[:, -1:]], 1))
    i = tf.cast(tf.range(n), s0.dtype)
    delta_in = tf.reshape(deltas, [-1, n + 2])[:, 1:-1] / tf.reshape(g.width, [-1, 1])
    kl, kr = tf.reshape(g.KL, [-1]), tf.reshape(g.KR, [-1])
    d = tf.reshape(g.width, [-1]) / n
    grad_l = tf.reduce_sum(delta_in * ((i - n) * s0_in + s1_in), axis=1) - kl * s0[:, 0]
    grad_r = -tf.reduce_sum(delta_in * (i * s0_in + s1_in), axis=1) - kr * s0[:, -1]
    grad_kl, grad_kr = d * s1[:, 0], d * s1[:, -1]

    def shaped(t, like):
        return tf.reshape(t, tf.shape(like))

    return (
        grad_x,
        shaped(grad_l, left_bound),
        shaped(grad_r, right_bound),
        shaped(grad_points, points),
        shaped(grad_kl, left_slope),
        shaped(grad_kr, right_slope),
    )


def _relu(x):
    # where(x < 0, 0, x): keeps NaN as NaN (tf.nn.relu may map it to 0).
    return tf.where(x < 0, tf.zeros_like(x), x)


def _pwlu_forward_kernel(x, left_bound, right_bound, points, left_slope, right_slope, active,
                         axis):
    cdt = compute_dtype(x.dtype)
    y = pwlu_forward(tf.cast(x, cdt), left_bound, right_bound, points, left_slope,
                     right_slope, axis=axis)
    # Phase I (active False): ReLU. A select, not a cond: it fuses under XLA.
    return tf.cast(tf.where(active, y, _relu(tf.cast(x, cdt))), x.dtype)


def _pwlu_backward_kernel(x, left_bound, right_bound, points, left_slope, right_slope, active,
                          dy, axis):
    cdt = compute_dtype(x.dtype)
    params = (left_bound, right_bound, points, left_slope, right_slope)
    grads = pwlu_backward(tf.cast(x, cdt), *params, tf.cast(dy, cdt), axis=axis)
    relu_dx = tf.where(x > 0, dy, tf.zeros_like(dy))
    grad_x = tf.where(active, tf.cast(grads[0], x.dtype), relu_dx)
    frozen = [tf.where(active, tf.cast(g, p.dtype), tf.zeros_like(p))
              for g, p in zip(grads[1:], params)]
    return [grad_x] + frozen


def _pwlu_custom(axis):
    """Build the custom-gradient PWLU for a static channel ``axis``."""

    @tf.custom_gradient
    def op(x, left_bound, right_bound, points, left_slope, right_slope, active):
        args = (x, left_bound, right_bound, points, left_slope, right_slope, active)
        y = fused(_pwlu_forward_kernel, axis=axis)(*args)

        def grad(dy):
            return list(fused(_pwlu_backward_kernel, axis=axis)(*args, dy)) + [None]

        return y, grad

    return op


def _validate(x, points, axis):
    rank = x.shape.rank
    if rank is None:
        raise ValueError("`x` must have a known rank for pwlu.")
    axis = axis % rank
    if points.shape.rank == 2 and x.shape[axis] is not None and x.shape[axis] != points.shape[0]:
        raise ValueError(
            f"Channel-wise `points` have {points.shape[0]} channels but x.shape[{axis}]="
            f"{x.shape[axis]}.")
    if points.shape.rank not in (1, 2) or points.shape[-1] is None or points.shape[-1] < 2:
        raise ValueError(
            "`points` must have shape (num_intervals + 1,) or (channels, num_intervals + 1) "
            f"with num_intervals >= 1; received shape {points.shape}.")
    return axis


def pwlu(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1, active=True):
    """Piecewise linear unit with a memory-lean custom gradient.

    Args:
        x: floating tensor of rank >= 1.
        left_bound, right_bound, left_slope, right_slope: scalars (layer-wise) or
            shape ``(C,)`` (channel-wise, channel on ``axis``).
        points: ``(N+1,)`` or ``(C, N+1)`` values at the grid B_L + i (B_R - B_L) / N.
        axis: channel axis of ``x`` for channel-wise parameters.
        active: bool or boolean scalar tensor. When False the op is ReLU and every
            parameter gradient is zero (PWLU's phase I: parameters frozen).

    Returns the activation in ``x``'s dtype (16-bit inputs computed in float32).

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu(tf.random.normal([4, 8]), -3.0, 3.0, pts, 0.0, 1.0)
    """
    x = tf.convert_to_tensor(x)
    check_floating(x, "x")
    points = tf.convert_to_tensor(points)
    axis = _validate(x, points, axis)
    params = [tf.convert_to_tensor(p, dtype_hint=points.dtype)
              for p in (left_bound, right_bound, points, left_slope, right_slope)]
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.pwlu(x, *params, axis=axis, active=active)
    active = tf.convert_to_tensor(active, dtype=tf.bool)
    return _pwlu_custom(axis)(x, *params, active)


def realigned_parameters(mean, std, num_intervals, init="relu"):
    """Statistic-based realignment (PWLU paper, Sec. 3.2).

    B_L = mean - 3 std, B_R = mean + 3 std, Y_i = init(B_L + i (B_R - B_L) / N).
    Outer slopes: K_L = 0, K_R = 1 for ``init="relu"`` (as in the paper); for other
    shapes the derivative of ``init`` at the bounds ("identity": 1 and 1).

    Args:
        mean, std: tensors of one shape (scalar or ``(C,)``).
        num_intervals: N.
        init: "relu", "identity", "swish" or a callable on tensors.

    Returns ``(B_L, B_R, Y, K_L, K_R)`` with Y of shape ``mean.shape + (N+1,)``.

    Example:
        >>> bl, br, y, kl, kr = realigned_parameters(tf.zeros([3]), tf.ones([3]), 16)
    """
    mean = tf.convert_to_tensor(mean)
    std = tf.maximum(tf.convert_to_tensor(std, dtype=mean.dtype), MIN_WIDTH)
    left, right = mean - 3.0 * std, mean + 3.0 * std
    steps = tf.cast(tf.range(num_intervals + 1), mean.dtype) / num_intervals
    grid = left[..., None] + (right - left)[..., None] * steps
    fn = resolve_init(init)
    points = fn(grid)
    if init == "relu":
        kl, kr = tf.zeros_like(left), tf.ones_like(right)
    else:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(left)
            tape.watch(right)
            fl, fr = fn(left), fn(right)
        kl = tape.gradient(fl, left, unconnected_gradients="zero")
        kr = tape.gradient(fr, right, unconnected_gradients="zero")
    return left, right, points, kl, kr


INIT_SHAPES = ("relu", "identity", "swish")


def resolve_init(init):
    """Map an initial-shape name ("relu", "identity", "swish") or callable to a function.

    Example:
        >>> resolve_init("swish")(tf.constant(1.0))
    """
    if callable(init):
        return init
    table = {"relu": tf.nn.relu, "identity": tf.identity, "swish": tf.nn.silu}
    if init not in table:
        raise ValueError(f"`init` must be one of {INIT_SHAPES} or a callable; received {init!r}.")
    return table[init]
