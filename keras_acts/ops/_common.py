"""Helpers shared by the pure activation ops: dtype handling and broadcasting
reductions.

Nothing here holds Keras state; every function is a plain TensorFlow function.
"""

import functools

import tensorflow as tf

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def compute_dtype(dtype):
    """Dtype the maths runs in: float32 for 16-bit floats, else ``dtype``.

    Half-precision inputs are up-cast inside the (fused) elementwise kernels,
    so mixed precision keeps its memory savings (tensors stored and returned
    in 16 bits) without 16-bit overflow inside exp/erf/softplus.

    Example:
        >>> compute_dtype(tf.float16)
        tf.float32
    """
    dtype = tf.as_dtype(dtype)
    return tf.float32 if dtype in _HALF_DTYPES else dtype


def check_floating(x, name="inputs"):
    """Raise ``ValueError`` unless ``x`` has a floating dtype.

    Example:
        >>> check_floating(tf.zeros([2, 3]))  # passes
    """
    dtype = tf.as_dtype(x.dtype)
    if not dtype.is_floating:
        raise ValueError(
            f"`{name}` must be a floating tensor (float16, bfloat16, float32 or "
            f"float64); received dtype={dtype.name}."
        )


def reduce_to_shape(grad, shape):
    """Sum ``grad`` over the axes along which a tensor of ``shape`` was broadcast.

    ``shape`` must have the rank of ``grad`` (size-1 dims are summed away) or be
    a suffix of it (leading dims are summed away). Works with dynamic shapes
    and under XLA.

    Example:
        >>> reduce_to_shape(tf.ones([4, 3]), tf.constant([1, 3])).numpy()
        array([[4., 4., 4.]], dtype=float32)
    """
    grad_shape = tf.shape(grad)
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=grad_shape, s1=shape)
    return tf.reshape(tf.reduce_sum(grad, axis=axes), shape)


def in_xla_context():
    """True while tracing code that XLA will compile (``jit_compile=True``).

    The ops use it to pick formulations that XLA compiles well (e.g. fused
    per-channel reductions) and keep plain TensorFlow kernels otherwise.

    Example:
        >>> in_xla_context()
        False
    """
    from tensorflow.python.framework import ops as tf_ops  # noqa: PLC0415
    from tensorflow.python.ops import control_flow_util  # noqa: PLC0415

    return bool(control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()))


_FUSED_CACHE = {}


def fused(fn, **static):
    """``fn(*tensors, **static)`` as one XLA-compiled kernel, unless already inside one.

    The custom gradients call their forward and backward through this: under
    ``jit_compile=True`` the caller's XLA cluster fuses them anyway; in graph or
    eager mode without XLA, a nested ``tf.function(jit_compile=True)`` makes
    each of them one fused CPU/GPU kernel instead of a chain of full-tensor
    TensorFlow ops (the plain graph-mode PWLU was ~25x ReLU, mostly memory
    traffic between small ops). ``static`` are Python values fixed at trace time.

    Example:
        >>> y = fused(serf_forward)(tf.constant([1.0, 2.0]))
    """
    if in_xla_context():
        return functools.partial(fn, **static) if static else fn
    key = (fn, tuple(sorted(static.items())))
    if key not in _FUSED_CACHE:
        _FUSED_CACHE[key] = tf.function(functools.partial(fn, **static), jit_compile=True,
                                        autograph=False)
    return _FUSED_CACHE[key]


def reduce_columns_to_shapes(columns, shapes):
    """Sum each of ``columns`` (same static shape) to the matching ``shapes``.

    Equivalent to ``[reduce_to_shape(c, s) for c, s in zip(columns, shapes)]``.
    Under XLA the columns are stacked and summed over the axes every target
    shape broadcasts along in one reduction (XLA:CPU compiles one stacked
    reduction of a materialised operand into a fast vectorised kernel, while a
    reduction fused with its elementwise producer, or one per column, is several
    times slower); the remaining small sums are then done per column.

    Example:
        >>> a, b = reduce_columns_to_shapes([tf.ones([4, 3])] * 2, [[1, 3], [4, 1]])
        >>> a.shape, b.shape
        (TensorShape([1, 3]), TensorShape([4, 1]))
    """
    rank = columns[0].shape.rank
    static = [tf.get_static_value(tf.convert_to_tensor(s, tf.int32)) for s in shapes]
    full = columns[0].shape
    if (not in_xla_context() or rank is None or not full.is_fully_defined()
            or any(s is None or len(s) > rank for s in static) or len(columns) < 2):
        return [reduce_to_shape(c, s) for c, s in zip(columns, shapes)]
    padded = [[1] * (rank - len(s)) + list(s) for s in static]
    common = [a for a in range(rank) if all(p[a] == 1 for p in padded) and full[a] != 1]
    stacked = tf.stack(columns, axis=0)
    # max(., -inf) is the identity (NaN stays NaN); it keeps the stack from
    # being the reduction's root op, which XLA:CPU lowers to a slow loop.
    stacked = tf.maximum(stacked, tf.constant(float("-inf"), stacked.dtype))
    partial = tf.reduce_sum(stacked, axis=[a + 1 for a in common], keepdims=True)
    return [reduce_to_shape(partial[i], s) for i, s in enumerate(shapes)]


def materialized(table):
    """``table`` itself, computed into its own buffer before XLA gathers from it.

    XLA fuses cheap producers into the operand of a ``gather``, so a lookup
    table built from parameters (a concat of differences, say) is recomputed
    for every element that reads it: on XLA:CPU that made PWLU's forward ~5x
    ReLU instead of ~1.2x. A reduction is never fused into a loop as a producer,
    so the table is returned as ``reduce_sum([table, table * 0])``: equal to
    ``table`` for finite entries (x * 0 cannot be simplified to 0 under IEEE
    rules, so XLA keeps the reduction). Meant for small tables only.

    Example:
        >>> materialized(tf.constant([1.0, 2.0])).numpy()
        array([1., 2.], dtype=float32)
    """
    return tf.reduce_sum(tf.stack([table, table * tf.zeros([], table.dtype)], axis=0), axis=0)
