"""PWLU's learning method: phase I statistics, realignment, phase II, state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_acts
import reference

RNG = np.random.default_rng(0)


def _batches(n, shape=(16, 5, 3), loc=(0.5, -1.0, 2.0), scale=(1.0, 0.5, 3.0)):
    return [(RNG.normal(size=shape) * np.array(scale) + np.array(loc)).astype(np.float32)
            for _ in range(n)]


@pytest.mark.parametrize("channelwise", [True, False])
def test_phase1_is_relu_and_tracks_running_statistics_then_realigns(channelwise):
    layer = keras_acts.PWLU(num_intervals=8, channelwise=channelwise, phase1_steps=3)
    batches = _batches(3)
    mean = std = None
    axes = (0, 1) if channelwise else None
    for step, x in enumerate(batches):
        assert layer.built is False or layer.in_phase1
        y = layer(x, training=True).numpy()
        bm, bs = x.mean(axis=axes), x.std(axis=axes)
        mean = bm if step == 0 else 0.9 * mean + 0.1 * bm
        std = bs if step == 0 else 0.9 * std + 0.1 * bs
        np.testing.assert_array_equal(y, np.maximum(x, 0))       # phase I: ReLU
        assert int(layer.step.numpy()) == step + 1
        if step < 2:
            np.testing.assert_allclose(layer.running_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(layer.running_std.numpy(), std, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(layer(x).numpy(), np.maximum(x, 0))  # inference
    assert not layer.in_phase1 and int(layer.phase.numpy()) == 1
    left, right = mean - 3 * std, mean + 3 * std
    np.testing.assert_allclose(layer.left_bound.numpy(), left, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.right_bound.numpy(), right, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.left_slope.numpy(), 0.0)
    np.testing.assert_array_equal(layer.right_slope.numpy(), 1.0)
    grid = np.asarray(left)[..., None] + np.asarray(right - left)[..., None] * np.arange(9) / 8
    np.testing.assert_allclose(layer.points.numpy(), np.maximum(grid, 0), rtol=1e-5, atol=1e-5)
    # Phase II: statistics frozen, the function is the realigned PWLU.
    x = batches[0]
    layer(x, training=True)
    assert int(layer.step.numpy()) == 3
    params = [layer.left_bound, layer.right_bound, layer.points, layer.left_slope,
              layer.right_slope]
    expected = reference.pwlu(x, *(p.numpy().astype(np.float64) for p in params))
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    # ... which is ReLU except inside the interval that holds 0.
    width = (np.asarray(right) - np.asarray(left)) / 8
    far = np.abs(x) > width
    np.testing.assert_allclose(layer(x).numpy()[far], np.maximum(x, 0)[far], atol=1e-4)


def test_phase1_parameters_get_zero_gradients_phase2_nonzero():
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=2)
    x = tf.constant(_batches(1, (8, 3))[0])
    for expect_zero in (True, True, False):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) ** 2)
        grads = tape.gradient(loss, layer.trainable_weights)
        total = sum(float(tf.reduce_sum(tf.abs(g))) for g in grads)
        assert (total == 0.0) == expect_zero


def test_phase1_steps_none_waits_for_realign_and_callback_ends_it_in_fit():
    layer = keras_acts.PWLU(num_intervals=4, phase1_steps=None)
    for x in _batches(5, (8, 3)):
        layer(x, training=True)
    assert layer.in_phase1 and int(layer.step.numpy()) == 5
    layer.realign()
    assert not layer.in_phase1

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.PWLU(phase1_steps=None), keras.layers.Dense(1)])
    model.compile("sgd", "mse", jit_compile=True)
    x, y = RNG.normal(size=(32, 3)).astype("f4"), RNG.normal(size=(32, 1)).astype("f4")
    pwlu = model.layers[1]
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(pwlu.in_phase1))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[keras_acts.PWLUPhaseCallback(phase1_epochs=2), record])
    # Recorded after the phase callback at each epoch end: phase I ends after epoch 2.
    assert seen == [True, False, False]
    assert int(pwlu.step.numpy()) == 8
    with pytest.raises(ValueError, match="phase1_epochs"):
        keras_acts.PWLUPhaseCallback(phase1_epochs=0)


def test_phase1_steps_zero_starts_trainable():
    layer = keras_acts.PWLU(phase1_steps=0)
    x = _batches(1, (8, 3))[0]
    layer(x, training=True)
    assert not layer.in_phase1 and int(layer.step.numpy()) == 0


@pytest.mark.parametrize("init", ["identity", "swish", "callable"])
def test_initial_shapes(init):
    fn = {"callable": lambda t: 0.5 * t, "identity": "identity", "swish": "swish"}[init]
    layer = keras_acts.PWLU(num_intervals=16, phase1_steps=1, init=fn)
    x = _batches(1, (64, 3))[0]
    layer(x, training=True)
    fns = {"identity": lambda g: g, "swish": lambda g: g / (1 + np.exp(-g)),
           "callable": lambda g: 0.5 * g}
    left, right = layer.left_bound.numpy(), layer.right_bound.numpy()
    grid = left[:, None] + (right - left)[:, None] * np.arange(17) / 16
    np.testing.assert_allclose(layer.points.numpy(), fns[init](grid), rtol=1e-5, atol=1e-5)
    # The layer evaluates to init at the grid points (channels on the last axis).
    np.testing.assert_allclose(layer(grid.T.astype("f4")).numpy(), fns[init](grid.T),
                               rtol=1e-4, atol=1e-4)
    slope = {"identity": (1.0, 1.0), "callable": (0.5, 0.5)}.get(init)
    if slope:
        np.testing.assert_allclose(layer.left_slope.numpy(), slope[0], rtol=1e-6)
        np.testing.assert_allclose(layer.right_slope.numpy(), slope[1], rtol=1e-6)


def test_state_restored_by_keras_file_and_checkpoint(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras_acts.PWLU(phase1_steps=5), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(24, 3)).astype("f4"), RNG.normal(size=(24, 1)).astype("f4")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)   # 3 steps: still phase I
    layer = model.layers[1]
    assert layer.in_phase1 and int(layer.step.numpy()) == 3
    ckpt = tf.train.Checkpoint(model=model)
    path = ckpt.save(str(tmp_path / "ckpt"))
    model.save(str(tmp_path / "m.keras"))
    state = {w.name: keras.ops.convert_to_numpy(w).copy() for w in layer.weights}

    model.fit(x, y, batch_size=8, epochs=1, verbose=0)   # 3 more: realigned at step 5
    assert not layer.in_phase1
    ckpt.restore(path).assert_existing_objects_matched()
    for w in layer.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), state[w.name])
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    lw = loaded.layers[1]
    assert isinstance(lw, keras_acts.PWLU) and lw.in_phase1 and int(lw.step.numpy()) == 3
    for w in lw.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), state[w.name])
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not lw.in_phase1 and int(lw.step.numpy()) == 5


def test_mirrored_strategy_synchronises_statistics():
    # Two logical CPUs need configuring before TF starts: run in a subprocess.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_acts
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = keras_acts.PWLU(num_intervals=4, phase1_steps=1)
            layer.build((None, 2))
        x = np.stack([np.arange(8.0), -3.0 * np.arange(8.0)], 1).astype("f4")
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(8))
        @tf.function
        def step(batch):
            return strategy.run(lambda b: layer(b, training=True), args=(batch,))
        for batch in ds:
            step(batch)
        for var in (layer.running_mean, layer.running_std, layer.left_bound, layer.phase):
            values = [v.numpy() for v in var.value.values]
            assert len(values) == 2 and np.array_equal(values[0], values[1]), values
        np.testing.assert_allclose(layer.running_mean.numpy(), x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(layer.running_std.numpy(), x.std(0), rtol=1e-5)
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
