"""AconC / MetaAcon specifics: parameter shapes, initialisation, generator, batch 1."""

import keras
import numpy as np
import tensorflow as tf

import keras_acts

RNG = np.random.default_rng(0)


def test_acon_defaults_follow_the_official_code():
    layer = keras_acts.AconC()
    layer.build((None, 4, 4, 4096))
    assert layer.p1.shape == (1, 1, 4096)
    for p in (layer.p1, layer.p2):
        values = p.numpy().ravel()
        assert abs(values.mean()) < 0.1 and 0.9 < values.std() < 1.1   # N(0, 1)
    np.testing.assert_array_equal(layer.beta.numpy(), 1.0)


def test_acon_shared_axes_and_regularizers():
    layer = keras_acts.AconC(shared_axes=[1, 2, 3], p1_regularizer="l2")
    layer.build((None, 4, 4, 8))
    assert layer.p1.shape == (1, 1, 1)
    assert len(layer.losses) == 1
    per_position = keras_acts.AconC(shared_axes=[1])
    per_position.build((None, 4, 5, 8))
    assert per_position.p1.shape == (1, 5, 8)
    y = per_position(RNG.normal(size=(2, 4, 5, 8)).astype("f4"))
    assert y.shape == (2, 4, 5, 8)


def test_meta_acon_hidden_width_and_options():
    layer = keras_acts.MetaAcon()
    layer.build((None, 8, 8, 64))
    assert layer.kernel1.shape == (64, 16) and layer.kernel2.shape == (16, 64)   # max(16, 4)
    wide = keras_acts.MetaAcon(reduction=4)
    wide.build((None, 8, 8, 256))
    assert wide.hidden_units == 64
    plain = keras_acts.MetaAcon(use_bn=False)
    plain.build((None, 64))
    assert not any("bn" in w.name for w in plain.weights)
    assert len(plain.trainable_weights) == 6


def test_meta_acon_beta_is_per_sample_and_channel():
    layer = keras_acts.MetaAcon(reduction=2)
    x = RNG.normal(size=(3, 5, 5, 8)).astype("f4")
    x[1] *= 4.0
    layer(x)
    beta = layer.generate_beta(x).numpy()
    assert beta.shape == (3, 8) and np.all((beta > 0) & (beta < 1))
    assert not np.allclose(beta[0], beta[1])


def test_meta_acon_trains_and_infers_at_batch_size_one():
    layer = keras_acts.MetaAcon(reduction=2)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3), layer,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("adam", "mse", jit_compile=True)
    x, y = RNG.normal(size=(4, 6, 6, 3)).astype("f4"), RNG.normal(size=(4, 2)).astype("f4")
    before = [w.numpy().copy() for w in layer.weights]
    history = model.fit(x, y, batch_size=1, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = {w.name: w.numpy() for w in layer.weights}
    names = [w.name for w in layer.weights]
    for name, old in zip(names, before):
        if "moving" in name:   # batch of 1: moving statistics used, not changed
            np.testing.assert_array_equal(after[name], old)
        elif name in ("kernel1", "kernel2"):   # the generator does learn at batch 1
            assert not np.array_equal(after[name], old)
    out = model.predict(x[:1], verbose=0)
    assert out.shape == (1, 2) and np.all(np.isfinite(out))
    # A real batch does update the moving statistics.
    with tf.GradientTape():
        layer(model.layers[0](x), training=True)
    assert not np.array_equal(layer.bn1["mean"].numpy(), before[names.index("bn1_moving_mean")])
