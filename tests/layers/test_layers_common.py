"""Behaviour every keras_acts layer shares: shapes, maths, gradients, execution
modes, mixed precision, serialization, validation, non-finite inputs."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import reference
import keras_acts

RNG = np.random.default_rng(0)

FACTORIES = {
    "pwlu": lambda **kw: keras_acts.PWLU(num_intervals=4, phase1_steps=0, **kw),
    "pwlu_layerwise": lambda **kw: keras_acts.PWLU(num_intervals=4, channelwise=False,
                                                   phase1_steps=0, **kw),
    "acon_c": lambda **kw: keras_acts.AconC(**kw),
    "meta_acon": lambda **kw: keras_acts.MetaAcon(reduction=2, **kw),
    "meta_acon_nobn": lambda **kw: keras_acts.MetaAcon(reduction=2, use_bn=False, **kw),
    "serf": lambda **kw: keras_acts.Serf(**kw),
}
NAMES = sorted(FACTORIES)


def _perturb(layer):
    """Random (non-default) values for every trainable weight, stable ones for BN."""
    for w in layer.trainable_weights:
        value = RNG.normal(size=w.shape) * 0.5
        if "bound" in w.name:
            value = np.full(w.shape, -2.0 if "left" in w.name else 2.5) + 0.1 * value
        if "gamma" in w.name:
            value = 1.0 + 0.1 * value
        w.assign(value.astype(w.dtype))
    for w in layer.non_trainable_weights:
        if "moving_variance" in w.name:
            w.assign(RNG.uniform(0.5, 2.0, w.shape).astype(w.dtype))
        elif "moving_mean" in w.name:
            w.assign(RNG.normal(size=w.shape).astype(w.dtype))


def _np(w):
    return keras.ops.convert_to_numpy(w).astype(np.float64)


def reference_output(layer, x, training=False):
    """Float64 NumPy reference of the layer on x (channels-last)."""
    name = type(layer).__name__
    if name == "Serf":
        return reference.serf(x)
    if name == "PWLU":
        ws = [_np(w) for w in (layer.left_bound, layer.right_bound, layer.points,
                               layer.left_slope, layer.right_slope)]
        return reference.pwlu(x, *ws)
    if name == "AconC":
        return reference.acon_c(x, _np(layer.p1), _np(layer.p2), _np(layer.beta))
    if name == "MetaAcon":
        pooled = x.mean(axis=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x
        h = pooled @ _np(layer.kernel1) + _np(layer.bias1)
        for step, (kernel, bias, bn) in enumerate(
                [(None, None, getattr(layer, "bn1", None)),
                 (layer.kernel2, layer.bias2, getattr(layer, "bn2", None))]):
            if kernel is not None:
                h = h @ _np(kernel) + _np(bias)
            if bn is not None:
                if training and len(x) > 1:
                    mean, var = h.mean(0), h.var(0)
                else:
                    mean, var = _np(bn["mean"]), _np(bn["var"])
                h = reference.batch_norm(h, _np(bn["gamma"]), _np(bn["beta"]), mean, var,
                                         layer.bn_epsilon)
        beta = 1.0 / (1.0 + np.exp(-h))
        beta = beta.reshape((len(x),) + (1,) * (x.ndim - 2) + (-1,))
        return reference.acon_c(x, _np(layer.p1), _np(layer.p2), beta)
    raise AssertionError(name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_forward_matches_float64_reference_for_ranks_2_to_5(name, rank):
    shape = (3,) + (4,) * (rank - 2) + (6,)
    x = RNG.normal(0, 2, shape)
    layer = FACTORIES[name](dtype="float64")
    layer.build(shape)
    _perturb(layer)
    for training in (False, True):
        y = layer(tf.constant(x), training=training) if name.startswith("meta") else layer(
            tf.constant(x))
        assert y.shape == shape and y.dtype == tf.float64
        np.testing.assert_allclose(y.numpy(), reference_output(layer, x, training),
                                   rtol=1e-10, atol=1e-10)
    assert layer.compute_output_shape(shape) == shape


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_equals_transposed_channels_last(name):
    x = RNG.normal(0, 2, (2, 5, 5, 6)).astype(np.float32)
    last, first = FACTORIES[name](), FACTORIES[name](axis=1) if name != "serf" else \
        FACTORIES[name]()
    last.build(x.shape)
    first.build((2, 6, 5, 5))
    _perturb(last)
    for a, b in zip(last.weights, first.weights):
        b.assign(np.reshape(keras.ops.convert_to_numpy(a), b.shape))
    y_last = last(x).numpy()
    y_first = first(np.moveaxis(x, -1, 1)).numpy()
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last, rtol=1e-5, atol=1e-6)


def _layer_loss_grads(layer, x, w):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * w)
    return tape.gradient(loss, [x] + layer.trainable_weights)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "serf"])
def test_parameter_gradients_match_numerical(name):
    x = RNG.normal(0, 2, (4, 3, 5)).astype(np.float64)
    w = RNG.normal(size=x.shape)
    layer = FACTORIES[name](dtype="float64")
    layer.build(x.shape)
    _perturb(layer)
    if name.startswith("pwlu"):  # keep samples away from the kinks
        x = np.where(np.abs(x - np.round(x * 2) / 2) < 0.05, x + 0.1, x)
    grads = _layer_loss_grads(layer, tf.constant(x), w)
    targets = [None] + list(layer.trainable_weights)
    for target, grad in zip(targets, grads):
        if target is None:
            num = reference.numeric_grad(lambda v: np.sum(layer(tf.constant(v)).numpy() * w), x)
        else:
            base = _np(target)

            def f(v, target=target):
                target.assign(v)
                return np.sum(layer(tf.constant(x)).numpy() * w)

            num = reference.numeric_grad(f, base)
            target.assign(base)
        np.testing.assert_allclose(grad.numpy(), num, rtol=1e-5, atol=1e-6,
                                   err_msg=getattr(target, "name", "x"))


def _fit_once(name, mode):
    keras.utils.set_random_seed(1)
    factory = {"pwlu": lambda: keras_acts.PWLU(num_intervals=4, phase1_steps=2)}.get(
        name, FACTORIES[name])
    model = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 3), factory(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError(),
                  run_eagerly=(mode == "eager"), jit_compile=(mode == "xla"))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 5, 5, 3)).astype("f4"), rng.normal(size=(16, 2)).astype("f4")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return [keras.ops.convert_to_numpy(v) for v in model.weights], model(x).numpy()


@pytest.mark.parametrize("name", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_eager_graph_and_xla_fit_agree(name):
    results = {mode: _fit_once(name, mode) for mode in ("eager", "graph", "xla")}
    ref_w, ref_y = results["eager"]
    for mode in ("graph", "xla"):
        weights, y = results[mode]
        for a, b in zip(ref_w, weights):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=mode)
        np.testing.assert_allclose(ref_y, y, rtol=2e-4, atol=2e-5, err_msg=mode)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision(name, policy):
    x = RNG.normal(0, 2, (4, 5, 5, 6)).astype(np.float32)
    ref_layer = FACTORIES[name]()
    ref_layer.build(x.shape)
    _perturb(ref_layer)
    layer = FACTORIES[name](dtype=policy)
    layer.build(x.shape)
    for a, b in zip(ref_layer.weights, layer.weights):
        b.assign(keras.ops.convert_to_numpy(a))
    assert all(w.dtype in ("float32", "int32", "int64") for w in layer.weights)
    compute = tf.float16 if policy == "mixed_float16" else tf.bfloat16
    xt = tf.cast(x, compute)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == compute
    grads = tape.gradient(loss, [xt] + layer.trainable_weights)
    assert grads[0].dtype == compute
    for g in grads:
        assert np.all(np.isfinite(tf.cast(g, tf.float32).numpy()))
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(),
                               ref_layer(tf.cast(xt, tf.float32)).numpy(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", NAMES)
def test_get_config_returns_every_constructor_argument(name):
    layer = FACTORIES[name]()
    config = layer.get_config()
    params = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert params <= set(config), params - set(config)
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def _model(name, shape=(6, 6, 4)):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = FACTORIES[name]()(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_and_savedmodel_roundtrip(name, tmp_path):
    model = _model(name)
    for layer in model.layers[2:3]:
        _perturb(layer)
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    model(x, training=True)  # moves BN / PWLU state
    expected = model(x).numpy()
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    export_dir = str(tmp_path / "saved_model")
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_inputs_raise_clear_errors(name):
    with pytest.raises(ValueError, match="axis"):
        FACTORIES[name](axis=0) if name != "serf" else keras_acts.PWLU(axis=0)
    with pytest.raises(ValueError, match="rank 2 to 5"):
        FACTORIES[name]().build((4,))
    with pytest.raises(ValueError, match="rank 2 to 5"):
        FACTORIES[name]().build((1, 2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="floating"):
        FACTORIES[name]()(np.ones((2, 3), np.int32))
    if name != "serf":
        with pytest.raises(ValueError, match=r"`axis` must be one of"):
            FACTORIES[name](axis=3).build((2, 4))


def test_invalid_constructor_arguments():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"num_intervals.*>= 1"):
            keras_acts.PWLU(num_intervals=bad)
        with pytest.raises(ValueError, match=r"reduction.*>= 1"):
            keras_acts.MetaAcon(reduction=bad)
    with pytest.raises(ValueError, match="init"):
        keras_acts.PWLU(init="tanh")
    with pytest.raises(ValueError, match="phase1_steps"):
        keras_acts.PWLU(phase1_steps=-1)
    with pytest.raises(ValueError, match="momentum"):
        keras_acts.PWLU(momentum=1.5)
    with pytest.raises(ValueError, match="shared_axes"):
        keras_acts.AconC(shared_axes=[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("jit", [False, True])
def test_nan_and_inf_inputs_do_not_crash(name, jit):
    layer = FACTORIES[name]()
    x = RNG.normal(size=(3, 4, 6)).astype(np.float32)
    x[0, 0, :] = np.nan
    x[1, 1, :3] = np.inf
    x[1, 2, :3] = -np.inf
    layer.build(x.shape)
    fn = tf.function(lambda t: layer(t), jit_compile=jit)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt)
    tape.gradient(y, xt)
    y = y.numpy()
    assert np.isnan(y[0, 0]).all()
    if not name.startswith("meta"):  # elementwise: other entries unaffected
        finite = np.isfinite(x)
        assert np.isfinite(y[finite]).all()
        np.testing.assert_allclose(y[finite], layer(np.where(finite, x, 0)).numpy()[finite],
                                   rtol=1e-5, atol=1e-6)


def test_registry_returns_fresh_layers():
    for key, cls in [("pwlu", keras_acts.PWLU), ("acon_c", keras_acts.AconC),
                     ("meta_acon", keras_acts.MetaAcon), ("serf", keras_acts.Serf)]:
        for ident in (key, cls.__name__, key.upper(), cls):
            a, b = keras_acts.get(ident), keras_acts.get(ident)
            assert isinstance(a, cls) and a is not b
    layer = keras_acts.get("pwlu", num_intervals=8)
    assert layer.num_intervals == 8
    clone = keras_acts.get(layer)
    assert clone is not layer and clone.num_intervals == 8
    with pytest.raises(ValueError, match="allowed names"):
        keras_acts.get("relu6")
