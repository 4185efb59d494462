"""Builtin-only TFLite export of the papers' family (issue 16): N-PWLU, ACON-A, ACON-B,
FReLU and ACON-FReLU, through ``to_tflite`` and Keras' ``model.export(format="litert")``
(``export_litert``), in float32, float16, dynamic range and full int8; parity measured on
LiteRT with XNNPACK on (``parity_report``'s default)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_acts
from keras_acts.export import check_builtin_only
from keras_acts.export import export_litert
from keras_acts.export import op_counts
from keras_acts.export import parity_report
from keras_acts.export import run_tflite
from keras_acts.export import to_tflite
from keras_acts.export import xnnpack_refused
from keras_acts.ops import builtin

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite export runs on the TensorFlow backend")

CHANNELS = 8
# key: (registry name, constructor kwargs, input shapes by rank (without batch))
LAYERS = {
    "npwlu_channelwise": ("npwlu", dict(channelwise=True), {2: (CHANNELS,), 4: (5, 6, CHANNELS)}),
    "npwlu_layerwise": ("npwlu", dict(channelwise=False), {2: (CHANNELS,), 4: (5, 6, CHANNELS)}),
    "npwlu_phase1": ("npwlu", dict(phase1_steps=None), {4: (5, 6, CHANNELS)}),
    "acon_a": ("acon_a", {}, {2: (CHANNELS,), 4: (5, 6, CHANNELS)}),
    "acon_b": ("acon_b", {}, {2: (CHANNELS,), 4: (5, 6, CHANNELS)}),
    "frelu": ("frelu", {}, {4: (7, 6, CHANNELS)}),
    "acon_frelu": ("acon_frelu", {}, {4: (7, 6, CHANNELS)}),
    "acon_frelu_s2_odd": ("acon_frelu", dict(strides=2), {4: (7, 9, CHANNELS)}),
    "acon_frelu_s2_even": ("acon_frelu", dict(strides=2), {4: (6, 8, CHANNELS)}),
}
CASES = [(key, rank) for key, (_, _, shapes) in LAYERS.items() for rank in shapes]
BOUNDS = {None: 1e-5, "float16": 1e-2, "dynamic_range": 5e-2}


def perturb_npwlu(layer, rng, widths=None):
    """Phase I statistics on shifted data, realignment, then non-uniform, trained-looking
    knots: widths spread over a factor 20 (one almost empty interval), random slopes,
    start value and outer slopes."""
    shape = tuple(layer.running_mean.shape)
    n = layer.num_intervals
    if widths is None:
        widths = rng.uniform(0.1, 2.0, shape + (n,))
        widths[..., n // 2] = 1e-3
    layer.set_parameters(
        left_bound=rng.uniform(-3.0, -1.0, shape), widths=widths,
        start_value=rng.normal(0.0, 0.3, shape), slopes=rng.uniform(-1.0, 2.0, shape + (n,)),
        left_slope=rng.uniform(-0.3, 0.3, shape), right_slope=rng.uniform(0.5, 1.5, shape))


def perturb_batch_norms(layer, rng):
    for w in layer.weights:
        if "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.3, w.shape))
        elif "moving_variance" in w.path:
            w.assign(rng.uniform(0.3, 2.0, w.shape))
        elif "gamma" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        elif "beta" in w.path:
            w.assign(rng.normal(0, 0.3, w.shape))


def family_model(key, rank, seed=0):
    """Input -> Dense / 1x1 Conv (varied data) -> the family layer, parameters perturbed
    (no initial value lets an op fold away)."""
    name, kwargs, shapes = LAYERS[key]
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    shape = shapes[rank]
    inputs = keras.Input(shape)
    mix = keras.layers.Dense(CHANNELS) if rank == 2 else keras.layers.Conv2D(CHANNELS, 1)
    layer = keras_acts.get(name, **kwargs)
    model = keras.Model(inputs, layer(mix(inputs)), name=f"{key}_rank{rank}")
    if name == "npwlu":
        layer(rng.normal(0.5, 1.5, (64,) + shape[:-1] + (CHANNELS,)).astype("float32"),
              training=True)
        assert layer.in_phase1
        if key != "npwlu_phase1":
            layer.realign()
            perturb_npwlu(layer, rng)
            assert not layer.in_phase1
    elif name in ("acon_a", "acon_b"):
        for w in layer.trainable_weights:
            w.assign(keras.ops.convert_to_numpy(w) + rng.uniform(-0.5, 0.5, tuple(w.shape)))
    else:
        layer.kernel.assign(rng.normal(0, 0.3, tuple(layer.kernel.shape)))
        layer.bias.assign(rng.normal(0, 0.1, tuple(layer.bias.shape)))
        perturb_batch_norms(layer, rng)
    return model


def inputs_for(model, batch, seed=1):
    shape = tuple(model.input_shape[1:])
    return np.random.default_rng(seed).normal(0.3, 2.0, (batch,) + shape).astype("float32")


def assert_builtin_only(flat):
    names = check_builtin_only(flat)
    assert not [n for n in names if n.startswith("CUSTOM") or "FLEX" in n.upper()], names
    return names


@pytest.mark.parametrize("key,rank", CASES)
def test_float32_builtin_only_no_select_and_parity(key, rank):
    model = family_model(key, rank)
    flat = to_tflite(model)
    names = assert_builtin_only(flat)
    # No SELECT (XNNPACK cannot run it), no GATHER, no interval search.
    assert not {"SELECT", "SELECT_V2", "GATHER", "CAST", "WHERE"} & set(names), names
    x = inputs_for(model, 3)
    assert xnnpack_refused(flat, x.shape) == {}
    for batch in (1, 3, 17):  # dynamic batch dimension
        report = parity_report(model, flat, inputs_for(model, batch, seed=batch))
        assert report["max_rel"] <= 1e-5, report


@pytest.mark.parametrize("quantization", ["float16", "dynamic_range"])
@pytest.mark.parametrize("key,rank", CASES)
def test_float16_and_dynamic_range_parity(key, rank, quantization):
    model = family_model(key, rank)
    flat = to_tflite(model, quantization=quantization)
    assert_builtin_only(flat)
    report = parity_report(model, flat, inputs_for(model, 9))
    assert report["max_rel"] <= BOUNDS[quantization], report


@pytest.mark.parametrize("key,rank", CASES)
def test_full_int8_builtin_only_and_close(key, rank):
    """Every op int8 (TFLITE_BUILTINS_INT8), builtin only, and the int8 model follows the
    float one on the calibration inputs (no clipping at the input's QUANTIZE): mean error
    within 2 % and max error within 8 % of the output's range."""
    model = family_model(key, rank)
    rep = inputs_for(model, 64, seed=7)
    flat = to_tflite(model, quantization="int8", representative_dataset=rep)
    names = assert_builtin_only(flat)
    assert "GATHER" not in names
    report = parity_report(model, flat, rep)
    assert report["mean_abs"] <= 0.02 * report["ref_max_abs"], report
    assert report["max_rel"] <= 0.08, report


@pytest.mark.parametrize("quantization", [None, "float16", "dynamic_range", "int8"])
def test_keras_export_litert_family_model(tmp_path, quantization):
    """All five family layers in one conv net through Keras' own exporter
    (``export_litert``): builtin only, the same operators as to_tflite, the same parity."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = keras.Input((9, 9, 4))
    h = keras.layers.Conv2D(CHANNELS, 3, padding="same")(inputs)
    layers = [keras_acts.NPWLU(phase1_steps=0), keras_acts.AconA(), keras_acts.AconB(),
              keras_acts.FReLU(), keras_acts.AconFReLU(strides=2)]
    for layer in layers:
        h = layer(keras.layers.Conv2D(CHANNELS, 1)(h))
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(h)))
    perturb_npwlu(layers[0], rng)
    for layer in layers[1:3]:
        for w in layer.trainable_weights:
            w.assign(keras.ops.convert_to_numpy(w) + rng.uniform(-0.5, 0.5, tuple(w.shape)))
    for layer in layers[3:]:
        layer.kernel.assign(rng.normal(0, 0.3, tuple(layer.kernel.shape)))
        perturb_batch_norms(layer, rng)
    x = rng.normal(0, 1.5, (17, 9, 9, 4)).astype("float32")
    rep = x[:16] if quantization == "int8" else None
    flat = export_litert(model, os.path.join(tmp_path, "family.tflite"),
                         quantization=quantization, representative_dataset=rep)
    assert_builtin_only(flat)
    reference = to_tflite(model, quantization=quantization, representative_dataset=rep)
    assert op_counts(flat) == op_counts(reference)
    if quantization == "int8":
        np.testing.assert_allclose(run_tflite(flat, x), run_tflite(reference, x),
                                   atol=1e-6 + 0.02 * np.abs(run_tflite(reference, x)).max())
        return
    for batch in (1, 17):
        report = parity_report(model, flat, x[:batch])
        assert report["max_rel"] <= BOUNDS[quantization], report


# ----------------------------------------------------------------- N-PWLU's forms


def _npwlu_counts(num_intervals, channelwise, rank, quantization=None):
    shape = (CHANNELS,) if rank == 2 else (5, 6, CHANNELS)
    keras.utils.set_random_seed(num_intervals)
    rng = np.random.default_rng(num_intervals)
    inputs = keras.Input(shape)
    mix = keras.layers.Dense(CHANNELS) if rank == 2 else keras.layers.Conv2D(CHANNELS, 1)
    layer = keras_acts.NPWLU(num_intervals=num_intervals, channelwise=channelwise,
                             phase1_steps=0)
    model = keras.Model(inputs, layer(mix(inputs)))
    perturb_npwlu(layer, rng)
    x = rng.normal(0.0, 2.0, (16,) + shape).astype("float32")
    flat = to_tflite(model, quantization=quantization,
                     representative_dataset=x if quantization == "int8" else None)
    report = parity_report(model, flat, x)
    # int8: 16 random intervals span ~17 units, a few int8 steps of the clipped terms
    assert report["max_rel"] <= (1e-5 if quantization is None else 0.12), report
    return op_counts(flat)


@pytest.mark.parametrize("quantization", [None, "int8"])
@pytest.mark.parametrize("rank", [2, 4])
@pytest.mark.parametrize("channelwise", [True, False])
def test_npwlu_export_op_count_does_not_grow_with_num_intervals(channelwise, rank,
                                                                quantization):
    counts4 = _npwlu_counts(4, channelwise, rank, quantization)
    counts16 = _npwlu_counts(16, channelwise, rank, quantization)
    assert counts4 == counts16, (counts4, counts16)
    assert "GATHER" not in counts4
    ours = sum(counts4.values()) - counts4.get("QUANTIZE", 0) - counts4.get("DEQUANTIZE", 0) - 1
    assert ours <= (7 if quantization is None else 13), counts4  # minus the Dense / Conv


def npwlu_reference(x, left, widths, start, slopes, kl, kr):
    """Float64 N-PWLU from its definition, with an explicit interval search: the value
    at the interval's left knot plus its slope times the distance (x: (..., C); the
    parameters per channel, shapes (C,) and (C, N))."""
    widths = np.maximum(widths, 0.0)
    knots = np.concatenate([left[:, None], left[:, None] + np.cumsum(widths, -1)], -1)
    values = np.concatenate([start[:, None], start[:, None] + np.cumsum(slopes * widths, -1)],
                            -1)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    n = widths.shape[-1]
    for c in range(flat.shape[-1]):
        v = flat[:, c]
        i = np.clip(np.searchsorted(knots[c], v, side="right") - 1, 0, n - 1)
        y = values[c, i] + slopes[c, i] * (v - knots[c, i])
        y = np.where(v < knots[c, 0], start[c] + kl[c] * (v - knots[c, 0]), y)
        out[:, c] = np.where(v >= knots[c, -1], values[c, -1] + kr[c] * (v - knots[c, -1]), y)
    return out.reshape(x.shape)


@pytest.mark.parametrize("form", ["npwlu_broadcast", "npwlu_clipped"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_npwlu_builtin_forms_match_float64_reference(form, axis):
    rng = np.random.default_rng(3)
    c, n = 5, 6
    widths = rng.uniform(0.05, 2.0, (c, n))
    widths[:, 2] = 0.0                # an empty interval (the widths' floor)
    widths[0, 4] = -0.5               # negative widths count as 0
    params = [rng.uniform(-3, -1, c), widths, rng.normal(0, 1, c), rng.uniform(-2, 2, (c, n)),
              rng.uniform(-1, 1, c), rng.uniform(-1, 2, c)]
    x = rng.normal(0, 4, (4, 3, 7, c))
    x[0, 0, 0] = params[0]            # exactly on the first knot
    want = npwlu_reference(x, *params)
    fn = getattr(builtin, form)
    if axis == 1:                     # channels-first: the channel axis in the middle
        xt = np.moveaxis(x, -1, 1)
        got = np.moveaxis(fn(tf.constant(xt), *map(tf.constant, params), axis=1).numpy(), 1, -1)
    else:
        got = fn(tf.constant(x), *map(tf.constant, params), axis=axis).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # Layer-wise parameters: scalars and (N,).
    lw = [p[0] for p in params]
    got = fn(tf.constant(x), *map(tf.constant, lw)).numpy()
    want = npwlu_reference(x.reshape(-1, 1), *[np.asarray(p)[None] for p in lw])
    np.testing.assert_allclose(got.reshape(-1, 1), want, rtol=1e-12, atol=1e-12)


def test_npwlu_export_mode_plumbing_and_phase1_is_relu():
    """Float exports trace the hinge sum, int8 the clipped sum; phase I folds to ReLU."""
    layer = keras_acts.NPWLU(num_intervals=4, phase1_steps=0)
    layer.build((None, CHANNELS))
    perturb_npwlu(layer, np.random.default_rng(0))
    x = tf.constant(np.random.default_rng(1).normal(0, 3, (64, CHANNELS)), tf.float32)
    params = [tf.constant(v) for v in layer._op_parameters()]
    want = npwlu_reference(x.numpy().astype(np.float64),
                           *[keras.ops.convert_to_numpy(p).astype(np.float64) for p in params])
    with keras_acts.ops.export_mode():
        y32 = layer(x).numpy()
        relu = keras_acts.ops.npwlu(x, *params, active=False).numpy()
    with keras_acts.ops.export_mode(quantization="int8"):
        y8 = layer(x).numpy()
    np.testing.assert_allclose(y32, builtin.npwlu_broadcast(x, *params).numpy())
    np.testing.assert_allclose(y8, builtin.npwlu_clipped(x, *params).numpy())
    np.testing.assert_allclose(y32, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y8, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(relu, np.maximum(x.numpy(), 0.0))


# ----------------------------------------------------------- the funnel layers


def torch_max_pool_3x3_s2(x):
    """Float64 PyTorch MaxPool2d(3, stride=2, padding=1) on NHWC: -inf padding."""
    p = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    h, w = (x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1
    out = np.empty((x.shape[0], h, w, x.shape[3]))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = p[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("hw", [(4, 4), (5, 5), (6, 7), (7, 6), (1, 2), (9, 8)])
def test_max_pool_3x3_s2_matches_pytorch_padding(hw):
    x = np.random.default_rng(hw[0] * 10 + hw[1]).normal(0, 1, (2,) + hw + (3,))
    x[0] -= 10.0                      # all negative: zero padding would show
    got = builtin.max_pool_3x3_s2(tf.constant(x)).numpy()
    np.testing.assert_array_equal(got, torch_max_pool_3x3_s2(x))
    # Unknown spatial size (traced with None): the same values.
    fn = tf.function(builtin.max_pool_3x3_s2,
                     input_signature=[tf.TensorSpec([None, None, None, 3], tf.float64)])
    np.testing.assert_array_equal(fn(tf.constant(x)).numpy(), torch_max_pool_3x3_s2(x))


def test_smooth_max_builtin_matches_float64_formula():
    rng = np.random.default_rng(0)
    a, t = rng.normal(0, 5, 1000), rng.normal(0, 5, 1000)
    z = a - t
    want = z / (1.0 + np.exp(-z)) + t
    np.testing.assert_allclose(builtin.smooth_max_builtin(tf.constant(a), tf.constant(t)).numpy(),
                               want, rtol=1e-13, atol=1e-13)
    from keras_acts.ops.frelu import smooth_max

    with keras_acts.ops.export_mode():
        got = smooth_max(tf.constant(a, tf.float32), tf.constant(t, tf.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key,want", [
    ("frelu", {"DEPTHWISE_CONV_2D": 1, "MAXIMUM": 1}),
    # smooth max (SUB, LOGISTIC, MUL, ADD) then BN2 in inference (MUL, ADD)
    ("acon_frelu", {"DEPTHWISE_CONV_2D": 1, "SUB": 1, "LOGISTIC": 1, "MUL": 2, "ADD": 2}),
    # odd sizes: SAME padding matches PyTorch's padding 1, for the conv and the pool
    ("acon_frelu_s2_odd", {"DEPTHWISE_CONV_2D": 1, "MAX_POOL_2D": 1, "SUB": 1, "LOGISTIC": 1,
                           "MUL": 2, "ADD": 2}),
])
def test_funnel_conv_and_batch_norm_fold_into_one_depthwise_conv(key, want):
    """T(x) = BN(depthwise conv(x) + bias) is one builtin DEPTHWISE_CONV_2D in inference
    (no separate MUL/ADD/RSQRT of the batch norm), in float32 and full int8."""
    model = family_model(key, 4)
    counts = op_counts(to_tflite(model))
    counts.pop("CONV_2D")  # the 1x1 mixer in front
    assert counts == want, counts
    rep = inputs_for(model, 16)
    counts8 = op_counts(to_tflite(model, quantization="int8", representative_dataset=rep))
    assert counts8.pop("QUANTIZE") == 1 and counts8.pop("DEQUANTIZE") == 1, counts8
    counts8.pop("CONV_2D")
    if key == "frelu":  # int8: max(x, T) as x + relu(T - x) (builtin.funnel_max)
        want = {"DEPTHWISE_CONV_2D": 1, "SUB": 1, "ADD": 1}
    assert counts8 == want, counts8


# ------------------------------------------------- int8 top-1 on Fashion-MNIST


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["npwlu", "acon_a", "acon_b", "frelu", "acon_frelu"])
def test_family_int8_accuracy_within_one_point(activation):
    """The Fashion-MNIST check (``keras_acts.export.accuracy.FULL``: small_cnn, 2 epochs on
    20000 images, 10000 test images) for each family layer: full-integer int8 top-1 within
    1 point of the Keras float model's. 1.5 to 2.5 min each on a 2-core CPU: slow set."""
    from int8_check import FULL  # tests/export, on pytest's `pythonpath`
    from int8_check import int8_accuracy

    r = int8_accuracy(activation, **FULL)
    print(r)
    assert r["float_acc"] > 0.8, r
    assert round(r["drop_points"], 6) <= 1.0, r  # "within 1 point" (100 of 10000 images)
