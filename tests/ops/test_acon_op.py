import numpy as np
import pytest
import tensorflow as tf

import reference
from benchmarks.reference import plain_acon_c
from keras_acts import ops

RNG = np.random.default_rng(0)


def _params(shape):
    return [RNG.normal(size=shape) for _ in range(2)] + [RNG.uniform(0.2, 2.0, size=shape)]


@pytest.mark.parametrize("pshape", [(1, 1, 1, 5), (3, 1, 1, 5), (1, 4, 4, 5), ()])
def test_forward_matches_reference(pshape):
    x = RNG.normal(0, 3, (3, 4, 4, 5))
    p1, p2, beta = _params(pshape)
    np.testing.assert_allclose(ops.acon_c(tf.constant(x), p1, p2, beta).numpy(),
                               reference.acon_c(x, p1, p2, beta), rtol=1e-12, atol=1e-13)
    y32 = ops.acon_c(tf.constant(x, tf.float32), *(np.float32(p) for p in (p1, p2, beta)))
    np.testing.assert_allclose(y32.numpy(), reference.acon_c(x, p1, p2, beta), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("pshape", [(1, 1, 3), (2, 1, 3)])
def test_gradients_numerical_and_autodiff(pshape):
    x = RNG.normal(0, 2, (2, 4, 3))
    w = RNG.normal(size=x.shape)
    params = _params(pshape)
    args = [tf.constant(a) for a in [x] + params]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(args)
        loss = tf.reduce_sum(ops.acon_c(*args) * w)
        loss_plain = tf.reduce_sum(plain_acon_c(*args) * w)
    grads = tape.gradient(loss, args)
    plain = tape.gradient(loss_plain, args)
    values = [x] + params
    reference.assert_gradients_match_numerical(grads, values, reference.acon_c, w, rtol=1e-6,
                                               atol=1e-7)
    for i, (g, gp) in enumerate(zip(grads, plain)):
        assert g.shape == args[i].shape
        np.testing.assert_allclose(g.numpy(), gp.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_computes_in_float32(dtype):
    x = tf.constant(np.linspace(-60000, 60000, 1001), dtype)
    p = tf.constant([1.0], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.acon_c(x, p, 0.25 * p, p)
    g = tape.gradient(y, x)
    assert y.dtype == x.dtype and g.dtype == x.dtype
    assert np.all(np.isfinite(tf.cast(g, tf.float32).numpy()))
    np.testing.assert_allclose(tf.cast(y, tf.float64).numpy(),
                               reference.acon_c(tf.cast(x, tf.float64).numpy(), 1.0, 0.25, 1.0),
                               rtol=1e-2)


def test_nan_and_inf():
    x = tf.constant([np.nan, np.inf, -np.inf, 0.0])
    y = ops.acon_c(x, 1.0, 0.25, 1.0).numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -np.inf and y[3] == 0.0


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("p1,p2,beta", [(1.3, 0.2, 0.7), (0.8, 0.8, 1.0), (0.5, -0.2, 0.0),
                                         (2.0, -1.0, 1e-14), (-0.3, 0.8, 3.0)])
def test_export_form_matches_reference(p1, p2, beta, per_sample):
    # The builtin export form, including the degenerate k = beta (p1 - p2) = 0 cases
    # (the folded form divides by k) and Meta-ACON's per-sample beta.
    from keras_acts.ops.builtin.acon import acon_c_builtin

    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (6, 5, 4))
    c = 4
    p1v = np.full((1, 1, c), p1) + rng.normal(0, 0.1, (1, 1, c)) * (p1 != p2)
    p2v = np.full((1, 1, c), p2)
    betav = np.full((6, 1, c) if per_sample else (1, 1, c), beta)
    if per_sample and beta:
        betav = betav * rng.uniform(0.5, 1.5, betav.shape)
    ref = reference.acon_c(x, p1v, p2v, betav)
    args = [tf.constant(t, tf.float32) for t in (x, p1v, p2v, betav)]
    if per_sample:  # Meta-ACON's beta has an unknown batch dimension in the export trace
        fn = tf.function(acon_c_builtin, input_signature=[
            tf.TensorSpec([None, 5, c]), tf.TensorSpec([1, 1, c]), tf.TensorSpec([1, 1, c]),
            tf.TensorSpec([None, 1, c])])
        y = fn(*args).numpy()
    else:
        y = acon_c_builtin(*args).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_int8_exports_keep_the_plain_form():
    # The folded form divides by k = beta (p1 - p2): fine in float, 9.7 points lost under
    # full-integer int8. Only float exports may trace it.
    x = tf.random.normal([2, 3, 4])
    p = [tf.constant(v, tf.float32, [1, 1, 4]) for v in (1.2, 0.1, 0.8)]

    def graph_ops(quantization):
        with ops.export_mode(quantization=quantization):
            graph = tf.function(lambda x: ops.acon_c(x, *p)).get_concrete_function(x).graph
        return [op.type for op in graph.get_operations()]

    assert "RealDiv" in graph_ops(None) and "RealDiv" in graph_ops("float16")
    assert "RealDiv" not in graph_ops("int8")
