"""Batch moments that cannot overflow: the statistics behind PWLU's phase I and
Meta-ACON's generator batch norm, on every Keras backend.

A plain ``mean(x**2)`` overflows float32 from |x| ~ 1.8e19 on, and one such
element makes a running statistic infinite for good. :func:`scaled_moments`
divides by the largest magnitude first (:func:`magnitude`), so every
intermediate stays small for finite input; the caller recombines as
``mean = scale * mean_hat`` and ``std = scale * sqrt(var_hat)`` (finite for
every finite input) or normalises in the scaled domain.

Example:
    >>> from keras import ops as K
    >>> scale, m, v = scaled_moments(K.convert_to_tensor([[1e20], [-1e20]]), [0])
    >>> round(float(scale[0] * K.sqrt(v[0])) / 1e20, 6)   # the standard deviation, 1e20
    1.0
"""

from keras import ops as K


# Scales are kept in [2^-100, 2^100]: compilers may divide by multiplying with
# the reciprocal, and 1 / 3e38 is a subnormal number that CPUs flush to 0.
_SCALE_RANGE = (2.0 ** -100, 2.0 ** 100)


def magnitude(x, axis, keepdims=True):
    """``max |x|`` over ``axis``, clamped to [2^-100, 2^100]: a safe divisor.

    Dividing by it keeps finite values finite and below 2^28 in magnitude, and
    its reciprocal is a normal number (``x / s`` may be compiled as
    ``x * (1 / s)``, and 1 / 3e38 would be flushed to 0).

    Example:
        >>> float(magnitude(K.convert_to_tensor([3e38, 1.0]), 0, keepdims=False))
        1.2676506002282294e+30
    """
    scale = K.max(K.abs(x), axis=axis, keepdims=keepdims)
    return K.clip(scale, *_SCALE_RANGE)


def scaled_moments(x, axes, keepdims=False):
    """``(scale, mean_hat, var_hat)`` of ``x`` over ``axes`` with mean = scale *
    mean_hat and (biased) variance = scale**2 * var_hat.

    ``scale`` is :func:`magnitude` (``max |x|`` over ``axes``, kept in
    [2^-100, 2^100]). For finite ``x`` every output is finite; a NaN or +-inf anywhere in a slice makes that
    slice's outputs non-finite (``scale`` inf or NaN), which is how callers
    detect a batch to skip. ``x`` must not be empty along ``axes`` (callers
    check the static size; an empty dynamic slice gives ``scale = -inf``
    on TensorFlow, again non-finite).

    Example:
        >>> s, m, v = scaled_moments(K.convert_to_tensor([[1.0, 2.0], [3.0, 6.0]]), [0])
        >>> [round(float(t), 5) for t in s * m], [round(float(t), 5) for t in s * s * v]
        ([2.0, 4.0], [1.0, 4.0])
    """
    scale = magnitude(x, axes)
    xs = x / scale
    # sum / n, not keras.ops.mean: on JAX that averages float64 in float32.
    n = 1
    for a in axes:
        n = n * (x.shape[a] if x.shape[a] is not None else K.shape(x)[a])
    n = n if isinstance(n, int) else K.cast(n, x.dtype)
    mean_hat = K.sum(xs, axis=axes, keepdims=True) / n
    var_hat = K.sum(K.square(xs - mean_hat), axis=axes, keepdims=True) / n
    if not keepdims:
        scale, mean_hat, var_hat = (K.squeeze(t, axis=axes) if len(axes) == 1
                                    else K.reshape(t, _reduced_shape(x, axes))
                                    for t in (scale, mean_hat, var_hat))
    return scale, mean_hat, var_hat


def _reduced_shape(x, axes):
    axes = [a % len(x.shape) for a in axes]
    return tuple(-1 if d is None else d for i, d in enumerate(x.shape) if i not in axes)


def all_finite(*tensors):
    """Scalar boolean: every element of every tensor is finite (no NaN, no +-inf).

    Example:
        >>> bool(all_finite(K.ones([2]), K.convert_to_tensor([float("inf")])))
        False
    """
    result = None
    for t in tensors:
        ok = K.all(K.isfinite(t))
        result = ok if result is None else K.logical_and(result, ok)
    return result
