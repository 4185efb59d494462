"""The elementwise part of ACON-FReLU (Ma et al., "Activate or Not: Learning
Customized Activation", CVPR 2021; official TFNet code), written once in
``keras.ops`` for every Keras backend.

ACON-FReLU is the smooth maximum of FReLU's pair ``(x1, T(x))`` (FReLU, Ma et
al., ECCV 2020: ``max(x, T(x))``, ``T`` a depthwise 3x3 conv + BN)::

    smooth_max(a, t) = (a - t) sigmoid(a - t) + t          (z = a - t)

    d/da = g,   d/dt = 1 - g,   g = s (1 + z (1 - s)),   s = sigmoid(z)

It is ACON-C at ``(z, p1 = 1, p2 = 0, beta = 1)`` plus ``t``: the forward is
:func:`keras_acts.ops.acon.acon_c_forward` (its limits: a = -inf gives t,
a = +inf gives +inf). The custom gradient keeps ``a`` and ``t`` only: as many
bytes as plain autodiff, which keeps ``a - t`` and the sigmoid instead (two
inputs for two intermediates; the op is there for its numerics and its one
fused kernel per pass, not for memory). ``1 - g`` is formed as
``(1 - s) - z s (1 - s)`` (no cancellation where s ~ 1) with ``z`` clamped
where the sigmoid is saturated, so no finite input gives NaN.
"""

from keras import ops as K

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import to_compute
from keras_acts.ops.acon import _Z_CLAMP
from keras_acts.ops.acon import _finite
from keras_acts.ops.acon import acon_c_forward
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean


def _forward(a, t, compiled):
    cdt = compute_dtype(a.dtype)
    ac, tc = to_compute(a, t, dtype=cdt)
    z = ac - tc
    return K.cast(acon_c_forward(z, 1.0, 0.0, 1.0) + tc, a.dtype)


def _backward(a, t, dy, compiled):
    cdt = compute_dtype(a.dtype)
    ac, tc, dyc = to_compute(a, t, dy, dtype=cdt)
    z = K.clip(_finite(ac - tc), -_Z_CLAMP, _Z_CLAMP)
    s = K.sigmoid(z)
    s1 = s * (1.0 - s)
    g = s + z * s1
    h = (1.0 - s) - z * s1
    return K.cast(dyc * g, a.dtype), K.cast(dyc * h, t.dtype)


_smooth_max = memory_lean(_forward, _backward)


def smooth_max(a, t):
    """ACON-FReLU's elementwise part ``(a - t) sigmoid(a - t) + t``, memory-lean.

    ``a`` (x, or its 3x3/2 max-pool) and ``t`` (the funnel condition T(x)) have
    one shape and one floating dtype; 16-bit inputs compute in float32. Under
    :func:`keras_acts.ops.export_mode` (TensorFlow) it traces the builtin form
    :func:`keras_acts.ops.builtin.frelu.smooth_max_builtin` (SUB, LOGISTIC, MUL, ADD).

    Example:
        >>> a, t = K.convert_to_tensor([3.0, -3.0]), K.convert_to_tensor([0.0, 0.0])
        >>> [round(float(v), 4) for v in smooth_max(a, t)]     # swish(a) when t = 0
        [2.8577, -0.1423]
    """
    a, t = K.convert_to_tensor(a), K.convert_to_tensor(t)
    check_floating(a, "a")
    check_floating(t, "t")
    if tuple(a.shape) != tuple(t.shape) or dtype_name(a) != dtype_name(t):
        raise ValueError("`a` and `t` must have one shape and dtype; received "
                         f"{tuple(a.shape)} {dtype_name(a)} and {tuple(t.shape)} "
                         f"{dtype_name(t)}.")
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.smooth_max(a, t)
    return _smooth_max(a, t)
