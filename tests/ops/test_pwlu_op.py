"""PWLU op on every backend: float64 reference, gradients, phase flag, limits,
realignment, and (TensorFlow) the XLA table trick."""

import re

import numpy as np
import pytest

import kb
import reference
from keras_acts import ops
from keras_acts.ops import xla

RNG = np.random.default_rng(0)


@pytest.fixture(params=kb.gradient_paths())
def path(request):
    with kb.gradient_path(request.param):
        yield request.param


def _channel_params(c, n):
    left = RNG.uniform(-3, -1, c)
    right = RNG.uniform(1, 3, c)
    points = RNG.normal(size=(c, n + 1))
    return [left, right, points, RNG.normal(size=c), RNG.normal(size=c)]


def _layer_params(n):
    return [np.float64(-2.0), np.float64(1.5), RNG.normal(size=n + 1), np.float64(0.3),
            np.float64(-0.7)]


def _tensors(values, dtype):
    return [kb.tensor(v, dtype) for v in values]


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


@kb.float64_only
@pytest.mark.parametrize("n", [1, 4, 16])
def test_forward_layerwise_matches_reference(n, path):
    params = _layer_params(n)
    x = RNG.normal(0, 3, (5, 7, 3))
    y = ops.pwlu(kb.tensor(x), *_tensors(params, "float64"))
    np.testing.assert_allclose(kb.numpy(y), reference.pwlu(x, *params), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [-1, 1])
def test_forward_channelwise_matches_reference(axis, path):
    params = _channel_params(4, 8)
    shape = (3, 5, 6, 4) if axis == -1 else (3, 4, 5, 6)
    x = RNG.normal(0, 3, shape)
    if kb.BACKEND != "torch":
        y = ops.pwlu(kb.tensor(x), *_tensors(params, "float64"), axis=axis)
        np.testing.assert_allclose(kb.numpy(y), reference.pwlu(x, *params, axis=axis),
                                   rtol=1e-12, atol=1e-12)
    y32 = ops.pwlu(kb.tensor(x, "float32"), *_tensors(params, "float32"), axis=axis)
    np.testing.assert_allclose(kb.numpy(y32), reference.pwlu(x, *params, axis=axis), rtol=1e-5,
                               atol=1e-5)


@kb.float64_only
def test_grid_points_and_bounds_are_exact(path):
    params = _layer_params(6)
    grid = np.linspace(params[0], params[1], 7)
    y = ops.pwlu(kb.tensor(grid), *_tensors(params, "float64"))
    np.testing.assert_allclose(kb.numpy(y), params[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channelwise", [True, False])
def test_gradients_numerical_and_autodiff(channelwise, path):
    n = 5
    params = _channel_params(3, n) if channelwise else _layer_params(n)
    x = _away_from_kinks(RNG.normal(0, 2.5, (4, 6, 3)), params)
    w = RNG.normal(size=x.shape)
    dtype = kb.FLOAT64
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float64" else dict(rtol=2e-3, atol=2e-4)
    args = _tensors([x] + params, dtype)
    _, grads = kb.value_and_grads(ops.pwlu, args, w)
    for g, a in zip(grads, args):
        assert tuple(g.shape) == tuple(a.shape)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x] + params,
                                               reference.pwlu, w, **tol)
    if not channelwise and dtype == "float64":
        _, plain = kb.value_and_grads(kb.plain("pwlu"), args, w)
        for g, gp in zip(grads, plain):
            np.testing.assert_allclose(kb.numpy(g), kb.numpy(gp), rtol=1e-10, atol=1e-10)


def test_inactive_is_relu_with_zero_parameter_gradients(path):
    params = _tensors(_channel_params(3, 4), "float32")
    x = kb.tensor(RNG.normal(0, 2, (8, 3)), "float32")
    y, grads = kb.value_and_grads(lambda t, *p: ops.pwlu(t, *p, active=False), [x] + params,
                                  np.full((8, 3), 2.0))
    np.testing.assert_array_equal(kb.numpy(y), np.maximum(kb.numpy(x), 0))
    np.testing.assert_array_equal(kb.numpy(grads[0]), 2.0 * (kb.numpy(x) > 0))
    for g in grads[1:]:
        np.testing.assert_array_equal(kb.numpy(g), 0.0)


@pytest.mark.parametrize("compiled", [False, True])
def test_nan_and_inf_never_index_out_of_range(compiled, path):
    params = [np.float32(p) for p in _channel_params(2, 4)]
    params[3][:] = [0.0, 0.5]  # K_L: zero for channel 0
    params[4][:] = [1.0, 0.0]  # K_R: zero for channel 1
    x = np.array([[np.nan, np.nan], [np.inf, np.inf], [-np.inf, -np.inf], [1e38, -1e38],
                  [0.1, 0.2]], np.float32)
    p = _tensors(params, "float32")
    fn = lambda t: ops.pwlu(t, *p)  # noqa: E731
    y, (g,) = kb.value_and_grads(kb.jit(fn) if compiled else fn, [kb.tensor(x)])
    y, g = kb.numpy(y), kb.numpy(g)
    ref = reference.pwlu(x.astype(np.float64), *params)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(y[0]).all()
    assert y[1, 0] == np.inf and y[2, 1] == -np.inf        # K_R > 0 at +inf, K_L > 0 at -inf
    np.testing.assert_allclose([y[1, 1], y[2, 0]], [params[2][1, -1], params[2][0, 0]],
                               rtol=1e-6)                 # zero outer slopes: the limits
    # Issue 11.5: input gradients at +-inf are the float64 ones at +-1e300 (the slopes).
    np.testing.assert_array_equal(g[1], params[4])
    np.testing.assert_array_equal(g[2], params[3])
    assert np.isfinite(g[1:]).all()


@pytest.mark.parametrize("compiled", [False, True])
def test_huge_finite_inputs_never_give_nan(compiled, path):
    # Issue 11.6: x near the float32 maximum gave a +-inf left-slope gradient where
    # float64 gives -1.06e38 (tau in units of a narrow interval overflowed). Every
    # output and gradient is finite or, where the float64 value is beyond float32's
    # range, +-inf.
    big = float(np.finfo(np.float32).max)
    params = [np.array([-0.1, -2.0]), np.array([0.1, 2.0]), RNG.normal(size=(2, 17)),
              np.array([0.35, 2.0]), np.array([0.5, 3.0])]
    x = np.array([[-3e38, -3e38], [3e38, 3e38], [-big, big], [0.05, -1.0],
                  [-1e20, 1e20]], np.float32)
    results = []
    for i, (dtype, xs) in enumerate((("float32", x), (kb.FLOAT64, x.astype(np.float64)))):
        args = _tensors([xs] + params, dtype)
        fn = kb.jit(ops.pwlu) if compiled and i == 0 else ops.pwlu
        y, grads = kb.value_and_grads(fn, args)
        results.append([kb.numpy(y)] + [kb.numpy(g) for g in grads])
    names = ("y", "x", "left_bound", "right_bound", "points", "left_slope", "right_slope")
    for name, a, b in zip(names, *results):
        assert not np.isnan(a).any(), name
        np.testing.assert_allclose(a, kb.as_float32_limit(b), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


@kb.float64_only
def test_realigned_parameters():
    mean, std = kb.tensor([0.5, -1.0]), kb.tensor([2.0, 0.5])
    m, s = kb.numpy(mean), kb.numpy(std)
    left, right, points, kl, kr = (kb.numpy(t) for t in ops.realigned_parameters(mean, std, 4))
    np.testing.assert_allclose(left, m - 3 * s)
    np.testing.assert_allclose(right, m + 3 * s)
    grid = left[:, None] + (right - left)[:, None] * np.arange(5) / 4
    np.testing.assert_allclose(points, np.maximum(grid, 0))
    np.testing.assert_array_equal(kl, 0.0)
    np.testing.assert_array_equal(kr, 1.0)
    _, _, points, kl, kr = (kb.numpy(t) for t in ops.realigned_parameters(mean, std, 4,
                                                                          "identity"))
    np.testing.assert_allclose(points, grid)
    np.testing.assert_allclose(kl, 1.0)
    np.testing.assert_allclose(kr, 1.0)
    _, _, points, kl, kr = (kb.numpy(t) for t in ops.realigned_parameters(mean, std, 4,
                                                                          "swish"))
    np.testing.assert_allclose(points, grid / (1 + np.exp(-grid)), rtol=1e-6)
    sg = 1 / (1 + np.exp(-left))
    np.testing.assert_allclose(kl, sg + left * sg * (1 - sg), rtol=1e-6)
    with pytest.raises(ValueError, match="init"):
        ops.realigned_parameters(mean, std, 4, "tanhh")


def test_realignment_never_gives_zero_width_or_non_finite_bounds():
    # Issue 11.3: a channel with std 0 gets a small documented minimum width
    # (std >= 1e-3 max(1, |mean|)); huge statistics keep finite bounds.
    big = float(np.finfo(np.float32).max)
    mean = kb.tensor([0.0, 5.0, -1e30, 1e38, 3e38], "float32")
    std = kb.tensor([0.0, 0.0, 0.0, 3e38, big], "float32")
    left, right, points, kl, kr = (kb.numpy(t) for t in ops.realigned_parameters(mean, std, 8))
    assert np.isfinite(left).all() and np.isfinite(right).all() and np.isfinite(points).all()
    assert (right > left).all() and np.isfinite(right - left).all()
    np.testing.assert_allclose(right[:2] - left[:2], [6e-3, 3e-2], rtol=1e-5)
    y = ops.pwlu(kb.tensor(np.full((2, 5), 1.0), "float32"),
                 *(kb.tensor(t) for t in (left, right, points, kl, kr)))
    assert np.isfinite(kb.numpy(y)).all()


def test_shape_errors():
    with pytest.raises(ValueError, match="channels"):
        ops.pwlu(kb.tensor(np.zeros([2, 3]), "float32"),
                 *_tensors(_channel_params(4, 2), "float32"))
    with pytest.raises(ValueError, match="floating"):
        ops.pwlu(kb.tensor(np.zeros([2, 3]), "int32"), *_tensors(_layer_params(2), "float32"))


def test_compiler_tricks_change_speed_only(path):
    # Every switch of keras_acts.ops.xla off gives the same values and gradients.
    params = _tensors(_channel_params(3, 6), "float32")
    x = kb.tensor(RNG.normal(0, 2, (4, 5, 3)), "float32")
    w = RNG.normal(size=(4, 5, 3))
    y, grads = kb.value_and_grads(kb.jit(ops.pwlu), [x] + params, w)
    with xla.tricks(nested_kernels=False, materialize_tables=False, stacked_sums=False,
                    plain_gather=False):
        y2, grads2 = kb.value_and_grads(ops.pwlu, [x] + params, w)
    np.testing.assert_allclose(kb.numpy(y), kb.numpy(y2), rtol=1e-6, atol=1e-6)
    for g, g2 in zip(grads, grads2):
        np.testing.assert_allclose(kb.numpy(g), kb.numpy(g2), rtol=1e-5, atol=1e-5)


def _gather_computations(hlo):
    # Bodies of the HLO computations that contain a gather.
    bodies = re.split(r"\n(?=%|ENTRY )", hlo)
    return [b for b in bodies if " gather(" in b]


@kb.tensorflow_only
@pytest.mark.parametrize("channelwise", [False, True])
def test_xla_gathers_from_a_materialized_table(channelwise):
    # XLA fuses cheap producers into a gather's operand, which rebuilt PWLU's
    # tables (a concat of point differences) for every element: ~5x slower
    # forward on XLA:CPU. `materialized` must keep the table out of the loop
    # that gathers from it, in the forward and in the backward.
    import tensorflow as tf

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
    t = kb.tensor([-2.5, 0.0, 1e30, -0.0, 3.0], "float32")
    np.testing.assert_array_equal(kb.numpy(xla.materialized(t, compiled=True)), kb.numpy(t))
    jitted = kb.jit(lambda v: xla.materialized(v, compiled=True))
    np.testing.assert_array_equal(kb.numpy(jitted(t)), kb.numpy(t))


def test_gradient_at_inf_is_exactly_the_outer_slope(path):
    # Issue 11.5: the input gradient at +-inf was the outer slope up to 1 ulp for
    # some bounds (0.99999994 for K_R = 1): fixed bounds that triggered it, and
    # seeded draws.
    rng = np.random.default_rng(5)
    bounds = [(np.array([-2.5289671, -2.3604307]), np.array([2.599759, 2.0141363]))]
    bounds += [(rng.uniform(-3, -1, 2), rng.uniform(1, 3, 2)) for _ in range(20)]
    kl, kr = np.array([0.0, 0.5], np.float32), np.array([1.0, 0.0], np.float32)
    x = kb.tensor(np.array([[np.inf, np.inf], [-np.inf, -np.inf]], np.float32))
    for left, right in bounds:
        points = rng.normal(size=(2, 5))
        p = _tensors((left, right, points, kl, kr), "float32")
        _, (g,) = kb.value_and_grads(lambda t, p=p: ops.pwlu(t, *p), [x])
        g = kb.numpy(g)
        np.testing.assert_array_equal(g[0], kr, err_msg=str((left, right)))
        np.testing.assert_array_equal(g[1], kl, err_msg=str((left, right)))
