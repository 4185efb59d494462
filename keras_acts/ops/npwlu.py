"""Non-uniform PWLU (N-PWLU; Zhu & Dong, ICPR 2022; Zhou et al., TPAMI 2023),
written once in ``keras.ops`` for every Keras backend.

N intervals of learnable positive widths w_0..w_{N-1} from a learnable left
bound B_L; knots k_0 = B_L, k_{i+1} = k_i + w_i (ordered whatever the values,
as long as the widths are >= 0). The values are cumulative: Y_0 is learnable
and each interval's value at its right knot is the previous one plus its
slope times its width, ``Y_{i+1} = Y_i + s_i w_i``, so that a change in one
interval moves everything to its right with it. Outer slopes K_L, K_R::

    f(x) = Y_0 + K_L min(x - k_0, 0) + sum_i s_i clip(x - k_i, 0, w_i)
               + K_R max(x - k_N, 0)

This hinge form needs no interval search and no GATHER (N + 2 elementwise
terms, fused under XLA) and no division by a width, so intervals of width 0
(the widths' floor) are harmless. Gradients (``slope(x)`` = K_L left of k_0,
s_i on [k_i, k_{i+1}), K_R from k_N on)::

    df/dx    = slope(x)
    df/dY_0  = 1
    df/dK_L  = min(x - k_0, 0),    df/dK_R = max(x - k_N, 0)
    df/ds_i  = clip(x - k_i, 0, w_i)
    df/dB_L  = -slope(x)                       (every knot moves with B_L)
    df/dw_j  = (s_j - slope(x)) [x >= k_{j+1}] (knots right of interval j move)

The backward keeps ``x`` and the parameters only. Every parameter gradient
comes from 2N + 4 per-channel sums of cheap columns (g, g [x >= k_j],
g clip(x - k_i, 0, w_i), the outer distances), B_L's and the widths' through
suffix sums over the intervals (:func:`npwlu_backward`); under XLA they are
summed chunk by chunk (:func:`keras_acts.ops.xla.chunked_sums`), terms scaled
by 1 / n. Numerics as ACON-C's: a zero outer slope times an infinite
distance is exactly 0 (f(-inf) = Y_0 when K_L = 0), NaN stays NaN, gradients
use ``x`` clamped to the finite range so no finite input gives NaN.

Parameter shapes: channel-wise ``(C,)`` for B_L, Y_0, K_L, K_R and ``(C, N)``
for the widths and slopes (channel on ``axis`` of x); layer-wise scalars and
``(N,)``.
"""

from keras import ops as K

from keras_acts.ops import xla
from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import normalize_axis
from keras_acts.ops._common import static_shape
from keras_acts.ops._common import times
from keras_acts.ops._common import to_compute
from keras_acts.ops.acon import _finite
from keras_acts.ops.acon import reduce_columns
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean


class _Pieces:
    """Per-channel broadcast parameters and the knots, in x's (compute) dtype.

    Under XLA (``compiled``) they are computed into one table first
    (:func:`keras_acts.ops.xla.materialized`): XLA fuses the cheap knot
    construction (clamped widths, running sums, casts) into every elementwise
    kernel that reads a knot, so each element rebuilt the knots (XLA fwd of the
    N-PWLU layer 2.1x -> 1.4x ReLU, fwd+bwd 3.9x -> 3.2x in one run).
    """

    def __init__(self, x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                 axis, compiled=False):
        rank = len(x.shape)
        self.n = widths.shape[-1]
        self.channelwise = len(widths.shape) == 2
        bshape = [1] * rank
        if self.channelwise:
            bshape[axis] = widths.shape[0]
        self.bshape = tuple(bshape)
        dtype = dtype_name(x)
        shaped = lambda t: K.reshape(K.cast(t, dtype), bshape)  # noqa: E731
        self.left, self.start = shaped(left_bound), shaped(start_value)
        self.kl, self.kr = shaped(left_slope), shaped(right_slope)
        self.widths = [K.maximum(shaped(widths[..., i]), 0.0) for i in range(self.n)]
        self.slopes = [shaped(slopes[..., i]) for i in range(self.n)]
        knots = [self.left]
        for w in self.widths:
            knots.append(knots[-1] + w)
        self.knots = knots
        if compiled:
            n = self.n
            table = xla.materialized(K.stack(
                [self.start, self.kl, self.kr] + self.widths + self.slopes + knots, axis=0),
                compiled)
            rows = [table[i] for i in range(3 * n + 4)]
            self.start, self.kl, self.kr = rows[:3]
            self.widths, self.slopes = rows[3:3 + n], rows[3 + n:3 + 2 * n]
            self.knots = rows[3 + 2 * n:]
            self.left = self.knots[0]

    def slope_at(self, x):
        """slope(x): K_L left of k_0, s_i on [k_i, k_{i+1}), K_R from k_N on; 0 at NaN.

        One select per knot: the knots are ordered (widths >= 0), so the last
        knot at or left of x names its interval (an empty interval is skipped).
        """
        k = self.knots
        slope = K.where(x < k[0], self.kl, 0.0)
        for j, s in enumerate(self.slopes + [self.kr]):
            slope = K.where(x >= k[j], s, slope)
        return slope


def npwlu_forward(x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                  axis=-1, compiled=False):
    """Pure forward of N-PWLU (hinge form, see module docstring) in x's dtype.

    Example:
        >>> one = K.ones([1])
        >>> y = npwlu_forward(K.convert_to_tensor([-3.0, 0.5, 3.0]), -2.0 * one[0],
        ...                   one * 4.0, 0.0 * one[0], one, 0.0 * one[0], one[0])
        >>> [float(v) for v in y]        # one interval [-2, 2] of slope 1, K_R = 1
        [0.0, 2.5, 5.0]
    """
    axis = axis % len(x.shape)
    p = _Pieces(x, left_bound, widths, start_value, slopes, left_slope, right_slope, axis,
                compiled)
    k = p.knots
    y = p.start + times(p.kl, K.minimum(x - k[0], 0.0))
    for i in range(p.n):
        y = y + p.slopes[i] * K.minimum(K.maximum(x - k[i], 0.0), p.widths[i])
    y = y + times(p.kr, K.maximum(x - k[-1], 0.0))
    return K.where(K.isnan(x), x, y)


def _columns(xs, g, p):
    """The 2N + 4 per-element columns whose sums give every parameter gradient:
    g, g min(x - k_0, 0), g max(x - k_N, 0), g [x >= k_j] (j = 0..N) and
    g clip(x - k_i, 0, w_i) (i = 0..N-1); ``xs`` is x clamped to the finite range
    (the outer distances are clamped too: x - k_0 may overflow; the clip may not)."""
    k = p.knots
    cols = [g, g * _finite(K.minimum(xs - k[0], 0.0)), g * _finite(K.maximum(xs - k[-1], 0.0))]
    cols += [K.where(xs >= k[j], g, 0.0) for j in range(p.n + 1)]
    cols += [g * K.minimum(K.maximum(xs - k[i], 0.0), p.widths[i]) for i in range(p.n)]
    return cols


def _view(shape, axis, channelwise):
    """Static view of x's shape for the chunked sums, or None when a dimension
    is unknown: ``(P, C, Q)`` around the channel axis, ``(P, C)`` when the
    channel is last; layer-wise ``(P, Q)`` with Q the last axis. (A trailing
    axis of 1 made JAX's XLA:CPU reductions ~30x slower.)"""
    if any(d is None for d in shape):
        return None
    if not channelwise:
        axis = len(shape) - 1
    lead, tail = 1, 1
    for d in shape[:axis]:
        lead *= d
    for d in shape[axis + 1:]:
        tail *= d
    if not channelwise:
        return (lead, shape[axis])
    return (lead, shape[axis]) if tail == 1 else (lead, shape[axis], tail)


def _column_sums(x, g, params, p, axis, compiled):
    """Sums over all elements (per channel) of the :func:`_columns`, each ``(C,)``
    (``(1,)`` layer-wise). With a static shape, x is viewed as in :func:`_view`
    and summed chunk by chunk (:func:`keras_acts.ops.xla.chunked_sums`); every
    term is scaled by 1 / n first (no intermediate overflow, as ``safe_sum``)."""
    view = _view(static_shape(x), axis, p.channelwise)
    if view is None:
        sums = reduce_columns(_columns(_finite(x), g, p), [p.bshape] * (2 * p.n + 4), compiled)
        return [K.reshape(t, (-1,)) for t in sums]
    size = 1
    for d in view:
        size *= d
    n = max(size // (view[1] if p.channelwise else 1), 1)
    scale = 1.0 / n
    # x and dy go into the loop as they are (a reshape is free): the clamp and
    # the scale are applied per chunk, not written out as two more tensors.
    xv, gv = K.reshape(x, view), K.reshape(g, view)
    pv = _Pieces(xv, *params, axis=1)

    def sums(xc, gc):
        # Over the chunk's rows only: the partial sums keep the vector lanes
        # of the minor axis; the rest is summed once at the end.
        return [K.sum(c, axis=0) for c in _columns(_finite(xc), gc * scale, pv)]

    rows = max(xla.CHUNK_ELEMENTS // (size // view[0]), 1)
    totals = xla.chunked_sums(sums, [xv, gv], rows, compiled)
    if p.channelwise:
        totals = [K.sum(t, axis=1) if len(view) == 3 else t for t in totals]
    else:
        totals = [K.sum(t, axis=0, keepdims=True) for t in totals]
    return [t * float(n) for t in totals]


def npwlu_backward(x, left_bound, widths, start_value, slopes, left_slope, right_slope, dy,
                   axis=-1, compiled=False):
    """Pure backward: gradients for (x, B_L, widths, Y_0, slopes, K_L, K_R), own shapes.

    Every parameter gradient follows from 2N + 4 per-channel sums over the
    elements, taken in one pass (:func:`_columns`; chunk by chunk under XLA):
    ``G = sum g``, ``L = sum g min(x - k_0, 0)``, ``R = sum g max(x - k_N, 0)``,
    ``A_j = sum_{x >= k_j} g`` (j = 0..N) and ``S_i = sum g clip(x - k_i, 0, w_i)``.
    With ``slope(x) = K_L (1 - [x >= k_0]) + sum_i s_i ([x >= k_i] - [x >= k_{i+1}])
    + K_R [x >= k_N]`` and the suffix sums
    ``T_m = sum_{i >= m} s_i (A_i - A_{i+1}) + K_R A_N`` (T_N = K_R A_N)::

        dY_0 = G,   dK_L = L,   dK_R = R,   ds_i = S_i
        dB_L = -sum g slope(x) = -(K_L (G - A_0) + T_0)
        dw_j = sum_{x >= k_{j+1}} g (s_j - slope(x)) = s_j A_{j+1} - T_{j+1}

    Example:
        >>> one = K.ones([1])
        >>> x = K.convert_to_tensor([-3.0, 0.5, 3.0])
        >>> grads = npwlu_backward(x, -2.0 * one[0], one * 4.0, 0.0 * one[0], one,
        ...                        0.0 * one[0], one[0], K.ones_like(x))
        >>> [float(v) for v in grads[0]]          # df/dx: K_L, s_0, K_R
        [0.0, 1.0, 1.0]
        >>> float(grads[1])                       # dB_L = -(0 + 1 + 1)
        -2.0
    """
    axis = axis % len(x.shape)
    params = (left_bound, widths, start_value, slopes, left_slope, right_slope)
    p = _Pieces(x, *params, axis, compiled)
    xs = _finite(x)
    n = p.n
    sums = _column_sums(x, dy, params, p, axis, compiled)
    g_all, g_kl, g_kr = sums[:3]
    a = sums[3:4 + n]
    g_slopes = K.stack(sums[4 + n:], axis=-1)
    dtype = dtype_name(x)
    s = K.reshape(K.cast(slopes, dtype), (-1, n))
    s = [s[:, i] for i in range(n)]
    kl = K.reshape(K.cast(left_slope, dtype), (-1,))
    kr = K.reshape(K.cast(right_slope, dtype), (-1,))
    suffix = [kr * a[n]]
    for i in reversed(range(n)):
        suffix.insert(0, suffix[0] + s[i] * (a[i] - a[i + 1]))
    g_left = -(kl * (g_all - a[0]) + suffix[0])
    g_widths = K.stack([s[j] * a[j + 1] - suffix[j + 1] for j in range(n)], axis=-1)

    def shaped(t, like):
        return K.reshape(t, static_shape(like))

    return (dy * p.slope_at(xs), shaped(g_left, left_bound), shaped(g_widths, widths),
            shaped(g_all, start_value), shaped(g_slopes, slopes),
            shaped(g_kl, left_slope), shaped(g_kr, right_slope))


def _relu(x):
    return K.where(x < 0, K.zeros_like(x), x)


# The phase flag ``active`` selects between N-PWLU and ReLU with a runtime
# conditional (one branch runs), not an elementwise select over both (XLA fwd
# 1.43x -> 1.29x ReLU, fwd+bwd 3.15x -> 2.98x as a layer with the materialised
# tables, in one TensorFlow run).
def _forward_kernel(x, left_bound, widths, start_value, slopes, left_slope, right_slope, active,
                    axis, compiled):
    cdt = compute_dtype(x.dtype)
    (xc,) = to_compute(x, dtype=cdt)
    params = to_compute(left_bound, widths, start_value, slopes, left_slope, right_slope,
                        dtype=cdt)

    def live():
        return K.cast(npwlu_forward(xc, *params, axis=axis, compiled=compiled), x.dtype)

    return K.cond(active > 0.5, live, lambda: K.cast(_relu(xc), x.dtype))


def _backward_kernel(x, left_bound, widths, start_value, slopes, left_slope, right_slope, active,
                     dy, axis, compiled):
    cdt = compute_dtype(x.dtype)
    xc, dyc = to_compute(x, dy, dtype=cdt)
    params = (left_bound, widths, start_value, slopes, left_slope, right_slope)

    def live():
        grads = npwlu_backward(xc, *to_compute(*params, dtype=cdt), dyc, axis=axis,
                               compiled=compiled)
        return tuple(K.cast(g, q.dtype) for g, q in zip(grads, (x,) + params))

    def frozen():
        relu_dx = K.where(xc > 0, dyc, K.zeros_like(dyc))
        return (K.cast(relu_dx, x.dtype),) + tuple(K.zeros_like(q) for q in params)

    return tuple(K.cond(active > 0.5, live, frozen)) + (K.zeros_like(active),)


def _validate(x, widths, slopes, scalars, axis):
    axis = normalize_axis(x, axis)
    if len(widths.shape) not in (1, 2) or widths.shape[-1] is None or widths.shape[-1] < 1:
        raise ValueError(
            "`widths` must have shape (num_intervals,) or (channels, num_intervals) with "
            f"num_intervals >= 1; received shape {tuple(widths.shape)}.")
    if tuple(slopes.shape) != tuple(widths.shape):
        raise ValueError(f"`slopes` must have the shape of `widths` {tuple(widths.shape)}; "
                         f"received shape {tuple(slopes.shape)}.")
    want = tuple(widths.shape[:-1])
    for name, t in scalars.items():
        if tuple(t.shape) != want:
            raise ValueError(f"`{name}` must have shape {want} (one per channel, or a scalar "
                             f"layer-wise); received shape {tuple(t.shape)}.")
    if len(widths.shape) == 2 and x.shape[axis] is not None and x.shape[axis] != want[0]:
        raise ValueError(f"Channel-wise parameters have {want[0]} channels but "
                         f"x.shape[{axis}]={x.shape[axis]}.")
    return axis


_OPS = {}


def npwlu(x, left_bound, widths, start_value, slopes, left_slope, right_slope, axis=-1,
          active=True):
    """Non-uniform PWLU with a memory-lean custom gradient, on every Keras backend.

    Args:
        x: floating tensor.
        left_bound, start_value, left_slope, right_slope: B_L, Y_0, K_L, K_R:
            scalars (layer-wise) or ``(C,)`` (channel-wise, channel on ``axis``).
        widths: ``(N,)`` or ``(C, N)`` interval widths (negative values count as 0).
        slopes: ``(N,)`` or ``(C, N)`` slopes of the intervals.
        axis: channel axis of ``x`` for channel-wise parameters.
        active: bool or boolean scalar tensor; False gives ReLU with zero
            parameter gradients (phase I).

    Returns f(x) in ``x``'s dtype (16-bit inputs computed in float32). Under
    :func:`keras_acts.ops.export_mode` (TensorFlow) it traces the builtin forms of
    :func:`keras_acts.ops.builtin.npwlu` (no custom gradient, no GATHER, an op
    count that does not grow with N).

    Example:
        >>> one = K.ones([4])
        >>> y = npwlu(K.ones([2, 4]), -one, 0.5 * K.ones([4, 4]), 0.0 * one,
        ...           K.ones([4, 4]), 0.0 * one, one)
        >>> float(y[0, 0])        # 1 + 1 * (1 - (-1))
        2.0
    """
    x = K.convert_to_tensor(x)
    check_floating(x, "x")
    widths = K.convert_to_tensor(widths)
    pdt = dtype_name(widths)
    left_bound, widths, start_value, slopes, left_slope, right_slope = (
        K.convert_to_tensor(t, dtype=pdt)
        for t in (left_bound, widths, start_value, slopes, left_slope, right_slope))
    axis = _validate(x, widths, slopes, dict(left_bound=left_bound, start_value=start_value,
                                             left_slope=left_slope, right_slope=right_slope),
                     axis)
    params = (left_bound, widths, start_value, slopes, left_slope, right_slope)
    flag = K.cast(K.convert_to_tensor(active), "float32")
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.npwlu(x, *params, axis=axis, active=flag > 0.5)
    if axis not in _OPS:
        _OPS[axis] = memory_lean(_forward_kernel, _backward_kernel, axis=axis)
    return _OPS[axis](x, *params, flag)


def inverse_softplus(w):
    """``log(exp(w) - 1)`` for ``w > 0``, stable at both ends: the raw value
    whose softplus is the width ``w``.

    Example:
        >>> round(float(K.softplus(inverse_softplus(K.convert_to_tensor(0.25)))), 6)
        0.25
    """
    w = K.convert_to_tensor(w)
    return w + K.log(-K.expm1(-w))
