"""The TFLite-builtin export formulations (TensorFlow only): each against the
float64 reference, and which form each quantisation traces."""

import numpy as np
import pytest

import kb
import reference

pytestmark = kb.tensorflow_only

RNG = np.random.default_rng(0)


def _channel_params(c, n):
    left = RNG.uniform(-3, -1, c)
    right = RNG.uniform(1, 3, c)
    points = RNG.normal(size=(c, n + 1))
    return [left, right, points, RNG.normal(size=c), RNG.normal(size=c)]


def _layer_params(n):
    return [np.float64(-2.0), np.float64(1.5), RNG.normal(size=n + 1), np.float64(0.3),
            np.float64(-0.7)]


def test_erf_builtin_error_bound_over_float32():
    import tensorflow as tf

    from keras_acts.ops import builtin
    from keras_acts.ops.builtin.serf import ERF_BUILTIN_MAX_ABS_ERROR

    z = tf.constant(np.concatenate([np.linspace(-10, 10, 2_000_001), [0.0, 1e-30, -1e-30]]),
                    tf.float32)
    err = np.max(np.abs(builtin.erf_builtin(z).numpy().astype(np.float64)
                        - reference._erf(z.numpy().astype(np.float64))))
    assert err <= ERF_BUILTIN_MAX_ABS_ERROR


def test_export_mode_serf_matches():
    import tensorflow as tf

    from keras_acts import ops

    x = tf.constant(np.linspace(-20, 20, 4001), tf.float32)

    @tf.function
    def traced(t):
        with ops.export_mode():
            return ops.serf(t)

    # The float form traces tf.nn.gelu (an Erf that the TFLite converter fuses into its
    # GELU op; tests/export asserts the flatbuffer has GELU and no ERF).
    np.testing.assert_allclose(traced(x).numpy(), reference.serf(x.numpy()), atol=2e-6)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("p1,p2,beta", [(1.3, 0.2, 0.7), (0.8, 0.8, 1.0), (0.5, -0.2, 0.0),
                                         (2.0, -1.0, 1e-14), (-0.3, 0.8, 3.0)])
def test_acon_export_form_matches_reference(p1, p2, beta, per_sample):
    # The builtin export form, including the degenerate k = beta (p1 - p2) = 0 cases
    # (the folded form divides by k) and Meta-ACON's per-sample beta.
    import tensorflow as tf

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


def test_int8_exports_keep_the_plain_acon_form():
    # The folded form divides by k = beta (p1 - p2): fine in float, 9.7 points lost under
    # full-integer int8. Only float exports may trace it.
    import tensorflow as tf

    from keras_acts import ops

    x = tf.random.normal([2, 3, 4])
    p = [tf.constant(v, tf.float32, [1, 1, 4]) for v in (1.2, 0.1, 0.8)]

    def graph_ops(quantization):
        with ops.export_mode(quantization=quantization):
            graph = tf.function(lambda x: ops.acon_c(x, *p)).get_concrete_function(x).graph
        return [op.type for op in graph.get_operations()]

    assert "RealDiv" in graph_ops(None) and "RealDiv" in graph_ops("float16")
    assert "RealDiv" not in graph_ops("int8")


@pytest.mark.parametrize("form", ["pwlu_builtin", "pwlu_hinges", "pwlu_broadcast", "pwlu_knot_major",
                                  "pwlu_conv"])
@pytest.mark.parametrize("channelwise", [False, True])
def test_pwlu_export_forms_match_reference(form, channelwise):
    # The two inference-only forms (int8 lookup, float sum of hinges) against the
    # float64 reference, inside, outside and at the bounds; float64 and float32.
    import importlib

    import tensorflow as tf

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


def test_pwlu_exports_use_the_knot_major_hinges_and_the_lookup_on_request():
    import tensorflow as tf

    from keras_acts import ops
    from keras_acts.ops.builtin.pwlu import use_int8_form

    params = [tf.constant(p, tf.float32) for p in _channel_params(4, 8)]
    x = tf.constant(RNG.normal(0, 3, (6, 4)), tf.float32)

    def graph_ops(quantization):
        with ops.export_mode(quantization=quantization):
            graph = tf.function(lambda x: ops.pwlu(x, *params)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "GatherV2" not in graph_ops(None) and "Relu" in graph_ops(None)
    assert "GatherV2" not in graph_ops("float16")
    # int8 exports trace the knot-major hinges too (faster, within 1 point on the
    # Fashion-MNIST check); the two-GATHER lookup only under use_int8_form("lookup").
    assert "GatherV2" not in graph_ops("int8") and "DepthwiseConv2dNative" in graph_ops("int8")
    with use_int8_form("lookup"):
        assert "GatherV2" in graph_ops("int8")
    assert "DepthwiseConv2dNative" in graph_ops(None)
