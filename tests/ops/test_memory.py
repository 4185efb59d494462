"""The custom gradients keep only the input (and the small parameters) for the
backward pass; plain autodiff of the same formulas keeps more."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks.reference import plain_acon_c
from benchmarks.reference import plain_pwlu
from benchmarks.reference import plain_serf
from keras_acts import ops
from keras_acts.layers import MetaAcon
from keras_acts.ops.memory import saved_bytes
from keras_acts.ops.memory import saved_for_backward

SHAPE = (4, 8, 8, 16)
C, N = SHAPE[-1], 8
X_BYTES = int(np.prod(SHAPE)) * 4


def _pwlu_params(channelwise):
    rng = np.random.default_rng(0)
    if channelwise:
        return [tf.fill([C], -3.0), tf.fill([C], 3.0),
                tf.constant(rng.normal(size=(C, N + 1)), tf.float32),
                tf.fill([C], 0.1), tf.fill([C], 1.0)]
    return [tf.constant(-3.0), tf.constant(3.0), tf.constant(rng.normal(size=N + 1), tf.float32),
            tf.constant(0.1), tf.constant(1.0)]


def _acon_params():
    rng = np.random.default_rng(1)
    return [tf.constant(rng.normal(size=(1, 1, 1, C)), tf.float32) for _ in range(3)]


def _cases():
    x = tf.random.stateless_normal(SHAPE, seed=[1, 2])
    meta = MetaAcon()
    meta.build(SHAPE)
    pc, pl, ap = _pwlu_params(True), _pwlu_params(False), _acon_params()
    return {
        "serf": ((ops.serf, [x]), (plain_serf, [x])),
        "acon_c": ((ops.acon_c, [x] + ap), (plain_acon_c, [x] + ap)),
        "pwlu_channelwise": ((ops.pwlu, [x] + pc), (plain_pwlu, [x] + pc)),
        "pwlu_layerwise": ((ops.pwlu, [x] + pl), (plain_pwlu, [x] + pl)),
        # The layer's activation: ACON-C with a generated per-sample beta.
        "meta_acon": ((lambda t: meta(t, training=True), [x]),
                      (lambda t: plain_acon_c(t, *_meta_parts(meta, t)), [x])),
    }


def _meta_parts(layer, x):
    beta = tf.reshape(layer.generate_beta(x, training=True), [-1, 1, 1, C])
    p1 = tf.reshape(tf.convert_to_tensor(layer.p1), [1, 1, 1, C])
    p2 = tf.reshape(tf.convert_to_tensor(layer.p2), [1, 1, 1, C])
    return p1, p2, beta


@pytest.mark.parametrize("name", ["serf", "acon_c", "pwlu_channelwise", "pwlu_layerwise",
                                  "meta_acon"])
def test_backward_keeps_only_the_input(name):
    (fn, args), (plain_fn, _) = _cases()[name]
    saved = saved_for_backward(fn, *args)
    large = [s for s in saved if s.bytes is None or s.bytes >= X_BYTES]
    assert [s.name for s in large] == ["x0"], saved
    small = [s for s in saved if s.name != "x0"]
    # Everything else is parameter-sized: at most a per-sample, per-channel tensor.
    assert all(s.bytes is not None and s.bytes <= SHAPE[0] * C * C * 4 for s in small), saved


@pytest.mark.parametrize("name", ["serf", "acon_c", "pwlu_channelwise", "pwlu_layerwise",
                                  "meta_acon"])
def test_plain_autodiff_keeps_more(name):
    (fn, args), (plain_fn, _) = _cases()[name]
    ours = saved_bytes(saved_for_backward(fn, *args))
    plain = saved_for_backward(plain_fn, *args)
    assert sum(1 for s in plain if (s.bytes or 0) >= X_BYTES) >= 2, plain
    assert saved_bytes(plain) >= ours + X_BYTES


def test_reports_names_shapes_dtypes_and_bytes():
    x = tf.zeros([3, 5], tf.float64)
    saved = saved_for_backward(lambda t: t * tf.sigmoid(t), x)
    by_name = {s.name: s for s in saved}
    assert set(by_name) == {"x0", "Sigmoid"}
    assert by_name["x0"].shape == (3, 5)
    assert by_name["x0"].dtype == "float64"
    assert by_name["x0"].bytes == 3 * 5 * 8
    assert saved_bytes(saved) == 2 * 3 * 5 * 8
    # The upstream gradient is not counted; ReLU keeps only its output.
    relu = saved_for_backward(tf.nn.relu, tf.zeros([7]))
    assert [(s.name, s.bytes) for s in relu] == [("Relu", 28)]
