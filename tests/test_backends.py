"""Across Keras backends: a ``.keras`` file saved under one backend loads under
another with the same outputs; the PyTorch backend's op and layer tests (slow)."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAVE = """
    import numpy as np, keras, keras_acts
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras_acts.PWLU(num_intervals=8, phase1_steps=2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras_acts.AconC()(x)
    x = keras_acts.MetaAcon(reduction=2)(x)
    x = keras_acts.Serf()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    data = rng.normal(size=(32, 6, 6, 3)).astype("float32")
    model.fit(data, rng.normal(size=(32, 4)).astype("float32"), batch_size=8, epochs=2,
              verbose=0)                      # PWLU realigned, BN statistics moved
    assert not model.layers[2].in_phase1
    np.save(r"{dir}/x.npy", data)
    np.save(r"{dir}/y.npy", keras.ops.convert_to_numpy(model.predict(data, verbose=0)))
    model.save(r"{dir}/model.keras")
    print("OK")
"""

LOAD = """
    import numpy as np, keras, keras_acts
    model = keras.saving.load_model(r"{dir}/model.keras")
    x, expected = np.load(r"{dir}/x.npy"), np.load(r"{dir}/y.npy")
    y = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert not model.layers[2].in_phase1
    print("OK", float(np.abs(y - expected).max()))
"""


def _run(code, backend, timeout=300, **env):
    full_env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
                    PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=timeout, env=full_env, cwd=REPO)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def _available(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not _available("tensorflow", "jax"), reason="needs TensorFlow and JAX")
@pytest.mark.parametrize("source,target", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_keras_file_moves_between_backends(source, target, tmp_path):
    _run(SAVE.format(dir=tmp_path), source)
    out = _run(LOAD.format(dir=tmp_path), target)
    assert float(out.split()[-1]) < 1e-5


@pytest.mark.slow
@pytest.mark.skipif(not _available("torch"), reason="needs PyTorch")
def test_torch_backend_ops_and_layers():
    # The op and layer tests under KERAS_BACKEND=torch (float64 cases skip: Keras'
    # torch ops compute some float64 operations in float32).
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/ops", "tests/layers", "tests/backbones/test_swap.py"],
                         capture_output=True, text=True, timeout=3000, cwd=REPO,
                         env=dict(os.environ, KERAS_BACKEND="torch"))
    assert out.returncode == 0, out.stdout[-4000:]


@pytest.mark.skipif(not _available("torch"), reason="needs PyTorch")
def test_torch_keras_file_moves_to_tensorflow(tmp_path):
    _run(SAVE.format(dir=tmp_path), "torch")
    _run(LOAD.format(dir=tmp_path), "tensorflow")
