"""AconA / AconB layers on every backend: float64 references, numerical
gradients, training, serialization, registry, bad input, extreme inputs."""

import inspect

import keras
import numpy as np
import pytest

import family_reference as ref
import kb
import keras_acts
import reference

RNG = np.random.default_rng(0)
FACTORIES = {"acon_a": keras_acts.AconA, "acon_b": keras_acts.AconB}
NAMES = sorted(FACTORIES)


def _perturb(layer):
    for w in layer.trainable_weights:
        w.assign(RNG.normal(0.5, 0.5, size=w.shape).astype(w.dtype))


def _np(w):
    return kb.numpy(w).astype(np.float64)


def _reference(layer, x):
    if isinstance(layer, keras_acts.AconA):
        return ref.acon_a(x, _np(layer.beta))
    return ref.acon_b(x, _np(layer.p), _np(layer.beta))


def test_defaults_and_parameter_shapes():
    a, b = keras_acts.AconA(), keras_acts.AconB()
    a.build((None, 4, 4, 6))
    b.build((None, 4, 4, 6))
    assert [w.path.split("/")[-1] for w in a.weights] == ["beta"]
    assert [w.path.split("/")[-1] for w in b.weights] == ["p", "beta"]
    assert tuple(a.beta.shape) == (1, 1, 6) and tuple(b.p.shape) == (1, 1, 6)
    np.testing.assert_array_equal(kb.numpy(a.beta), 1.0)
    np.testing.assert_array_equal(kb.numpy(b.p), 0.25)
    layerwise = keras_acts.AconB(shared_axes=[1, 2, 3], p_regularizer="l2")
    layerwise.build((None, 4, 4, 6))
    assert tuple(layerwise.p.shape) == (1, 1, 1) and len(layerwise.losses) == 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_forward_matches_float64_reference(name, rank):
    shape = (3,) + (4,) * (rank - 2) + (6,)
    x = RNG.normal(0, 2, shape)
    layer = FACTORIES[name](dtype=kb.FLOAT64)
    layer.build(shape)
    _perturb(layer)
    tol = 1e-12 if kb.FLOAT64 == "float64" else 2e-5
    y = layer(kb.tensor(x, kb.FLOAT64))
    assert kb.dtype_of(y) == kb.FLOAT64
    np.testing.assert_allclose(kb.numpy(y), _reference(layer, x), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_equals_transposed_channels_last(name):
    x = RNG.normal(0, 2, (2, 5, 5, 6)).astype(np.float32)
    last, first = FACTORIES[name](), FACTORIES[name](axis=1)
    last.build(x.shape)
    first.build((2, 6, 5, 5))
    _perturb(last)
    for a, b in zip(last.weights, first.weights):
        b.assign(np.reshape(kb.numpy(a), b.shape))
    np.testing.assert_allclose(np.moveaxis(kb.numpy(first(np.moveaxis(x, -1, 1))), 1, -1),
                               kb.numpy(last(x)), rtol=1e-5, atol=1e-6)


@kb.float64_only
@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_numerical(name):
    x = RNG.normal(0, 2, (4, 3, 5))
    w = RNG.normal(size=x.shape)
    layer = FACTORIES[name](dtype="float64")
    layer.build(x.shape)
    _perturb(layer)
    _, grads = kb.layer_value_and_grads(layer, kb.tensor(x), w)
    params = [_np(v) for v in layer.trainable_weights]

    def fn(x, *params):
        return (ref.acon_a(x, *params) if name == "acon_a" else ref.acon_b(x, *params))

    reference.assert_gradients_match_numerical(
        [kb.numpy(g) for g in grads], [x] + params,
        lambda x, *p: fn(x, *(v[None] for v in p)), w, rtol=1e-6, atol=1e-7)


MODES = {"tensorflow": ("eager", "graph", "xla"), "jax": ("eager", "xla"),
         "torch": ("eager",)}[kb.BACKEND]


def _fit(name, mode, policy=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 3, dtype=policy),
                              FACTORIES[name](dtype=policy),
                              keras.layers.GlobalAveragePooling2D(dtype=policy),
                              keras.layers.Dense(2, dtype=policy)])
    model.compile(keras.optimizers.SGD(0.1), "mse", run_eagerly=(mode == "eager"),
                  jit_compile=(mode == "xla"))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 5, 5, 3)).astype("f4"), rng.normal(size=(16, 2)).astype("f4")
    before = [kb.numpy(w).copy() for w in model.layers[1].weights]
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [kb.numpy(w) for w in model.layers[1].weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))   # they learn
    return [kb.numpy(v) for v in model.weights]


@pytest.mark.parametrize("name", NAMES)
def test_execution_modes_fit_agree(name):
    results = {mode: _fit(name, mode) for mode in MODES}
    for mode in MODES[1:]:
        for a, b in zip(results["eager"], results[mode]):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=mode)


@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_trains(name):
    weights = _fit(name, "eager" if kb.BACKEND == "torch" else "xla", "mixed_float16")
    assert all(np.isfinite(w).all() for w in weights)


@pytest.mark.parametrize("name", NAMES)
def test_config_and_keras_file_roundtrip(name, tmp_path):
    layer = FACTORIES[name](beta_regularizer="l2")
    config = layer.get_config()
    params = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert params <= set(config), params - set(config)
    assert type(layer).from_config(config).get_config() == config
    inputs = keras.Input((6, 6, 4))
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = keras.Model(inputs, FACTORIES[name]()(h))
    _perturb(model.layers[2])
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[2]) is FACTORIES[name]
    np.testing.assert_array_equal(kb.numpy(loaded(x)), kb.numpy(model(x)))


def test_registry_names():
    for key, cls in (("acon_a", keras_acts.AconA), ("acon_b", keras_acts.AconB)):
        for ident in (key, key.upper(), key.replace("_", "-"), cls.__name__, cls):
            a, b = keras_acts.get(ident), keras_acts.get(ident)
            assert type(a) is cls and a is not b
    assert keras_acts.get("acon_b", shared_axes=[1]).shared_axes == [1]


@pytest.mark.parametrize("name", NAMES)
def test_invalid_inputs_raise_clear_errors(name):
    with pytest.raises(ValueError, match=r"`axis` must be a non-zero integer.*received axis=0"):
        FACTORIES[name](axis=0)
    with pytest.raises(ValueError, match=r"shared_axes.*received shared_axes=\[0\]"):
        FACTORIES[name](shared_axes=[0])
    with pytest.raises(ValueError, match=r"rank 2 to 5.*input_shape=\(4,\)"):
        FACTORIES[name]().build((4,))
    with pytest.raises(ValueError, match=r"`axis` must be one of \[-1, 1\].*received axis=3"):
        FACTORIES[name](axis=3).build((2, 4))
    with pytest.raises(ValueError, match="floating"):
        FACTORIES[name]()(np.ones((2, 3), np.int32))


@pytest.mark.parametrize("name", NAMES)
def test_inf_and_huge_inputs_give_float64_limits_without_nan(name):
    big = float(np.finfo(np.float32).max)
    x = RNG.normal(0, 1, (3, 4, 6)).astype(np.float32)
    x[0, 0, :] = np.inf
    x[1, 1, :] = -np.inf
    x[2, 0, :] = -3e38
    x[2, 1, :] = big
    x64 = x.astype(np.float64)
    x64 = np.where(np.isinf(x64), np.sign(x64) * 1e300, x64)
    out = []
    source = None
    for dtype, xv in (("float32", x), (kb.FLOAT64, x64)):
        layer = FACTORIES[name](dtype=dtype)
        layer.build(x.shape)
        if source is None:
            _perturb(layer)
            source = layer
        else:
            for a, b in zip(source.weights, layer.weights):
                b.assign(kb.numpy(a).astype(b.dtype))
        y, grads = kb.layer_value_and_grads(layer, kb.tensor(xv, dtype))
        out.append((kb.numpy(y), [kb.numpy(g) for g in grads]))
    (y32, g32), (y64, g64) = out
    assert not np.isnan(y32).any() and not any(np.isnan(g).any() for g in g32)
    np.testing.assert_allclose(y32, kb.as_float32_limit(y64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g32[0], kb.as_float32_limit(g64[0]), rtol=1e-4, atol=1e-5)
