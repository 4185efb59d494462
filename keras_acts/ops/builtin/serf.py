"""Serf from TFLite builtin ops (inference only; used under ``export_mode``).

Float exports: ``x * (2 GELU(t) / t - 1)``, t = sqrt(2) softplus(x), on TFLite's
builtin GELU op (:func:`serf_gelu_builtin`); full-integer int8 exports: a short
bounded-range form (:func:`serf_int8_builtin`). :func:`erf_builtin` (a rational
erf from MUL/ADD/DIV) and :func:`serf_erf_builtin` remain for runtimes without GELU.
"""

import tensorflow as tf

from keras_acts.ops._common import compute_dtype
from keras_acts.ops.export_mode import export_quantization

# erf as z * P(z^2) / Q(z^2) on z clamped to [-3.8325, 3.8325] (the rational
# approximation of Eigen/XLA's float32 erf). Only MUL, ADD, DIV, MINIMUM, MAXIMUM:
# all TFLite builtins. Measured over float32 (tests/ops/test_serf_op.py): absolute
# and relative error about 3.4e-7, like tf.math.erf itself; the stated bound is 1e-6.
_ERF_CLAMP = 3.832506856900711
_ERF_P = (1.128379143519084, 0.18520832239976145, 0.050955695062380861,
          0.0034082910107109506, 0.00022905065861350646)
_ERF_Q = (1.0, 0.49746925110067538, 0.11098505178285362, 0.014070470171167667,
          0.0010179625278914885, 0.000023547966471313185, -1.1791602954361697e-7)
ERF_BUILTIN_MAX_ABS_ERROR = 1e-6


def _polynomial(coefficients, z):
    # Horner from the leading coefficient (no zeros_like * z: two fewer TFLite ops).
    result = coefficients[-1] * z + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result = result * z + c
    return result


def erf_builtin(z):
    """erf(z) from TFLite-builtin ops only (MUL, ADD, DIV, MINIMUM, MAXIMUM).

    Rational approximation z P(z^2) / Q(z^2) on z clamped to [-3.83, 3.83];
    absolute and relative error below ``ERF_BUILTIN_MAX_ABS_ERROR`` (1e-6) over
    float32 (measured: 3.4e-7, as tf.math.erf). Accurate near 0 too, so
    x * erf(softplus(x)) keeps its relative accuracy for negative x.

    Example:
        >>> float(erf_builtin(tf.constant(0.5)))   # erf(0.5) = 0.5204999
        0.52049...
    """
    z = tf.clip_by_value(z, -_ERF_CLAMP, _ERF_CLAMP)
    z2 = z * z
    return z * _polynomial(_ERF_P, z2) / _polynomial(_ERF_Q, z2)


# Serf on TFLite's builtin GELU: with GELU(t) = t * Phi(t) = t (1 + erf(t / sqrt2)) / 2,
# erf(s) = (2 GELU(sqrt2 s) - sqrt2 s) / (sqrt2 s). The denominator is kept at or above
# _GELU_MIN_T: the builtin softplus rounds to exactly 0 below x ~ -16.6 (1 + e^x == 1 in
# float32), where the numerator is exactly 0, so the factor is 0, not 0/0. 2^-24 is the
# smallest float16 subnormal: float16 exports store the constant exactly (1e-20 would
# round to 0 and bring the NaN back). Where 0 < t < 2^-24 the factor is off by at most
# t, i.e. |x| t < 17 * 6e-8 in y.
_SQRT2 = 1.4142135623730951
# softplus(x) = log(1 + exp(min(x, 20))): above 20 the factor erf(softplus(x)) is
# exactly 1 in float32 (it is from 3.92 on), so clipping changes nothing, and exp
# never overflows. Below 0, 1 + e^x rounds to a float32 next to 1: softplus carries
# an absolute error of about one ulp of 1 (6e-8), which moves the factor by ~7e-8.
_SOFTPLUS_CLIP = 20.0
_GELU_MIN_T = 2.0 ** -24


def serf_gelu_builtin(x):
    """Serf on TFLite's builtin GELU: ``x * (2 GELU(t) - t) / t``, t = sqrt(2) softplus(x).

    Since GELU(t) = t Phi(t) = t (1 + erf(t / sqrt 2)) / 2, the factor equals
    erf(softplus(x)) exactly. ``tf.nn.gelu(approximate=False)`` traces
    ``0.5 t (1 + erf(t / sqrt 2))``, which the TFLite converter fuses into one
    GELU op (XNNPACK runs it); softplus is ``log(1 + exp(min(x, 20)))`` (above
    20 the factor is exactly 1 either way; the clip keeps EXP finite). 11 builtin
    ops per site (MINIMUM, EXP, ADD, LOG, MUL, MAXIMUM, GELU, MUL, SUB, DIV, MUL)
    instead of the ~32 of ``x * erf_builtin(softplus(x))`` (and the 14 of the
    earlier ``relu(x) + log(1 + exp(-|x|))`` softplus).

    Guards: the denominator is ``max(t, 2**-24)`` (softplus rounds to 0 below
    x ~ -16.6 in float32, where GELU(0) / 0 would be NaN; there the numerator
    is exactly 0, so Serf = 0); for large x, GELU(t) = t and the factor is
    exactly 1, so Serf = x. Accuracy: the
    factor is formed as 2 Phi(t) - 1, so for very negative x (tiny softplus)
    it carries an absolute error of a few float32 ulps of 1 -- tiny next to
    the tensor's magnitude (the parity metric of the export tests), large
    relative to the tiny value itself. XNNPACK's GELU is its own approximation;
    the export tests assert the bound on the LiteRT interpreter with XNNPACK on.
    Inference only (used under ``export_mode``).

    Example:
        >>> round(float(serf_gelu_builtin(tf.constant(1.0))), 4)   # 1 * erf(log(1 + e))
        0.9367
    """
    sp = tf.math.log(1.0 + tf.exp(tf.minimum(x, _SOFTPLUS_CLIP)))
    t = sp * _SQRT2
    factor = (2.0 * tf.nn.gelu(t, approximate=False) - t) / tf.maximum(t, _GELU_MIN_T)
    return x * factor


def serf_erf_builtin(x):
    """Serf as ``x * erf_builtin(softplus(x))`` (the rational erf; no GELU op).

    The float export form before the GELU one (about 32 builtin ops per site);
    kept for converters/runtimes without a GELU kernel. Inference only.

    Example:
        >>> round(float(serf_erf_builtin(tf.constant(1.0))), 4)
        0.9367
    """
    sp = tf.maximum(x, 0) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))
    # No -inf guard here: EQUAL/SELECT would split the XNNPACK delegate's graph at
    # every Serf site; the exported model gives NaN (not 0) for x = -inf only.
    return x * erf_builtin(sp)


def serf_builtin(x):
    """Serf from TFLite-builtin ops (inference only; used under ``export_mode``).

    Float exports: :func:`serf_gelu_builtin` (the builtin GELU op), computed in
    float32 for 16-bit ``x``. Under ``export_mode(quantization="int8")``:
    :func:`serf_int8_builtin` (a short bounded-range form; every op of a long
    form would be requantized to 8 bits).

    Example:
        >>> round(float(serf_builtin(tf.constant([1.0]))[0]), 4)
        0.9367
    """
    if export_quantization() == "int8":
        return serf_int8_builtin(x)
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    return tf.cast(serf_gelu_builtin(xc), dtype)


# Serf for full-integer int8 export: x * sigmoid(P(q)), q = clip(x, -9, 3.5), P a
# cubic fitted (float64, Lawson-weighted least squares towards minimax) to
# x * erf(softplus(x)) on [-14, 14]. P is increasing; sigmoid(P(-9)) = 9.8e-7,
# 1 - sigmoid(P(3.5)) = 2.9e-5. Max abs error 0.0065 on [-14, 14] (|x| <= 14 covers
# BN-normalised activations); beyond, |error| <= 2.9e-5 |x|.
_SERF_INT8_CLIP = (-9.0, 3.5)
_SERF_INT8_P = (0.8026012622550618, 1.662126470371396, 0.2260069340237381,
                0.024677605071689323)
SERF_INT8_MAX_ABS_ERROR = 0.0066  # bound on |x| <= 14, asserted in tests/export/test_tflite.py


def serf_int8_builtin(x):
    """Serf for full-integer int8 export: ``x * sigmoid(P(clip(x, -9, 3.5)))``.

    ``P`` is a cubic (Horner form) fitted in float64 (weighted least squares
    iterated towards minimax) so that the whole function has max abs error
    ``SERF_INT8_MAX_ABS_ERROR`` (0.0066) against
    x * erf(softplus(x)) for |x| <= 14, and at most 2.9e-5 |x| beyond (the clip
    bounds are where sigmoid(P) is within 1e-6 of 0 / 2.9e-5 of 1). Nine ops
    (MAXIMUM, MINIMUM, three MUL/ADD pairs, LOGISTIC, MUL), every intermediate
    bounded (|q| <= 9, sigmoid input in [-14, 10.5]) and the nonlinearity in
    TFLite's int8 LOGISTIC lookup table, so int8 requantization costs about one
    output LSB (simulated: 1.1 LSB) instead of compounding over ~30 ops of
    :func:`erf_builtin`. Float accuracy is int8-grade only: used solely under
    ``export_mode(quantization="int8")``.

    Example:
        >>> abs(float(serf_int8_builtin(tf.constant(1.0))) - 0.9367) < 0.0066
        True
    """
    dtype = x.dtype
    xc = tf.cast(x, compute_dtype(dtype))
    q = tf.clip_by_value(xc, *_SERF_INT8_CLIP)
    a0, a1, a2, a3 = _SERF_INT8_P
    logit = ((a3 * q + a2) * q + a1) * q + a0
    return tf.cast(xc * tf.sigmoid(logit), dtype)
