"""ACON-A and ACON-B (Ma et al., "Activate or Not: Learning Customized
Activation", CVPR 2021, Sec. 3): the smooth maximum ``S_beta(eta_a, eta_b)``
of Swish's and PReLU's pairs, written once in ``keras.ops`` for every backend.

Both are ACON-C, ``(p1 - p2) x sigmoid(beta (p1 - p2) x) + p2 x``, with
parameters fixed::

    ACON-A:  x sigmoid(beta x)                              = ACON-C(p1 = 1, p2 = 0)
    ACON-B:  (1 - p) x sigmoid(beta (1 - p) x) + p x        = ACON-C(p1 = 1, p2 = p)

so they reuse :func:`keras_acts.ops.acon.acon_c_forward` and
:func:`keras_acts.ops.acon.acon_c_backward` (same numerics: +-inf inputs give
the limits, no finite input gives NaN) behind a memory-lean custom gradient of
their own that keeps ``x`` and the small parameters only. Gradients (with
z = beta d x, d = 1 - p, s = sigmoid(z), g = s (1 + z (1 - s)))::

    ACON-A:  df/dx = g (d = 1),      df/dbeta = s (1 - s) x^2
    ACON-B:  df/dx = d g + p,        df/dp = x (1 - g),  df/dbeta = s (1 - s) (d x)^2

(ACON-B's ``df/dp`` is ACON-C's ``df/dp2``: p1 is the constant 1.)
"""

from keras import ops as K

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import static_shape
from keras_acts.ops._common import to_compute
from keras_acts.ops.acon import acon_c_backward
from keras_acts.ops.acon import acon_c_forward
from keras_acts.ops.acon import reduce_columns
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean


def _acon_a_forward(x, beta, compiled):
    cdt = compute_dtype(x.dtype)
    xc, b = to_compute(x, beta, dtype=cdt)
    return K.cast(acon_c_forward(xc, 1.0, 0.0, b), x.dtype)


def _acon_a_backward(x, beta, dy, compiled):
    cdt = compute_dtype(x.dtype)
    xc, b, dyc = to_compute(x, beta, dy, dtype=cdt)
    gx, _, _, gb = acon_c_backward(xc, 1.0, 0.0, b, dyc)
    (gb,) = reduce_columns([gb], [static_shape(beta)], compiled)
    return K.cast(gx, x.dtype), K.cast(gb, beta.dtype)


def _acon_b_forward(x, p, beta, compiled):
    cdt = compute_dtype(x.dtype)
    xc, pc, b = to_compute(x, p, beta, dtype=cdt)
    return K.cast(acon_c_forward(xc, 1.0, pc, b), x.dtype)


def _acon_b_backward(x, p, beta, dy, compiled):
    cdt = compute_dtype(x.dtype)
    xc, pc, b, dyc = to_compute(x, p, beta, dy, dtype=cdt)
    gx, _, gp, gb = acon_c_backward(xc, 1.0, pc, b, dyc)
    gp, gb = reduce_columns([gp, gb], [static_shape(p), static_shape(beta)], compiled)
    return K.cast(gx, x.dtype), K.cast(gp, p.dtype), K.cast(gb, beta.dtype)


_acon_a = memory_lean(_acon_a_forward, _acon_a_backward)
_acon_b = memory_lean(_acon_b_forward, _acon_b_backward)


def _prepare(x, params):
    x = K.convert_to_tensor(x)
    check_floating(x, "x")
    params = [K.convert_to_tensor(t, dtype=None if hasattr(t, "dtype") else dtype_name(x))
              for t in params]
    rank = len(x.shape)
    for t in params:
        if len(t.shape) > rank:
            raise ValueError(
                f"Parameters must broadcast against x of rank {rank}; received a parameter "
                f"of shape {tuple(t.shape)}.")
    params = [K.reshape(t, (1,) * (rank - len(t.shape)) + tuple(
        -1 if d is None else d for d in t.shape)) if len(t.shape) < rank else t
        for t in params]
    return x, params


def acon_a(x, beta):
    """ACON-A, ``x * sigmoid(beta * x)``, with a memory-lean custom gradient.

    ``beta`` broadcasts against ``x`` (static shape, e.g. ``(1, 1, 1, C)`` per
    channel on NHWC; missing leading axes are added); its gradient is summed
    back to its own shape. 16-bit inputs compute in float32; the output has
    ``x``'s dtype. Under :func:`keras_acts.ops.export_mode` (TensorFlow) it
    traces ACON-C's TFLite-builtin form with p1 = 1, p2 = 0.

    Example:
        >>> round(float(acon_a(K.convert_to_tensor(1.0), K.convert_to_tensor(1.0))), 4)
        0.7311
    """
    x, (beta,) = _prepare(x, [beta])
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.acon_c(x, K.ones_like(beta), K.zeros_like(beta), beta)
    return _acon_a(x, beta)


def acon_b(x, p, beta):
    """ACON-B, ``(1 - p) x sigmoid(beta (1 - p) x) + p x``, with a memory-lean gradient.

    ``p`` and ``beta`` broadcast against ``x`` like :func:`acon_a`'s ``beta``.
    ``p = 0`` gives ACON-A; ``beta -> inf`` gives PReLU ``max(x, p x)`` for
    ``p < 1``. Under :func:`keras_acts.ops.export_mode` it traces ACON-C's
    TFLite-builtin form with p1 = 1, p2 = p.

    Example:
        >>> one = K.convert_to_tensor(1.0)
        >>> round(float(acon_b(-one, 0.25 * one, 100.0 * one)), 4)   # ~ PReLU(-1)
        -0.25
    """
    x, (p, beta) = _prepare(x, [p, beta])
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.acon_c(x, K.ones_like(p), p, beta)
    return _acon_b(x, p, beta)
