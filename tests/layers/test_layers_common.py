"""Behaviour every keras_acts layer shares, on every backend: shapes, maths,
gradients, execution modes, dtypes, serialization, validation, extreme inputs."""

import inspect

import keras
import numpy as np
import pytest

import kb
import keras_acts
import reference
from keras_acts.layers.pwlu import PARAMETERS

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
    """Random (non-default) values for every parameter, stable ones for BN."""
    if isinstance(layer, keras_acts.PWLU):
        shape = tuple(layer.left_bound.shape)
        layer.set_parameters(
            left_bound=np.full(shape, -2.0) + 0.1 * RNG.normal(size=shape),
            right_bound=np.full(shape, 2.5) + 0.1 * RNG.normal(size=shape),
            points=RNG.normal(size=tuple(layer.points.shape)) * 0.5,
            left_slope=RNG.normal(size=shape) * 0.5, right_slope=RNG.normal(size=shape) * 0.5)
        for w in layer.trainable_weights:       # small offsets on top
            w.assign(0.01 * RNG.normal(size=w.shape))
        return
    for w in layer.weights:
        name = w.path
        if name.endswith("gamma"):
            value = 1.0 + 0.1 * RNG.normal(size=w.shape)
        elif name.endswith("moving_variance"):
            value = RNG.uniform(0.5, 2.0, w.shape)
        elif name.endswith("moving_mean") or w.trainable:
            value = RNG.normal(size=w.shape) * 0.5
        else:
            continue
        w.assign(value.astype(w.dtype))


def _np(w):
    return kb.numpy(w).astype(np.float64)


def reference_output(layer, x, training=False):
    """Float64 NumPy reference of the layer on x (channels-last)."""
    name = type(layer).__name__
    if name == "Serf":
        return reference.serf(x)
    if name == "PWLU":
        params = layer.parameters()
        return reference.pwlu(x, *(_np(params[p]) for p in PARAMETERS))
    if name == "AconC":
        return reference.acon_c(x, _np(layer.p1), _np(layer.p2), _np(layer.beta))
    if name == "MetaAcon":
        pooled = x.mean(axis=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x
        h = pooled @ _np(layer.kernel1) + _np(layer.bias1)
        for kernel, bias, bn in ((None, None, getattr(layer, "bn1", None)),
                                 (layer.kernel2, layer.bias2, getattr(layer, "bn2", None))):
            if kernel is not None:
                h = h @ _np(kernel) + _np(bias)
            if bn is not None:
                if training and len(x) > 1:
                    mean, var = h.mean(0), h.var(0)     # PyTorch: normalise with biased var
                else:
                    mean, var = _np(bn.moving_mean), _np(bn.moving_variance)
                h = reference.batch_norm(h, _np(bn.gamma), _np(bn.beta), mean, var,
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
    dtype = kb.FLOAT64
    tol = 1e-10 if dtype == "float64" else 2e-5
    layer = FACTORIES[name](dtype=dtype)
    layer.build(shape)
    _perturb(layer)
    for training in (False, True):
        ref = reference_output(layer, x, training)      # before the call moves BN state
        y = layer(kb.tensor(x, dtype), training=training)
        assert tuple(y.shape) == shape and kb.dtype_of(y) == dtype
        np.testing.assert_allclose(kb.numpy(y), ref, rtol=tol, atol=tol)
    assert layer.compute_output_shape(shape) == shape


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_equals_transposed_channels_last(name):
    x = RNG.normal(0, 2, (2, 5, 5, 6)).astype(np.float32)
    last = FACTORIES[name]()
    first = FACTORIES[name](axis=1) if name != "serf" else FACTORIES[name]()
    last.build(x.shape)
    first.build((2, 6, 5, 5))
    _perturb(last)
    for a, b in zip(last.weights, first.weights):
        b.assign(np.reshape(kb.numpy(a), b.shape))
    y_last = kb.numpy(last(x))
    y_first = kb.numpy(first(np.moveaxis(x, -1, 1)))
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last, rtol=1e-5, atol=1e-6)


@kb.float64_only
@pytest.mark.parametrize("name", [n for n in NAMES if n != "serf"])
def test_parameter_gradients_match_numerical(name):
    x = RNG.normal(0, 2, (4, 3, 5)).astype(np.float64)
    w = RNG.normal(size=x.shape)
    layer = FACTORIES[name](dtype="float64")
    layer.build(x.shape)
    _perturb(layer)
    if name.startswith("pwlu"):  # keep samples away from the kinks
        x = np.where(np.abs(x - np.round(x * 2) / 2) < 0.05, x + 0.1, x)
    _, grads = kb.layer_value_and_grads(layer, kb.tensor(x), w)
    targets = [None] + list(layer.trainable_weights)
    for target, grad in zip(targets, grads):
        if target is None:
            num = reference.numeric_grad(
                lambda v: np.sum(kb.numpy(layer(kb.tensor(v))) * w), x)
        else:
            base = _np(target)

            def f(v, target=target):
                target.assign(v)
                return np.sum(kb.numpy(layer(kb.tensor(x))) * w)

            num = reference.numeric_grad(f, base)
            target.assign(base)
        np.testing.assert_allclose(kb.numpy(grad), num, rtol=1e-5, atol=1e-6,
                                   err_msg=getattr(target, "path", "x"))


def _fit_once(name, mode, dtype_policy=None, epochs=1):
    keras.utils.set_random_seed(1)
    factory = {"pwlu": lambda: keras_acts.PWLU(num_intervals=4, phase1_steps=2,
                                               dtype=dtype_policy)}.get(
        name, lambda: FACTORIES[name](dtype=dtype_policy))
    model = keras.Sequential([keras.Input((5, 5, 3)),
                              keras.layers.Conv2D(4, 3, dtype=dtype_policy), factory(),
                              keras.layers.GlobalAveragePooling2D(dtype=dtype_policy),
                              keras.layers.Dense(2, dtype=dtype_policy)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError(),
                  run_eagerly=(mode == "eager"), jit_compile=(mode == "xla"))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 5, 5, 3)).astype("f4"), rng.normal(size=(16, 2)).astype("f4")
    history = model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)
    return model, [kb.numpy(v) for v in model.weights], kb.numpy(model(x)), history


MODES = {"tensorflow": ("eager", "graph", "xla"), "jax": ("eager", "xla"),
         "torch": ("eager",)}[kb.BACKEND]


@pytest.mark.parametrize("name", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_execution_modes_fit_agree(name):
    results = {mode: _fit_once(name, mode)[1:3] for mode in MODES}
    ref_w, ref_y = results["eager"]
    for mode in MODES[1:]:
        weights, y = results[mode]
        for a, b in zip(ref_w, weights):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=mode)
        np.testing.assert_allclose(ref_y, y, rtol=2e-4, atol=2e-5, err_msg=mode)


@pytest.mark.parametrize("policy", [p for p in ("float64", "float32", "mixed_float16",
                                                "mixed_bfloat16")
                                    if p != "float64" or kb.BACKEND != "torch"])
@pytest.mark.parametrize("name", ["pwlu", "acon_c", "meta_acon", "serf"])
def test_every_layer_trains_and_infers_in_every_dtype(name, policy):
    # Issue 11.4: PWLU(dtype="float64") crashed in phase I training. Every layer
    # trains (PWLU through its phase switch) and infers in each policy.
    model, weights, y, history = _fit_once(name, "graph" if "graph" in MODES else "eager",
                                           dtype_policy=policy, epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(np.all(np.isfinite(w)) for w in weights if w.dtype.kind == "f")
    assert np.all(np.isfinite(y))
    layer = model.layers[1]
    expected = "float64" if policy == "float64" else "float32"
    assert all(w.dtype == expected for w in layer.trainable_weights)
    if name == "pwlu":
        assert not layer.in_phase1


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
        b.assign(kb.numpy(a))
    assert all(kb.dtype_of(w) in ("float32", "int32", "int64") for w in layer.weights)
    compute = "float16" if policy == "mixed_float16" else "bfloat16"
    xt = kb.tensor(x, compute)
    y, grads = kb.layer_value_and_grads(layer, xt)
    assert kb.dtype_of(y) == compute and kb.dtype_of(grads[0]) == compute
    for g in grads:
        assert np.all(np.isfinite(kb.numpy(g)))
    np.testing.assert_allclose(kb.numpy(y), kb.numpy(ref_layer(kb.tensor(kb.numpy(xt)))),
                               rtol=2e-2, atol=2e-2)


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
def test_keras_file_roundtrip(name, tmp_path):
    model = _model(name)
    _perturb(model.layers[2])
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    model(x, training=True)  # moves BN / PWLU state
    expected = kb.numpy(model(x))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(kb.numpy(loaded(x)), expected)
    assert len(model.weights) == len(loaded.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(kb.numpy(a), kb.numpy(b))


@kb.tensorflow_only
@pytest.mark.parametrize("name", NAMES)
def test_savedmodel_export(name, tmp_path):
    import tensorflow as tf

    model = _model(name)
    _perturb(model.layers[2])
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    expected = kb.numpy(model(x))
    export_dir = str(tmp_path / "saved_model")
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)      # keep it alive while serving
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-6, atol=1e-6)


@kb.tensorflow_only
@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_tracks_every_weight_one_to_one(name, tmp_path):
    # Issue 11.1: a MetaAcon layer has 14 weights but tf.train.Checkpoint held 6
    # (its batch norms lived in plain dicts). The checkpoint's variables are the
    # layer's weights, one to one, and restore all of them.
    import tensorflow as tf

    layer = FACTORIES[name]()
    layer.build((None, 4, 4, 6))
    _perturb(layer)
    layer(RNG.normal(size=(3, 4, 4, 6)).astype("f4"), training=True)
    path = tf.train.Checkpoint(layer=layer).save(str(tmp_path / "ckpt"))
    keys = [k for k, _ in tf.train.list_variables(path)
            if k.startswith("layer/") and "OPTIMIZER_SLOT" not in k]
    assert len(keys) == len(layer.weights), (keys, [w.path for w in layer.weights])
    saved = [kb.numpy(w).copy() for w in layer.weights]
    for w in layer.weights:
        w.assign(np.zeros(w.shape, w.dtype))
    tf.train.Checkpoint(layer=layer).restore(path).assert_consumed()
    for w, value in zip(layer.weights, saved):
        np.testing.assert_array_equal(kb.numpy(w), value, err_msg=w.path)


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
    for bad in (0, -1, 2.5, True, np.bool_(True), "8"):
        with pytest.raises(ValueError, match=r"num_intervals.*>= 1"):
            keras_acts.PWLU(num_intervals=bad)
        with pytest.raises(ValueError, match=r"reduction.*>= 1"):
            keras_acts.MetaAcon(reduction=bad)
    with pytest.raises(ValueError, match="init"):
        keras_acts.PWLU(init="tanh")
    with pytest.raises(ValueError, match="phase1_steps"):
        keras_acts.PWLU(phase1_steps=-1)
    for bad in ("a", 1.5, -0.1, None, True, float("nan")):   # "a" first: it crashed
        with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0.0, 1.0\)"):
            keras_acts.PWLU(momentum=bad)
        with pytest.raises(ValueError, match=r"`bn_momentum` must be"):
            keras_acts.MetaAcon(bn_momentum=bad)
    for bad in (0.0, -1e-5, "x"):
        with pytest.raises(ValueError, match=r"`bn_epsilon` must be a number in \(0.0"):
            keras_acts.MetaAcon(bn_epsilon=bad)
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="channelwise"):
            keras_acts.PWLU(channelwise=bad)
        with pytest.raises(ValueError, match="use_bn"):
            keras_acts.MetaAcon(use_bn=bad)
    for bad in ([0], [1.5], "ab", 2.5):
        with pytest.raises(ValueError, match="shared_axes"):
            keras_acts.AconC(shared_axes=bad)


def test_numpy_scalars_are_accepted():
    # Issue 11.9: PWLU(num_intervals=np.int64(8)) and MetaAcon(reduction=np.int64(4))
    # were rejected; every numeric argument takes NumPy scalars.
    layer = keras_acts.PWLU(num_intervals=np.int64(8), phase1_steps=np.int32(5),
                            momentum=np.float32(0.5), axis=np.int64(-1))
    assert layer.num_intervals == 8 and layer.phase1_steps == 5 and layer.momentum == 0.5
    assert type(layer.num_intervals) is int
    meta = keras_acts.MetaAcon(reduction=np.int64(4), bn_momentum=np.float64(0.8),
                               bn_epsilon=np.float32(1e-3), use_bn=np.bool_(True))
    assert meta.reduction == 4 and meta.bn_momentum == 0.8 and meta.use_bn is True
    acon = keras_acts.AconC(shared_axes=[np.int64(1), np.int32(2)])
    assert acon.shared_axes == [1, 2]
    for layer in (layer, meta, acon):    # and the configs stay JSON-serializable
        import json

        json.dumps(layer.get_config())


def _limit_pair(name, x32, training=False):
    """(float32 layer at x32, float64 layer at x32 with +-inf read as +-1e300):
    outputs and input gradients as NumPy."""
    shape = x32.shape
    out = []
    layer64 = None
    for dtype in ("float32", kb.FLOAT64):
        layer = FACTORIES[name](dtype=dtype)
        layer.build(shape)
        if layer64 is None:
            _perturb(layer)
            layer64 = layer
            source = layer
        else:
            for a, b in zip(source.weights, layer.weights):
                b.assign(kb.numpy(a).astype(b.dtype))
        x = x32 if dtype == "float32" else np.where(np.isinf(x32), np.sign(x32) * 1e300,
                                                    x32.astype(np.float64))
        y, grads = kb.layer_value_and_grads(layer, kb.tensor(x, dtype), training=training)
        out.append((kb.numpy(y), [kb.numpy(g) for g in grads]))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_inf_gives_the_float64_values_at_1e300(name):
    # Issue 11.5: AconC gave NaN at +-inf; one +inf element made every output of
    # its sample NaN in MetaAcon. Outputs and input gradients at +-inf equal the
    # float64 layer's values at +-1e300 (inference mode), cast to float32.
    x = RNG.normal(0, 1, (3, 4, 6)).astype(np.float32)
    x[0, 0, :] = np.inf
    x[1, 1, :3] = -np.inf
    x[1, 2, 3:] = np.inf
    x[2, 3, 1] = -np.inf
    (y32, g32), (y64, g64) = _limit_pair(name, x)
    np.testing.assert_allclose(y32, kb.as_float32_limit(y64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g32[0], kb.as_float32_limit(g64[0]), rtol=1e-4, atol=1e-5)
    assert not np.isnan(y32).any() and not np.isnan(g32[0]).any()


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_huge_finite_inputs_never_give_nan(name, training):
    # Issue 11.6: finite inputs near the float32 maximum gave NaN outputs or
    # gradients (AconC's beta, PWLU's left slope, MetaAcon's output and its x,
    # kernel1, bias1 gradients). No output or gradient is NaN; in inference mode
    # they equal the float64 values (+-inf only where those are beyond float32).
    big = float(np.finfo(np.float32).max)
    x = RNG.normal(0, 1, (3, 4, 6)).astype(np.float32)
    x[0, :, :] = -3e38
    x[1, 0, :] = big
    x[1, 1, :] = -big
    x[2, 2, 2] = 1e30
    (y32, g32), (y64, g64) = _limit_pair(name, x, training=training)
    assert not np.isnan(y32).any()
    for g in g32:
        assert not np.isnan(g).any()
    if not training:
        np.testing.assert_allclose(y32, kb.as_float32_limit(y64), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(g32[0], kb.as_float32_limit(g64[0]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("compiled", [False, True])
def test_nan_propagates(name, compiled):
    layer = FACTORIES[name]()
    x = RNG.normal(size=(3, 4, 6)).astype(np.float32)
    x[0, 0, :] = np.nan
    layer.build(x.shape)
    fn = kb.jit(lambda t: layer(t)) if compiled and kb.BACKEND == "tensorflow" else layer
    y = kb.numpy(fn(kb.tensor(x)))
    assert np.isnan(y[0, 0]).all()
    if not name.startswith("meta"):  # elementwise: other entries unaffected
        finite = ~np.isnan(x)
        np.testing.assert_allclose(y[finite], kb.numpy(layer(np.where(finite, x, 0)))[finite],
                                   rtol=1e-5, atol=1e-6)
    else:                             # the generator sees the NaN: its sample is NaN
        assert np.isnan(y[0]).all() and np.isfinite(y[1:]).all()


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
