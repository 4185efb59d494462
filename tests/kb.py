"""Backend-neutral test helpers: tensors, gradients and compilation on whichever
Keras backend the run uses (``KERAS_BACKEND`` = tensorflow, jax or torch).

The op and layer tests use these instead of ``tf.GradientTape`` or
``jax.grad`` directly, so the same test runs on every backend.
"""

import contextlib
import inspect

import keras
import numpy as np
import pytest
from keras import ops as K

BACKEND = keras.backend.backend()

tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow",
                                     reason="TensorFlow-specific (tf.distribute, export, graphs)")


def tensor(value, dtype=None):
    """A backend tensor from a NumPy value (dtype kept unless given)."""
    value = np.asarray(value)
    return K.convert_to_tensor(value, dtype=dtype or str(value.dtype))


def numpy(t):
    """NumPy value of a backend tensor or variable (16-bit floats as float32)."""
    value = K.convert_to_numpy(t)
    if value.dtype in (np.float16,) or str(value.dtype) == "bfloat16":
        value = value.astype(np.float32)
    return value


def value_and_grads(fn, args, weights=None):
    """``fn(*args)`` and the gradients of ``sum(fn(*args) * weights)`` w.r.t. every arg.

    ``args`` are backend tensors; ``weights`` a NumPy array (default ones).
    Returns (output, [gradient per arg]) as backend tensors.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            for a in args:
                tape.watch(a)
            y = fn(*args)
            w = tf.ones_like(y) if weights is None else tf.cast(weights, y.dtype)
            loss = tf.reduce_sum(tf.cast(y * w, "float64" if y.dtype == tf.float64
                                         else "float32"))
        return y, tape.gradient(loss, list(args), unconnected_gradients="zero")
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def both(args, w):   # one compiled program: eager JAX dispatches op by op
            y, vjp = jax.vjp(fn, *args)
            return y, vjp(jnp.ones_like(y) if w is None else w.astype(y.dtype))

        w = None if weights is None else jnp.asarray(weights)
        y, grads = jax.jit(both)(list(args), w)
        return y, list(grads)
    if BACKEND == "torch":
        import torch

        leaves = [a.detach().clone().requires_grad_(True) for a in args]
        y = fn(*leaves)
        w = torch.ones_like(y) if weights is None else torch.as_tensor(
            np.asarray(weights), dtype=y.dtype, device=y.device)
        grads = torch.autograd.grad((y * w).sum(), leaves, allow_unused=True)
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(leaves, grads)]
        return y.detach(), grads
    raise NotImplementedError(BACKEND)


def layer_value_and_grads(layer, x, weights=None, training=False):
    """A layer's output and the gradients of ``sum(y * weights)`` w.r.t. ``x`` and
    every trainable weight, on any backend (stateless call on JAX)."""
    variables = layer.trainable_variables
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        non_trainable = [v.value for v in layer.non_trainable_variables]
        kwargs = ({"training": training}
                  if "training" in inspect.signature(layer.call).parameters else {})

        def fn(x, *trainable):
            y, _ = layer.stateless_call(list(trainable), non_trainable, x, **kwargs)
            return y

        def both(args, w):
            y, vjp = jax.vjp(fn, *args)
            return y, vjp(jnp.ones_like(y) if w is None else w.astype(y.dtype))

        w = None if weights is None else jnp.asarray(weights)
        y, grads = jax.jit(both)([x] + [v.value for v in variables], w)
        return y, list(grads)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            w = tf.ones_like(y) if weights is None else tf.cast(weights, y.dtype)
            loss = tf.reduce_sum(tf.cast(y * w, "float64" if y.dtype == tf.float64
                                         else "float32"))
        return y, tape.gradient(loss, [x] + [v.value for v in variables],
                                unconnected_gradients="zero")
    if BACKEND == "torch":
        import torch

        x = x.detach().clone().requires_grad_(True)
        for v in variables:
            v.value.grad = None
        y = layer(x, training=training)
        w = torch.ones_like(y) if weights is None else torch.as_tensor(
            np.asarray(weights), dtype=y.dtype)
        grads = torch.autograd.grad((y * w).sum(), [x] + [v.value for v in variables],
                                    allow_unused=True)
        return y.detach(), [torch.zeros_like(t) if g is None else g
                            for t, g in zip([x] + [v.value for v in variables], grads)]
    raise NotImplementedError(BACKEND)


def jit(fn):
    """``fn`` compiled by the backend's compiler (XLA on TensorFlow and JAX)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def gradient_paths():
    """The gradient paths to test: the TensorFlow fast path and the generic
    ``keras.ops.custom_gradient`` path (only the latter off TensorFlow)."""
    return ["fast", "generic"] if BACKEND == "tensorflow" else ["generic"]


@contextlib.contextmanager
def gradient_path(name):
    """Context selecting a path from :func:`gradient_paths`."""
    from keras_acts.ops.gradient import generic_gradients

    with generic_gradients(name == "generic"):
        yield


def as_float32_limit(value64):
    """A float64 result as float32 would hold it: beyond float32's range it is +-inf."""
    with np.errstate(over="ignore"):
        return np.asarray(value64, np.float64).astype(np.float32)


def plain(name):
    """Plain autodiff (no custom gradient) of each formula: the baselines."""
    from keras_acts.ops import plain as plain_ops

    return getattr(plain_ops, f"plain_{name}")



def dtype_of(t):
    """Standard dtype name of a backend tensor."""
    return keras.backend.standardize_dtype(t.dtype)


# Keras' torch backend computes some float64 ops in float32 (keras result_type
# maps float64 to float32 off TensorFlow; JAX keeps float64 once
# jax_enable_x64 is on, which tests/conftest.py sets).
float64_only = pytest.mark.skipif(BACKEND == "torch",
                                  reason="Keras' torch ops demote float64 to float32")
DTYPES = ["float16", "bfloat16", "float32"] + ([] if BACKEND == "torch" else ["float64"])
# The widest float dtype a backend computes in (for the +-1e300 limit checks).
FLOAT64 = "float32" if BACKEND == "torch" else "float64"
