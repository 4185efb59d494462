"""The one custom-gradient wrapper behind every keras_acts op.

:func:`memory_lean` turns a pure forward ``forward(*tensors) -> y`` and a pure
backward ``backward(*tensors, dy) -> (one gradient per tensor)`` into a
differentiable op whose backward pass keeps only its input tensors (the
activation's input and its small parameters) and recomputes everything else.

Two paths, same functions, same values:

* **TensorFlow fast path** (default on the TensorFlow backend):
  ``tf.custom_gradient``, with forward and backward each run as one nested XLA
  kernel (:func:`keras_acts.ops.xla.kernel`) in graph and eager mode, and
  inlined into the caller's cluster under ``jit_compile=True``.
* **Generic path** (JAX, PyTorch, and TensorFlow inside :func:`generic_gradients`):
  ``keras.ops.custom_gradient``. On JAX the residuals are what the gradient
  closure reads (the inputs); on PyTorch the inputs are saved with
  ``save_for_backward``.

``forward`` and ``backward`` receive the keyword ``compiled`` (True when XLA
compiles them: the TensorFlow fast path and JAX) so they may use the tricks of
:mod:`keras_acts.ops.xla`, plus any ``static`` Python values.

Example:
    >>> from keras import ops as K
    >>> square = memory_lean(lambda x, compiled: x * x,
    ...                      lambda x, dy, compiled: (2 * x * dy,))
    >>> float(square(K.convert_to_tensor(3.0)))
    9.0
"""

import contextlib
import threading

import keras

from keras_acts.ops import xla

_state = threading.local()


@contextlib.contextmanager
def generic_gradients(enabled=True):
    """Context in which the TensorFlow backend too uses ``keras.ops.custom_gradient``.

    The tests run every op through both paths with it.

    Example:
        >>> with generic_gradients():
        ...     assert not fast_path()
    """
    previous = getattr(_state, "generic", False)
    _state.generic = bool(enabled)
    try:
        yield
    finally:
        _state.generic = previous


def fast_path():
    """True when the next op uses the TensorFlow fast path.

    Example:
        >>> fast_path() == (keras.backend.backend() == "tensorflow")
        True
    """
    return keras.backend.backend() == "tensorflow" and not getattr(_state, "generic", False)


def _upstream(args, upstream):
    # keras.ops.custom_gradient passes the upstream gradient positionally (JAX,
    # TensorFlow) or as the keyword `upstream` after the saved inputs (PyTorch).
    return args[0] if upstream is None else upstream


def memory_lean(forward, backward, **static):
    """A differentiable op from a pure forward and backward (see module docstring).

    Args:
        forward: ``forward(*tensors, compiled, **static) -> y``.
        backward: ``backward(*tensors, dy, compiled, **static)`` returning one
            gradient per tensor, each of that tensor's shape and dtype.
        **static: Python values passed to both (e.g. a channel axis).

    Returns ``op(*tensors) -> y``. Every argument of ``op`` must be a tensor
    (a float scalar for flags), so that every backend can save it.

    Example:
        >>> from keras import ops as K
        >>> cube = memory_lean(lambda x, compiled: x ** 3,
        ...                    lambda x, dy, compiled: (3 * x * x * dy,))
        >>> float(cube(K.convert_to_tensor(2.0)))
        8.0
    """

    def op(*tensors):
        if fast_path():
            return _tensorflow_op(forward, backward, static)(*tensors)
        compiled = keras.backend.backend() == "jax"
        fwd = xla.kernel(forward, compiled=compiled, **static)
        bwd = xla.kernel(backward, compiled=compiled, **static)

        @keras.ops.custom_gradient
        def generic(*inputs):
            def grad(*args, upstream=None):
                return tuple(bwd(*inputs, _upstream(args, upstream)))

            return fwd(*inputs), grad

        return generic(*tensors)

    return op


def _tensorflow_op(forward, backward, static):
    import tensorflow as tf  # noqa: PLC0415 (TensorFlow backend only)

    # The kernels are XLA-compiled unless the nested_kernels switch is off.
    compiled = xla.enabled("nested_kernels")
    fwd = xla.kernel(forward, compiled=compiled, **static)
    bwd = xla.kernel(backward, compiled=compiled, **static)

    @tf.custom_gradient
    def op(*tensors):
        def grad(dy):
            return list(bwd(*tensors, dy))

        return fwd(*tensors), grad

    return op
