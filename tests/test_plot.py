"""keras_acts.plot on hand-made models holding all four keras_acts layers."""

import keras
import matplotlib.image
import numpy as np
import pytest

from keras_acts import AconA
from keras_acts import AconB
from keras_acts import AconC
from keras_acts import AconFReLU
from keras_acts import FReLU
from keras_acts import MetaAcon
from keras_acts import NPWLU
from keras_acts import PWLU
from keras_acts import Serf
from keras_acts import ops
from keras_acts.plot import activation_shapes
from keras_acts.plot import keras_acts_layers
from keras_acts.plot import learning_curves

C = 6
MAX_CHANNELS = 4


def _model():
    """Conv-PWLU-Conv-AconC-Conv-MetaAcon-Conv-Serf, PWLU with a non-ReLU shape."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(C, 3, padding="same")(inputs)
    x = PWLU(num_intervals=4, phase1_steps=0, name="pw")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = AconC(name="ac")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = MetaAcon(reduction=2, name="ma")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = Serf(name="sf")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x), name="all_four")
    rng = np.random.default_rng(0)
    pw = model.get_layer("pw")
    pw.set_parameters(left_bound=rng.uniform(-3.0, -1.0, C), right_bound=rng.uniform(1.0, 3.0, C),
                      points=rng.normal(size=(C, 5)), left_slope=rng.normal(size=C),
                      right_slope=rng.normal(size=C))
    return model


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def samples():
    return np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype("float32")


def _png_ok(path):
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.std(image[..., :3])) > 0.01  # not a blank canvas


def _lines(ax, prefix):
    return {line.get_gid(): line for line in ax.get_lines()
            if (line.get_gid() or "").startswith(prefix)}


def test_one_panel_per_layer_and_png(model, samples, tmp_path):
    path = tmp_path / "sub" / "shapes.png"
    fig = activation_shapes(model, path=path, max_channels=MAX_CHANNELS, inputs=samples)
    assert [type(l).__name__ for l in keras_acts_layers(model)] == [
        "PWLU", "AconC", "MetaAcon", "Serf"]
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["pw", "ac", "ma", "sf"]
    _png_ok(path)


def test_pwlu_curves_match_ops(model):
    fig = activation_shapes(model, max_channels=MAX_CHANNELS)
    ax = fig.axes[0]
    curves = {gid: line for gid, line in _lines(ax, "pwlu-ch").items()}
    assert len(curves) == MAX_CHANNELS
    pw = model.get_layer("pw")
    params = [keras.ops.convert_to_numpy(w) for w in (pw.left_bound, pw.right_bound,
                                                      pw.points, pw.left_slope,
                                                      pw.right_slope)]
    # Default range: the bounds of all channels plus a margin on each side.
    x_all = curves["pwlu-ch0"].get_xdata()
    assert x_all.min() < params[0].min() and x_all.max() > params[1].max()
    for gid, line in curves.items():
        c = int(gid[len("pwlu-ch"):])
        xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        pick = np.linspace(0, xs.size - 1, 7).astype(int)
        grid = np.repeat(xs[pick, None], C, axis=1).astype("float32")
        want = np.asarray(ops.pwlu(grid, *params, axis=-1))[:, c]
        np.testing.assert_allclose(ys[pick], want, rtol=1e-5, atol=1e-5)
        # Bounds marked at B_L and B_R of that channel.
        bounds = _lines(ax, f"pwlu-bounds-ch{c}")[f"pwlu-bounds-ch{c}"]
        np.testing.assert_allclose(bounds.get_xdata(), [params[0][c], params[1][c]],
                                   rtol=1e-6)
    assert "relu-reference" in {line.get_gid() for line in ax.get_lines()}


def test_acon_and_serf_curves_match_ops(model):
    fig = activation_shapes(model, x_range=(-2.0, 3.0), max_channels=C)
    ac = model.get_layer("ac")
    p1, p2, beta = (np.asarray(w).reshape(-1) for w in (ac.p1, ac.p2, ac.beta))
    lines = _lines(fig.axes[1], "acon-ch")
    assert len(lines) == C
    line = lines["acon-ch2"]
    xs = np.asarray(line.get_xdata())
    assert xs[0] == pytest.approx(-2.0) and xs[-1] == pytest.approx(3.0)
    want = np.asarray(ops.acon_c(xs, p1[2], p2[2], beta[2]))
    np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-5, atol=1e-6)
    serf = _lines(fig.axes[3], "serf")["serf"]
    np.testing.assert_allclose(serf.get_ydata(), np.asarray(ops.serf(serf.get_xdata())),
                               rtol=1e-6)


def test_meta_acon_beta_histogram(model, samples):
    fig = activation_shapes(model, inputs=samples)
    ax = fig.axes[2]
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == samples.shape[0] * C  # every (sample, channel) beta
    # Same values as generate_beta on the layer's own input.
    ma = model.get_layer("ma")
    layer_in = keras.Model(model.input, ma.input)(samples)
    beta = np.asarray(ma.generate_beta(layer_in))
    counts, _ = np.histogram(beta.reshape(-1), bins=40, range=(0.0, 1.0))
    np.testing.assert_array_equal(heights, counts)
    # Without inputs the panel explains what it needs.
    fig = activation_shapes(model)
    assert "inputs=" in " ".join(t.get_text() for t in fig.axes[2].texts)


def test_nested_model_and_layerwise_pwlu(samples):
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(C, 1),
                              PWLU(channelwise=False, phase1_steps=None),
                              MetaAcon(reduction=2)], name="inner")
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.Flatten()(inner(inputs)), name="outer")
    fig = activation_shapes(outer, inputs=samples)
    assert len(fig.axes) == 2
    assert "phase I" in fig.axes[0].get_title()
    curve = _lines(fig.axes[0], "pwlu-all")["pwlu-all"]
    np.testing.assert_allclose(curve.get_ydata(), np.maximum(curve.get_xdata(), 0.0))
    assert sum(p.get_height() for p in fig.axes[1].patches) == samples.shape[0] * C


def test_errors():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="relu")])
    with pytest.raises(ValueError, match="no keras_acts layer"):
        activation_shapes(plain)
    with pytest.raises(ValueError, match="max_channels"):
        activation_shapes(plain, max_channels=0)
    with pytest.raises(ValueError, match="x_range"):
        activation_shapes(plain, x_range=(1.0, -1.0))


def test_learning_curves(tmp_path):
    run = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8],
           "val_accuracy": [0.4, 0.7]}
    fig = learning_curves({"relu": run, "pwlu": [run, run]}, tmp_path / "lc.png")
    assert len(fig.axes) == 2
    _png_ok(tmp_path / "lc.png")
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"relu", "relu (val)", "pwlu", "pwlu (val)"} <= labels
    steps = dict(run, batch_loss=list(np.linspace(2, 1, 30)),
                 batch_accuracy=list(np.linspace(0, 1, 30)))
    history = keras.callbacks.History()
    history.history = steps
    fig = learning_curves({"serf": [history, steps]}, smooth=5)
    assert len(fig.axes) == 4
    ys = fig.axes[0].get_lines()[0].get_ydata()
    loss = steps["batch_loss"]  # centred moving average of 5, shorter at the ends
    assert len(ys) == 30
    assert ys[0] == pytest.approx(np.mean(loss[:3]))
    assert ys[10] == pytest.approx(np.mean(loss[8:13]))
    with pytest.raises(ValueError):
        learning_curves({})


# ------------------------------------------------------------------ the family (issue 16)
def _family_model():
    """Conv-NPWLU-Conv-AconA-Conv-AconB-Conv-FReLU-Conv-AconFReLU-AconFReLU(stride 2)."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(C, 3, padding="same")(inputs)
    x = NPWLU(num_intervals=4, phase1_steps=0, name="np")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = AconA(name="aa")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = AconB(name="ab")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = FReLU(name="fr")(x)
    x = keras.layers.Conv2D(C, 3, padding="same")(x)
    x = AconFReLU(name="af")(x)
    x = AconFReLU(strides=2, name="af2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x), name="family")
    rng = np.random.default_rng(2)
    model.get_layer("np").set_parameters(
        left_bound=rng.uniform(-3.0, -1.0, C), widths=rng.uniform(0.1, 2.0, (C, 4)),
        start_value=rng.normal(size=C), slopes=rng.normal(size=(C, 4)),
        left_slope=rng.normal(size=C), right_slope=rng.normal(size=C))
    model.get_layer("aa").beta.assign(rng.uniform(0.2, 3.0, (1, 1, C)))
    model.get_layer("ab").p.assign(rng.uniform(-0.5, 0.8, (1, 1, C)))
    model.get_layer("ab").beta.assign(rng.uniform(0.2, 3.0, (1, 1, C)))
    return model, rng


@pytest.fixture(scope="module")
def family():
    return _family_model()


def _npwlu_reference(x, left, widths, start, slopes, k_left, k_right):
    """Float64 N-PWLU of one channel, interval by interval (the layer's docstring)."""
    x = np.asarray(x, dtype=np.float64)
    knots = left + np.concatenate([[0.0], np.cumsum(widths)])
    values = start + np.concatenate([[0.0], np.cumsum(slopes * widths)])
    y = np.where(x < knots[0], values[0] + k_left * (x - knots[0]),
                 values[-1] + k_right * (x - knots[-1]))
    for i in range(len(widths)):
        inside = (x >= knots[i]) & (x < knots[i + 1])
        y = np.where(inside, values[i] + slopes[i] * (x - knots[i]), y)
    return y, knots, values


def test_npwlu_curves_and_knots_match_a_float64_reference(family, tmp_path):
    model, _ = family
    fig = activation_shapes(model, tmp_path / "family.png", max_channels=MAX_CHANNELS)
    _png_ok(tmp_path / "family.png")
    assert len(fig.axes) == 6
    ax = fig.axes[0]
    assert "N-PWLU" in ax.get_title() and f"{MAX_CHANNELS}/{C}" in ax.get_title()
    params = [np.asarray(v, dtype=np.float64)
              for v in model.get_layer("np").parameters().values()]
    curves = _lines(ax, "npwlu-ch")
    assert sorted(curves) == [f"npwlu-ch{c}" for c in (0, 2, 3, 5)]
    all_knots = [_npwlu_reference(0.0, *(p[c] for p in params))[1] for c in range(C)]
    for gid, line in curves.items():
        c = int(gid[len("npwlu-ch"):])
        want, knots, values = _npwlu_reference(line.get_xdata(), *(p[c] for p in params))
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-5, atol=1e-5)
        # The non-uniform knots of that channel, marked at (k_i, f(k_i)).
        marks = _lines(ax, f"npwlu-knots-ch{c}")[f"npwlu-knots-ch{c}"]
        np.testing.assert_allclose(marks.get_xdata(), knots, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(marks.get_ydata(), values, rtol=1e-5, atol=1e-5)
        assert len(set(np.round(np.diff(knots), 6))) > 1    # the knots are non-uniform
    # Default range: every channel's knots, with a margin.
    x_all = curves["npwlu-ch0"].get_xdata()
    assert x_all.min() < np.min(all_knots) and x_all.max() > np.max(all_knots)
    assert "relu-reference" in {line.get_gid() for line in ax.get_lines()}


def test_npwlu_layerwise_in_phase1_is_relu():
    layer = NPWLU(channelwise=False, phase1_steps=None, name="np1")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(C, 1), layer])
    fig = activation_shapes(model)
    ax = fig.axes[0]
    assert "phase I" in ax.get_title()
    curve = _lines(ax, "npwlu-all")["npwlu-all"]
    np.testing.assert_allclose(curve.get_ydata(), np.maximum(curve.get_xdata(), 0.0))
    marks = _lines(ax, "npwlu-knots-all")["npwlu-knots-all"]
    np.testing.assert_allclose(marks.get_xdata(), [-3.0, -1.5, 0.0, 1.5, 3.0], atol=1e-6)


def test_acon_a_and_b_curves_match_a_float64_reference(family):
    model, _ = family
    fig = activation_shapes(model, x_range=(-3.0, 2.0), max_channels=C)
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))   # noqa: E731
    beta_a = np.asarray(model.get_layer("aa").beta, dtype=np.float64).reshape(-1)
    lines = _lines(fig.axes[1], "acona-ch")
    assert len(lines) == C and "ACON-A" in fig.axes[1].get_title()
    x = np.asarray(lines["acona-ch4"].get_xdata(), dtype=np.float64)
    assert x[0] == pytest.approx(-3.0) and x[-1] == pytest.approx(2.0)
    np.testing.assert_allclose(lines["acona-ch4"].get_ydata(), x * sigmoid(beta_a[4] * x),
                               rtol=1e-5, atol=1e-6)
    ab = model.get_layer("ab")
    p, beta_b = (np.asarray(w, dtype=np.float64).reshape(-1) for w in (ab.p, ab.beta))
    lines = _lines(fig.axes[2], "aconb-ch")
    assert len(lines) == C and "ACON-B" in fig.axes[2].get_title()
    want = (1 - p[1]) * x * sigmoid(beta_b[1] * (1 - p[1]) * x) + p[1] * x
    np.testing.assert_allclose(lines["aconb-ch1"].get_ydata(), want, rtol=1e-5, atol=1e-6)


def test_frelu_panels_scatter_the_layer_output(family):
    model, rng = family
    samples = rng.normal(size=(3, 8, 8, 3)).astype("float32")
    fig = activation_shapes(model, inputs=samples, max_channels=MAX_CHANNELS)
    fr = model.get_layer("fr")
    x_in = keras.Model(model.input, fr.input)(samples)
    x_in = np.asarray(x_in)
    y_out = np.maximum(x_in, np.asarray(fr.funnel_condition(x_in)))   # max(x, T(x))
    points = _lines(fig.axes[3], "funnel-ch")
    assert sorted(points) == [f"funnel-ch{c}" for c in (0, 2, 3, 5)]
    for gid, line in points.items():
        c = int(gid[len("funnel-ch"):])
        xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert xs.size == 3 * 8 * 8          # every position (fewer than FUNNEL_POINTS)
        np.testing.assert_allclose(ys, y_out[..., c].reshape(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(xs, x_in[..., c].reshape(-1), rtol=1e-6)
        assert np.all(ys >= xs - 1e-6)       # FReLU is never below the identity
    assert "ACON-FReLU" in fig.axes[4].get_title() and _lines(fig.axes[4], "funnel-ch")
    # Stride 2: no pixel-wise correspondence, the panel says so; without inputs too.
    assert "stride 2" in " ".join(t.get_text() for t in fig.axes[5].texts)
    assert not _lines(fig.axes[5], "funnel")
    fig = activation_shapes(model)
    assert "inputs=" in " ".join(t.get_text() for t in fig.axes[3].texts)
