"""Serf op on every backend: float64 reference, gradients, dtypes, limits."""

import numpy as np
import pytest
from keras import ops as K

import kb
import reference
from keras_acts import ops
from keras_acts.ops.serf import stable_softplus

TINY = float(np.finfo(np.float32).tiny)


@pytest.fixture(params=kb.gradient_paths())
def path(request):
    with kb.gradient_path(request.param):
        yield request.param


@kb.float64_only
def test_forward_matches_float64_reference(path):
    x = np.concatenate([np.linspace(-30, 30, 2001), np.random.default_rng(0).normal(0, 5, 500)])
    np.testing.assert_allclose(kb.numpy(ops.serf(kb.tensor(x))), reference.serf(x),
                               rtol=1e-12, atol=1e-14)
    y32 = kb.numpy(ops.serf(kb.tensor(x, "float32")))
    np.testing.assert_allclose(y32, reference.serf(x.astype(np.float32)), rtol=2e-6, atol=2e-7)


@kb.float64_only
def test_gradient_matches_numerical_and_autodiff(path):
    x = np.random.default_rng(1).normal(0, 3, 64)
    w = np.random.default_rng(2).normal(size=64)
    _, (g,) = kb.value_and_grads(ops.serf, [kb.tensor(x)], w)
    num = reference.numeric_grad(lambda v: np.sum(reference.serf(v) * w), x)
    np.testing.assert_allclose(kb.numpy(g), num, rtol=1e-6, atol=1e-8)
    _, (g_plain,) = kb.value_and_grads(kb.plain("serf"), [kb.tensor(x)], w)
    np.testing.assert_allclose(kb.numpy(g), kb.numpy(g_plain), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", kb.DTYPES)
def test_finite_output_and_gradient_for_every_finite_input(dtype, path):
    big = float(np.finfo(np.float64 if dtype == "float64" else np.float32).max)
    big = {"float16": 65504.0, "bfloat16": 3.3895e38}.get(dtype, big)
    x = np.concatenate([np.linspace(-1.0, 1.0, 4001) * big, np.linspace(-120, 120, 4001),
                        [-big, big, 0.0, 11.0, 12.0, 89.0, 100.0, -100.0]])
    xt = kb.tensor(x, dtype)
    y, (g,) = kb.value_and_grads(ops.serf, [xt])
    assert kb.dtype_of(y) == dtype and kb.dtype_of(g) == dtype
    assert np.all(np.isfinite(kb.numpy(y))) and np.all(np.isfinite(kb.numpy(g)))
    # f'(x) = 1 for large x: at the largest value, 89 and 100 (x = [..., -big, big, 0,
    # 11, 12, 89, 100, -100]).
    np.testing.assert_allclose(kb.numpy(g)[[-7, -3, -2]], 1.0, rtol=1e-2)


def test_naive_softplus_is_what_the_stable_one_avoids():
    # The check above can fail: the naive formula really overflows.
    x = kb.tensor([100.0], "float32")
    _, (g,) = kb.value_and_grads(lambda t: t * K.erf(K.log(1.0 + K.exp(t))), [x])
    assert not np.all(np.isfinite(kb.numpy(g)))
    assert np.isinf(kb.numpy(K.log(1.0 + K.exp(kb.tensor(12.0, "float16")))))
    np.testing.assert_allclose(kb.numpy(stable_softplus(kb.tensor(100.0, "float32"))), 100.0)


@pytest.mark.parametrize("compiled", [False, True])
def test_nan_and_inf_give_the_limits_of_the_float64_function(compiled, path):
    # Issue 11.5: outputs and input gradients at +-inf equal the float64 values at
    # +-1e300 (f(+inf) = inf with f' = 1, f(-inf) = 0 with f' = 0); NaN gives NaN.
    fn = kb.jit(ops.serf) if compiled else ops.serf
    y, (g,) = kb.value_and_grads(fn, [kb.tensor([np.nan, np.inf, -np.inf, 1.0], "float32")])
    y, g = kb.numpy(y), kb.numpy(g)
    y64, (g64,) = kb.value_and_grads(ops.serf, [kb.tensor([1e300, -1e300], kb.FLOAT64)])
    assert np.isnan(y[0]) and np.isnan(g[0])
    np.testing.assert_array_equal(y[1:3], kb.as_float32_limit(kb.numpy(y64)))
    np.testing.assert_array_equal(g[1:3], kb.as_float32_limit(kb.numpy(g64)))
    np.testing.assert_array_equal(y[1:3], [np.inf, 0.0])
    np.testing.assert_array_equal(g[1:3], [1.0, 0.0])


@pytest.mark.parametrize("compiled", [False, True])
def test_serf_is_exactly_x_where_erf_rounds_to_one(compiled, path):
    # Issue 11.7: under XLA float32 erf(10) = 0.9999998, so Serf(x) was 0.9999998 x.
    x = np.concatenate([np.linspace(3.93, 50.0, 2000), np.geomspace(50.0, 3e38, 200)])
    for dtype, start in (("float32", 3.92), ("float64", 5.93))[:len(kb.DTYPES) - 2]:
        xs = x[x > start].astype(dtype)
        fn = kb.jit(ops.serf) if compiled else ops.serf
        y = kb.numpy(fn(kb.tensor(xs, dtype)))
        np.testing.assert_array_equal(y, xs)


@pytest.mark.parametrize("compiled", [False, True])
def test_tiny_normal_results_of_the_far_left_are_kept(compiled, path):
    # Issue 11.7: for x in [-91.9, -87.33] float32 Serf returned -0 (a flushed
    # subnormal exp(x)); the true values there are normal numbers.
    x = np.linspace(-91.9, -20.0, 5001).astype(np.float32)
    fn = kb.jit(ops.serf) if compiled else ops.serf
    y, (g,) = kb.value_and_grads(fn, [kb.tensor(x)])
    ref = reference.serf(x.astype(np.float64))
    normal = np.abs(ref) >= TINY
    assert normal[0] and normal.all()
    np.testing.assert_allclose(kb.numpy(y), ref, rtol=2e-6)
    gn = kb.numpy(g)
    assert np.all(gn < 0) and np.all(np.isfinite(gn))
    exact = (2 / np.sqrt(np.pi)) * (1 + x.astype(np.float64)) * np.exp(x.astype(np.float64))
    np.testing.assert_allclose(gn, exact, rtol=2e-6)


def test_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        ops.serf(kb.tensor([1, 2], "int32"))
