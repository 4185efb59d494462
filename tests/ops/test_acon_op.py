"""ACON-C op on every backend: float64 reference, gradients, dtypes, limits."""

import numpy as np
import pytest

import kb
import reference
from keras_acts import ops

RNG = np.random.default_rng(0)


@pytest.fixture(params=kb.gradient_paths())
def path(request):
    with kb.gradient_path(request.param):
        yield request.param


def _params(shape):
    return [RNG.normal(size=shape) for _ in range(2)] + [RNG.uniform(0.2, 2.0, size=shape)]


@kb.float64_only
@pytest.mark.parametrize("pshape", [(1, 1, 1, 5), (3, 1, 1, 5), (1, 4, 4, 5), ()])
def test_forward_matches_reference(pshape, path):
    x = RNG.normal(0, 3, (3, 4, 4, 5))
    p1, p2, beta = _params(pshape)
    y = ops.acon_c(kb.tensor(x), *(kb.tensor(p) for p in (p1, p2, beta)))
    np.testing.assert_allclose(kb.numpy(y), reference.acon_c(x, p1, p2, beta), rtol=1e-12,
                               atol=1e-13)
    y32 = ops.acon_c(kb.tensor(x, "float32"), *(kb.tensor(p, "float32") for p in (p1, p2, beta)))
    np.testing.assert_allclose(kb.numpy(y32), reference.acon_c(x, p1, p2, beta), rtol=1e-5,
                               atol=1e-5)


@kb.float64_only
@pytest.mark.parametrize("pshape", [(1, 1, 3), (2, 1, 3)])
def test_gradients_numerical_and_autodiff(pshape, path):
    x = RNG.normal(0, 2, (2, 4, 3))
    w = RNG.normal(size=x.shape)
    params = _params(pshape)
    args = [kb.tensor(a) for a in [x] + params]
    _, grads = kb.value_and_grads(ops.acon_c, args, w)
    _, plain = kb.value_and_grads(kb.plain("acon_c"), args, w)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x] + params,
                                               reference.acon_c, w, rtol=1e-6, atol=1e-7)
    for i, (g, gp) in enumerate(zip(grads, plain)):
        assert tuple(g.shape) == tuple(args[i].shape)
        np.testing.assert_allclose(kb.numpy(g), kb.numpy(gp), rtol=1e-11, atol=1e-12)


def test_float32_gradients_match_reference(path):
    x = RNG.normal(0, 2, (2, 4, 3))
    w = RNG.normal(size=x.shape)
    params = _params((1, 1, 3))
    _, grads = kb.value_and_grads(ops.acon_c, [kb.tensor(a, "float32") for a in [x] + params],
                                  w)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x] + params,
                                               reference.acon_c, w, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_computes_in_float32(dtype, path):
    x = kb.tensor(np.linspace(-60000, 60000, 1001), dtype)
    p = kb.tensor([1.0], "float32")
    y, (g, *_) = kb.value_and_grads(lambda t: ops.acon_c(t, p, 0.25 * p, p), [x])
    assert kb.dtype_of(y) == dtype and kb.dtype_of(g) == dtype
    assert np.all(np.isfinite(kb.numpy(g)))
    np.testing.assert_allclose(kb.numpy(y),
                               reference.acon_c(kb.numpy(x).astype(np.float64), 1.0, 0.25, 1.0),
                               rtol=1e-2)


def _limits(x32, x64, p1, p2, beta, compiled=False):
    # (float32 output and gradients, float64 ones) of ACON-C on x32 and x64.
    out = []
    for x, dtype in ((x32, "float32"), (x64, kb.FLOAT64)):
        args = [kb.tensor(x, dtype)] + [kb.tensor(np.reshape(p, (1, -1)), dtype)
                                        for p in (p1, p2, beta)]
        fn = kb.jit(ops.acon_c) if compiled and dtype == "float32" else ops.acon_c
        y, grads = kb.value_and_grads(fn, args)
        out.append([kb.numpy(y)] + [kb.numpy(g) for g in grads])
    return out


@pytest.mark.parametrize("compiled", [False, True])
def test_inf_gives_the_float64_values_at_1e300(compiled, path):
    # Issue 11.5: p1 = [1, -0.5], p2 = [-0.5, 1], beta = 1 on [[inf, -inf]] gave
    # [[nan, nan]]; the limits are [inf, inf]. Output and input gradient at +-inf
    # equal the float64 values at +-1e300 (cast to float32).
    p1, p2, beta = [1.0, -0.5, 0.7, 2.0], [-0.5, 1.0, 0.7, 0.0], [1.0, 1.0, 2.0, 0.0]
    x32 = np.array([[np.inf, -np.inf, np.inf, -np.inf], [-np.inf, np.inf, -np.inf, np.inf],
                    [np.nan, 1.0, -2.0, 3.0]], np.float32)
    x64 = np.where(np.isinf(x32), np.sign(x32) * 1e300, x32)
    (y, gx, *_), (y64, gx64, *_) = _limits(x32, x64, p1, p2, beta, compiled)
    np.testing.assert_array_equal(y[0, :2], [np.inf, np.inf])
    np.testing.assert_array_equal(y[:2], kb.as_float32_limit(y64[:2]))
    np.testing.assert_array_equal(gx[:2], kb.as_float32_limit(gx64[:2]))
    assert np.isnan(y[2, 0]) and np.isfinite(y[2, 1:]).all()


@pytest.mark.parametrize("compiled", [False, True])
def test_huge_finite_inputs_never_give_nan(compiled, path):
    # Issue 11.6: x = -3e38 gave a NaN beta gradient. Every output and gradient
    # is finite or, where the float64 value is beyond float32's range, +-inf of
    # the right sign.
    big = float(np.finfo(np.float32).max)
    x = np.array([[-3e38, 3e38, big, -big], [1e30, -1e30, 2.0, -1.0],
                  [-3e38, -3e38, 3e38, 3e38]], np.float32)
    p1, p2, beta = [1.2, -0.5, 1.0, 3.0], [-0.5, 1.0, 0.9, -2.0], [1.0, 0.3, 2.0, 1e-3]
    got, want = _limits(x, x.astype(np.float64), p1, p2, beta, compiled)
    for name, a, b in zip(("y", "x", "p1", "p2", "beta"), got, want):
        assert not np.isnan(a).any(), name
        b32 = kb.as_float32_limit(b)
        np.testing.assert_allclose(a, b32, rtol=1e-5, err_msg=name)


def test_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        ops.acon_c(kb.tensor([1, 2], "int32"), 1.0, 0.0, 1.0)


def test_parameter_gradient_shape_after_a_per_sample_beta_trace():
    """The nested XLA kernels read static shapes (which axes a parameter was broadcast
    along). A per-sample beta traced with an unknown batch, (None, 1, 1, C), must not
    serve a later call with (1, 1, 1, C) parameters: before the kernels were cached per
    static input shape, TensorFlow reused that supertype trace and AconC's parameter
    gradient kept the batch axis ("Input to reshape is a tensor with 512 values, but the
    requested shape has 8"), so any AconC model trained after a MetaAcon model failed."""
    import keras

    import keras_acts

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8, 8, 3)).astype("float32")   # 64 + a partial batch of 32
    y = np.arange(96) % 4
    for layer in (keras_acts.MetaAcon, keras_acts.AconC):
        inputs = keras.Input((8, 8, 3))
        h = layer()(keras.layers.Conv2D(8, 3)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(h)))
        model.compile(optimizer="sgd",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        assert all(a.shape == b.shape for a, b in zip(after, before))
        assert any(not np.array_equal(a, b) for a, b in zip(after, before))
