"""The custom gradients keep only the input (and the small parameters) for the
backward pass on every backend; plain autodiff of the same formulas keeps more."""

import keras
import numpy as np
import pytest
from keras import ops as K

import kb
from keras_acts import ops
from keras_acts.layers import MetaAcon
from keras_acts.ops.memory import saved_bytes
from keras_acts.ops.memory import saved_for_backward
from keras_acts.ops.plain import plain_acon_c
from keras_acts.ops.plain import plain_pwlu
from keras_acts.ops.plain import plain_serf

SHAPE = (4, 8, 8, 16)
C, N = SHAPE[-1], 8
X_BYTES = int(np.prod(SHAPE)) * 4
NAMES = ["serf", "acon_c", "pwlu_channelwise", "pwlu_layerwise", "meta_acon"]


def _pwlu_params(channelwise):
    rng = np.random.default_rng(0)
    if channelwise:
        values = [np.full([C], -3.0), np.full([C], 3.0), rng.normal(size=(C, N + 1)),
                  np.full([C], 0.1), np.full([C], 1.0)]
    else:
        values = [np.array(-3.0), np.array(3.0), rng.normal(size=N + 1), np.array(0.1),
                  np.array(1.0)]
    return [kb.tensor(v, "float32") for v in values]


def _acon_params():
    rng = np.random.default_rng(1)
    return [kb.tensor(rng.normal(size=(1, 1, 1, C)), "float32") for _ in range(3)]


def _meta(training):
    layer = MetaAcon()
    layer.build(SHAPE)

    def parts(t):
        beta = K.reshape(layer.generate_beta(t, training=training), (-1, 1, 1, C))
        return K.reshape(layer.p1, (1, 1, 1, C)), K.reshape(layer.p2, (1, 1, 1, C)), beta

    if kb.BACKEND == "jax":   # the batch norms update state: call statelessly
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def ours(t):
            return layer.stateless_call(trainable, non_trainable, t, training=training)[0]

        def plain(t):
            mapping = list(zip(layer.trainable_variables, trainable)) + list(
                zip(layer.non_trainable_variables, non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                return plain_acon_c(t, *parts(t))
    else:
        def ours(t):
            return layer(t, training=training)

        def plain(t):
            return plain_acon_c(t, *parts(t))
    return ours, plain


def _cases(name):
    x = kb.tensor(np.random.default_rng(2).normal(size=SHAPE), "float32")
    if name == "serf":
        return (ops.serf, [x]), (plain_serf, [x])
    if name == "acon_c":
        p = _acon_params()
        return (ops.acon_c, [x] + p), (plain_acon_c, [x] + p)
    if name.startswith("pwlu"):
        p = _pwlu_params(name.endswith("channelwise"))
        return (ops.pwlu, [x] + p), (plain_pwlu, [x] + p)
    ours, plain = _meta(training=True)
    return (ours, [x]), (plain, [x])


@pytest.mark.parametrize("name", NAMES)
def test_backward_keeps_only_the_input(name):
    (fn, args), _ = _cases(name)
    saved = saved_for_backward(fn, *args)
    large = [s for s in saved if s.bytes is None or s.bytes >= X_BYTES]
    assert [s.name for s in large] == ["x0"], saved
    small = [s for s in saved if s.name != "x0"]
    # Everything else is parameter-sized: at most a per-sample, per-channel tensor.
    assert all(s.bytes is not None and s.bytes <= SHAPE[0] * C * C * 4 for s in small), saved


@pytest.mark.parametrize("name", NAMES)
def test_plain_autodiff_keeps_more(name):
    (fn, args), (plain_fn, plain_args) = _cases(name)
    ours = saved_bytes(saved_for_backward(fn, *args))
    plain = saved_for_backward(plain_fn, *plain_args)
    assert sum(1 for s in plain if (s.bytes or 0) >= X_BYTES) >= 2, plain
    assert saved_bytes(plain) >= ours + X_BYTES


def test_reports_names_shapes_dtypes_and_bytes():
    x = kb.tensor(np.zeros([3, 5]), kb.FLOAT64)
    size = 8 if kb.FLOAT64 == "float64" else 4
    saved = saved_for_backward(lambda t: t * K.sigmoid(t), x)
    by_name = {s.name: s for s in saved}
    assert "x0" in by_name and len(by_name) >= 2     # x and sigmoid(x) (or its parts)
    assert by_name["x0"].shape == (3, 5)
    assert by_name["x0"].dtype == kb.FLOAT64
    assert by_name["x0"].bytes == 3 * 5 * size
    assert saved_bytes(saved) >= 2 * 3 * 5 * size
    if kb.BACKEND == "tensorflow":
        assert set(by_name) == {"x0", "Sigmoid"}
