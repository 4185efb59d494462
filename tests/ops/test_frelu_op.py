"""ACON-FReLU's elementwise op (smooth_max) on every backend: float64
reference, gradients, limits, memory kept for backward."""

import numpy as np
import pytest
from keras import ops as K

import family_reference as ref
import kb
import reference
from keras_acts import ops
from keras_acts.ops.memory import saved_bytes
from keras_acts.ops.memory import saved_for_backward

RNG = np.random.default_rng(0)


@pytest.fixture(params=kb.gradient_paths())
def path(request):
    with kb.gradient_path(request.param):
        yield request.param


def _ref(a, t):
    z = np.asarray(a, np.float64) - np.asarray(t, np.float64)
    return z * ref.sigmoid(z) + t


@kb.float64_only
def test_forward_and_gradients_match_float64_reference(path):
    a, t = RNG.normal(0, 2, (2, 3, 3, 4)), RNG.normal(0, 2, (2, 3, 3, 4))
    w = RNG.normal(size=a.shape)
    y, grads = kb.value_and_grads(ops.smooth_max, [kb.tensor(a), kb.tensor(t)], w)
    np.testing.assert_allclose(kb.numpy(y), _ref(a, t), rtol=1e-12, atol=1e-13)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [a, t], _ref, w,
                                               rtol=1e-6, atol=1e-7)


def test_float32_and_half_precision(path):
    a, t = RNG.normal(0, 2, (2, 6)), RNG.normal(0, 2, (2, 6))
    y = ops.smooth_max(kb.tensor(a, "float32"), kb.tensor(t, "float32"))
    np.testing.assert_allclose(kb.numpy(y), _ref(a, t), rtol=1e-5, atol=1e-6)
    y16, grads = kb.value_and_grads(ops.smooth_max, [kb.tensor(a, "float16"),
                                                     kb.tensor(t, "float16")])
    assert kb.dtype_of(y16) == "float16" and kb.dtype_of(grads[0]) == "float16"
    np.testing.assert_allclose(kb.numpy(y16), _ref(a, t), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("compiled", [False, True])
def test_limits_and_huge_inputs_never_give_nan(compiled, path):
    big = float(np.finfo(np.float32).max)
    a = np.array([np.inf, -np.inf, 3e38, -3e38, big, 1e30, 2.0], np.float32)
    t = np.array([1.0, 2.0, -1.0, 5.0, 0.5, -1e30, np.inf], np.float32)
    fn = kb.jit(ops.smooth_max) if compiled else ops.smooth_max
    y, (ga, gt) = kb.value_and_grads(fn, [kb.tensor(a), kb.tensor(t)])
    y, ga, gt = kb.numpy(y), kb.numpy(ga), kb.numpy(gt)
    assert not np.isnan(y).any() and not np.isnan(ga).any() and not np.isnan(gt).any()
    # a = +inf: +inf (slope 1 in a, 0 in t); a = -inf: t (slope 0 in a, 1 in t)
    np.testing.assert_array_equal(y[:2], [np.inf, 2.0])
    np.testing.assert_array_equal(ga[:2], [1.0, 0.0])
    np.testing.assert_array_equal(gt[:2], [0.0, 1.0])
    np.testing.assert_array_equal(y[3], 5.0)       # a far below t: t
    assert y[6] == np.inf                          # t = +inf: +inf


def test_backward_keeps_only_the_two_inputs():
    # As many bytes as plain autodiff (which keeps a - t and the sigmoid, not the
    # inputs): asserted, so a change that keeps more shows up.
    shape = (4, 8, 8, 16)
    nbytes = int(np.prod(shape)) * 4
    a = kb.tensor(RNG.normal(size=shape), "float32")
    t = kb.tensor(RNG.normal(size=shape), "float32")
    saved = saved_for_backward(ops.smooth_max, a, t)
    assert sorted(s.name for s in saved if s.bytes is None or s.bytes >= nbytes) == ["x0", "x1"]

    def plain(a, t):
        z = a - t
        return z * K.sigmoid(z) + t

    assert saved_bytes(saved) == 2 * nbytes
    assert saved_bytes(saved_for_backward(plain, a, t)) >= 2 * nbytes


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="floating"):
        ops.smooth_max(kb.tensor([1, 2], "int32"), kb.tensor([1, 2], "int32"))
    with pytest.raises(ValueError, match=r"one shape and dtype.*\(2,\) float32 and \(3,\)"):
        ops.smooth_max(kb.tensor([1.0, 2.0], "float32"), kb.tensor([1.0, 2.0, 3.0], "float32"))
