"""Serf: f(x) = x * erf(softplus(x))  (Nag & Bhattacharyya, "SERF: Towards better
training of deep neural networks using log-Softplus ERror activation Function",
WACV 2023).

Written once in ``keras.ops`` (every Keras backend); :func:`serf` wires the pure
forward and backward into :func:`keras_acts.ops.gradient.memory_lean`, whose
backward keeps only ``x`` and recomputes the rest.

Derivative::

    f'(x) = erf(sp) + x * (2 / sqrt(pi)) * exp(-sp**2) * sigmoid(x),   sp = softplus(x)

Numerics (16-bit inputs are computed in float32 and cast back):

* softplus is ``max(x, 0) + log1p(exp(-|x|))``, finite for every finite x.
* where ``erf(softplus(x))`` rounds to 1 in the compute dtype (softplus above
  3.92 in float32, 5.93 in float64) the factor is exactly 1, so f(x) == x
  there, whatever the backend's erf returns near its clamp.
* far left (x < -20 in float32, x < -40 in float64) softplus(x) = e^x and
  erf(s) = 2 s / sqrt(pi) to within rounding, so f = (2/sqrt(pi)) x e^x and
  f' = (2/sqrt(pi)) (1 + x) e^x, with ``e^x`` formed as ``e^(x + 16) e^-16``
  (``x + 16`` is exact): a tiny but normal result (e.g. f(-88) = -6.0e-37) is
  not lost to a flushed subnormal ``e^x``. f(x) underflows only below about
  -92 (float32), where the true value is itself below the smallest normal.
* NaN gives NaN; f(+inf) = +inf with f' = 1; f(-inf) = 0 with f' = 0 (the limits).
"""

import math

from keras import ops as K

from keras_acts.ops._common import check_floating
from keras_acts.ops._common import compute_dtype
from keras_acts.ops._common import dtype_name
from keras_acts.ops._common import to_compute
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.gradient import memory_lean

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# erf(z) rounds to 1 above these (erfc(z) below half an ulp of 1).
_ERF_IS_ONE = {"float32": 3.92, "float64": 5.93}
# Below these, softplus(x) = e^x and erf(s) = 2 s / sqrt(pi) to within rounding.
_FAR_LEFT = {"float32": -20.0, "float64": -40.0}
# Above this x, x * exp(-softplus(x)^2) is 0 (it is < 1e-40 from x = 10 on).
_FAR_RIGHT = 10.0
# Far left, e^x = e^(x + _SHIFT) * e^-_SHIFT keeps every factor normal; x is
# clamped to _VERY_NEGATIVE first, so that -inf gives 0, not -inf * 0.
_SHIFT = 16.0
_VERY_NEGATIVE = -1e30


def stable_softplus(x):
    """softplus(x) = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)).

    Finite for every finite ``x``; equals ``x`` for large positive ``x``.

    Example:
        >>> K.convert_to_numpy(stable_softplus(K.convert_to_tensor([0.0, 100.0], "float32")))
        array([  0.6931472, 100.       ], dtype=float32)
    """
    return K.maximum(x, 0.0) + K.log1p(K.exp(-K.abs(x)))


def _erf_of_softplus(sp):
    # erf(sp) for sp >= 0, exactly 1 where it rounds to 1; the argument is
    # clamped first (some backends' float64 erf gives NaN for huge arguments).
    one = _ERF_IS_ONE[dtype_name(sp)]
    return K.where(sp > one, K.ones_like(sp), K.erf(K.minimum(sp, one)))


def _far_left(x, factor):
    # (2/sqrt(pi)) factor(x) e^x for x < _FAR_LEFT (see module docstring).
    xm = K.maximum(x, _VERY_NEGATIVE)
    return (factor(xm) * _TWO_OVER_SQRT_PI) * K.exp(xm + _SHIFT) * math.exp(-_SHIFT)


def serf_forward(x):
    """Pure forward: x * erf(softplus(x)) in ``x``'s dtype (float32 or float64).

    Example:
        >>> round(float(serf_forward(K.convert_to_tensor(1.0))), 4)   # 1 * erf(log(1 + e))
        0.9367
    """
    y = x * _erf_of_softplus(stable_softplus(x))
    far = x < _FAR_LEFT[dtype_name(x)]
    tail = _far_left(x, lambda xm: xm)           # (2/sqrt(pi)) x e^x
    return K.where(far, tail, y)


def serf_backward(x, dy):
    """Pure backward: dy * f'(x), recomputed from ``x`` alone.

    ``exp(-|x|)`` is evaluated once and shared by softplus and the sigmoid
    (``sigmoid(x) = 1 / (1 + e)`` for x >= 0, ``e / (1 + e)`` below, e = exp(-|x|)).

    Example:
        >>> round(float(serf_backward(K.convert_to_tensor(0.0), K.convert_to_tensor(1.0))), 4)
        0.673
    """
    e = K.exp(-K.abs(x))
    sp = K.maximum(x, 0.0) + K.log1p(e)
    sig = K.where(x >= 0, K.ones_like(e), e) / (1.0 + e)
    # (x * sigmoid(x)) first: it is 0, not -inf * 0, at the most negative finite x;
    # the term is exactly 0 far right (x = +inf would give inf * 0).
    slope = (x * sig) * K.exp(-sp * sp) * _TWO_OVER_SQRT_PI
    slope = K.where(x > _FAR_RIGHT, K.zeros_like(slope), slope)
    dfdx = _erf_of_softplus(sp) + slope
    far = x < _FAR_LEFT[dtype_name(x)]
    tail = _far_left(x, lambda xm: 1.0 + xm)     # (2/sqrt(pi)) (1 + x) e^x
    return dy * K.where(far, tail, dfdx)


def _forward_kernel(x, compiled):
    (xc,) = to_compute(x, dtype=compute_dtype(x.dtype))
    return K.cast(serf_forward(xc), x.dtype)


def _backward_kernel(x, dy, compiled):
    cdt = compute_dtype(x.dtype)
    xc, dyc = to_compute(x, dy, dtype=cdt)
    return (K.cast(serf_backward(xc, dyc), x.dtype),)


_serf = memory_lean(_forward_kernel, _backward_kernel)


def serf(x):
    """Serf activation f(x) = x * erf(softplus(x)) with a memory-lean gradient.

    Accepts float16, bfloat16, float32 and float64 tensors of any shape on
    every Keras backend and returns the same dtype. The backward pass keeps
    only ``x``. Under :func:`keras_acts.ops.export_mode` (TensorFlow) it traces
    the TFLite-builtin formulation of :mod:`keras_acts.ops.builtin`.

    Example:
        >>> import keras_acts
        >>> y = keras_acts.serf(K.convert_to_tensor([-1.0, 0.0, 2.0]))
        >>> [round(float(v), 4) for v in y]
        [-0.3422, 0.0, 1.9947]
    """
    x = K.convert_to_tensor(x)
    check_floating(x, "x")
    if export_mode_enabled():
        from keras_acts.ops import builtin  # noqa: PLC0415 (TensorFlow export forms)

        return builtin.serf(x)
    return _serf(x)
