"""The light install (issue 14): with only ``keras``, ``numpy`` and one backend
(``pip install -e '.[jax,test]'``, no TensorFlow) a model with all four layers
builds, trains with ``fit`` past PWLU's phase switch, saves to ``.keras`` and
reloads with identical outputs and weights.

Runs under every backend: ``.ci/run`` runs it in the light venv with
``KERAS_BACKEND=jax`` (and ``KERAS_ACTS_LIGHT_INSTALL=1``, which adds the check
that TensorFlow is not installed at all) and in the full venv under TensorFlow.
It needs nothing but keras, numpy, pytest and keras_acts' core.
"""

import os
import sys

import keras
import numpy as np
import pytest

import keras_acts

BACKEND = keras.backend.backend()


def test_tensorflow_is_not_installed():
    if not os.environ.get("KERAS_ACTS_LIGHT_INSTALL"):
        pytest.skip("light venv only (.ci/run sets KERAS_ACTS_LIGHT_INSTALL=1 there)")
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras_acts.PWLU(phase1_steps=2, name="pwlu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras_acts.AconC(name="acon_c")(x)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras_acts.MetaAcon(reduction=2, name="meta_acon")(x)
    x = keras_acts.Serf(name="serf")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_build_fit_save_reload(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (32, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = _model()
    pwlu = model.get_layer("pwlu")
    assert pwlu.in_phase1
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)  # 8 steps
    assert np.all(np.isfinite(history.history["loss"]))

    # Phase I (2 steps) collected statistics, realignment moved the bounds off
    # their initial [-3, 3] to finite mean -/+ 3 std, phase II trained everything.
    assert not pwlu.in_phase1
    left = keras.ops.convert_to_numpy(pwlu.left_bound)
    right = keras.ops.convert_to_numpy(pwlu.right_bound)
    assert np.all(np.isfinite(left)) and np.all(np.isfinite(right)) and np.all(left < right)
    assert not np.allclose(left, -3.0) and not np.allclose(right, 3.0)
    for name in ("pwlu", "acon_c", "meta_acon"):
        for w in model.get_layer(name).trainable_weights:
            assert not np.array_equal(before[w.path], keras.ops.convert_to_numpy(w)), w.path

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b), err_msg=a.path)
    assert not loaded.get_layer("pwlu").in_phase1
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))



@pytest.mark.skipif(BACKEND == "tensorflow", reason="off TensorFlow only")
def test_the_core_never_imports_tensorflow():
    # Keras itself imports TensorFlow when it is installed (e.g. while saving), so
    # the check runs in a fresh process that only imports keras_acts and runs layers.
    import subprocess

    code = (
        "import sys, numpy as np, keras_acts\n"
        "from keras_acts import ops\n"
        "x = np.random.normal(size=(4, 6, 6, 8)).astype('float32')\n"
        "for layer in (keras_acts.PWLU(phase1_steps=1), keras_acts.AconC(),\n"
        "              keras_acts.MetaAcon(reduction=2), keras_acts.Serf()):\n"
        "    layer(x, training=True); layer(x)\n"
        "keras_acts.get('pwlu'); keras_acts.serf(x)\n"
        "assert 'tensorflow' not in sys.modules, 'keras_acts imported TensorFlow'\n"
        "print('OK')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, KERAS_BACKEND=BACKEND))
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
