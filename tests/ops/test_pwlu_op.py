import re

import numpy as np
import pytest
import tensorflow as tf

import reference
from benchmarks.reference import plain_pwlu
from keras_acts import ops

RNG = np.random.default_rng(0)


def _channel_params(c, n):
    left = RNG.uniform(-3, -1, c)
    right = RNG.uniform(1, 3, c)
    points = RNG.normal(size=(c, n + 1))
    return [left, right, points, RNG.normal(size=c), RNG.normal(size=c)]


def _layer_params(n):
    return [np.float64(-2.0), np.float64(1.5), RNG.normal(size=n + 1), np.float64(0.3),
            np.float64(-0.7)]


def _away_from_kinks(x, params, axis=-1):
    # Move samples off the grid points and bounds (where f is not differentiable).
    left, right, points = params[0], params[1], params[2]
    n = points.shape[-1] - 1
    if points.ndim == 2:
        shape = [1] * x.ndim
        shape[axis] = -1
        left, right = np.reshape(left, shape), np.reshape(right, shape)
    u = (x - left) / ((right - left) / n)
    frac = u - np.floor(u)
    return np.where(np.abs(frac - 0.5) > 0.45, x + 0.2 * (right - left) / n, x)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_forward_layerwise_matches_reference(n):
    params = _layer_params(n)
    x = RNG.normal(0, 3, (5, 7, 3))
    np.testing.assert_allclose(ops.pwlu(tf.constant(x), *params).numpy(),
                               reference.pwlu(x, *params), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [-1, 1])
def test_forward_channelwise_matches_reference(axis):
    params = _channel_params(4, 8)
    shape = (3, 5, 6, 4) if axis == -1 else (3, 4, 5, 6)
    x = RNG.normal(0, 3, shape)
    y = ops.pwlu(tf.constant(x), *params, axis=axis).numpy()
    np.testing.assert_allclose(y, reference.pwlu(x, *params, axis=axis), rtol=1e-12, atol=1e-12)
    y32 = ops.pwlu(tf.constant(x, tf.float32), *(np.float32(p) for p in params), axis=axis)
    np.testing.assert_allclose(y32.numpy(), reference.pwlu(x, *params, axis=axis), rtol=1e-5,
                               atol=1e-5)


def test_grid_points_and_bounds_are_exact():
    params = _layer_params(6)
    grid = np.linspace(params[0], params[1], 7)
    y = ops.pwlu(tf.constant(grid), *params).numpy()
    np.testing.assert_allclose(y, params[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channelwise", [True, False])
def test_gradients_numerical_and_autodiff(channelwise):
    n = 5
    params = _channel_params(3, n) if channelwise else _layer_params(n)
    x = RNG.normal(0, 2.5, (4, 6, 3))
    x = _away_from_kinks(x, params)
    w = RNG.normal(size=x.shape)
    args = [tf.constant(a) for a in [x] + params]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(args)
        loss = tf.reduce_sum(ops.pwlu(*args) * w)
    grads = tape.gradient(loss, args)
    values = [x] + params
    for i, g in enumerate(grads):
        assert g.shape == args[i].shape
    reference.assert_gradients_match_numerical(grads, values, reference.pwlu, w, rtol=1e-5,
                                               atol=1e-6)
    if not channelwise:
        with tf.GradientTape() as tape:
            tape.watch(args)
            loss_plain = tf.reduce_sum(plain_pwlu(*args) * w)
        for g, gp in zip(grads, tape.gradient(loss_plain, args)):
            np.testing.assert_allclose(g.numpy(), gp.numpy(), rtol=1e-10, atol=1e-10)


def test_inactive_is_relu_with_zero_parameter_gradients():
    params = [tf.constant(p) for p in _channel_params(3, 4)]
    x = tf.constant(RNG.normal(0, 2, (8, 3)))
    with tf.GradientTape() as tape:
        tape.watch([x] + params)
        y = ops.pwlu(x, *params, active=tf.constant(False))
        loss = tf.reduce_sum(y * 2.0)
    grads = tape.gradient(loss, [x] + params)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_array_equal(grads[0].numpy(), 2.0 * (x.numpy() > 0))
    for g in grads[1:]:
        np.testing.assert_array_equal(g.numpy(), 0.0)


@pytest.mark.parametrize("jit", [False, True])
def test_nan_and_inf_never_index_out_of_range(jit):
    params = [np.float32(p) for p in _channel_params(2, 4)]
    params[3][:] = [0.0, 0.5]  # K_L: zero for channel 0
    params[4][:] = [1.0, 0.0]  # K_R: zero for channel 1
    x = np.array([[np.nan, np.nan], [np.inf, np.inf], [-np.inf, -np.inf], [1e38, -1e38],
                  [0.1, 0.2]], np.float32)
    fn = tf.function(lambda t: ops.pwlu(t, *params), jit_compile=jit)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt)
    g = tape.gradient(y, xt).numpy()
    y = y.numpy()
    ref = reference.pwlu(x.astype(np.float64), *params)
    np.testing.assert_allclose(y, ref, rtol=1e-5, equal_nan=True)
    assert np.isnan(y[0]).all()
    assert y[1, 0] == np.inf and y[2, 1] == -np.inf        # K_R > 0 at +inf, K_L > 0 at -inf
    np.testing.assert_allclose([y[1, 1], y[2, 0]], [params[2][1, -1], params[2][0, 0]],
                               rtol=1e-6)                 # zero outer slopes: the limits
    assert np.isfinite(g[1:]).all()


def test_realigned_parameters():
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.5])
    left, right, points, kl, kr = (t.numpy() for t in ops.realigned_parameters(mean, std, 4))
    np.testing.assert_allclose(left, mean - 3 * std)
    np.testing.assert_allclose(right, mean + 3 * std)
    grid = left[:, None] + (right - left)[:, None] * np.arange(5) / 4
    np.testing.assert_allclose(points, np.maximum(grid, 0))
    np.testing.assert_array_equal(kl, 0.0)
    np.testing.assert_array_equal(kr, 1.0)
    _, _, points, kl, kr = (t.numpy() for t in ops.realigned_parameters(mean, std, 4, "identity"))
    np.testing.assert_allclose(points, grid)
    np.testing.assert_allclose(kl, 1.0)
    np.testing.assert_allclose(kr, 1.0)
    _, _, points, kl, kr = (t.numpy() for t in ops.realigned_parameters(mean, std, 4, "swish"))
    np.testing.assert_allclose(points, grid / (1 + np.exp(-grid)), rtol=1e-6)
    s = 1 / (1 + np.exp(-left))
    np.testing.assert_allclose(kl, s + left * s * (1 - s), rtol=1e-6)
    with pytest.raises(ValueError, match="init"):
        ops.realigned_parameters(mean, std, 4, "tanhh")


def test_shape_errors():
    with pytest.raises(ValueError, match="channels"):
        ops.pwlu(tf.zeros([2, 3]), *_channel_params(4, 2))
    with pytest.raises(ValueError, match="floating"):
        ops.pwlu(tf.zeros([2, 3], tf.int32), *_layer_params(2))


def _gather_computations(hlo):
    # Bodies of the HLO computations that contain a gather.
    bodies = re.split(r"\n(?=%|ENTRY )", hlo)
    return [b for b in bodies if " gather(" in b]


@pytest.mark.parametrize("channelwise", [False, True])
def test_xla_gathers_from_a_materialized_table(channelwise):
    # XLA fuses cheap producers into a gather's operand, which rebuilt PWLU's
    # tables (a concat of point differences) for every element: ~5x slower
    # forward on XLA:CPU. `materialized` must keep the table out of the loop
    # that gathers from it, in the forward and in the backward.
    c, n = 4, 8
    params = [tf.constant(p, tf.float32) for p in (
        _channel_params(c, n) if channelwise else _layer_params(n))]
    x = tf.random.normal([2, 5, 5, c])

    def fwd_bwd(x, *p):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ops.pwlu(x, *p)
        return y, tape.gradient(y, x)

    hlo = tf.function(fwd_bwd, jit_compile=True).experimental_get_compiler_ir(
        x, *params)(stage="optimized_hlo")
    bodies = _gather_computations(hlo)
    assert bodies, hlo
    for body in bodies:
        assert "concatenate(" not in body, body


def test_materialized_is_identity():
    from keras_acts.ops._common import materialized

    t = tf.constant([-2.5, 0.0, 1e30, -0.0, 3.0])
    np.testing.assert_array_equal(materialized(t).numpy(), t.numpy())
    np.testing.assert_array_equal(
        tf.function(materialized, jit_compile=True)(t).numpy(), t.numpy())


@pytest.mark.parametrize("form", ["pwlu_builtin", "pwlu_hinges"])
@pytest.mark.parametrize("channelwise", [False, True])
def test_export_forms_match_reference(form, channelwise):
    # The two inference-only forms (int8 lookup, float sum of hinges) against the
    # float64 reference, inside, outside and at the bounds; float64 and float32.
    import importlib

    fn = getattr(importlib.import_module("keras_acts.ops.builtin.pwlu"), form)
    params = _channel_params(4, 16) if channelwise else _layer_params(16)
    x = np.concatenate([RNG.normal(0, 3, (40, 4)), RNG.normal(0, 30, (20, 4)),
                        np.broadcast_to(np.asarray(params[0]), (1, 4)),
                        np.broadcast_to(np.asarray(params[1]), (1, 4))])
    ref = reference.pwlu(x, *params)
    np.testing.assert_allclose(fn(tf.constant(x), *params).numpy(), ref, rtol=1e-10, atol=1e-10)
    y32 = fn(tf.constant(x, tf.float32), *(tf.constant(p, tf.float32) for p in params)).numpy()
    np.testing.assert_allclose(y32, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())
    y_nan = fn(tf.constant([[np.nan] * 4, [1e30] * 4, [-1e30] * 4]), *params).numpy()
    assert np.all(np.isnan(y_nan[0])) and y_nan.shape == (3, 4)


def test_float_exports_use_hinges_and_int8_the_lookup():
    params = [tf.constant(p, tf.float32) for p in _channel_params(4, 8)]
    x = tf.constant(RNG.normal(0, 3, (6, 4)), tf.float32)

    def graph_ops(quantization):
        with ops.export_mode(quantization=quantization):
            graph = tf.function(lambda x: ops.pwlu(x, *params)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "GatherV2" not in graph_ops(None) and "Relu" in graph_ops(None)
    assert "GatherV2" not in graph_ops("float16")
    assert "GatherV2" in graph_ops("int8")
