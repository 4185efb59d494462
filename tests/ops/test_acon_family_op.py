"""ACON-A / ACON-B ops on every backend: float64 references, gradients,
ACON-C special cases, limits, memory kept for backward."""

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


def _beta(shape):
    return RNG.uniform(-1.0, 2.0, size=shape)


@kb.float64_only
@pytest.mark.parametrize("pshape", [(1, 1, 1, 5), (3, 1, 1, 5), ()])
def test_forward_matches_float64_reference(pshape, path):
    x = RNG.normal(0, 3, (3, 4, 4, 5))
    beta, p = _beta(pshape), RNG.normal(0, 0.5, pshape)
    ya = ops.acon_a(kb.tensor(x), kb.tensor(beta))
    yb = ops.acon_b(kb.tensor(x), kb.tensor(p), kb.tensor(beta))
    np.testing.assert_allclose(kb.numpy(ya), ref.acon_a(x, beta), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(kb.numpy(yb), ref.acon_b(x, p, beta), rtol=1e-12, atol=1e-13)
    y32 = ops.acon_b(kb.tensor(x, "float32"), kb.tensor(p, "float32"), kb.tensor(beta, "float32"))
    np.testing.assert_allclose(kb.numpy(y32), ref.acon_b(x, p, beta), rtol=1e-5, atol=1e-5)


def test_they_are_acon_c_special_cases(path):
    # ACON-A = ACON-C(p1=1, p2=0), ACON-B = ACON-C(p1=1, p2=p): outputs and the
    # gradients they share agree with ACON-C's.
    x = kb.tensor(RNG.normal(0, 2, (2, 3, 4)), "float32")
    beta, p = kb.tensor(_beta((1, 1, 4)), "float32"), kb.tensor(RNG.normal(size=(1, 1, 4)),
                                                                "float32")
    one, zero = K.ones_like(p), K.zeros_like(p)
    ya, (gxa, gba) = kb.value_and_grads(ops.acon_a, [x, beta])
    yc, (gxc, _, _, gbc) = kb.value_and_grads(ops.acon_c, [x, one, zero, beta])
    np.testing.assert_allclose(kb.numpy(ya), kb.numpy(yc), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(kb.numpy(gxa), kb.numpy(gxc), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(kb.numpy(gba), kb.numpy(gbc), rtol=1e-6, atol=1e-7)
    yb, (gxb, gpb, gbb) = kb.value_and_grads(ops.acon_b, [x, p, beta])
    yc, (gxc, _, gp2, gbc) = kb.value_and_grads(ops.acon_c, [x, one, p, beta])
    for a, b in ((yb, yc), (gxb, gxc), (gpb, gp2), (gbb, gbc)):
        np.testing.assert_allclose(kb.numpy(a), kb.numpy(b), rtol=1e-6, atol=1e-7)


@kb.float64_only
@pytest.mark.parametrize("pshape", [(1, 1, 3), (2, 1, 3)])
def test_gradients_match_numerical(pshape, path):
    x = RNG.normal(0, 2, (2, 4, 3))
    w = RNG.normal(size=x.shape)
    beta, p = _beta(pshape), RNG.normal(0, 0.5, pshape)
    _, grads = kb.value_and_grads(ops.acon_a, [kb.tensor(x), kb.tensor(beta)], w)
    for g, arg in zip(grads, (x, beta)):
        assert tuple(g.shape) == arg.shape
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x, beta],
                                               ref.acon_a, w, rtol=1e-6, atol=1e-7)
    _, grads = kb.value_and_grads(ops.acon_b, [kb.tensor(v) for v in (x, p, beta)], w)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x, p, beta],
                                               ref.acon_b, w, rtol=1e-6, atol=1e-7)


def test_float32_gradients_match_reference(path):
    x = RNG.normal(0, 2, (2, 4, 3))
    w = RNG.normal(size=x.shape)
    p, beta = RNG.normal(0, 0.5, (1, 1, 3)), _beta((1, 1, 3))
    _, grads = kb.value_and_grads(ops.acon_b, [kb.tensor(v, "float32") for v in (x, p, beta)],
                                  w)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x, p, beta],
                                               ref.acon_b, w, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_computes_in_float32(dtype, path):
    x = kb.tensor(np.linspace(-60000, 60000, 1001), dtype)
    beta = kb.tensor([1.0], "float32")
    y, (g, gb) = kb.value_and_grads(lambda t, b: ops.acon_b(t, 0.25 * b, b), [x, beta])
    assert kb.dtype_of(y) == dtype and kb.dtype_of(g) == dtype and kb.dtype_of(gb) == "float32"
    assert np.all(np.isfinite(kb.numpy(g)))
    np.testing.assert_allclose(kb.numpy(y), ref.acon_b(kb.numpy(x).astype(np.float64), 0.25, 1.0),
                               rtol=1e-2)


def _limits(fn, x32, params, compiled=False):
    # (float32 output and gradients, float64 ones at x with +-inf read as +-1e300).
    x64 = x32.astype(np.float64)
    x64 = np.where(np.isinf(x64), np.sign(x64) * 1e300, x64)
    out = []
    for x, dtype in ((x32, "float32"), (x64, kb.FLOAT64)):
        args = [kb.tensor(x, dtype)] + [kb.tensor(np.reshape(p, (1, -1)), dtype) for p in params]
        f = kb.jit(fn) if compiled and dtype == "float32" else fn
        y, grads = kb.value_and_grads(f, args)
        out.append([kb.numpy(y)] + [kb.numpy(g) for g in grads])
    return out


@pytest.mark.parametrize("compiled", [False, True])
def test_inf_gives_the_float64_values_at_1e300(compiled, path):
    x = np.array([[np.inf, -np.inf, np.inf, -np.inf], [-np.inf, np.inf, -np.inf, np.inf],
                  [np.nan, 1.0, -2.0, 3.0]], np.float32)
    beta, p = [1.0, -0.5, 0.0, 2.0], [0.25, 1.0, -0.5, 1.5]
    for fn, params in ((ops.acon_a, [beta]), (ops.acon_b, [p, beta])):
        (y, gx, *_), (y64, gx64, *_) = _limits(fn, x, params, compiled)
        np.testing.assert_array_equal(y[:2], kb.as_float32_limit(y64[:2]))
        np.testing.assert_array_equal(gx[:2], kb.as_float32_limit(gx64[:2]))
        assert not np.isnan(y[:2]).any() and not np.isnan(gx[:2]).any()
        assert np.isnan(y[2, 0]) and np.isfinite(y[2, 1:]).all()
    # the limits themselves: ACON-A(+inf) = +inf for beta > 0, ACON-A(-inf) = 0
    (y, *_), _ = _limits(ops.acon_a, x[:1], [[1.0, 1.0, 1.0, 1.0]], compiled)
    np.testing.assert_array_equal(y, [[np.inf, 0.0, np.inf, 0.0]])


@pytest.mark.parametrize("compiled", [False, True])
def test_huge_finite_inputs_never_give_nan(compiled, path):
    big = float(np.finfo(np.float32).max)
    x = np.array([[-3e38, 3e38, big, -big], [1e30, -1e30, 2.0, -1.0]], np.float32)
    beta, p = [1.0, 0.3, 2.0, 1e-3], [0.25, -2.0, 0.9, 3.0]
    for fn, params in ((ops.acon_a, [beta]), (ops.acon_b, [p, beta])):
        got, want = _limits(fn, x, params, compiled)
        for i, (a, b) in enumerate(zip(got, want)):
            assert not np.isnan(a).any(), i
            np.testing.assert_allclose(a, kb.as_float32_limit(b), rtol=1e-5, err_msg=str(i))


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="floating"):
        ops.acon_a(kb.tensor([1, 2], "int32"), 1.0)
    with pytest.raises(ValueError, match="floating"):
        ops.acon_b(kb.tensor([1, 2], "int32"), 0.25, 1.0)
    with pytest.raises(ValueError, match="broadcast against x of rank 1"):
        ops.acon_a(kb.tensor([1.0, 2.0], "float32"), kb.tensor([[1.0, 2.0]], "float32"))


SHAPE = (4, 8, 8, 16)
X_BYTES = int(np.prod(SHAPE)) * 4


def _plain_a(x, beta):
    return x * K.sigmoid(beta * x)


def _plain_b(x, p, beta):
    d = (1.0 - p) * x
    return d * K.sigmoid(beta * d) + p * x


@pytest.mark.parametrize("name", ["acon_a", "acon_b"])
def test_backward_keeps_only_the_input(name):
    x = kb.tensor(RNG.normal(size=SHAPE), "float32")
    params = [kb.tensor(RNG.normal(size=(1, 1, 1, 16)), "float32")
              for _ in range(1 if name == "acon_a" else 2)]
    fn, plain = (ops.acon_a, _plain_a) if name == "acon_a" else (ops.acon_b, _plain_b)
    saved = saved_for_backward(fn, x, *params)
    large = [s for s in saved if s.bytes is None or s.bytes >= X_BYTES]
    assert [s.name for s in large] == ["x0"], saved
    assert all(s.bytes is not None and s.bytes <= 16 * 4 * 4 for s in saved if s.name != "x0")
    plain_saved = saved_for_backward(plain, x, *params)
    assert saved_bytes(plain_saved) >= saved_bytes(saved) + X_BYTES, plain_saved


@kb.tensorflow_only
def test_export_mode_traces_acon_c_builtin_form_with_the_same_values():
    # Under export_mode ACON-A/B trace ACON-C's builtin form (p1 = 1, p2 = 0 / p):
    # same values as the training op. (TFLite conversion itself is not tested here.)
    x = kb.tensor(RNG.normal(0, 3, (2, 5, 4)), "float32")
    p, beta = (kb.tensor(RNG.normal(size=(1, 1, 4)), "float32") for _ in range(2))
    with ops.export_mode():
        ya, yb = ops.acon_a(x, beta), ops.acon_b(x, p, beta)
    np.testing.assert_allclose(kb.numpy(ya), kb.numpy(ops.acon_a(x, beta)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(kb.numpy(yb), kb.numpy(ops.acon_b(x, p, beta)), rtol=1e-6,
                               atol=1e-6)
