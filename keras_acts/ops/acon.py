"""ACON-C: f(x) = (p1 - p2) * x * sigmoid(beta * (p1 - p2) * x) + p2 * x
(Ma et al., "Activate or Not: Learning Customized Activation", CVPR 2021).

Written once in ``keras.ops`` (every Keras backend). ``p1``, ``p2`` and ``beta``
broadcast against ``x``: per channel for ACON-C, per sample and channel for
Meta-ACON (``beta`` generated from the input).

With d = p1 - p2, z = beta * d * x, s = sigmoid(z), g = s * (1 + z * (1 - s))::

    f        = x * (d * s + p2)
    df/dx    = d * g + p2
    df/dp1   = x * g
    df/dp2   = x * (1 - g)
    df/dbeta = s * (1 - s) * (d * x)**2

The custom gradient keeps ``x`` and the three (small) parameter tensors only.

Numerics: the sigmoid's argument ``(beta d) x`` is formed from ``x`` clamped to
the finite range, so ``beta d = 0`` never meets an infinite ``x`` (0 * inf); the
output ``x (d s + p2)`` is exactly 0 where its factor is 0, so +-inf inputs give
the function's limits (+-inf, or 0). Gradients use the clamped ``x``, ``z``
clamped to +-1e4 (where the sigmoid is saturated) and ``d x`` clamped to the
finite range inside ``s (1 - s) (d x)^2``; parameter gradients are summed with
:func:`keras_acts.ops._common.safe_sum`. So no finite input gives NaN, results
overflow only where the float64 value is beyond the dtype's range, and the
input gradient at +-inf is the limit ``d g + p2``. At +-inf inputs the
parameter gradients are those of the largest finite input (finite, not inf).
(One regime is not exact: ``s (1 - s)`` underflows for |z| > ~87, so a beta
below ~1e-17 with |x| > 1e19 gives a beta gradient of 0 where the true value
is a representable number.)
"""

import numpy as np
from keras import ops as K

from keras_acts.ops import xla
from keras_acts.ops._common import broadcast_axes
from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import reduction_count
from keras_acts.ops._common import safe_sum
from keras_acts.ops._common import static_shape
from keras_acts.ops._common import to_compute
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean

# Beyond this |z| the sigmoid is 0 or 1 in every float dtype and z * s (1 - s) is 0.
_Z_CLAMP = 1e4


def _finite(x):
    # x clamped to the dtype's finite range (NaN stays NaN).
    big = float(np.finfo(dtype_name(x)).max)
    return K.clip(x, -big, big)


def acon_c_forward(x, p1, p2, beta):
    """Pure forward of ACON-C (all arguments already in one dtype).

    Example:
        >>> float(acon_c_forward(K.convert_to_tensor(1.0), 1.0, 0.0, 1.0))  # sigmoid(1)
        0.7310...
    """
    d = p1 - p2
    z = (beta * d) * _finite(x)
    factor = d * K.sigmoid(z) + p2
    y = x * factor
    # x * 0 is NaN only for x = +-inf, whose limit is then 0.
    return K.where(factor == 0, K.zeros_like(y), y)


def acon_c_backward(x, p1, p2, beta, dy):
    """Pure backward: (dL/dx, dL/dp1, dL/dp2, dL/dbeta), unreduced (shape of x).

    One sigmoid, shared by every gradient.

    Example:
        >>> gx, g1, g2, gb = acon_c_backward(*(K.convert_to_tensor(v) for v in
        ...                                    (1.0, 1.0, 0.0, 1.0, 1.0)))
        >>> round(float(gx), 4)    # d/dx x sigmoid(x) at 1
        0.9277
    """
    d = p1 - p2
    xs = _finite(x)
    z = K.clip((beta * d) * xs, -_Z_CLAMP, _Z_CLAMP)
    dx = _finite(d * xs)       # only for the beta gradient: s1 * dx * dx, 0 * inf-free
    s = K.sigmoid(z)
    s1 = s * (1.0 - s)
    g = s + z * s1
    h = (1.0 - s) - z * s1               # 1 - g, without cancellation at s ~ 1
    dy_xs = dy * xs
    grad_x = dy * (d * g + p2)
    grad_p1 = dy_xs * g
    grad_p2 = dy_xs * h
    grad_beta = dy * (s1 * dx) * dx
    return grad_x, grad_p1, grad_p2, grad_beta


def reduce_columns(columns, shapes, compiled):
    """Sum each of ``columns`` (one shape) to the matching static ``shapes``.

    Like ``[reduce_to_shape(c, s) ...]``: axes where a shape is 1 (or missing
    in front) are summed away, ``None`` entries (the batch) are kept. The axes
    every shape reduces are summed in one :func:`keras_acts.ops.xla.stacked_sums`
    (one stacked reduction under XLA), the rest per column; every sum is a
    :func:`keras_acts.ops._common.safe_sum` (terms scaled by 1 / n first).

    Example:
        >>> a, b = reduce_columns([K.ones([4, 3])] * 2, [(1, 3), (4, 1)], compiled=False)
        >>> tuple(a.shape), tuple(b.shape)
        ((1, 3), (4, 1))
    """
    full = static_shape(columns[0])
    axes = [broadcast_axes(full, s) for s in shapes]
    common = sorted(set.intersection(*(set(a) for a in axes)))
    if common:
        n = 1
        for a in common:
            n = n * (full[a] if full[a] is not None else K.shape(columns[0])[a])
        if not isinstance(n, int):
            n = K.cast(n, columns[0].dtype)
        scale = 1.0 / n
        columns = xla.stacked_sums([c * scale for c in columns], common, compiled)
    else:
        n = 1
    out = []
    for column, shape, column_axes in zip(columns, shapes, axes):
        rest = [a for a in column_axes if a not in common]
        total = safe_sum(column, rest, keepdims=True) * n
        out.append(K.reshape(total, [-1 if d is None else int(d) for d in shape]))
    return out


def _split_mean_forward(x, compiled, axes):
    cdt = compute_dtype(x.dtype)
    (xc,) = to_compute(x, dtype=cdt)
    n = reduction_count(static_shape(xc), axes)
    if n is None:
        n = K.cast(K.prod(K.stack([K.shape(xc)[a] for a in axes])), cdt)
    scale = 1.0 / n
    pooled = K.sum(xc * scale, axis=axes)

    def split():
        inf = K.abs(xc) == float("inf")
        finite = K.sum(K.where(inf, K.zeros_like(xc), xc) * scale, axis=axes)
        direction = K.sum(K.where(inf, K.sign(xc), K.zeros_like(xc)), axis=axes) * scale
        return K.stack([finite, direction])

    return K.cond(K.all(K.isfinite(pooled)),
                  lambda: K.stack([pooled, K.zeros_like(pooled)]), split)


def _split_mean_backward(x, dy, compiled, axes):
    cdt = compute_dtype(x.dtype)
    xc, dyc = to_compute(x, dy, dtype=cdt)
    n = reduction_count(static_shape(xc), axes)
    if n is None:
        n = K.cast(K.prod(K.stack([K.shape(xc)[a] for a in axes])), cdt)
    d_finite = dyc[0]
    for a in sorted(axes):
        d_finite = K.expand_dims(d_finite, a)
    grad = K.where(K.abs(xc) == float("inf"), K.zeros_like(xc), d_finite / n + K.zeros_like(xc))
    return (K.cast(grad, x.dtype),)


_SPLIT_MEANS = {}


def split_mean(x, axes):
    """Mean of ``x`` over ``axes`` as ``stack([finite, direction])``, float32 or wider.

    ``finite`` is the mean with infinite entries counted as 0 and ``direction``
    the mean of ``sign(x)`` over the infinite entries, so that the mean of x
    with +-inf read as +-M (M huge) is ``finite + M * direction``: what Meta-ACON's
    generator needs to give at +-inf what float64 gives at +-1e300. The mean is
    a sum of ``x / n`` (no overflow for finite x); the split costs a second
    pass over x only when the plain mean is not finite. Memory-lean: the
    backward keeps x and computes ``dfinite/dx = 1/n`` on finite entries, 0 on
    infinite ones (``direction`` is piecewise constant).

    Example:
        >>> x = K.convert_to_tensor([[1.0, float("inf"), 3.0]])
        >>> [[round(float(v), 4) for v in K.convert_to_numpy(t)] for t in split_mean(x, [1])]
        [[1.3333], [0.3333]]
    """
    axes = tuple(sorted(a % len(x.shape) for a in axes))
    if axes not in _SPLIT_MEANS:
        _SPLIT_MEANS[axes] = memory_lean(_split_mean_forward, _split_mean_backward, axes=axes)
    return _SPLIT_MEANS[axes](K.convert_to_tensor(x))


def _sigmoid_forward(x, compiled):
    return K.sigmoid(x)


def _sigmoid_backward(x, dy, compiled):
    s = K.sigmoid(x)
    slope = s * (1.0 - s)
    # 0 where the sigmoid is saturated, whatever dy is (inf * 0 would be NaN).
    return (K.where(slope == 0, K.zeros_like(dy), dy * slope),)


_saturating_sigmoid = memory_lean(_sigmoid_forward, _sigmoid_backward)


def saturating_sigmoid(x):
    """sigmoid(x) whose gradient is exactly 0 where the sigmoid is saturated.

    Meta-ACON's beta: at a huge input the gradient reaching beta can overflow to
    inf (its float64 value is beyond float32's range) while the sigmoid's slope
    underflows to 0; the chain rule must give 0 there, as float64 does, not
    ``inf * 0 = NaN``.

    Example:
        >>> [float(v) for v in saturating_sigmoid(K.convert_to_tensor([0.0, -1e38]))]
        [0.5, 0.0]
    """
    return _saturating_sigmoid(K.convert_to_tensor(x))


def _forward_kernel(x, p1, p2, beta, compiled):
    cdt = compute_dtype(x.dtype)
    return K.cast(acon_c_forward(*to_compute(x, p1, p2, beta, dtype=cdt)), x.dtype)


def _backward_kernel(x, p1, p2, beta, dy, compiled):
    cdt = compute_dtype(x.dtype)
    gx, g1, g2, gb = acon_c_backward(*to_compute(x, p1, p2, beta, dy, dtype=cdt))
    params = (p1, p2, beta)
    sums = reduce_columns([g1, g2, gb], [static_shape(p) for p in params], compiled)
    return (K.cast(gx, x.dtype),) + tuple(K.cast(g, p.dtype) for g, p in zip(sums, params))


_acon_c = memory_lean(_forward_kernel, _backward_kernel)


def acon_c(x, p1, p2, beta):
    """ACON-C activation with a memory-lean custom gradient, on every Keras backend.

    ``p1``, ``p2`` and ``beta`` must broadcast against ``x`` with static shapes
    of ``x``'s rank (e.g. ``(1, 1, 1, C)`` for NHWC, or ``(B, 1, 1, C)`` for
    Meta-ACON's per-sample beta); their gradients are summed back to their own
    shapes. Computation runs in float32 for 16-bit inputs; the output has
    ``x``'s dtype. Under :func:`keras_acts.ops.export_mode` (TensorFlow) it
    traces the TFLite-builtin formulation.

    Example:
        >>> x = K.ones([2, 8, 8, 4])
        >>> p = K.ones([1, 1, 1, 4])
        >>> tuple(acon_c(x, p, 0.25 * p, p).shape)
        (2, 8, 8, 4)
    """
    x = K.convert_to_tensor(x)
    check_floating(x, "x")
    p1, p2, beta = (K.convert_to_tensor(t, dtype=None if hasattr(t, "dtype") else dtype_name(x))
                    for t in (p1, p2, beta))
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.acon_c(x, p1, p2, beta)
    rank = len(x.shape)
    p1, p2, beta = (K.reshape(t, (1,) * (rank - len(t.shape)) + tuple(
        -1 if d is None else d for d in t.shape)) if len(t.shape) < rank else t
        for t in (p1, p2, beta))
    return _acon_c(x, p1, p2, beta)
