"""PWLU's learning method on every backend: phase I statistics, realignment,
phase II, state, hostile batches, distributed statistics."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kb
import keras_acts
import reference

RNG = np.random.default_rng(0)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _batches(n, shape=(16, 5, 3), loc=(0.5, -1.0, 2.0), scale=(1.0, 0.5, 3.0)):
    return [(RNG.normal(size=shape) * np.array(scale) + np.array(loc)).astype(np.float32)
            for _ in range(n)]


def _params(layer):
    return [kb.numpy(t).astype(np.float64) for t in layer.parameters().values()]


@pytest.mark.parametrize("channelwise", [True, False])
def test_phase1_is_relu_and_tracks_running_statistics_then_realigns(channelwise):
    layer = keras_acts.PWLU(num_intervals=8, channelwise=channelwise, phase1_steps=3)
    batches = _batches(3)
    mean = std = None
    axes = (0, 1) if channelwise else None
    for step, x in enumerate(batches):
        assert layer.built is False or layer.in_phase1
        y = kb.numpy(layer(x, training=True))
        bm, bs = x.mean(axis=axes), x.std(axis=axes)
        mean = bm if step == 0 else 0.9 * mean + 0.1 * bm
        std = bs if step == 0 else 0.9 * std + 0.1 * bs
        np.testing.assert_array_equal(y, np.maximum(x, 0))       # phase I: ReLU
        assert int(kb.numpy(layer.step)) == step + 1
        if step < 2:
            np.testing.assert_allclose(kb.numpy(layer.running_mean), mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(kb.numpy(layer.running_std), std, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(kb.numpy(layer(x)), np.maximum(x, 0))  # inference
    assert not layer.in_phase1 and int(kb.numpy(layer.phase)) == 1
    left, right = mean - 3 * std, mean + 3 * std
    np.testing.assert_allclose(kb.numpy(layer.left_bound), left, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kb.numpy(layer.right_bound), right, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(kb.numpy(layer.left_slope), 0.0)
    np.testing.assert_array_equal(kb.numpy(layer.right_slope), 1.0)
    grid = np.asarray(left)[..., None] + np.asarray(right - left)[..., None] * np.arange(9) / 8
    np.testing.assert_allclose(kb.numpy(layer.points), np.maximum(grid, 0), rtol=1e-5,
                               atol=1e-5)
    # Realignment writes the (non-trainable) anchors; the trainable offsets stay 0.
    for w in layer.trainable_weights:
        np.testing.assert_array_equal(kb.numpy(w), 0.0)
    # Phase II: statistics frozen, the function is the realigned PWLU.
    x = batches[0]
    layer(x, training=True)
    assert int(kb.numpy(layer.step)) == 3
    expected = reference.pwlu(x, *_params(layer))
    np.testing.assert_allclose(kb.numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)
    # ... which is ReLU except inside the interval that holds 0.
    width = (np.asarray(right) - np.asarray(left)) / 8
    far = np.abs(x) > width
    np.testing.assert_allclose(kb.numpy(layer(x))[far], np.maximum(x, 0)[far], atol=1e-4)


def test_phase1_parameters_get_zero_gradients_phase2_nonzero():
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=2)
    x = _batches(1, (8, 3))[0]
    layer.build(x.shape)
    for expect_zero in (True, True, False):
        _, grads = kb.layer_value_and_grads(layer, kb.tensor(x), training=True)
        if kb.BACKEND == "jax":              # stateless above: make the state update
            layer(x, training=True)
        total = sum(float(np.abs(kb.numpy(g)).sum()) for g in grads[1:])
        assert (total == 0.0) == expect_zero


def test_phase1_steps_none_waits_for_realign_and_callback_ends_it_in_fit():
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=None)
    for x in _batches(5, (8, 3)):
        layer(x, training=True)
    assert layer.in_phase1 and int(kb.numpy(layer.step)) == 5
    layer.realign()
    assert not layer.in_phase1

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.PWLU(phase1_steps=None), keras.layers.Dense(1)])
    model.compile("sgd", "mse", jit_compile=kb.BACKEND != "torch")
    x, y = RNG.normal(size=(32, 3)).astype("f4"), RNG.normal(size=(32, 1)).astype("f4")
    pwlu = model.layers[1]
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(pwlu.in_phase1))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[keras_acts.PWLUPhaseCallback(phase1_epochs=2), record])
    # Recorded after the phase callback at each epoch end: phase I ends after epoch 2.
    assert seen == [True, False, False]
    assert int(kb.numpy(pwlu.step)) == 8
    with pytest.raises(ValueError, match="phase1_epochs"):
        keras_acts.PWLUPhaseCallback(phase1_epochs=0)


def test_phase1_steps_zero_starts_trainable():
    layer = keras_acts.PWLU(phase1_steps=0)
    x = _batches(1, (8, 3))[0]
    layer(x, training=True)
    assert not layer.in_phase1 and int(kb.numpy(layer.step)) == 0


@pytest.mark.parametrize("init", ["identity", "swish", "callable"])
def test_initial_shapes(init):
    fn = {"callable": lambda t: 0.5 * t, "identity": "identity", "swish": "swish"}[init]
    layer = keras_acts.PWLU(num_intervals=16, phase1_steps=1, init=fn)
    x = _batches(1, (64, 3))[0]
    layer(x, training=True)
    fns = {"identity": lambda g: g, "swish": lambda g: g / (1 + np.exp(-g)),
           "callable": lambda g: 0.5 * g}
    left, right = kb.numpy(layer.left_bound), kb.numpy(layer.right_bound)
    grid = left[:, None] + (right - left)[:, None] * np.arange(17) / 16
    np.testing.assert_allclose(kb.numpy(layer.points), fns[init](grid), rtol=1e-5, atol=1e-5)
    # The layer evaluates to init at the grid points (channels on the last axis).
    np.testing.assert_allclose(kb.numpy(layer(grid.T.astype("f4"))), fns[init](grid.T),
                               rtol=1e-4, atol=1e-4)
    slope = {"identity": (1.0, 1.0), "callable": (0.5, 0.5)}.get(init)
    if slope:
        np.testing.assert_allclose(kb.numpy(layer.left_slope), slope[0], rtol=1e-4)
        np.testing.assert_allclose(kb.numpy(layer.right_slope), slope[1], rtol=1e-4)


def test_state_restored_by_keras_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.PWLU(phase1_steps=5), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(24, 3)).astype("f4"), RNG.normal(size=(24, 1)).astype("f4")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)   # 3 steps: still phase I
    layer = model.layers[1]
    assert layer.in_phase1 and int(kb.numpy(layer.step)) == 3
    model.save(str(tmp_path / "m.keras"))
    state = {w.path: kb.numpy(w).copy() for w in layer.weights}
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    lw = loaded.layers[1]
    assert isinstance(lw, keras_acts.PWLU) and lw.in_phase1 and int(kb.numpy(lw.step)) == 3
    for w, (path, value) in zip(lw.weights, state.items()):
        np.testing.assert_array_equal(kb.numpy(w), value, err_msg=path)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not lw.in_phase1 and int(kb.numpy(lw.step)) == 5


@kb.tensorflow_only
def test_state_restored_by_checkpoint(tmp_path):
    import tensorflow as tf

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.PWLU(phase1_steps=5), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(24, 3)).astype("f4"), RNG.normal(size=(24, 1)).astype("f4")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    layer = model.layers[1]
    ckpt = tf.train.Checkpoint(model=model)
    path = ckpt.save(str(tmp_path / "ckpt"))
    state = [kb.numpy(w).copy() for w in layer.weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)   # realigned at step 5
    assert not layer.in_phase1
    ckpt.restore(path).assert_existing_objects_matched()
    for w, value in zip(layer.weights, state):
        np.testing.assert_array_equal(kb.numpy(w), value)


def test_reads_legacy_weight_files():
    # keras-acts 0.1 stored the five parameters themselves (trainable) then phase,
    # step, running mean and std: they become the anchors, the offsets 0.
    layer = keras_acts.PWLU(num_intervals=4)
    layer.build((None, 3))
    legacy = [np.full(3, -2.0), np.full(3, 2.5), RNG.normal(size=(3, 5)), np.full(3, 0.2),
              np.full(3, 0.9), np.array(1), np.array(7), np.full(3, 0.3), np.full(3, 1.5)]
    layer.load_own_variables({str(i): v for i, v in enumerate(legacy)})
    for value, param in zip(legacy[:5], layer.parameters().values()):
        np.testing.assert_allclose(kb.numpy(param), value, rtol=1e-6)
    assert not layer.in_phase1 and int(kb.numpy(layer.step)) == 7
    np.testing.assert_allclose(kb.numpy(layer.running_std), 1.5)


# --------------------------------------------------------- hostile batches (11.3)
def _phase1_layer(**kwargs):
    layer = keras_acts.PWLU(num_intervals=8, phase1_steps=4, **kwargs)
    for x in _batches(2, (32, 3)):
        layer(x, training=True)
    return layer


def _state(layer):
    return [kb.numpy(w).copy() for w in (layer.running_mean, layer.running_std, layer.step)]


@pytest.mark.parametrize("compiled", [False, True])
def test_empty_batch_leaves_the_statistics_unchanged(compiled):
    # Issue 11.3: one empty batch made running_std NaN, and after realignment every
    # output was NaN.
    layer = _phase1_layer()
    before = _state(layer)
    empty = np.zeros((0, 3), np.float32)
    if compiled and kb.BACKEND == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda t: layer(t, training=True), jit_compile=True,
                         input_signature=[tf.TensorSpec([None, 3])])   # dynamic batch
        fn(tf.constant(empty))
    else:
        layer(empty, training=True)
    for a, b in zip(before, _state(layer)):
        np.testing.assert_array_equal(a, b)
    for x in _batches(2, (32, 3)):
        layer(x, training=True)
    assert not layer.in_phase1
    assert np.isfinite(kb.numpy(layer(_batches(1, (8, 3))[0]))).all()


@pytest.mark.parametrize("value", [1e20, 1e30, 3e38, np.inf, -np.inf, np.nan])
def test_non_finite_or_overflowing_batch_does_not_enter_the_statistics(value):
    # Issue 11.3: one element of 1e20 made that channel's running_std inf (its
    # square overflows float32) and the channel NaN from then on. Huge finite
    # batches now enter with exact, scaled moments; non-finite ones are skipped.
    layer = _phase1_layer()
    before = _state(layer)
    x = _batches(1, (32, 3))[0]
    x[5, 1] = value
    layer(x, training=True)
    after = _state(layer)
    if np.isfinite(value):
        assert int(after[2]) == int(before[2]) + 1
        std = np.asarray(x, np.float64).std(0)
        np.testing.assert_allclose(after[1], 0.9 * before[1] + 0.1 * std, rtol=1e-5)
    else:
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)
    assert np.isfinite(after[0]).all() and np.isfinite(after[1]).all()
    for x in _batches(2, (32, 3)):
        layer(x, training=True)
    assert not layer.in_phase1
    params = _params(layer)
    assert all(np.isfinite(p).all() for p in params)
    assert (params[1] > params[0]).all()
    y = kb.numpy(layer(_batches(1, (64, 3))[0]))
    assert np.isfinite(y).all()


def test_constant_channel_gets_a_minimum_width():
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=1)
    x = np.full((16, 2), 5.0, np.float32)
    x[:, 1] = RNG.normal(size=16)
    layer(x, training=True)
    left, right = kb.numpy(layer.left_bound), kb.numpy(layer.right_bound)
    np.testing.assert_allclose(right[0] - left[0], 6 * 1e-3 * 5.0, rtol=1e-4)
    assert np.isfinite(kb.numpy(layer(x))).all()


# ------------------------------------------------------------- distributed
def _run(code, env=None, timeout=300):
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=timeout, env=full_env)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


@kb.tensorflow_only
def test_mirrored_strategy_synchronises_statistics():
    # Two logical CPUs need configuring before TF starts: run in a subprocess. The
    # statistics are those of the global batch (one replica gets a 1e20 and a
    # batch of its own with an empty second half: still the global moments).
    _run("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_acts
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = keras_acts.PWLU(num_intervals=4, phase1_steps=2)
            layer.build((None, 2))
        x = np.stack([np.arange(8.0), -3.0 * np.arange(8.0)], 1).astype("f4")
        x[1, 0] = 1e20
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(8))
        @tf.function
        def step(batch):
            return strategy.run(lambda b: layer(b, training=True), args=(batch,))
        for batch in ds:
            step(batch)
        for var in (layer.running_mean, layer.running_std, layer.step):
            values = [v.numpy() for v in var.value.values]
            assert len(values) == 2 and np.array_equal(values[0], values[1]), values
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(layer.running_mean.numpy(), x64.mean(0), rtol=1e-5)
        np.testing.assert_allclose(layer.running_std.numpy(), x64.std(0), rtol=1e-5)
        assert int(layer.step.numpy()) == 1
        bad = x.copy(); bad[3, 1] = np.nan
        for batch in strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices(bad).batch(8)):
            step(batch)
        assert int(layer.step.numpy()) == 1          # skipped on every replica
        np.testing.assert_allclose(layer.running_std.numpy(), x64.std(0), rtol=1e-5)
        for batch in ds:
            step(batch)
        anchors = [v.numpy() for v in layer.left_bound_anchor.value.values]
        assert np.array_equal(anchors[0], anchors[1]) and int(layer.phase.numpy()) == 1
        print("OK")
    """)


@pytest.mark.skipif(kb.BACKEND != "jax", reason="JAX data parallelism")
def test_jax_data_parallel_statistics_are_those_of_the_global_batch():
    # keras.distribution.DataParallel over 2 CPU devices: each device sees half the
    # batch, the statistics (and the realigned parameters) are the global ones,
    # identical on every device.
    _run("""
        import numpy as np, keras, jax
        import keras_acts
        devices = jax.devices("cpu")
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        model = keras.Sequential([keras.Input((2,)), keras_acts.PWLU(num_intervals=4,
                                                                    phase1_steps=2)])
        model.compile("sgd", "mse")
        x = np.stack([np.arange(16.0), -3.0 * np.arange(16.0) ** 2], 1).astype("f4")
        model.fit(x, x, batch_size=16, epochs=1, shuffle=False, verbose=0)
        layer = model.layers[0]
        np.testing.assert_allclose(np.asarray(layer.running_mean.value), x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.running_std.value), x.std(0), rtol=1e-5)
        model.fit(x, x, batch_size=16, epochs=1, shuffle=False, verbose=0)
        assert int(np.asarray(layer.phase.value)) == 1
        for var in (layer.running_mean, layer.left_bound_anchor, layer.points_anchor):
            shards = [np.asarray(s.data) for s in var.value.addressable_shards]
            assert len(shards) == 2 and all(np.array_equal(shards[0], s) for s in shards)
        print("OK")
    """, env={"KERAS_BACKEND": "jax",
              "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})


@pytest.mark.parametrize("training", [False, True])
def test_huge_inputs_match_float64_for_every_gradient(training):
    # Issue 11.6 at the layer level, with narrow intervals (x / width overflowed):
    # output and every gradient equal float64's, +-inf only beyond float32's range.
    big = float(np.finfo(np.float32).max)
    x = np.array([[-3e38, 3e38], [0.05, -1e20], [-big, 0.0]], np.float32)
    values = dict(left_bound=np.array([-0.1, -2.0]), right_bound=np.array([0.1, 2.0]),
                  points=np.random.default_rng(0).normal(size=(2, 17)),
                  left_slope=np.array([0.35, 2.0]), right_slope=np.array([0.5, 3.0]))
    out = []
    for dtype in ("float32", kb.FLOAT64):
        layer = keras_acts.PWLU(num_intervals=16, phase1_steps=0, dtype=dtype)
        layer.build(x.shape)
        layer.set_parameters(**values)
        y, grads = kb.layer_value_and_grads(layer, kb.tensor(x, dtype), training=training)
        out.append([kb.numpy(y)] + [kb.numpy(g) for g in grads])
    for i, (a, b) in enumerate(zip(*out)):
        assert not np.isnan(a).any(), i
        np.testing.assert_allclose(a, kb.as_float32_limit(b), rtol=1e-5, atol=1e-5,
                                   err_msg=f"output/gradient #{i}")


def test_constant_channel_far_from_zero_gets_a_non_zero_width():
    # Issue 11.3: at |mean| = 100 the old width (mean -/+ 3 * 1e-6) rounded to 0.
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=1)
    x = np.full((16, 2), 100.0, np.float32)
    x[:, 1] = np.random.default_rng(1).normal(size=16)
    layer(x, training=True)
    left, right = kb.numpy(layer.left_bound), kb.numpy(layer.right_bound)
    assert right[0] > left[0], (left, right)
    assert np.isfinite(kb.numpy(layer(x))).all()
