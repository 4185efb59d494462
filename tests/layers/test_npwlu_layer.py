"""NPWLU layer on every backend: float64 reference, gradients through the
softplus widths, phase I -> realignment -> phase II (as PWLU's), ordered
knots under any optimiser step, training, serialization, bad input."""

import inspect

import keras
import numpy as np
import pytest

import family_reference as ref
import kb
import keras_acts
import reference

RNG = np.random.default_rng(0)


def _set_random(layer):
    params = layer.parameters()
    shape = tuple(params["left_bound"].shape)
    n = layer.num_intervals
    layer.set_parameters(left_bound=RNG.uniform(-2.5, -1.5, shape),
                         widths=RNG.uniform(0.3, 1.5, shape + (n,)),
                         start_value=RNG.normal(size=shape),
                         slopes=RNG.normal(size=shape + (n,)),
                         left_slope=RNG.normal(0, 0.5, shape),
                         right_slope=RNG.normal(0, 0.5, shape))
    for w in layer.trainable_weights:          # small offsets on top
        w.assign(0.01 * RNG.normal(size=w.shape))


def _np_params(layer):
    return [kb.numpy(v).astype(np.float64) for v in layer.parameters().values()]


def test_defaults():
    layer = keras_acts.NPWLU()
    assert layer.num_intervals == 4 and layer.phase1_steps == 1000 and layer.channelwise
    layer.build((None, 4, 4, 3))
    assert tuple(layer.knots.shape) == (3, 5)
    np.testing.assert_allclose(kb.numpy(layer.knots), np.tile(np.linspace(-3, 3, 5), (3, 1)),
                               atol=1e-6)
    np.testing.assert_allclose(kb.numpy(layer.values), np.maximum(kb.numpy(layer.knots), 0),
                               atol=1e-6)
    assert layer.in_phase1
    x = RNG.normal(size=(2, 4, 4, 3)).astype("f4")
    np.testing.assert_array_equal(kb.numpy(layer(x)), np.maximum(x, 0))   # phase I: ReLU
    names = sorted(w.path.split("/")[-1] for w in layer.trainable_weights)
    assert names == sorted(f"{p}_offset" for p in keras_acts.layers.npwlu.PARAMETERS)


@pytest.mark.parametrize("channelwise", [True, False])
@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_forward_matches_float64_reference(rank, channelwise):
    shape = (3,) + (4,) * (rank - 2) + (5,)
    x = RNG.normal(0, 2, shape)
    layer = keras_acts.NPWLU(phase1_steps=0, channelwise=channelwise, dtype=kb.FLOAT64)
    layer.build(shape)
    _set_random(layer)
    tol = 1e-10 if kb.FLOAT64 == "float64" else 2e-5
    y = layer(kb.tensor(x, kb.FLOAT64))
    np.testing.assert_allclose(kb.numpy(y), ref.npwlu(x, *_np_params(layer)), rtol=tol, atol=tol)


def test_channels_first():
    x = RNG.normal(0, 2, (2, 3, 4, 4)).astype("f4")
    layer = keras_acts.NPWLU(phase1_steps=0, axis=1)
    layer.build(x.shape)
    _set_random(layer)
    np.testing.assert_allclose(kb.numpy(layer(x)), ref.npwlu(x, *_np_params(layer), axis=1),
                               rtol=1e-5, atol=1e-5)


@kb.float64_only
def test_gradients_match_numerical():
    # Gradients reach every stored offset (through softplus for the widths).
    x = RNG.normal(-0.5, 2, (4, 3, 2))
    w = RNG.normal(size=x.shape)
    layer = keras_acts.NPWLU(phase1_steps=0, dtype="float64")
    layer.build(x.shape)
    _set_random(layer)
    knots = kb.numpy(layer.knots)
    x = np.where(np.abs(x[..., None] - knots).min(-1) < 1e-3, x + 0.01, x)
    _, grads = kb.layer_value_and_grads(layer, kb.tensor(x), w)
    for target, grad in zip([None] + list(layer.trainable_weights), grads):
        if target is None:
            num = reference.numeric_grad(lambda v: np.sum(kb.numpy(layer(kb.tensor(v))) * w), x)
        else:
            base = kb.numpy(target).copy()

            def f(v, target=target):
                target.assign(v)
                return np.sum(kb.numpy(layer(kb.tensor(x))) * w)

            num = reference.numeric_grad(f, base)
            target.assign(base)
        np.testing.assert_allclose(kb.numpy(grad), num, rtol=1e-5, atol=1e-6,
                                   err_msg=getattr(target, "path", "x"))


def _fit(layer, x, y, steps, optimizer=None, mode="graph", batch_size=8):
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(),
                              keras.layers.Dense(y.shape[1])])
    model.compile(optimizer or keras.optimizers.SGD(0.05), "mse",
                  run_eagerly=(mode == "eager"), jit_compile=(mode == "xla"))
    model.fit(x, y, batch_size=batch_size, epochs=steps * batch_size // len(x), shuffle=False,
              verbose=0)
    return model


MODES = {"tensorflow": ("eager", "graph", "xla"), "jax": ("eager", "xla"),
         "torch": ("eager",)}[kb.BACKEND]


def test_phase_one_statistics_then_realignment_then_training():
    rng = np.random.default_rng(5)
    x = rng.normal(1.0, 2.0, (32, 6, 3)).astype("f4") * np.array([1.0, 0.5, 3.0], "f4")
    y = rng.normal(size=(32, 2)).astype("f4")
    layer = keras_acts.NPWLU(phase1_steps=4, momentum=0.5)
    model = _fit(layer, x, y, steps=4, mode=MODES[-1])
    # Four phase-I batches (of 8): running statistics of those batches, momentum 0.5.
    batches = x.reshape(4, 8 * 6, 3)
    mean, std = batches[0].mean(0), batches[0].std(0)
    for b in batches[1:]:
        mean, std = 0.5 * mean + 0.5 * b.mean(0), 0.5 * std + 0.5 * b.std(0)
    np.testing.assert_allclose(kb.numpy(layer.running_mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(kb.numpy(layer.running_std), std, rtol=1e-4, atol=1e-5)
    assert not layer.in_phase1
    # Realigned at the 4th step: knots uniform over mean -/+ 3 std, ReLU values.
    np.testing.assert_allclose(
        kb.numpy(layer.knots),
        mean[:, None] + std[:, None] * np.linspace(-3, 3, 5)[None], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(kb.numpy(layer.values), np.maximum(kb.numpy(layer.knots), 0),
                               atol=1e-4)
    # Phase II: the parameters train.
    before = [kb.numpy(w).copy() for w in layer.trainable_weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(not np.array_equal(a, kb.numpy(b)) for a, b in zip(before, layer.trainable_weights))


def test_realignment_matches_pwlu():
    # Same statistics, same data: N-PWLU's realigned function is PWLU's.
    x = RNG.normal(0.5, 1.5, (64, 4)).astype("f4")
    npwlu = keras_acts.NPWLU(num_intervals=4, phase1_steps=None)
    pwlu = keras_acts.PWLU(num_intervals=4, phase1_steps=None)
    for layer in (npwlu, pwlu):
        layer(x, training=True)
        layer.realign()
    np.testing.assert_allclose(kb.numpy(npwlu.running_std), kb.numpy(pwlu.running_std))
    probe = np.linspace(-6, 7, 101, dtype="f4")[:, None] * np.ones((1, 4), "f4")
    np.testing.assert_allclose(kb.numpy(npwlu(probe)), kb.numpy(pwlu(probe)), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="NPWLU.realign"):
        keras_acts.NPWLU().realign()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_knots_stay_ordered_and_finite_under_huge_steps(optimizer):
    # One training step with a huge learning rate (later steps of such a run
    # overflow the Dense layer, whose NaNs no parametrization can survive).
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (16, 5, 3)).astype("f4")
    y = (rng.normal(size=(16, 2)) * 1e3).astype("f4")
    layer = keras_acts.NPWLU(phase1_steps=0)
    opt = keras.optimizers.SGD(1e8) if optimizer == "sgd" else keras.optimizers.Adam(1e4)
    _fit(layer, x, y, steps=1, optimizer=opt, batch_size=16)
    knots = kb.numpy(layer.knots)
    assert np.isfinite(knots).all()
    assert (np.diff(knots, axis=-1) >= 0).all(), knots
    assert np.abs(kb.numpy(layer.width_logits_offset)).max() > 100.0   # the step hit them
    assert not np.isnan(kb.numpy(layer(x))).any()


def test_knots_stay_ordered_and_finite_for_any_finite_offsets():
    layer = keras_acts.NPWLU(phase1_steps=0, num_intervals=6)
    layer.build((None, 4))
    big = float(np.finfo(np.float32).max)
    layer.width_logits_offset.assign(np.array(
        [[-1e30, 1e30, -1e4, 1e38, -big, big]] * 2 + [[0, 0, 0, 0, 0, 0]]
        + [[big] * 6], "f4"))
    layer.left_bound_offset.assign(np.array([big, -big, -3e38, 1e38], "f4"))
    knots = kb.numpy(layer.knots)
    assert np.isfinite(knots).all()
    assert (np.diff(knots, axis=-1) >= 0).all(), knots
    x = np.array([[-np.inf] * 4, [-3e38] * 4, [0.0] * 4, [3e38] * 4, [np.inf] * 4], "f4")
    y, grads = kb.layer_value_and_grads(layer, kb.tensor(x))
    assert not np.isnan(kb.numpy(y)).any()
    assert not any(np.isnan(kb.numpy(g)).any() for g in grads)


def test_execution_modes_fit_agree():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 5, 3)).astype("f4"), rng.normal(size=(16, 2)).astype("f4")
    results = {}
    for mode in MODES:
        keras.utils.set_random_seed(1)
        model = _fit(keras_acts.NPWLU(phase1_steps=1), x, y, steps=4, mode=mode, batch_size=4)
        results[mode] = [kb.numpy(v) for v in model.weights]
    for mode in MODES[1:]:
        for a, b in zip(results["eager"], results[mode]):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=mode)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = RNG.normal(0, 2, (4, 5, 3)).astype("f4")
    ref_layer = keras_acts.NPWLU(phase1_steps=0)
    ref_layer.build(x.shape)
    _set_random(ref_layer)
    layer = keras_acts.NPWLU(phase1_steps=0, dtype=policy)
    layer.build(x.shape)
    for a, b in zip(ref_layer.weights, layer.weights):
        b.assign(kb.numpy(a))
    compute = "float16" if policy == "mixed_float16" else "bfloat16"
    y, grads = kb.layer_value_and_grads(layer, kb.tensor(x, compute))
    assert kb.dtype_of(y) == compute
    assert all(np.isfinite(kb.numpy(g)).all() for g in grads)
    np.testing.assert_allclose(kb.numpy(y), kb.numpy(ref_layer(x)), rtol=3e-2, atol=3e-2)


def test_config_and_keras_file_roundtrip(tmp_path):
    layer = keras_acts.NPWLU(num_intervals=3, channelwise=False, init="swish",
                             slopes_regularizer="l2")
    config = layer.get_config()
    params = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert params <= set(config), params - set(config)
    assert type(layer).from_config(config).get_config() == config
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, keras_acts.NPWLU(phase1_steps=2)(
        keras.layers.Conv2D(8, 3, padding="same")(inputs)))
    x = RNG.normal(size=(3, 6, 6, 4)).astype("f4")
    for _ in range(2):
        model(x, training=True)                # phase I -> realigned
    assert not model.layers[2].in_phase1
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert not loaded.layers[2].in_phase1
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(kb.numpy(a), kb.numpy(b))
    np.testing.assert_array_equal(kb.numpy(loaded(x)), kb.numpy(model(x)))


def test_registry_names():
    for ident in ("npwlu", "NPWLU", "n-pwlu", "N_PWLU", keras_acts.NPWLU):
        a, b = keras_acts.get(ident), keras_acts.get(ident)
        assert type(a) is keras_acts.NPWLU and a is not b
    assert keras_acts.get("npwlu", num_intervals=8).num_intervals == 8


def test_invalid_arguments_and_inputs():
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match=r"num_intervals.*>= 1"):
            keras_acts.NPWLU(num_intervals=bad)
    with pytest.raises(ValueError, match="init"):
        keras_acts.NPWLU(init="tanh")
    with pytest.raises(ValueError, match="phase1_steps"):
        keras_acts.NPWLU(phase1_steps=-1)
    with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0.0, 1.0\)"):
        keras_acts.NPWLU(momentum=1.0)
    with pytest.raises(ValueError, match="channelwise"):
        keras_acts.NPWLU(channelwise="yes")
    with pytest.raises(ValueError, match="axis"):
        keras_acts.NPWLU(axis=0)
    with pytest.raises(ValueError, match="rank 2 to 5"):
        keras_acts.NPWLU().build((4,))
    with pytest.raises(ValueError, match="floating"):
        keras_acts.NPWLU()(np.ones((2, 3), np.int32))
    layer = keras_acts.NPWLU()
    layer.build((None, 3))
    with pytest.raises(ValueError, match=r"Unknown NPWLU parameter\(s\) \['points'\]"):
        layer.set_parameters(points=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="`widths` must all be > 0"):
        layer.set_parameters(widths=np.zeros((3, 4)))


def test_inf_and_huge_inputs_give_float64_limits_without_nan():
    big = float(np.finfo(np.float32).max)
    x = RNG.normal(0, 1, (3, 4, 5)).astype(np.float32)
    x[0, 0, :], x[1, 1, :], x[2, 0, :], x[2, 1, :] = np.inf, -np.inf, -3e38, big
    layer = keras_acts.NPWLU(phase1_steps=0)
    layer.build(x.shape)
    _set_random(layer)
    y, grads = kb.layer_value_and_grads(layer, kb.tensor(x))
    assert not np.isnan(kb.numpy(y)).any()
    assert not any(np.isnan(kb.numpy(g)).any() for g in grads)
    x64 = x.astype(np.float64)
    x64 = np.where(np.isinf(x64), np.sign(x64) * 1e300, x64)
    np.testing.assert_allclose(kb.numpy(y), kb.as_float32_limit(
        ref.npwlu(x64, *_np_params(layer))), rtol=1e-5, atol=1e-5)


@kb.tensorflow_only
def test_mirrored_strategy_synchronises_statistics_and_realignment():
    # PWLU's phase-I code under tf.distribute: global-batch statistics, and the
    # realigned knots identical on both replicas. Two logical CPUs must be set
    # before TensorFlow starts: run in a subprocess.
    import os
    import subprocess
    import sys
    import textwrap

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_acts
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = keras_acts.NPWLU(num_intervals=4, phase1_steps=1)
            layer.build((None, 2))
        x = np.stack([np.arange(8.0), -3.0 * np.arange(8.0) ** 2], 1).astype("f4")
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(8))
        @tf.function
        def step(batch):
            return strategy.run(lambda b: layer(b, training=True), args=(batch,))
        for batch in ds:
            step(batch)
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(layer.running_mean.numpy(), x64.mean(0), rtol=1e-5)
        np.testing.assert_allclose(layer.running_std.numpy(), x64.std(0), rtol=1e-5)
        for var in (layer.left_bound_anchor, layer.width_logits_anchor, layer.slopes_anchor):
            values = [v.numpy() for v in var.value.values]
            assert np.array_equal(values[0], values[1]), values
        assert int(layer.phase.numpy()) == 1
        np.testing.assert_allclose(layer.knots.numpy(), (x64.mean(0)[:, None] + x64.std(0)[:, None]
                                   * np.linspace(-3, 3, 5)), rtol=1e-4)
        print("OK")
    """
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


def test_phase_callback_realigns_npwlu_too():
    """PWLUPhaseCallback / realign_pwlu end N-PWLU's phase I as PWLU's."""
    from keras_acts.callbacks import PWLUPhaseCallback
    from keras_acts.callbacks import pwlu_layers

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.NPWLU(phase1_steps=None), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    assert [type(layer).__name__ for layer in pwlu_layers(model)] == ["NPWLU"]
    model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0,
              callbacks=[PWLUPhaseCallback(phase1_epochs=1)])
    assert not model.layers[1].in_phase1
