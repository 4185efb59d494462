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

The backward keeps ``x`` and the parameters only; the 2N + 4 per-channel sums
are one stacked reduction (:func:`keras_acts.ops.acon.reduce_columns`, terms
scaled by 1 / n). Numerics as ACON-C's: a zero outer slope times an infinite
distance is exactly 0 (f(-inf) = Y_0 when K_L = 0), NaN stays NaN, gradients
use ``x`` clamped to the finite range so no finite input gives NaN.

Parameter shapes: channel-wise ``(C,)`` for B_L, Y_0, K_L, K_R and ``(C, N)``
for the widths and slopes (channel on ``axis`` of x); layer-wise scalars and
``(N,)``.
"""

from keras import ops as K

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
    """Per-channel broadcast parameters and the knots, in x's (compute) dtype."""

    def __init__(self, x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                 axis):
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

    def slope_at(self, x):
        """slope(x): K_L left of k_0, s_i on [k_i, k_{i+1}), K_R from k_N on."""
        k = self.knots
        inside = K.zeros_like(x)
        for i in range(self.n):
            inside = inside + K.where((x >= k[i]) & (x < k[i + 1]), self.slopes[i], 0.0)
        return K.where(x < k[0], self.kl + K.zeros_like(x),
                       K.where(x >= k[-1], self.kr + K.zeros_like(x), inside))


def npwlu_forward(x, left_bound, widths, start_value, slopes, left_slope, right_slope,
                  axis=-1):
    """Pure forward of N-PWLU (hinge form, see module docstring) in x's dtype.

    Example:
        >>> one = K.ones([1])
        >>> y = npwlu_forward(K.convert_to_tensor([-3.0, 0.5, 3.0]), -2.0 * one[0],
        ...                   one * 4.0, 0.0 * one[0], one, 0.0 * one[0], one[0])
        >>> [float(v) for v in y]        # one interval [-2, 2] of slope 1, K_R = 1
        [0.0, 2.5, 5.0]
    """
    axis = axis % len(x.shape)
    p = _Pieces(x, left_bound, widths, start_value, slopes, left_slope, right_slope, axis)
    k = p.knots
    y = p.start + times(p.kl, K.minimum(x - k[0], 0.0))
    for i in range(p.n):
        y = y + p.slopes[i] * K.minimum(K.maximum(x - k[i], 0.0), p.widths[i])
    y = y + times(p.kr, K.maximum(x - k[-1], 0.0))
    return K.where(K.isnan(x), x, y)


def npwlu_backward(x, left_bound, widths, start_value, slopes, left_slope, right_slope, dy,
                   axis=-1, compiled=False):
    """Pure backward: gradients for (x, B_L, widths, Y_0, slopes, K_L, K_R), own shapes.

    Example:
        >>> one = K.ones([1])
        >>> x = K.convert_to_tensor([-3.0, 0.5, 3.0])
        >>> grads = npwlu_backward(x, -2.0 * one[0], one * 4.0, 0.0 * one[0], one,
        ...                        0.0 * one[0], one[0], K.ones_like(x))
        >>> [float(v) for v in grads[0]]          # df/dx: K_L, s_0, K_R
        [0.0, 1.0, 1.0]
    """
    axis = axis % len(x.shape)
    p = _Pieces(x, left_bound, widths, start_value, slopes, left_slope, right_slope, axis)
    k = p.knots
    xs = _finite(x)
    slope = p.slope_at(xs)
    columns = [dy, dy * _finite(K.minimum(xs - k[0], 0.0)),
               dy * _finite(K.maximum(xs - k[-1], 0.0)), -(dy * slope)]
    columns += [dy * K.minimum(K.maximum(_finite(xs - k[i]), 0.0), p.widths[i])
                for i in range(p.n)]
    columns += [K.where(xs >= k[j + 1], dy * (p.slopes[j] - slope), 0.0) for j in range(p.n)]
    sums = reduce_columns(columns, [p.bshape] * len(columns), compiled)
    flat = [K.reshape(s, (-1,)) if p.channelwise else K.reshape(s, ()) for s in sums]
    g_start, g_kl, g_kr, g_left = flat[:4]
    g_slopes = K.stack(flat[4:4 + p.n], axis=-1)
    g_widths = K.stack(flat[4 + p.n:], axis=-1)

    def shaped(t, like):
        return K.reshape(t, static_shape(like))

    return (dy * slope, shaped(g_left, left_bound), shaped(g_widths, widths),
            shaped(g_start, start_value), shaped(g_slopes, slopes),
            shaped(g_kl, left_slope), shaped(g_kr, right_slope))


def _relu(x):
    return K.where(x < 0, K.zeros_like(x), x)


def _forward_kernel(x, left_bound, widths, start_value, slopes, left_slope, right_slope, active,
                    axis, compiled):
    cdt = compute_dtype(x.dtype)
    (xc,) = to_compute(x, dtype=cdt)
    params = to_compute(left_bound, widths, start_value, slopes, left_slope, right_slope,
                        dtype=cdt)
    y = npwlu_forward(xc, *params, axis=axis)
    return K.cast(K.where(active > 0.5, y, _relu(xc)), x.dtype)


def _backward_kernel(x, left_bound, widths, start_value, slopes, left_slope, right_slope, active,
                     dy, axis, compiled):
    cdt = compute_dtype(x.dtype)
    xc, dyc = to_compute(x, dy, dtype=cdt)
    params = (left_bound, widths, start_value, slopes, left_slope, right_slope)
    grads = npwlu_backward(xc, *to_compute(*params, dtype=cdt), dyc, axis=axis,
                           compiled=compiled)
    on = active > 0.5
    relu_dx = K.where(xc > 0, dyc, K.zeros_like(dyc))
    grad_x = K.cast(K.where(on, grads[0], relu_dx), x.dtype)
    frozen = tuple(K.where(on, K.cast(g, q.dtype), K.zeros_like(q))
                   for g, q in zip(grads[1:], params))
    return (grad_x,) + frozen + (K.zeros_like(active),)


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
