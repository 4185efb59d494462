"""N-PWLU op on every backend: float64 reference, numerical gradients, uniform
case = PWLU, limits, phase-I switch, memory kept for backward."""

import numpy as np
import pytest

import family_reference as ref
import kb
import reference
from keras_acts import ops
from keras_acts.ops.memory import saved_for_backward

RNG = np.random.default_rng(0)


@pytest.fixture(params=kb.gradient_paths())
def path(request):
    with kb.gradient_path(request.param):
        yield request.param


def _params(c, n, channelwise=True):
    shape = (c,) if channelwise else ()
    return [RNG.uniform(-2.5, -1.5, shape), RNG.uniform(0.2, 1.5, shape + (n,)),
            RNG.normal(size=shape), RNG.normal(size=shape + (n,)), RNG.normal(0, 0.5, shape),
            RNG.normal(0, 0.5, shape)]


def _away_from_knots(x, params, axis=-1, gap=1e-3):
    left, widths = params[0], params[1]
    knots = np.asarray(left)[..., None] + np.concatenate(
        [np.zeros(widths.shape[:-1] + (1,)), np.cumsum(widths, -1)], -1)
    xm = np.moveaxis(x, axis, -1)
    for _ in range(3):
        near = np.abs(xm[..., None] - knots).min(-1) < gap
        xm = np.where(near, xm + 5 * gap, xm)
    return np.moveaxis(xm, -1, axis)


@kb.float64_only
@pytest.mark.parametrize("channelwise", [True, False])
def test_forward_matches_float64_reference(channelwise, path):
    params = _params(5, 4, channelwise)
    params[1][..., 1] = 0.0          # an empty interval is harmless
    x = RNG.normal(0, 3, (3, 4, 5))
    y = ops.npwlu(kb.tensor(x), *(kb.tensor(p) for p in params))
    np.testing.assert_allclose(kb.numpy(y), ref.npwlu(x, *params), rtol=1e-12, atol=1e-12)
    y32 = ops.npwlu(kb.tensor(x, "float32"), *(kb.tensor(p, "float32") for p in params))
    np.testing.assert_allclose(kb.numpy(y32), ref.npwlu(x, *params), rtol=1e-5, atol=1e-5)


def test_channels_on_axis_one(path):
    params = _params(3, 2)
    x = RNG.normal(0, 3, (2, 3, 4))
    y = ops.npwlu(kb.tensor(x, "float32"), *(kb.tensor(p, "float32") for p in params), axis=1)
    np.testing.assert_allclose(kb.numpy(y), ref.npwlu(x, *params, axis=1), rtol=1e-5, atol=1e-5)


@kb.float64_only
@pytest.mark.parametrize("channelwise", [True, False])
def test_gradients_match_numerical(channelwise, path):
    params = _params(3, 4, channelwise)
    x = _away_from_knots(RNG.normal(-1, 3, (4, 2, 3)), params)
    w = RNG.normal(size=x.shape)
    args = [kb.tensor(v) for v in [x] + params]
    _, grads = kb.value_and_grads(ops.npwlu, args, w)
    for g, a in zip(grads, args):
        assert tuple(g.shape) == tuple(a.shape)
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x] + params,
                                               ref.npwlu, w, rtol=1e-6, atol=1e-6)


def test_uniform_widths_equal_pwlu(path):
    # N equal widths W / N: the same function as PWLU with points Y_i.
    c, n = 4, 4
    left, right = RNG.uniform(-3, -2, c), RNG.uniform(2, 3, c)
    points = RNG.normal(size=(c, n + 1))
    kl, kr = RNG.normal(size=c), RNG.normal(size=c)
    width = (right - left) / n
    slopes = np.diff(points, axis=1) / width[:, None]
    x = RNG.normal(0, 3, (8, c)).astype("f4")
    y_pwlu = ops.pwlu(kb.tensor(x), *(kb.tensor(p, "float32")
                                      for p in (left, right, points, kl, kr)))
    y_npwlu = ops.npwlu(kb.tensor(x), *(kb.tensor(p, "float32") for p in (
        left, np.repeat(width[:, None], n, 1), points[:, 0], slopes, kl, kr)))
    np.testing.assert_allclose(kb.numpy(y_npwlu), kb.numpy(y_pwlu), rtol=1e-5, atol=1e-5)


def test_inactive_is_relu_with_frozen_parameters(path):
    params = [kb.tensor(p, "float32") for p in _params(3, 4)]
    x = kb.tensor(RNG.normal(0, 2, (5, 3)), "float32")
    y, grads = kb.value_and_grads(lambda t, *p: ops.npwlu(t, *p, active=False), [x] + params)
    np.testing.assert_array_equal(kb.numpy(y), np.maximum(kb.numpy(x), 0))
    np.testing.assert_array_equal(kb.numpy(grads[0]), (kb.numpy(x) > 0).astype("f4"))
    for g in grads[1:]:
        np.testing.assert_array_equal(kb.numpy(g), 0.0)


@pytest.mark.parametrize("compiled", [False, True])
def test_limits_and_huge_inputs_never_give_nan(compiled, path):
    big = float(np.finfo(np.float32).max)
    x = np.array([[np.inf, -np.inf, np.nan], [3e38, -3e38, big], [-big, 1e30, 0.3]], "f4")
    params = [np.array(v, "f4") for v in
              ([-1.0, -2.0, 0.0], [[1.0, 0.5], [0.0, 2.0], [1.0, 1.0]], [0.5, -1.0, 2.0],
               [[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]], [0.0, 2.0, -1.0], [0.0, 1.5, 2.0])]
    fn = kb.jit(ops.npwlu) if compiled else ops.npwlu
    y, grads = kb.value_and_grads(fn, [kb.tensor(x)] + [kb.tensor(p) for p in params])
    y = kb.numpy(y)
    # NaN in gives NaN out (and NaN parameter gradients in its channel only)
    assert np.isnan(y[0, 2]) and not np.isnan(np.delete(y.ravel(), 2)).any()
    for g in grads[1:]:
        assert not np.isnan(kb.numpy(g)[:2]).any()
    assert not np.isnan(np.delete(kb.numpy(grads[0]).ravel(), 2)).any()
    # +inf with K_R = 0 is Y_N (the limit), -inf with K_L = 2 is -inf
    assert y[0, 0] == 0.5 + 1.0 * 1.0 + (-2.0) * 0.5
    assert y[0, 1] == -np.inf
    x64 = x.astype(np.float64)
    x64 = np.where(np.isinf(x64), np.sign(x64) * 1e300, x64)
    want = kb.as_float32_limit(ref.npwlu(x64, *params))
    np.testing.assert_allclose(np.delete(y.ravel(), 2), np.delete(want.ravel(), 2), rtol=1e-5)


@kb.float64_only
@pytest.mark.parametrize("channelwise,axis,shape", [(True, -1, (7, 5, 3)),
                                                     (True, 1, (5, 3, 2)),
                                                     (False, -1, (9, 2, 3))])
def test_chunked_parameter_sums_match_numerical(channelwise, axis, shape, path, monkeypatch):
    # Under XLA the parameter-gradient sums run as a loop over chunks of the
    # (P, C, Q) view (xla.chunked_sums); chunks of a few elements force several
    # loop steps plus a tail chunk. Unique shapes: nothing is reused from a
    # trace with the default chunk size.
    from keras_acts.ops import xla

    calls = []
    original = xla.chunked_sums

    def spy(fn, tensors, rows, compiled):
        calls.append((tensors[0].shape[0], rows, compiled))
        return original(fn, tensors, rows, compiled)

    monkeypatch.setattr(xla, "CHUNK_ELEMENTS", 12)
    monkeypatch.setattr(xla, "chunked_sums", spy)
    c = shape[axis]
    params = _params(c, 3, channelwise)
    x = _away_from_knots(RNG.normal(-1, 3, shape), params, axis=axis if channelwise else -1)
    w = RNG.normal(size=x.shape)
    args = [kb.tensor(v) for v in [x] + params]
    _, grads = kb.value_and_grads(lambda t, *q: ops.npwlu(t, *q, axis=axis), args, w)
    reference.assert_gradients_match_numerical(
        [kb.numpy(g) for g in grads], [x] + params,
        lambda t, *q: ref.npwlu(t, *q, axis=axis) if channelwise else ref.npwlu(t, *q), w,
        rtol=1e-6, atol=1e-6)
    looped = [lead > rows for lead, rows, compiled in calls if compiled]
    if kb.BACKEND == "jax" or path == "fast":
        assert looped and all(looped), calls     # the loop ran, with a tail chunk
        lead, rows, _ = calls[0]
        assert lead % rows != 0, calls


@kb.tensorflow_only
def test_unknown_batch_size_falls_back_to_full_sums(path):
    # A graph traced with an unknown batch has no static view to chunk: the
    # sums are taken over the whole tensor, with the same values.
    import tensorflow as tf

    params = [tf.constant(p, tf.float32) for p in _params(3, 4)]
    x = tf.constant(RNG.normal(-1, 3, (6, 5, 3)), tf.float32)

    def grads(t):
        with tf.GradientTape() as tape:
            tape.watch([t] + params)
            y = ops.npwlu(t, *params)
        return tape.gradient(y, [t] + params)

    traced = tf.function(grads, input_signature=[tf.TensorSpec([None, 5, 3], tf.float32)])
    for g, g2 in zip(grads(x), traced(x)):
        np.testing.assert_allclose(g2.numpy(), g.numpy(), rtol=1e-5, atol=1e-5)


def test_backward_keeps_only_the_input():
    shape = (4, 8, 8, 16)
    x = kb.tensor(RNG.normal(size=shape), "float32")
    params = [kb.tensor(p, "float32") for p in _params(16, 4)]
    saved = saved_for_backward(ops.npwlu, x, *params)
    big = [s.name for s in saved if s.bytes is None or s.bytes >= int(np.prod(shape)) * 4]
    assert big == ["x0"], saved


def test_rejects_bad_input():
    x = kb.tensor(np.zeros((2, 3)), "float32")
    good = [kb.tensor(p, "float32") for p in _params(3, 4)]
    with pytest.raises(ValueError, match="floating"):
        ops.npwlu(kb.tensor([[1, 2, 3]], "int32"), *good)
    with pytest.raises(ValueError, match=r"`slopes` must have the shape of `widths` \(3, 4\)"):
        ops.npwlu(x, *good[:3], kb.tensor(np.zeros((3, 5)), "float32"), *good[4:])
    with pytest.raises(ValueError, match=r"`left_slope` must have shape \(3,\)"):
        ops.npwlu(x, *good[:4], kb.tensor(np.zeros(2), "float32"), good[5])
    with pytest.raises(ValueError, match=r"have 3 channels but x.shape\[0\]=2"):
        ops.npwlu(x, *good, axis=0)
    with pytest.raises(ValueError, match="`axis` must be in"):
        ops.npwlu(x, *good, axis=2)


@kb.tensorflow_only
def test_export_mode_traces_the_builtin_hinge_form():
    # Under export_mode: no custom gradient, no GATHER, the broadcast hinge sum
    # (ops.builtin.npwlu_broadcast), same values. (TFLite conversion:
    # tests/export/test_family_export.py.)
    import tensorflow as tf

    params = [tf.constant(p, tf.float32) for p in _params(3, 4)]
    x = tf.constant(RNG.normal(0, 3, (2, 5, 3)), tf.float32)
    with ops.export_mode():
        graph = tf.function(lambda t: ops.npwlu(t, *params)).get_concrete_function(
            tf.TensorSpec([None, 5, 3], tf.float32)).graph
        y = ops.npwlu(x, *params)
    kinds = {op.type for op in graph.get_operations()}
    assert not kinds & {"IdentityN", "GatherV2", "PartitionedCall",
                        "StatefulPartitionedCall"}, kinds
    assert "Relu" in kinds and "Sum" in kinds, kinds
    np.testing.assert_allclose(y.numpy(), kb.numpy(ops.npwlu(x, *params)), rtol=1e-6, atol=1e-6)
