"""FReLU / AconFReLU layers on every backend: the official code's formula in
float64 (PyTorch padding, max-pool and batch-norm conventions), gradients,
training, serialization, registry, swap_activations, bad input."""

import inspect

import keras
import numpy as np
import pytest

import family_reference as ref
import kb
import keras_acts
import reference

RNG = np.random.default_rng(0)
FACTORIES = {
    "frelu": lambda **kw: keras_acts.FReLU(**kw),
    "acon_frelu": lambda **kw: keras_acts.AconFReLU(**kw),
    "acon_frelu_s2": lambda **kw: keras_acts.AconFReLU(strides=2, **kw),
}
NAMES = sorted(FACTORIES)


def _perturb(layer):
    for w in layer.weights:
        name = w.path.split("/")[-1]
        if name == "moving_variance":
            value = RNG.uniform(0.5, 2.0, w.shape)
        elif name == "gamma":
            value = 1.0 + 0.2 * RNG.normal(size=w.shape)
        else:
            value = 0.5 * RNG.normal(size=w.shape)
        w.assign(value.astype(w.dtype))


def _np(w):
    return kb.numpy(w).astype(np.float64)


def _bn(bn, eps=1e-5):
    return (_np(bn.gamma), _np(bn.beta), _np(bn.moving_mean), _np(bn.moving_variance), eps)


def _reference(layer, x, training=False):
    kernel, bias = _np(layer.kernel)[:, :, :, 0], _np(layer.bias)
    if isinstance(layer, keras_acts.AconFReLU):
        return ref.acon_frelu(x, kernel, bias, _bn(layer.bn1), _bn(layer.bn2),
                              stride=layer.strides, training=training)
    return ref.frelu(x, kernel, bias, _bn(layer.bn1), training=training)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(6, 6), (7, 5)])
def test_forward_matches_float64_reference(name, size):
    x = RNG.normal(0, 2, (3,) + size + (4,))
    dtype = kb.FLOAT64
    tol = 1e-10 if dtype == "float64" else 2e-5
    if kb.BACKEND == "jax":
        # Keras' batch norm on JAX uses jax.lax.rsqrt, which XLA's CPU backend
        # computes to ~1e-7 relative accuracy in float64.
        tol = 2e-6
    layer = FACTORIES[name](dtype=dtype)
    layer.build(x.shape)
    _perturb(layer)
    for training in (False, True):
        expected = _reference(layer, x, training)     # before the call moves BN state
        y = layer(kb.tensor(x, dtype), training=training)
        assert kb.dtype_of(y) == dtype
        assert tuple(y.shape) == expected.shape == layer.compute_output_shape(x.shape)
        np.testing.assert_allclose(kb.numpy(y), expected, rtol=tol, atol=tol,
                                   err_msg=f"training={training}")


def test_stride_two_shapes_follow_pytorch():
    # PyTorch: floor((n + 2 - 3) / 2) + 1 for both the conv and the max-pool.
    layer = keras_acts.AconFReLU(strides=2)
    for n, expected in ((7, 4), (8, 4), (1, 1), (2, 1)):
        y = layer(np.zeros((1, n, n, 3), "f4")) if n == 7 else None
        assert layer.compute_output_shape((None, n, n, 3)) == (None, expected, expected, 3)
        if y is not None:
            assert tuple(y.shape) == (1, 4, 4, 3)


def test_batch_norm_conventions():
    layer = keras_acts.AconFReLU()
    layer.build((None, 5, 5, 3))
    for bn in (layer.bn1, layer.bn2):
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert bn.momentum == 0.9 and bn.epsilon == 1e-5
    # The running mean moves by 0.1 of the batch mean (PyTorch momentum 0.1).
    x = RNG.normal(1.0, 2.0, (4, 5, 5, 3)).astype("f4")
    t = kb.numpy(layer.funnel_condition(kb.tensor(x), training=False))
    assert t.shape == x.shape
    layer.bn1.moving_mean.assign(np.zeros(3, "f4"))
    before = kb.numpy(layer.bn1.moving_mean).copy()
    layer(x, training=True)
    assert not np.array_equal(kb.numpy(layer.bn1.moving_mean), before)
    ref_h = ref.depthwise3x3(x, _np(layer.kernel)[:, :, :, 0], _np(layer.bias), 1)
    np.testing.assert_allclose(kb.numpy(layer.bn1.moving_mean), 0.1 * ref_h.mean((0, 1, 2)),
                               rtol=1e-4, atol=1e-6)
    init = keras_acts.FReLU()
    init.build((None, 4, 4, 64))
    kernel = kb.numpy(init.kernel)
    assert kernel.shape == (3, 3, 64, 1) and 0.007 < kernel.std() < 0.013   # N(0, 0.01^2)


@kb.float64_only
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [False, True])
def test_gradients_match_numerical(name, training):
    x = RNG.normal(0, 1, (2, 5, 4, 2))
    layer = FACTORIES[name](dtype="float64")
    layer.build(x.shape)
    _perturb(layer)
    out_shape = layer.compute_output_shape(x.shape)
    w = RNG.normal(size=out_shape)
    if name == "frelu":      # keep samples away from the kink x = T(x)
        t = ref.batch_norm_torch(ref.depthwise3x3(x, _np(layer.kernel)[:, :, :, 0],
                                                  _np(layer.bias), 1), *_bn(layer.bn1),
                                 training=training)
        assert np.abs(x - t).min() > 1e-4
    state = [kb.numpy(v).copy() for v in layer.non_trainable_weights]
    _, grads = kb.layer_value_and_grads(layer, kb.tensor(x), w, training=training)
    for v, s in zip(layer.non_trainable_weights, state):
        v.assign(s)      # the training call moved the moving statistics
    weights = [_np(v) for v in layer.trainable_weights]
    # kernel, bias, then (gamma, beta) of bn1 (and bn2); moving stats (mean, var).
    assert [v.path.split("/")[-1] for v in layer.trainable_weights][:4] == [
        "kernel", "bias", "gamma", "beta"]
    moving = [_np(v) for v in layer.non_trainable_weights]

    def fn(x, kernel, bias, *bns):
        bn1 = (bns[0], bns[1], moving[0], moving[1], 1e-5)
        if isinstance(layer, keras_acts.AconFReLU):
            bn2 = (bns[2], bns[3], moving[2], moving[3], 1e-5)
            return ref.acon_frelu(x, kernel[:, :, :, 0], bias, bn1, bn2, layer.strides, training)
        return ref.frelu(x, kernel[:, :, :, 0], bias, bn1, training)

    atol = 1e-5 if kb.BACKEND == "jax" else 1e-6      # jax.lax.rsqrt, see above
    reference.assert_gradients_match_numerical([kb.numpy(g) for g in grads], [x] + weights,
                                               fn, w, rtol=1e-5, atol=atol)


MODES = {"tensorflow": ("eager", "graph", "xla"), "jax": ("eager", "xla"),
         "torch": ("eager",)}[kb.BACKEND]


def _fit(name, mode, policy=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6, 6, 3)),
                              keras.layers.Conv2D(4, 3, padding="same", dtype=policy),
                              FACTORIES[name](dtype=policy),
                              keras.layers.GlobalAveragePooling2D(dtype=policy),
                              keras.layers.Dense(2, dtype=policy)])
    model.compile(keras.optimizers.SGD(0.1), "mse", run_eagerly=(mode == "eager"),
                  jit_compile=(mode == "xla"))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 6, 6, 3)).astype("f4"), rng.normal(size=(16, 2)).astype("f4")
    layer = model.layers[1]
    before = [kb.numpy(w).copy() for w in layer.weights]
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [kb.numpy(w) for w in layer.weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))   # all move
    return [kb.numpy(v) for v in model.weights]


@pytest.mark.parametrize("name", NAMES)
def test_execution_modes_fit_agree(name):
    results = {mode: _fit(name, mode) for mode in MODES}
    for mode in MODES[1:]:
        for a, b in zip(results["eager"], results[mode]):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=mode)


@pytest.mark.parametrize("name", ["frelu", "acon_frelu_s2"])
def test_mixed_precision_trains(name):
    weights = _fit(name, "eager" if kb.BACKEND == "torch" else "xla", "mixed_float16")
    assert all(np.isfinite(w).all() for w in weights)


@pytest.mark.parametrize("name", NAMES)
def test_config_and_keras_file_roundtrip(name, tmp_path):
    layer = FACTORIES[name](kernel_regularizer="l2",
                            bn_beta_initializer=keras.initializers.Constant(1e-4))
    config = layer.get_config()
    params = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    params |= set(inspect.signature(keras_acts.FReLU.__init__).parameters) - {"self", "kwargs"}
    assert params <= set(config), params - set(config)
    assert type(layer).from_config(config).get_config() == config
    inputs = keras.Input((6, 6, 4))
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = keras.Model(inputs, FACTORIES[name]()(h))
    _perturb(model.layers[2])
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    model(x, training=True)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(kb.numpy(a), kb.numpy(b))
    np.testing.assert_array_equal(kb.numpy(loaded(x)), kb.numpy(model(x)))


def test_registry_names():
    for key, cls in (("frelu", keras_acts.FReLU), ("acon_frelu", keras_acts.AconFReLU)):
        for ident in (key, key.upper(), cls.__name__, cls):
            a, b = keras_acts.get(ident), keras_acts.get(ident)
            assert type(a) is cls and a is not b
    assert keras_acts.get("acon-frelu", strides=2).strides == 2


@pytest.mark.parametrize("name", NAMES)
def test_invalid_inputs_raise_clear_errors(name):
    cls = type(FACTORIES[name]()).__name__
    for shape in ((None, 16), (None, 8, 16), (None, 4, 4, 4, 16)):
        with pytest.raises(ValueError, match=rf"{cls} needs spatial input of rank 4.*"
                                             rf"input_shape=\(None, .*of rank {len(shape)}"):
            FACTORIES[name]().build(shape)
    with pytest.raises(ValueError, match=rf"{cls} supports channels-last.*received axis=1"):
        FACTORIES[name](axis=1)
    with pytest.raises(ValueError, match="needs a known number of channels"):
        FACTORIES[name]().build((None, 4, 4, None))
    with pytest.raises(ValueError, match="floating"):
        FACTORIES[name]()(np.ones((2, 4, 4, 3), np.int32))
    with pytest.raises(ValueError, match=r"`bn_epsilon` must be a number in \(0.0"):
        FACTORIES[name](bn_epsilon=0.0)
    for bad in (3, 0, True, "2"):
        with pytest.raises(ValueError, match=r"`strides` must be one of \(1, 2\)"):
            keras_acts.AconFReLU(strides=bad)


def test_large_finite_inputs_never_give_nan():
    # Large but finite feature maps through the whole layer, both modes. (Not
    # up to the float32 maximum: Keras' batch norm overflows in training where
    # a channel's batch variance is beyond the float range, which PyTorch's
    # backend reaches at |x| = 1e30; see the module docstring.)
    x = RNG.normal(0, 1, (2, 5, 5, 3)).astype("f4")
    x[0, 0, 0, :] = 1e15
    x[1, 2, 2, :] = -1e15
    for name in NAMES:
        layer = FACTORIES[name]()
        layer.build(x.shape)
        for training in (False, True):
            y, grads = kb.layer_value_and_grads(layer, kb.tensor(x), training=training)
            assert not np.isnan(kb.numpy(y)).any(), (name, training)
            assert not any(np.isnan(kb.numpy(g)).any() for g in grads), (name, training)


def test_swap_activations_inside_conv_blocks_and_refusal_elsewhere():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.ReLU()(keras.layers.Conv2D(4, 3, padding="same")(h))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(h))
    for key, cls in (("frelu", keras_acts.FReLU), ("acon_frelu", keras_acts.AconFReLU)):
        swapped = keras_acts.swap_activations(model, key)
        assert sum(isinstance(layer, cls) for layer in swapped.layers) == 2
        assert tuple(swapped.output_shape) == (None, 4)
    # A non-spatial site (after global pooling) keeps its activation, with one warning;
    # a model with no spatial site at all is refused.
    pooled = keras.layers.Dense(8, activation="relu")(keras.layers.GlobalAveragePooling2D()(h))
    head = keras.Model(inputs, pooled)
    with pytest.warns(UserWarning, match=r"FReLU needs spatial input; skipped 1 "):
        swapped = keras_acts.swap_activations(head, "frelu")
    assert sum(isinstance(layer, keras_acts.FReLU) for layer in swapped.layers) == 2
    flat_inputs = keras.Input((8,))
    dense_only = keras.Model(flat_inputs, keras.layers.Dense(8, activation="relu")(flat_inputs))
    with pytest.raises(ValueError, match=r"FReLU needs spatial input"):
        keras_acts.swap_activations(dense_only, "frelu")
    first = keras.Sequential([keras.Input((3, 8, 8)),
                              keras.layers.Conv2D(4, 3, data_format="channels_first",
                                                  activation="relu")])
    with pytest.raises(ValueError, match=r"AconFReLU supports channels-last.*axis=1"):
        keras_acts.swap_activations(first, "acon_frelu")
