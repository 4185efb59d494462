"""Keras' own exporter, ``model.export(format="litert")``, on a model with all four
layers: through ``keras_acts.export.export_litert`` (the public exporter inside
``keras_acts.ops.export_mode``) it gives builtin ops only, the same operators as
``to_tflite`` and the same parity, for every quantization mode."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_acts
from keras_acts.export import ExportError
from keras_acts.export import check_builtin_only
from keras_acts.export import export_litert
from keras_acts.export import op_counts
from keras_acts.export import parity_report
from keras_acts.export import run_tflite
from keras_acts.export import to_tflite

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="Keras' LiteRT exporter runs on the TensorFlow backend")

BOUNDS = {None: 1e-5, "float16": 1e-2, "dynamic_range": 5e-2}


def _four_layer_model(seed=0):
    """Conv -> PWLU (phase II) -> Conv -> AconC -> Conv -> MetaAcon -> Conv -> Serf -> head,
    every keras_acts parameter perturbed (no initial value lets an op fold away)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((6, 6, 4))
    h = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    h = keras_acts.PWLU(phase1_steps=0)(h)
    for layer in (keras_acts.AconC(), keras_acts.MetaAcon(), keras_acts.Serf()):
        h = layer(keras.layers.Conv2D(8, 1)(h))
    outputs = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs, name="four_layers")
    for layer in model.layers:
        if isinstance(layer, (keras_acts.PWLU, keras_acts.AconC, keras_acts.MetaAcon)):
            for w in layer.trainable_weights:
                v = keras.ops.convert_to_numpy(w)
                w.assign(v * rng.uniform(0.8, 1.2, v.shape) + rng.normal(0, 0.05, v.shape))
    return model


def _inputs(batch, seed=1):
    return np.random.default_rng(seed).normal(0, 1.5, (batch, 6, 6, 4)).astype("float32")


def _same_as_to_tflite(model, flat, quantization, rep):
    """``flat`` has builtin ops only (GELU for Serf's float form), the same operators as
    ``to_tflite`` with the same settings and, for int8 (same calibration, same graph),
    the same outputs; returns ``(to_tflite flatbuffer, test inputs)``."""
    names = check_builtin_only(flat, model)
    assert not [n for n in names if n.startswith("CUSTOM") or "FLEX" in n.upper()], names
    assert "GELU" in names or quantization == "int8", names
    reference = to_tflite(model, quantization=quantization, representative_dataset=rep)
    assert op_counts(flat) == op_counts(reference)
    x = _inputs(17)
    if quantization == "int8":
        np.testing.assert_allclose(run_tflite(flat, x), run_tflite(reference, x),
                                   atol=1e-6 + 0.02 * np.abs(run_tflite(reference, x)).max())
    return reference, x


@pytest.mark.parametrize("quantization", [None, "float16", "dynamic_range", "int8"])
def test_keras_model_export_litert_is_builtin_only_with_to_tflite_parity(tmp_path, quantization):
    model = _four_layer_model()
    rep = _inputs(32, seed=7) if quantization == "int8" else None
    path = os.path.join(tmp_path, "m.tflite")
    flat = export_litert(model, path, quantization=quantization, representative_dataset=rep)
    reference, x = _same_as_to_tflite(model, flat, quantization, rep)
    if quantization == "int8":
        return
    for batch in (1, 17):  # dynamic batch dimension
        report = parity_report(model, flat, x[:batch])
        assert report["max_rel"] <= BOUNDS[quantization], report
        assert report["max_rel"] <= 2 * parity_report(model, reference, x[:batch])["max_rel"] \
            + 1e-7


def _plain_options(quantization, rep):
    """The converter keyword arguments a user passes to model.export for each mode."""
    if quantization is None:
        return {}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantization == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    if quantization == "int8":
        def generate():
            for sample in rep:
                yield [sample[None]]
        options["representative_dataset"] = generate
    return options


@pytest.mark.parametrize("quantization", [None, "float16", "dynamic_range", "int8"])
def test_plain_model_export_is_builtin_only(tmp_path, quantization):
    """The path Keras documents, model.export(path, format="litert", **converter kwargs),
    with nothing from keras_acts around it: export mode switches on inside Keras' exporter
    (keras_acts._private.keras_litert_export_kwargs), with the quantization its keyword
    arguments ask for, so the flatbuffer has no Flex op (Serf's tf.Erf was FlexErf before)
    and the same operators and parity as to_tflite. If Keras renames its exporter, this
    test and tests/test_private.py::test_keras_litert_export_kwargs fail."""
    model = _four_layer_model()
    rep = _inputs(32, seed=7)
    path = os.path.join(tmp_path, "plain.tflite")
    model.export(path, format="litert", verbose=False, **_plain_options(quantization, rep))
    with open(path, "rb") as f:
        flat = f.read()
    _, x = _same_as_to_tflite(model, flat, quantization, rep if quantization == "int8" else None)
    if quantization == "int8":
        return
    report = parity_report(model, flat, x)
    assert report["max_rel"] <= BOUNDS[quantization], report


def test_export_mode_false_keeps_keras_default_inside_plain_export(tmp_path):
    """An explicit export_mode(False) wins over the detection: the training kernels are
    traced and Keras' SELECT_TF_OPS lets tf.Erf through as a Flex op."""
    model = _four_layer_model()
    path = os.path.join(tmp_path, "plain.tflite")
    with keras_acts.ops.export_mode(False):
        model.export(path, format="litert", verbose=False)
    with pytest.raises(ExportError, match="FlexErf"):
        check_builtin_only(path, model)


def test_export_litert_arguments(tmp_path):
    model = _four_layer_model()
    with pytest.raises(ValueError, match="quantization"):
        export_litert(model, os.path.join(tmp_path, "m.tflite"), quantization="int4")
    with pytest.raises(ValueError, match="representative_dataset"):
        export_litert(model, os.path.join(tmp_path, "m.tflite"), quantization="int8")
    with pytest.raises(ValueError, match=".tflite"):
        export_litert(model, os.path.join(tmp_path, "m.bin"))
    # Keras' converter keyword arguments pass through (here: an explicit op set).
    flat = export_litert(model, os.path.join(tmp_path, "m.tflite"),
                         target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    assert "GELU" in check_builtin_only(flat)
