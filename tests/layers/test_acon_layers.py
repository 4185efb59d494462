"""AconC / MetaAcon specifics: parameter shapes, initialisation, generator,
its batch norms (PyTorch conventions, batch 1, bad batches), legacy files."""

import keras
import numpy as np

import kb
import keras_acts

RNG = np.random.default_rng(0)


def test_acon_defaults_follow_the_official_code():
    layer = keras_acts.AconC()
    layer.build((None, 4, 4, 4096))
    assert tuple(layer.p1.shape) == (1, 1, 4096)
    for p in (layer.p1, layer.p2):
        values = kb.numpy(p).ravel()
        assert abs(values.mean()) < 0.1 and 0.9 < values.std() < 1.1   # N(0, 1)
    np.testing.assert_array_equal(kb.numpy(layer.beta), 1.0)


def test_acon_shared_axes_and_regularizers():
    layer = keras_acts.AconC(shared_axes=[1, 2, 3], p1_regularizer="l2")
    layer.build((None, 4, 4, 8))
    assert tuple(layer.p1.shape) == (1, 1, 1)
    assert len(layer.losses) == 1
    per_position = keras_acts.AconC(shared_axes=[1])
    per_position.build((None, 4, 5, 8))
    assert tuple(per_position.p1.shape) == (1, 5, 8)
    y = per_position(RNG.normal(size=(2, 4, 5, 8)).astype("f4"))
    assert tuple(y.shape) == (2, 4, 5, 8)


def test_meta_acon_hidden_width_and_options():
    layer = keras_acts.MetaAcon()
    layer.build((None, 8, 8, 64))
    assert tuple(layer.kernel1.shape) == (64, 16) and tuple(layer.kernel2.shape) == (16, 64)
    wide = keras_acts.MetaAcon(reduction=4)
    wide.build((None, 8, 8, 256))
    assert wide.hidden_units == 64
    plain = keras_acts.MetaAcon(use_bn=False)
    plain.build((None, 64))
    assert not any("bn" in w.path for w in plain.weights)
    assert len(plain.trainable_weights) == 6


def test_meta_acon_batch_norms_are_tracked_sublayers():
    # Issue 11.1: the generator's batch norms are GeneratorBatchNorm sublayers, so
    # every tracker (weights, checkpoints, .keras, SavedModel) sees their state.
    layer = keras_acts.MetaAcon(reduction=2)
    layer.build((None, 5, 5, 8))
    assert isinstance(layer.bn1, keras_acts.layers.GeneratorBatchNorm)
    assert isinstance(layer.bn2, keras.layers.BatchNormalization)
    assert len(layer.weights) == 14 and len(layer.non_trainable_weights) == 4
    assert layer.bn1.momentum == 0.9 and layer.bn1.epsilon == 1e-5


def test_meta_acon_beta_is_per_sample_and_channel():
    layer = keras_acts.MetaAcon(reduction=2)
    x = RNG.normal(size=(3, 5, 5, 8)).astype("f4")
    x[1] *= 4.0
    layer(x)
    beta = kb.numpy(layer.generate_beta(x))
    assert beta.shape == (3, 8) and np.all((beta > 0) & (beta < 1))
    assert not np.allclose(beta[0], beta[1])


def test_generator_batch_norm_uses_unbiased_running_variance():
    # Issue 11.2: the official code's PyTorch BatchNorm updates its running
    # variance with the unbiased batch variance (n / (n - 1)); it normalises with
    # the biased one.
    bn = keras_acts.layers.GeneratorBatchNorm()
    h = RNG.normal(2.0, 3.0, size=(5, 4))
    y = kb.numpy(bn(kb.tensor(h, "float32"), training=True))
    np.testing.assert_allclose(kb.numpy(bn.moving_mean), 0.1 * h.mean(0), rtol=1e-5)
    np.testing.assert_allclose(kb.numpy(bn.moving_variance), 0.9 + 0.1 * h.var(0, ddof=1),
                               rtol=1e-5)
    np.testing.assert_allclose(y, (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5), rtol=1e-4,
                               atol=1e-5)


def test_generator_batch_norm_skips_non_finite_batches():
    bn = keras_acts.layers.GeneratorBatchNorm()
    bn(kb.tensor(RNG.normal(size=(6, 3)), "float32"), training=True)
    mean, var = kb.numpy(bn.moving_mean).copy(), kb.numpy(bn.moving_variance).copy()
    bad = RNG.normal(size=(6, 3)).astype("f4")
    bad[0, 0], bad[1, 1], bad[2, 2] = np.inf, np.nan, 3e38
    bad[3, 2] = -3e38                                   # var of column 2 overflows float32
    y = kb.numpy(bn(kb.tensor(bad), training=True))
    np.testing.assert_array_equal(kb.numpy(bn.moving_mean)[:2], mean[:2])
    np.testing.assert_array_equal(kb.numpy(bn.moving_variance)[:2], var[:2])
    assert np.isfinite(kb.numpy(bn.moving_mean)).all()
    assert np.isfinite(kb.numpy(bn.moving_variance)).all()
    assert np.isnan(y[:, 1]).any() and np.isfinite(y[:, [0, 2]]).all()


def test_meta_acon_trains_and_infers_at_batch_size_one():
    layer = keras_acts.MetaAcon(reduction=2)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3), layer,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("adam", "mse", jit_compile=kb.BACKEND != "torch")
    x, y = RNG.normal(size=(4, 6, 6, 3)).astype("f4"), RNG.normal(size=(4, 2)).astype("f4")
    before = {w.path: kb.numpy(w).copy() for w in layer.weights}
    bn1_mean = kb.numpy(layer.bn1.moving_mean).copy()
    history = model.fit(x, y, batch_size=1, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for w in layer.weights:
        if "moving" in w.path:   # batch of 1: moving statistics used, not changed
            np.testing.assert_array_equal(kb.numpy(w), before[w.path])
        elif w.path.endswith(("kernel1", "kernel2")):   # the generator does learn at batch 1
            assert not np.array_equal(kb.numpy(w), before[w.path])
    out = model.predict(x[:1], verbose=0)
    assert out.shape == (1, 2) and np.all(np.isfinite(out))
    # A real batch does update the moving statistics.
    layer(model.layers[0](x), training=True)
    assert not np.array_equal(kb.numpy(layer.bn1.moving_mean), bn1_mean)


def test_meta_acon_reads_legacy_weight_files():
    # keras-acts 0.1 stored the batch norms' 8 variables as the layer's own:
    # trainable p1, p2, kernel1, bias1, kernel2, bias2, bn1/bn2 gamma, beta, then
    # bn1/bn2 moving mean and variance.
    layer = keras_acts.MetaAcon(reduction=2)
    layer.build((None, 8))
    values = [RNG.normal(size=tuple(w.shape)).astype("f4") for w in layer.weights]
    by_path = {w.path.split("/", 1)[1]: v for w, v in zip(layer.weights, values)}
    order = ["p1", "p2", "kernel1", "bias1", "kernel2", "bias2", "bn1/gamma", "bn1/beta",
             "bn2/gamma", "bn2/beta", "bn1/moving_mean", "bn1/moving_variance",
             "bn2/moving_mean", "bn2/moving_variance"]
    layer.load_own_variables({str(i): by_path[name] for i, name in enumerate(order)})
    for w in layer.weights:
        np.testing.assert_array_equal(kb.numpy(w), by_path[w.path.split("/", 1)[1]])
