"""Batch-norm recalibration (keras_acts.recalibration): maths against a float64
reference, the inference gap it closes on a small problem, and the state it
must leave alone. Runs on every backend (KERAS_BACKEND)."""

import json

import keras
import numpy as np
import pytest

from keras_acts.layers import PWLU
from keras_acts.layers import GeneratorBatchNorm
from keras_acts.layers import MetaAcon
from keras_acts.recalibration import BatchNormRecalibration
from keras_acts.recalibration import batch_norm_layers
from keras_acts.recalibration import predict_with_batch_statistics
from keras_acts.recalibration import recalibrate_batch_norm
from kb import numpy as to_numpy
from kb import tensorflow_only


def _variables(model):
    return {v.path: to_numpy(v).copy() for v in model.variables}


def _moving_paths(model):
    return {v.path for layer in batch_norm_layers(model)
            for v in (layer.moving_mean, layer.moving_variance)}


def _randomize(model, rng):
    for v in model.variables:
        if v.trainable:
            v.assign((0.5 * rng.normal(size=v.shape) + (1.0 if "gamma" in v.path else 0.0))
                     .astype(v.dtype))


# --------------------------------------------------------------------- the maths
def _reference_statistics(model, x, batch_size):
    """Per-batch statistics of the three batch norms of Dense-BN-MetaAcon, float64."""
    dense, bn, meta = model.layers
    w, b = (to_numpy(v).astype(np.float64) for v in (dense.kernel, dense.bias))
    gamma, beta = (to_numpy(v).astype(np.float64) for v in (bn.gamma, bn.beta))
    w1, b1, w2, b2 = (to_numpy(v).astype(np.float64) for v in (meta.kernel1, meta.bias1,
                                                               meta.kernel2, meta.bias2))
    g1, c1 = (to_numpy(v).astype(np.float64) for v in (meta.bn1.gamma, meta.bn1.beta))
    stats = {"bn": [], "bn1": [], "bn2": []}
    for start in range(0, len(x) - batch_size + 1, batch_size):   # full batches only
        h = x[start:start + batch_size].astype(np.float64) @ w + b
        mean, var = h.mean(0), h.var(0)                  # Keras: biased variance
        stats["bn"].append((mean, var))
        a = (h - mean) / np.sqrt(var + bn.epsilon) * gamma + beta
        g = a @ w1 + b1                                  # rank 2: the pooled input is a
        n = len(g)
        stats["bn1"].append((g.mean(0), g.var(0) * n / (n - 1)))   # PyTorch: unbiased
        g = (g - g.mean(0)) / np.sqrt(g.var(0) + meta.bn1.epsilon) * g1 + c1
        u = g @ w2 + b2
        stats["bn2"].append((u.mean(0), u.var(0) * n / (n - 1)))
    return {k: (np.mean([s[0] for s in v], 0), np.mean([s[1] for s in v], 0))
            for k, v in stats.items()}


def test_moving_statistics_are_the_average_of_the_batch_statistics():
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6),
                              keras.layers.BatchNormalization(epsilon=1e-3),
                              MetaAcon(reduction=2)])
    _randomize(model, rng)
    x = (2.0 + 3.0 * rng.normal(size=(28, 5))).astype("float32")   # 3 full batches of 8 + 4
    result = recalibrate_batch_norm(model, (x, np.zeros(28)), batch_size=8)
    assert result == {"layers": 3, "batches": 3}
    reference = _reference_statistics(model, x, 8)
    meta = model.layers[2]
    for name, layer in (("bn", model.layers[1]), ("bn1", meta.bn1), ("bn2", meta.bn2)):
        mean, var = reference[name]
        np.testing.assert_allclose(to_numpy(layer.moving_mean), mean, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(to_numpy(layer.moving_variance), var, rtol=2e-5, atol=2e-5)
    # One more pass with steps=1 uses the first batch alone.
    recalibrate_batch_norm(model, x, batch_size=8, steps=1)
    first = _reference_statistics(model, x[:8], 8)
    np.testing.assert_allclose(to_numpy(meta.bn2.moving_variance), first["bn2"][1], rtol=2e-5)


def test_iterable_of_batches_matches_arrays():
    rng = np.random.default_rng(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization(), MetaAcon(reduction=1)])
    _randomize(model, rng)
    x = rng.normal(size=(40, 4)).astype("float32")
    recalibrate_batch_norm(model, x, batch_size=10)
    expected = [to_numpy(v).copy() for v in model.non_trainable_variables]
    batches = [(x[i:i + 10], np.zeros(10)) for i in range(0, 40, 10)]
    recalibrate_batch_norm(model, iter(batches))
    for v, want in zip(model.non_trainable_variables, expected):
        np.testing.assert_allclose(to_numpy(v), want, rtol=1e-6, atol=1e-7)


def test_frozen_batch_norms_are_left_alone():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(),
                              keras.layers.BatchNormalization()])
    model.layers[0].trainable = False
    x = np.arange(24, dtype="float32").reshape(8, 3)
    assert recalibrate_batch_norm(model, x, batch_size=4)["layers"] == 1
    assert to_numpy(model.layers[0].moving_mean).tolist() == [0.0, 0.0, 0.0]
    # The frozen layer normalises with its moving statistics (0, 1) in training too.
    np.testing.assert_allclose(to_numpy(model.layers[1].moving_mean),
                               np.array([10.5, 11.5, 12.5]) / np.sqrt(1.0 + 1e-3), rtol=1e-6)


# ------------------------------------------------------------------ other state
def test_nothing_else_changes():
    """PWLU in phase I (one more training call would even realign it), a dropout
    seed, the weights and the momenta stay as they were; only the moving
    statistics change."""
    rng = np.random.default_rng(2)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(momentum=0.99),
                              PWLU(phase1_steps=3), keras.layers.Dropout(0.3),
                              keras.layers.Conv2D(4, 3), MetaAcon(reduction=1),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = rng.normal(size=(32, 6, 6, 2)).astype("float32")
    model(x[:8], training=True)
    model(x[:8], training=True)        # PWLU: step 2 of 3, still in phase I
    pwlu = model.layers[2]
    assert pwlu.in_phase1 and int(to_numpy(pwlu.step)) == 2
    before = _variables(model)
    momenta = [layer.momentum for layer in batch_norm_layers(model)]
    recalibrate_batch_norm(model, x, batch_size=8)
    y_batch = predict_with_batch_statistics(model, x, batch_size=8)
    after = _variables(model)
    moving = _moving_paths(model)
    assert len(moving) == 6
    for path, value in before.items():
        if path in moving:
            assert not np.array_equal(after[path], value), path
        else:
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    assert pwlu.in_phase1 and int(to_numpy(pwlu.step)) == 2
    assert [layer.momentum for layer in batch_norm_layers(model)] == momenta
    assert y_batch.shape == (32, 2) and np.all(np.isfinite(y_batch))


def test_predict_with_batch_statistics_is_training_mode():
    rng = np.random.default_rng(3)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), MetaAcon(reduction=1)])
    _randomize(model, rng)
    x = rng.normal(size=(12, 5)).astype("float32")
    got = predict_with_batch_statistics(model, x, batch_size=6)
    before = _variables(model)
    want = np.concatenate([to_numpy(model(x[:6], training=True)),
                           to_numpy(model(x[6:], training=True))])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, to_numpy(model(x, training=False)), atol=1e-3)
    assert any(not np.array_equal(to_numpy(v), before[v.path]) for v in model.variables)
    # 13 samples in batches of 6: the 13th is computed with samples 7..12.
    got = predict_with_batch_statistics(model, np.concatenate([x, x[:1]]), batch_size=6)
    np.testing.assert_allclose(got[12:], to_numpy(model(np.concatenate([x[7:], x[:1]]),
                                                        training=True))[-1:], rtol=1e-5,
                               atol=1e-6)


# ----------------------------------------------------------------- the gap closes
def _problem(rng, n, signal=1.0):
    """3 classes of 6x6x3 images: class c brightens channel c (offset 2, scale 3)."""
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 6, 6, 3))
    x[np.arange(n), :, :, labels] += signal
    return (2.0 + 3.0 * x).astype("float32"), labels.astype("int32")


def test_recalibration_closes_the_inference_gap():
    """After a short training the moving statistics lag (BN momentum 0.99, 20
    steps): the inference-mode model's outputs are far from those of the
    batch-statistics model it trained (8x the batch-to-batch noise of the
    latter on this problem). Recalibration brings them within that noise, and
    the accuracies within a point."""
    rng = np.random.default_rng(4)
    x, y = _problem(rng, 640)
    xt, yt = _problem(rng, 320)
    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(momentum=0.99), MetaAcon(reduction=2),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    perm = np.random.default_rng(9).permutation(len(xt))

    def relative(a, b):
        return np.mean(np.abs(a - b)) / np.mean(np.abs(b))

    def gaps():
        inference = np.asarray(model.predict(xt, batch_size=64, verbose=0))
        batch = predict_with_batch_statistics(model, xt, batch_size=32)
        # Batch statistics depend on which samples share a batch: the same
        # images in other batches give this much difference.
        reshuffled = predict_with_batch_statistics(model, xt[perm], batch_size=32)
        noise = relative(reshuffled[np.argsort(perm)], batch)
        accuracy = abs(np.mean(inference.argmax(1) == yt) - np.mean(batch.argmax(1) == yt))
        return relative(inference, batch), noise, accuracy, np.mean(batch.argmax(1) == yt)

    outputs_before, noise, _, trained = gaps()
    assert trained > 0.9                     # the batch-statistics model has learnt
    assert outputs_before > 5 * noise, (outputs_before, noise)
    recalibrate_batch_norm(model, (x, y), batch_size=32)
    outputs_after, noise, accuracy_after, _ = gaps()
    assert outputs_after < noise, (outputs_before, outputs_after, noise)
    assert accuracy_after <= 0.01, accuracy_after


def test_callback_recalibrates_at_train_end():
    rng = np.random.default_rng(5)
    x, y = _problem(rng, 128)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(momentum=0.99),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = BatchNormRecalibration((x, y), batch_size=32, steps=2)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert callback.result == {"layers": 1, "batches": 2}
    expected = to_numpy(model.layers[1].moving_mean).copy()
    recalibrate_batch_norm(model, x[:64], batch_size=32)
    np.testing.assert_allclose(to_numpy(model.layers[1].moving_mean), expected, rtol=1e-6)


# ------------------------------------------------------------------- bad input
def test_bad_arguments_are_named():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    x = np.ones((8, 3), "float32")
    with pytest.raises(ValueError, match="`steps` must be None .* received 0"):
        recalibrate_batch_norm(model, x, steps=0)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 2; received 1"):
        recalibrate_batch_norm(model, x, batch_size=1)
    with pytest.raises(ValueError, match="batch_size` applies to array data only"):
        recalibrate_batch_norm(model, [x], batch_size=4)
    with pytest.raises(ValueError, match="at least 2 samples; received a batch of 1"):
        recalibrate_batch_norm(model, [x[:1]])
    with pytest.raises(ValueError, match="gave no batch"):
        recalibrate_batch_norm(model, [])
    with pytest.raises(ValueError, match="first element is list"):
        recalibrate_batch_norm(model, ([1, 2], [3, 4]))
    with pytest.raises(ValueError, match="at least 2 samples; received 1"):
        predict_with_batch_statistics(model, x[:1], batch_size=4)
    with pytest.raises(ValueError, match="`steps`"):
        BatchNormRecalibration(x, steps=-1)
    renorm = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(renorm=True)])
    with pytest.raises(ValueError, match="renorm=True"):
        recalibrate_batch_norm(renorm, x, batch_size=4)
    assert isinstance(GeneratorBatchNorm(), keras.layers.BatchNormalization)


# ------------------------------------------------------------- tf.distribute
MIRRORED_SCRIPT = '''
import json, sys
import keras, numpy as np, tensorflow as tf
from keras_acts.layers import MetaAcon
from keras_acts.recalibration import recalibrate_batch_norm

def build():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(6),
                             keras.layers.BatchNormalization(), MetaAcon(reduction=2)])

x = np.random.default_rng(0).normal(2.0, 3.0, size=(48, 5)).astype("float32")
plain = build()
recalibrate_batch_norm(plain, x, batch_size=16)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = build()
recalibrate_batch_norm(model, (x, np.zeros(48)), batch_size=16, strategy=strategy)
out = {"replicas": strategy.num_replicas_in_sync, "diff": 0.0, "moved": 0.0}
for a, b in zip(model.non_trainable_variables, plain.non_trainable_variables):
    for local in strategy.experimental_local_results(a.value):
        out["diff"] = max(out["diff"], float(np.max(np.abs(local.numpy() - b.numpy()))))
    out["moved"] = max(out["moved"], float(np.max(np.abs(b.numpy()))))
print("RESULT", json.dumps(out))
'''


@tensorflow_only
def test_mirrored_strategy_replicas_get_the_same_statistics(tmp_path):
    from training_support import run_script

    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    done = run_script(str(script), [], logical_cpus=2)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2
    assert result["moved"] > 1.0            # the statistics were re-estimated ...
    assert result["diff"] < 1e-5            # ... identically, on every replica
