"""Helpers shared by the pure activation ops, written once in ``keras.ops`` for
every Keras backend: dtype handling, argument checks, broadcasting reductions
that cannot overflow, and guards for ``0 * inf``.

Nothing here holds Keras state, and nothing here is specific to a compiler
(those tricks live in :mod:`keras_acts.ops.xla`).
"""

import keras
from keras import ops as K

_HALF_DTYPES = ("float16", "bfloat16")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def dtype_name(x):
    """The standard Keras dtype name of a tensor, variable or dtype.

    Example:
        >>> dtype_name(K.zeros([2], "float16"))
        'float16'
    """
    dtype = getattr(x, "dtype", x)
    return keras.backend.standardize_dtype(dtype)


def compute_dtype(dtype):
    """Dtype the maths runs in: float32 for 16-bit floats, else ``dtype`` itself.

    Half-precision inputs are up-cast inside the (fused) elementwise kernels,
    so mixed precision keeps its memory savings (tensors stored and returned
    in 16 bits) without 16-bit overflow inside exp/erf/softplus.

    Example:
        >>> compute_dtype("float16")
        'float32'
    """
    name = keras.backend.standardize_dtype(dtype)
    return "float32" if name in _HALF_DTYPES else name


def check_floating(x, name="inputs"):
    """Raise ``ValueError`` unless ``x`` has a floating dtype.

    Example:
        >>> check_floating(K.zeros([2, 3]))  # passes
    """
    dtype = dtype_name(x)
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(
            f"`{name}` must be a floating tensor (float16, bfloat16, float32 or "
            f"float64); received dtype={dtype}.")


def normalize_axis(x, axis):
    """``axis`` as a non-negative index into ``x``'s dimensions; ValueError naming
    the allowed range otherwise.

    Example:
        >>> import numpy as np
        >>> normalize_axis(np.zeros((2, 3)), -1)
        1
    """
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"`axis` must be in [{-rank}, {rank - 1}] for x of rank {rank}; "
                         f"received axis={axis}.")
    return axis % rank


def to_compute(*tensors, dtype):
    """Cast every tensor to ``dtype`` (a no-op where it already has it).

    Example:
        >>> [dtype_name(t) for t in to_compute(K.ones([1], "float16"), dtype="float32")]
        ['float32']
    """
    return [t if dtype_name(t) == dtype else K.cast(t, dtype) for t in tensors]


def static_shape(x):
    """The static shape of a tensor as a tuple (``None`` for unknown dimensions).

    Example:
        >>> static_shape(K.zeros([2, 3]))
        (2, 3)
    """
    return tuple(None if d is None else int(d) for d in x.shape)


def broadcast_axes(full_shape, shape):
    """Axes of a ``full_shape`` tensor that a tensor of ``shape`` was broadcast along.

    ``shape`` has the rank of ``full_shape`` (its size-1 axes count) or is a
    suffix of it (the missing leading axes count). Static shapes only.

    Example:
        >>> broadcast_axes((4, 8, 8, 3), (1, 1, 1, 3))
        [0, 1, 2]
    """
    rank = len(full_shape)
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    return [a for a in range(rank) if padded[a] == 1 and full_shape[a] != 1]


def reduction_count(full_shape, axes):
    """How many elements a sum over ``axes`` of a ``full_shape`` tensor adds up, or None.

    Example:
        >>> reduction_count((4, 8, 8, 3), [0, 1, 2])
        256
    """
    count = 1
    for a in axes:
        if full_shape[a] is None:
            return None
        count *= full_shape[a]
    return count


def safe_sum(t, axis, count=None, keepdims=False):
    """``sum(t, axis)`` that cannot overflow in an intermediate: ``sum(t / n) * n``.

    A plain sum of finite values near the dtype's maximum can overflow in a
    partial sum and meet an infinity of the other sign (NaN). Each term is
    scaled by ``1 / n`` first (``n`` the number of terms, ``count`` when given),
    so every partial sum stays finite, and the result overflows to +-inf only
    where the true sum is beyond the dtype's range. The scaling is a multiply
    fused into the reduction.

    Example:
        >>> float(safe_sum(K.convert_to_tensor([3e38, 3e38, -3e38, -3e38]), 0))
        0.0
    """
    axes = [axis] if isinstance(axis, int) else list(axis)
    if not axes:
        return t
    n = count if count is not None else reduction_count(static_shape(t), axes)
    if n is None:
        n = 1
        for a in axes:
            n = n * K.shape(t)[a]
        n = K.cast(n, t.dtype)
    if isinstance(n, int) and n <= 1:
        return K.sum(t, axis=axes, keepdims=keepdims)
    return K.sum(t * (1.0 / n), axis=axes, keepdims=keepdims) * n


def reduce_to_shape(grad, shape):
    """Sum ``grad`` over the axes a tensor of static ``shape`` was broadcast along.

    ``shape`` must have the rank of ``grad`` (size-1 axes are summed away) or be
    a suffix of it (leading axes are summed away). Uses :func:`safe_sum`.

    Example:
        >>> K.convert_to_numpy(reduce_to_shape(K.ones([4, 3]), (1, 3)))
        array([[4., 4., 4.]], dtype=float32)
    """
    shape = tuple(int(d) for d in shape)
    axes = broadcast_axes(static_shape(grad), shape)
    return K.reshape(safe_sum(grad, axes, keepdims=True), shape)


def times(a, b):
    """``a * b``, but exactly 0 where either factor is 0 (``0 * inf`` gives 0, not NaN).

    NaN in either factor still gives NaN. Used where the float64 value of a
    product at a huge finite argument is 0 (a limit), so that float32 at +-inf
    agrees with it.

    Example:
        >>> float(times(K.convert_to_tensor(0.0), K.convert_to_tensor(float("inf"))))
        0.0
    """
    prod = a * b
    zero = (a == 0) | (b == 0)
    return K.where(zero, K.zeros_like(prod), prod)


def is_tensorflow():
    """True when Keras runs on the TensorFlow backend.

    Example:
        >>> is_tensorflow() in (True, False)
        True
    """
    return keras.backend.backend() == "tensorflow"
