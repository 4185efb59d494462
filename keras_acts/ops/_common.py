"""Helpers shared by the pure activation ops: dtype handling, broadcasting
reductions and the export-mode switch.

Nothing here holds Keras state; every function is a plain TensorFlow function.
"""

import contextlib
import threading

import tensorflow as tf

_HALF_DTYPES = (tf.float16, tf.bfloat16)
_state = threading.local()


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


def export_mode_enabled():
    """True inside :func:`export_mode`: ops use TFLite-builtin formulations.

    Example:
        >>> with export_mode():
        ...     assert export_mode_enabled()
    """
    return getattr(_state, "export", False)


@contextlib.contextmanager
def export_mode(enabled=True):
    """Context in which the ops trace inference-only, TFLite-builtin graphs.

    Inside it the ops skip their custom gradients (a converted model never
    differentiates) and replace ops that TFLite lacks as builtins (``tf.Erf``)
    by builtin formulations whose error is documented in each op.

    Example:
        >>> with export_mode():
        ...     y = serf(tf.constant([1.0]))   # uses erf_builtin, no tf.Erf
    """
    previous = export_mode_enabled()
    _state.export = enabled
    try:
        yield
    finally:
        _state.export = previous
