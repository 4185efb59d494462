import numpy as np
import pytest
import tensorflow as tf

import reference
from benchmarks.reference import plain_serf
from keras_acts import ops
from keras_acts.ops import builtin
from keras_acts.ops.builtin.serf import ERF_BUILTIN_MAX_ABS_ERROR
from keras_acts.ops.serf import stable_softplus


def _grad(fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y, tape.gradient(y, x)


def test_forward_matches_float64_reference():
    x = np.concatenate([np.linspace(-30, 30, 2001), np.random.default_rng(0).normal(0, 5, 500)])
    np.testing.assert_allclose(ops.serf(tf.constant(x)).numpy(), reference.serf(x),
                               rtol=1e-12, atol=1e-14)
    y32 = ops.serf(tf.constant(x, tf.float32)).numpy()
    np.testing.assert_allclose(y32, reference.serf(x.astype(np.float32)), rtol=2e-6, atol=2e-7)


def test_gradient_matches_numerical_and_autodiff():
    x = np.random.default_rng(1).normal(0, 3, 64)
    w = np.random.default_rng(2).normal(size=64)
    _, g = _grad(lambda t: tf.reduce_sum(ops.serf(t) * w), x)
    num = reference.numeric_grad(lambda v: np.sum(reference.serf(v) * w), x)
    np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-8)
    _, g_plain = _grad(lambda t: tf.reduce_sum(plain_serf(t) * w), x)
    np.testing.assert_allclose(g.numpy(), g_plain.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_finite_output_and_gradient_for_every_finite_input(dtype):
    info = tf.as_dtype(dtype)
    big = float(info.max)
    x = np.concatenate([np.linspace(-1.0, 1.0, 4001) * big, np.linspace(-120, 120, 4001),
                        [-big, big, 0.0, 11.0, 12.0, 89.0, 100.0, -100.0]])
    xt = tf.cast(tf.constant(x), dtype)
    y, g = _grad(ops.serf, xt)
    assert y.dtype == info and g.dtype == info
    assert np.all(np.isfinite(tf.cast(y, tf.float64).numpy()))
    assert np.all(np.isfinite(tf.cast(g, tf.float64).numpy()))
    # Large inputs: f(x) = x and f'(x) = 1.
    y_big, g_big = (tf.cast(t, tf.float64).numpy()[-4:-1] for t in _grad(ops.serf, xt[-5:]))
    np.testing.assert_allclose(g_big[-2:], 1.0, rtol=1e-2)


def test_naive_softplus_is_what_the_stable_one_avoids():
    # The check above can fail: the naive formula really overflows.
    x = tf.constant([100.0], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x * tf.math.erf(tf.math.log(1.0 + tf.exp(x)))
    assert not np.all(np.isfinite(tape.gradient(y, x).numpy()))
    assert np.isinf(tf.math.log(1.0 + tf.exp(tf.constant(12.0, tf.float16))).numpy())
    np.testing.assert_allclose(stable_softplus(tf.constant(100.0)).numpy(), 100.0)


def test_nan_and_inf():
    x = tf.constant([np.nan, np.inf, -np.inf, 1.0])
    y, g = _grad(ops.serf, x)
    y, g = y.numpy(), g.numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 0.0
    assert np.isnan(g[0]) and g[2] == 0.0 and np.isfinite(g[3])
    np.testing.assert_allclose(y, reference.serf([np.nan, np.inf, -np.inf, 1.0]), equal_nan=True)


def test_erf_builtin_error_bound_over_float32():
    z = tf.constant(np.concatenate([np.linspace(-10, 10, 2_000_001), [0.0, 1e-30, -1e-30]]),
                    tf.float32)
    err = np.max(np.abs(builtin.erf_builtin(z).numpy().astype(np.float64)
                        - reference._erf(z.numpy().astype(np.float64))))
    assert err <= ERF_BUILTIN_MAX_ABS_ERROR


def test_export_mode_uses_builtin_erf_and_matches():
    x = tf.constant(np.linspace(-20, 20, 4001), tf.float32)

    @tf.function
    def traced(t):
        with ops.export_mode():
            return ops.serf(t)

    graph = traced.get_concrete_function(x).graph
    assert not [op for op in graph.get_operations() if op.type == "Erf"]
    np.testing.assert_allclose(traced(x).numpy(), reference.serf(x.numpy()), atol=2e-6)


def test_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        ops.serf(tf.constant([1, 2]))
