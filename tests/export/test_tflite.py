"""TFLite export: builtin ops only, clear errors, float32 / float16 parity (LiteRT)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_acts
from keras_acts import ops
from keras_acts.ops import builtin
from keras_acts.export import ExportError
from keras_acts.export import check_builtin_only
from keras_acts.export import parity_report
from keras_acts.export import run_tflite
from keras_acts.export import to_tflite

CHANNELS = 8
SHAPES = {2: (CHANNELS,), 4: (5, 6, CHANNELS)}
LAYERS = {
    "pwlu_channelwise_realigned": ("pwlu", dict(channelwise=True, phase1_steps=None), True),
    "pwlu_layerwise_realigned": ("pwlu", dict(channelwise=False, phase1_steps=None), True),
    "pwlu_channelwise_phase1": ("pwlu", dict(channelwise=True, phase1_steps=None), False),
    "pwlu_layerwise_phase1": ("pwlu", dict(channelwise=False, phase1_steps=None), False),
    "acon_c": ("acon_c", {}, None),
    "acon_c_layerwise": ("acon_c", dict(shared_axes=None), None),
    "meta_acon": ("meta_acon", {}, None),
    "serf": ("serf", {}, None),
}


def _model(key, rank, seed=0):
    """Input -> Dense/Conv (so the activation sees varied data) -> activation."""
    name, kwargs, realign = LAYERS[key]
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    shape = SHAPES[rank]
    if key == "acon_c_layerwise":
        kwargs = dict(shared_axes=list(range(1, rank)))
    inputs = keras.Input(shape)
    layer = keras_acts.get(name, **kwargs)
    model = keras.Model(inputs, layer(inputs), name=f"{key}_rank{rank}")
    if name == "pwlu":
        # Phase I statistics on shifted, scaled data, then (optionally) realignment and
        # a random perturbation of the points and slopes (a trained, non-ReLU shape).
        layer(rng.normal(0.7, 1.8, (256,) + shape).astype("float32"), training=True)
        if realign:
            layer.realign()
            points = keras.ops.convert_to_numpy(layer.points)
            layer.set_parameters(
                points=points + rng.normal(0, 0.3, points.shape),
                left_slope=rng.uniform(-0.5, 0.5, tuple(layer.left_slope.shape)),
                right_slope=rng.uniform(0.5, 1.5, tuple(layer.right_slope.shape)))
        assert layer.in_phase1 == (not realign)
    if name == "meta_acon":
        for w in layer.weights:  # non-trivial inference-mode batch norm
            if "moving_mean" in w.path:
                w.assign(rng.normal(0, 0.5, w.shape))
            elif "moving_variance" in w.path:
                w.assign(rng.uniform(0.3, 3.0, w.shape))
            elif "gamma" in w.path or "beta" in w.path:
                w.assign(rng.normal(1.0 if "gamma" in w.path else 0.0, 0.3, w.shape))
    return model


def _inputs(rank, batch, seed=1):
    return np.random.default_rng(seed).normal(0.5, 2.5, (batch,) + SHAPES[rank]).astype("float32")


@pytest.mark.parametrize("rank", [2, 4])
@pytest.mark.parametrize("key", list(LAYERS))
def test_builtin_only_and_float32_parity(key, rank):
    model = _model(key, rank)
    flat = to_tflite(model)
    names = check_builtin_only(flat)
    assert not [n for n in names if n.startswith("CUSTOM") or "FLEX" in n.upper()]
    assert "ERF" not in names
    if "phase1" in key:  # phase I PWLU is ReLU: the table folds away
        assert "GATHER" not in names
    for batch in (1, 3, 17):  # dynamic batch dimension
        report = parity_report(model, flat, _inputs(rank, batch, seed=batch))
        assert report["max_rel"] <= 1e-5, report


@pytest.mark.parametrize("rank", [2, 4])
@pytest.mark.parametrize("key", ["pwlu_channelwise_realigned", "pwlu_layerwise_realigned",
                                 "acon_c", "meta_acon", "serf"])
def test_float16_parity(key, rank):
    model = _model(key, rank)
    flat = to_tflite(model, quantization="float16")
    check_builtin_only(flat)
    report = parity_report(model, flat, _inputs(rank, 9))
    assert report["max_rel"] <= 1e-2, report


def test_dynamic_range_converts_builtin_only():
    model = _model("meta_acon", 4)
    flat = to_tflite(model, quantization="dynamic_range")
    check_builtin_only(flat)
    assert parity_report(model, flat, _inputs(4, 4))["max_rel"] <= 5e-2


def test_erf_builtin_max_abs_error_vs_tf_erf():
    z = tf.constant(np.linspace(-8.0, 8.0, 4_000_001), tf.float32)  # step 4e-6
    err = np.max(np.abs(builtin.erf_builtin(z).numpy() - tf.math.erf(z).numpy()))
    assert err <= 1e-6, err



def test_serf_int8_formulation_max_abs_error_and_plumbing():
    from keras_acts.ops.export_mode import export_quantization
    from keras_acts.ops.builtin.serf import SERF_INT8_MAX_ABS_ERROR
    from keras_acts.ops.builtin.serf import serf_int8_builtin

    x64 = np.linspace(-14.0, 14.0, 1_400_001)
    ref = ops.serf(tf.constant(x64)).numpy()  # float64 reference
    err = np.max(np.abs(serf_int8_builtin(tf.constant(x64)).numpy() - ref))
    assert err <= SERF_INT8_MAX_ABS_ERROR, err
    far = np.array([-1e4, -100.0, -20.0, 20.0, 100.0, 1e4])
    far_err = np.abs(serf_int8_builtin(tf.constant(far)).numpy() - ops.serf(tf.constant(far)).numpy())
    assert np.all(far_err <= 2.91e-5 * np.abs(far) + 1e-12), far_err
    # Plumbing: only int8 exports trace the short form; float exports the GELU form.
    assert export_quantization() is None
    with ops.export_mode(quantization="int8"):
        assert export_quantization() == "int8"
        y8 = ops.serf(tf.constant(x64[::1000])).numpy()
    with ops.export_mode(quantization="float16"):
        assert export_quantization() == "float16"
        y16 = ops.serf(tf.constant(x64[::1000])).numpy()
    assert export_quantization() is None
    np.testing.assert_allclose(y8, serf_int8_builtin(tf.constant(x64[::1000])).numpy())
    assert np.max(np.abs(y16 - ref[::1000])) < 1e-5


def test_int8_serf_graph_is_short():
    """The int8 Serf graph is ~9 ops around one LOGISTIC, not the float GELU form."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6), keras_acts.Serf()])
    rep = np.random.default_rng(0).normal(0, 3, (64, 6)).astype("float32")
    flat = to_tflite(model, quantization="int8", representative_dataset=rep)
    names = check_builtin_only(flat)
    assert "LOGISTIC" in names and "DIV" not in names and "EXP" not in names, names
    assert "GELU" not in names
    flat32 = to_tflite(model)  # float export: the builtin GELU form, parity 1e-5
    assert "GELU" in check_builtin_only(flat32)
    assert parity_report(model, flat32, rep)["max_rel"] <= 1e-5


def _serf_inputs():
    """Serf's test inputs: a dense sweep of [-30, 30], the far tails (softplus rounds to
    0 below about -17: the t >= 1e-20 guard), +-0 and the tensor-parity batch of
    ``_inputs``."""
    special = [-1e4, -100.0, -90.0, -20.0, -17.5, -17.0, -8.0, -5.2, -1e-3, -0.0, 0.0, 1e-3,
               3.0, 5.2, 8.0, 20.0, 100.0, 1e4]
    sweep = np.linspace(-30.0, 30.0, 60 * CHANNELS * 50)
    values = np.concatenate([sweep, special, _inputs(2, 64).ravel()])
    values = np.concatenate([values, np.zeros(-len(values) % CHANNELS)])
    return values.reshape(-1, CHANNELS).astype("float32")


@pytest.mark.parametrize("quantization,bound", [(None, 1e-5), ("float16", 1e-2)])
def test_serf_export_is_builtin_gelu_with_xnnpack_parity(quantization, bound):
    """Serf's float export: one GELU op (fused by the converter), no ERF / Flex / custom
    op, and its max relative error (max |tflite - float64 reference| / max |reference|)
    within the issue's bound on the LiteRT interpreter with the XNNPACK delegate on
    (XNNPACK computes GELU with its own approximation)."""
    model = keras.Sequential([keras.Input((CHANNELS,)), keras_acts.Serf()])
    flat = to_tflite(model, quantization=quantization)
    names = check_builtin_only(flat)
    assert "GELU" in names and "ERF" not in names, names
    assert not [n for n in names if "FLEX" in n.upper() or n.startswith("CUSTOM")], names
    x = _serf_inputs()
    ref = ops.serf(tf.constant(x.astype(np.float64))).numpy()   # float64 reference
    got = run_tflite(flat, x, num_threads=2, xnnpack=True)
    assert np.all(np.isfinite(got))
    rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert rel <= bound, rel
    near = np.abs(x) <= 30  # without the +-1e4 samples that dominate max |reference|
    rel_near = np.max(np.abs(got - ref)[near]) / np.max(np.abs(ref)[near])
    assert rel_near <= bound, rel_near
    # The same bound on the tensor-parity inputs alone (|x| <= ~10), vs the Keras model.
    assert parity_report(model, flat, _inputs(2, 64), num_threads=2)["max_rel"] <= bound
    # XNNPACK really ran the model: its GELU differs from the reference kernel's.
    plain = run_tflite(flat, x, num_threads=2, xnnpack=False)
    assert np.max(np.abs(plain - ref)) / np.max(np.abs(ref)) <= bound
    if quantization is None:
        assert not np.array_equal(got, plain)


def _pwlu_op_counts(num_intervals, channelwise, rank):
    from keras_acts.export.flatbuffer import _op_table

    shape = SHAPES[rank]
    inputs = keras.Input(shape)
    layer = keras_acts.PWLU(num_intervals=num_intervals, channelwise=channelwise,
                            phase1_steps=0)
    mix = keras.layers.Dense(CHANNELS) if rank == 2 else keras.layers.Conv2D(CHANNELS, 1)
    model = keras.Model(inputs, layer(mix(inputs)))
    rng = np.random.default_rng(num_intervals)
    for w in layer.trainable_weights:  # a general (non-ReLU) shape: nothing folds away
        w.assign(keras.ops.convert_to_numpy(w) + rng.normal(0, 0.3, tuple(w.shape)))
    flat = to_tflite(model)
    x = _inputs(rank, 5)
    assert parity_report(model, flat, x)["max_rel"] <= 1e-5
    return {name: len(outputs) for name, _, outputs in _op_table(flat)}


@pytest.mark.parametrize("rank", [2, 4])
@pytest.mark.parametrize("channelwise", [True, False])
def test_pwlu_float_export_op_count_does_not_grow_with_num_intervals(channelwise, rank):
    counts8 = _pwlu_op_counts(8, channelwise, rank)
    counts32 = _pwlu_op_counts(32, channelwise, rank)
    assert counts8 == counts32, (counts8, counts32)
    assert sum(counts8.values()) <= 10, counts8
    assert "GATHER" not in counts8


def test_write_file_and_run_any_batch(tmp_path):
    model = _model("serf", 4)
    path = os.path.join(tmp_path, "sub", "serf.tflite")
    flat = to_tflite(model, path)
    assert open(path, "rb").read() == flat
    for batch in (1, 2, 5):
        x = _inputs(4, batch)
        np.testing.assert_allclose(run_tflite(path, x, num_threads=1), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-5)
    # Chunked runs (batch_size smaller than the input) give the same result.
    x = _inputs(4, 7)
    np.testing.assert_allclose(run_tflite(flat, x, batch_size=3), run_tflite(flat, x), atol=0)


class Erfish(keras.layers.Layer):
    """A layer with no builtin TFLite form (tf.Erf)."""

    def call(self, x):
        return tf.math.erf(x)


def _unconvertible_model():
    inputs = keras.Input((CHANNELS,))
    h = keras.layers.Dense(CHANNELS, name="dense_in")(inputs)
    h = Erfish(name="my_erfish")(h)
    return keras.Model(inputs, keras_acts.Serf(name="serf_out")(h), name="bad_model")


def test_unconvertible_layer_fails_naming_op_and_layer():
    with pytest.raises(ExportError) as info:
        to_tflite(_unconvertible_model())
    message = str(info.value)
    assert "Erf" in message and "'my_erfish'" in message and "Erfish" in message
    assert "serf_out" not in message  # Serf itself exports fine


def test_flatbuffer_check_names_flex_op_and_layer():
    from keras_acts.export import export_concrete_function

    model = _unconvertible_model()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [export_concrete_function(model)])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    flat = converter.convert()
    with pytest.raises(ExportError, match=r"CUSTOM:FlexErf.*my_erfish"):
        check_builtin_only(flat, model)


def test_bad_arguments():
    model = _model("serf", 2)
    with pytest.raises(ValueError, match="quantization"):
        to_tflite(model, quantization="int4")
    with pytest.raises(ValueError, match="representative_dataset"):
        to_tflite(model, quantization="int8")


@pytest.mark.parametrize("channelwise", [True, False])
def test_pwlu_int8_export_runs_entirely_in_xnnpack(channelwise):
    """Full-integer int8 PWLU is the knot-major hinge form: no GATHER / int32 MINIMUM
    (which XNNPACK refuses), every op delegated, and the same ops for N = 8 and 32; its
    outputs follow the float model within int8 resolution."""
    from keras_acts.export import op_counts
    from keras_acts.export import xnnpack_refused

    def export(num_intervals):
        keras.utils.set_random_seed(num_intervals)
        inputs = keras.Input(SHAPES[4])
        layer = keras_acts.PWLU(num_intervals=num_intervals, channelwise=channelwise,
                                phase1_steps=0)
        model = keras.Model(inputs, layer(keras.layers.Conv2D(CHANNELS, 1)(inputs)))
        rng = np.random.default_rng(num_intervals)
        for w in layer.trainable_weights:
            w.assign(keras.ops.convert_to_numpy(w) + rng.normal(0, 0.3, tuple(w.shape)))
        rep = _inputs(4, 64)
        flat = to_tflite(model, quantization="int8", representative_dataset=rep)
        return model, flat, rep

    model, flat, rep = export(8)
    counts = op_counts(flat)
    assert "GATHER" not in counts and "MINIMUM" not in counts, counts
    assert "DEPTHWISE_CONV_2D" in counts, counts
    assert xnnpack_refused(flat, (1,) + SHAPES[4], 2) == {}
    assert op_counts(export(32)[1]) == counts
    y = model.predict(rep, verbose=0)
    y8 = run_tflite(flat, rep, num_threads=2)
    err = np.max(np.abs(y8 - y)) / np.max(np.abs(y))
    assert err <= 0.05, err
