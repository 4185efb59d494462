"""PWLU: piecewise linear unit (Zhou et al., "Learning Specialized Activation
Functions with the Piecewise Linear Unit", ICCV 2021), written once in
``keras.ops`` for every Keras backend.

N uniform intervals on [B_L, B_R] (width d = (B_R - B_L) / N, grid B_i = B_L + i d),
N + 1 points Y_i, outer slopes K_L, K_R::

    f(x) = Y_0 + K_L (x - B_L)                          x < B_L
         = Y_i + t (Y_{i+1} - Y_i),  u = (x - B_L) / d,  i = floor(u),  t = u - i
                                                        B_L <= x <= B_R
         = Y_N + K_R (x - B_R)                          x > B_R

Channel-wise parameters have shapes ``(C,)`` (bounds, slopes) and ``(C, N+1)``
(points), the channel living on ``axis`` of ``x``; layer-wise parameters are
scalars and ``(N+1,)``.

Every element falls in one of N + 2 bins per channel (0 left of B_L, 1 + i in
interval i, N + 1 right of B_R) and ``f = V[bin] + D[bin] * tau`` with one
gather per table (:func:`segment_tables`), where the local coordinate is::

    tau = (clip(u, 0, N) - max(bin - 1, 0)) + min(x - B_L, 0) + max(x - B_R, 0)

that is ``t`` inside, ``x - B_L`` left and ``x - B_R`` right: the outer lines
are evaluated in units of x, so no finite input overflows through ``u`` (e.g.
x = -3e38 with a narrow interval). The table index is clamped in int32, so NaN
and +-inf never read out of range; a zero outer slope times an infinite tau
contributes exactly 0 (f(-inf) = Y_0 when K_L = 0, the limit); NaN gives NaN.

Gradients (s = (Y_{i+1} - Y_i) / d the local slope)::

    df/dx   = K_L | s | K_R                       (left | inside | right)
    df/dY_i = 1 - t,   df/dY_{i+1} = t            (t = 0 left of B_L, 1 right of B_R)
    df/dB_L = -K_L | s (u - N) / N | 0
    df/dB_R = 0    | -s u / N      | -K_R
    df/dK_L = x - B_L (left only),  df/dK_R = x - B_R (right only)

The backward keeps ``x`` and the parameters only and recomputes the index; the
per-bin sums behind the parameter gradients are scaled by 1 / n while they are
summed (no intermediate overflow).
"""

import numpy as np
from keras import ops as K

from keras_acts.ops import xla
from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import normalize_axis
from keras_acts.ops._common import reduction_count
from keras_acts.ops._common import static_shape
from keras_acts.ops._common import to_compute
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean

# Smallest interval width allowed (bounds that cross or meet are clamped).
MIN_WIDTH = 1e-6
# Realignment: the smallest standard deviation used, relative to max(1, |mean|)
# (a channel with std 0 gets bounds mean -/+ 3e-3 max(1, |mean|)).
MIN_REALIGN_STD = 1e-3
INIT_SHAPES = ("relu", "identity", "swish")


def _point_tables(points, dtype):
    # (values (C, N+2), inner deltas (C, N)) of the points, layer-wise as C = 1.
    y = K.cast(points, dtype)
    if len(y.shape) == 1:
        y = K.expand_dims(y, 0)
    values = K.concatenate([y[:, :1], y[:, :-1], y[:, -1:]], axis=1)
    return values, y[:, 1:] - y[:, :-1]


def _column(t, dtype):
    return K.reshape(K.cast(t, dtype), (-1, 1))


def segment_tables(points, width, left_slope, right_slope, dtype="float32"):
    """Per-bin tables ``(V, D)`` of PWLU in units of d, shape ``(C, N + 2)``.

    Bin 0 is x < B_L, bins 1..N the intervals, bin N+1 is x > B_R. With
    ``tau = (x - B_L) / d - max(bin - 1, 0)`` (the local coordinate in units of
    d = W / N everywhere), ``f = V[bin] + D[bin] * tau`` where
    ``V = (Y_0, Y_0..Y_{N-1}, Y_N)`` and ``D = (K_L d, Y_1 - Y_0, ..., Y_N - Y_{N-1}, K_R d)``.
    The export forms (:mod:`keras_acts.ops.builtin.pwlu`) use it; the training
    kernels use the same values with the outer slopes in units of x.
    Layer-wise parameters give ``C = 1``.

    Example:
        >>> pts = K.relu(K.linspace(-2.0, 2.0, 5))
        >>> v, d = segment_tables(pts, 4.0, 0.0, 1.0)
        >>> tuple(d.shape)
        (1, 6)
    """
    values, inner = _point_tables(points, dtype)
    step = _column(width, dtype) / (values.shape[1] - 2)
    deltas = K.concatenate([_column(left_slope, dtype) * step, inner,
                            _column(right_slope, dtype) * step], axis=1)
    return values, deltas


class _Geometry:
    """What forward and backward recompute from ``x`` and the bounds: the bin
    key (flat index into per-bin tables), ``tau`` (see module docstring) and
    the per-channel broadcast parameters."""

    def __init__(self, x, left_bound, right_bound, points, left_slope, right_slope, axis):
        n = points.shape[-1] - 1
        rank = len(x.shape)
        self.channelwise = len(points.shape) == 2
        bshape = [1] * rank
        if self.channelwise:
            bshape[axis] = points.shape[0]
        dtype = dtype_name(x)
        self.n, self.bshape, self.dtype = n, bshape, dtype
        shaped = lambda t: K.reshape(K.cast(t, dtype), bshape)  # noqa: E731
        self.left, self.right = shaped(left_bound), shaped(right_bound)
        self.left_slope, self.right_slope = shaped(left_slope), shaped(right_slope)
        self.width = K.maximum(self.right - self.left, MIN_WIDTH)
        self.inv_d = n / self.width
        u = (x - self.left) * self.inv_d
        bin_f = K.clip(K.floor(u) + 1.0, 0.0, float(n + 1))
        self.tau = ((K.clip(u, 0.0, float(n)) - K.maximum(bin_f - 1.0, 0.0))
                    + K.minimum(x - self.left, 0.0) + K.maximum(x - self.right, 0.0))
        key = K.clip(K.cast(bin_f, "int32"), 0, n + 1)
        if self.channelwise:
            offsets = K.arange(points.shape[0], dtype="int32") * (n + 2)
            key = key + K.reshape(offsets, bshape)
        self.key = key

    def tables(self, points, compiled):
        """Flat per-bin tables in x's dtype: V, D (outer slopes in units of x)
        and Dx (slopes in units of x everywhere: df/dx per bin)."""
        values, inner = _point_tables(points, self.dtype)
        kl = K.reshape(self.left_slope, (-1, 1))
        kr = K.reshape(self.right_slope, (-1, 1))
        inv_d = K.reshape(self.inv_d, (-1, 1))
        deltas = K.concatenate([kl, inner, kr], axis=1)
        slopes = K.concatenate([kl, inner * inv_d, kr], axis=1)
        flat = lambda t: xla.materialized(K.reshape(t, (-1,)), compiled)  # noqa: E731
        return flat(values), flat(deltas), flat(slopes), inner


def _times_tau(delta, tau):
    # delta * tau, exactly 0 where delta == 0 and tau is infinite (the outer
    # regions' limit: f(-inf) = Y_0 when K_L = 0); NaN tau stays NaN.
    prod = delta * tau
    return K.where((delta == 0) & (K.abs(tau) == float("inf")), K.zeros_like(prod), prod)


def pwlu_forward(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1,
                 compiled=False):
    """Pure forward of PWLU in ``x``'s dtype: ``V[key] + D[key] * tau``.

    Example:
        >>> pts = K.relu(K.linspace(-2.0, 2.0, 5))
        >>> y = pwlu_forward(K.convert_to_tensor([-3.0, 0.5, 3.0]), -2.0, 2.0, pts, 0.0, 1.0)
        >>> [float(v) for v in y]
        [0.0, 0.5, 3.0]
    """
    axis = axis % len(x.shape)
    g = _Geometry(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    values, deltas, _, _ = g.tables(points, compiled)
    return xla.gather(values, g.key) + _times_tau(xla.gather(deltas, g.key), g.tau)


def pwlu_backward(x, left_bound, right_bound, points, left_slope, right_slope, dy, axis=-1,
                  compiled=False):
    """Pure backward: gradients for (x, B_L, B_R, Y, K_L, K_R), each in its own shape.

    Every parameter gradient follows from two per-bin sums, ``S0 = sum dy`` and
    ``S1 = sum dy * tau``, taken in one pass over the elements (one segment sum
    of 2-wide rows, each term scaled by 1 / n, n the elements per channel)::

        dY_i   += S0[i] - S1[i] (interval i),  dY_{i+1} += S1[i];  dY_0 += S0[left],
                  dY_N += S0[right]
        dK_L    = S1[left],   dK_R = S1[right]            (tau in units of x there)
        dB_L    = sum_i (Y_{i+1} - Y_i) ((i - N) S0[i] + S1[i]) / W - K_L S0[left]
        dB_R    = -sum_i (Y_{i+1} - Y_i) (i S0[i] + S1[i]) / W - K_R S0[right]
                  (W = B_R - B_L)

    Example:
        >>> pts = K.relu(K.linspace(-2.0, 2.0, 5))
        >>> x = K.convert_to_tensor([-3.0, 0.5, 3.0])
        >>> grads = pwlu_backward(x, -2.0, 2.0, pts, 0.0, 1.0, K.ones_like(x))
        >>> [float(v) for v in grads[0]]          # df/dx: K_L, inside slope, K_R
        [0.0, 1.0, 1.0]
    """
    axis = axis % len(x.shape)
    g = _Geometry(x, left_bound, right_bound, points, left_slope, right_slope, axis)
    n = g.n
    _, _, slopes, inner = g.tables(points, compiled)
    grad_x = dy * xla.gather(slopes, g.key)

    channels = points.shape[0] if g.channelwise else 1
    count = reduction_count(static_shape(x), range(len(x.shape)))
    per_channel = None if count is None else max(count // channels, 1)
    if per_channel is None:
        per_channel = K.cast(K.maximum(K.size(x) // channels, 1), g.dtype)
    scale = 1.0 / per_channel
    rows = K.reshape(K.stack([dy * scale, (dy * g.tau) * scale], axis=-1), (-1, 2))
    sums = K.segment_sum(rows, K.reshape(g.key, (-1,)), num_segments=channels * (n + 2))
    sums = K.reshape(sums, (channels, n + 2, 2))
    s0, s1 = sums[..., 0], sums[..., 1]
    s0_in, s1_in = s0[:, 1:-1], s1[:, 1:-1]
    zero = K.zeros_like(s0[:, :1])
    grad_points = (K.concatenate([s0_in - s1_in, zero], 1) + K.concatenate([zero, s1_in], 1)
                   + K.concatenate([s0[:, :1], K.zeros_like(s0_in)], 1)
                   + K.concatenate([K.zeros_like(s0_in), s0[:, -1:]], 1))
    i = K.cast(K.arange(n), g.dtype)
    width = K.reshape(g.width, (-1, 1))
    slope_in = inner / width
    kl, kr = K.reshape(g.left_slope, (-1,)), K.reshape(g.right_slope, (-1,))
    grad_l = K.sum(slope_in * ((i - n) * s0_in + s1_in), axis=1) - kl * s0[:, 0]
    grad_r = -K.sum(slope_in * (i * s0_in + s1_in), axis=1) - kr * s0[:, -1]

    def shaped(t, like):
        return K.reshape(t * per_channel, static_shape(K.convert_to_tensor(like)))

    return (grad_x, shaped(grad_l, left_bound), shaped(grad_r, right_bound),
            shaped(grad_points, points), shaped(s1[:, 0], left_slope),
            shaped(s1[:, -1], right_slope))


def _relu(x):
    # where(x < 0, 0, x): keeps NaN as NaN (a max with 0 may map it to 0).
    return K.where(x < 0, K.zeros_like(x), x)


def _forward_kernel(x, left_bound, right_bound, points, left_slope, right_slope, active,
                    axis, compiled):
    cdt = compute_dtype(x.dtype)
    (xc,) = to_compute(x, dtype=cdt)
    y = pwlu_forward(xc, left_bound, right_bound, points, left_slope, right_slope, axis=axis,
                     compiled=compiled)
    # Phase I (active 0): ReLU. A select, not a cond: it fuses under XLA.
    return K.cast(K.where(active > 0.5, y, _relu(xc)), x.dtype)


def _backward_kernel(x, left_bound, right_bound, points, left_slope, right_slope, active, dy,
                     axis, compiled):
    cdt = compute_dtype(x.dtype)
    xc, dyc = to_compute(x, dy, dtype=cdt)
    params = (left_bound, right_bound, points, left_slope, right_slope)
    grads = pwlu_backward(xc, *to_compute(*params, dtype=cdt), dyc, axis=axis,
                          compiled=compiled)
    on = active > 0.5
    relu_dx = K.where(xc > 0, dyc, K.zeros_like(dyc))
    grad_x = K.cast(K.where(on, grads[0], relu_dx), x.dtype)
    frozen = tuple(K.where(on, K.cast(g, p.dtype), K.zeros_like(p))
                   for g, p in zip(grads[1:], params))
    return (grad_x,) + frozen + (K.zeros_like(active),)


def _validate(x, points, axis):
    axis = normalize_axis(x, axis)
    if len(points.shape) not in (1, 2) or points.shape[-1] is None or points.shape[-1] < 2:
        raise ValueError(
            "`points` must have shape (num_intervals + 1,) or (channels, num_intervals + 1) "
            f"with num_intervals >= 1; received shape {tuple(points.shape)}.")
    if len(points.shape) == 2 and x.shape[axis] is not None \
            and x.shape[axis] != points.shape[0]:
        raise ValueError(
            f"Channel-wise `points` have {points.shape[0]} channels but x.shape[{axis}]="
            f"{x.shape[axis]}.")
    return axis


_OPS = {}


def pwlu(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1, active=True):
    """Piecewise linear unit with a memory-lean custom gradient, on every Keras backend.

    Args:
        x: floating tensor of rank >= 1.
        left_bound, right_bound, left_slope, right_slope: scalars (layer-wise) or
            shape ``(C,)`` (channel-wise, channel on ``axis``).
        points: ``(N+1,)`` or ``(C, N+1)`` values at the grid B_L + i (B_R - B_L) / N.
        axis: channel axis of ``x`` for channel-wise parameters.
        active: bool or boolean scalar tensor. When False the op is ReLU and every
            parameter gradient is zero (PWLU's phase I: parameters frozen).

    Returns the activation in ``x``'s dtype (16-bit inputs computed in float32).
    Under :func:`keras_acts.ops.export_mode` (TensorFlow) it traces the
    TFLite-builtin formulation.

    Example:
        >>> pts = K.relu(K.linspace(-3.0, 3.0, 17))
        >>> y = pwlu(K.ones([4, 8]), -3.0, 3.0, pts, 0.0, 1.0)
        >>> round(float(y[0, 0]), 5)
        1.0
    """
    x = K.convert_to_tensor(x)
    check_floating(x, "x")
    points = K.convert_to_tensor(points)
    axis = _validate(x, points, axis)
    pdt = dtype_name(points)
    params = [K.convert_to_tensor(p, dtype=pdt) for p in
              (left_bound, right_bound, points, left_slope, right_slope)]
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.pwlu(x, *params, axis=axis, active=active)
    flag = K.cast(K.convert_to_tensor(active), "float32")
    if axis not in _OPS:
        _OPS[axis] = memory_lean(_forward_kernel, _backward_kernel, axis=axis)
    return _OPS[axis](x, *params, flag)


def _init_slopes(init, left, right):
    # Slopes of the initial shape at the bounds: exact for the named shapes,
    # central differences (step 1e-3 max(1, |b|)) for a callable.
    if init == "relu":
        return K.zeros_like(left), K.ones_like(right)
    if init == "identity":
        return K.ones_like(left), K.ones_like(right)
    if init == "swish":
        def slope(b):
            s = K.sigmoid(b)
            return s * (1.0 + b * (1.0 - s))

        return slope(left), slope(right)
    fn = resolve_init(init)

    def slope(b):
        h = 1e-3 * K.maximum(K.abs(b), 1.0)
        return (fn(b + h) - fn(b - h)) / (2.0 * h)

    return slope(left), slope(right)


def realigned_parameters(mean, std, num_intervals, init="relu"):
    """Statistic-based realignment (PWLU paper, Sec. 3.2).

    B_L = mean - 3 std, B_R = mean + 3 std, Y_i = init(B_L + i (B_R - B_L) / N).
    Outer slopes: K_L = 0, K_R = 1 for ``init="relu"`` (as in the paper); for other
    shapes the derivative of ``init`` at the bounds ("identity": 1 and 1; a
    callable: central differences).

    Robustness: ``std`` is raised to at least ``MIN_REALIGN_STD * max(1, |mean|)``
    (1e-3; a constant channel gets a small, representable interval instead of
    a zero width) and the bounds are clamped to a quarter of the dtype's
    largest value, so the interval width stays finite.

    Args:
        mean, std: tensors of one shape (scalar or ``(C,)``), finite.
        num_intervals: N.
        init: "relu", "identity", "swish" or a callable on tensors.

    Returns ``(B_L, B_R, Y, K_L, K_R)`` with Y of shape ``mean.shape + (N+1,)``.

    Example:
        >>> bl, br, y, kl, kr = realigned_parameters(K.zeros([3]), K.ones([3]), 16)
        >>> [float(v) for v in (bl[0], br[0], kl[0], kr[0])]
        [-3.0, 3.0, 0.0, 1.0]
    """
    mean = K.convert_to_tensor(mean)
    std = K.cast(K.convert_to_tensor(std), mean.dtype)
    std = K.maximum(std, MIN_REALIGN_STD * K.maximum(K.abs(mean), 1.0))
    limit = float(np.finfo(dtype_name(mean)).max) / 4.0
    left = K.clip(mean - 3.0 * std, -limit, limit)
    right = K.clip(mean + 3.0 * std, -limit, limit)
    steps = K.cast(K.arange(num_intervals + 1), mean.dtype) / num_intervals
    grid = K.expand_dims(left, -1) + K.expand_dims(right - left, -1) * steps
    points = resolve_init(init)(grid)
    kl, kr = _init_slopes(init, left, right)
    return left, right, points, kl, kr


def resolve_init(init):
    """Map an initial-shape name ("relu", "identity", "swish") or callable to a function.

    Example:
        >>> float(resolve_init("relu")(K.convert_to_tensor(-1.0)))
        0.0
    """
    if callable(init):
        return init
    table = {"relu": K.relu, "identity": lambda t: t, "swish": K.silu}
    if init not in table:
        raise ValueError(f"`init` must be one of {INIT_SHAPES} or a callable; received {init!r}.")
    return table[init]
