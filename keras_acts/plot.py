"""Pictures of learned activations and of training runs (matplotlib, Agg).

:func:`activation_shapes` draws one panel per keras_acts layer found in any
Keras model (nested models included); :func:`learning_curves` draws loss and
accuracy curves of one or more runs. Both return a ``matplotlib.figure.Figure``
drawn on an Agg canvas (no display needed, the global pyplot backend is left
alone) and write a PNG when ``path`` is given. Every curve is computed with
:mod:`keras_acts.ops`, the functions the layers themselves call.

Example:
    >>> from keras_acts.models import small_cnn
    >>> from keras_acts.plot import activation_shapes
    >>> model = small_cnn("acon_c")
    >>> fig = activation_shapes(model, path="shapes.png")
"""

import math
import os

import keras
import numpy as np

from keras_acts import ops
from keras_acts._extras import require
from keras_acts.layers import AconA
from keras_acts.layers import AconB
from keras_acts.layers import AconC
from keras_acts.layers import AconFReLU
from keras_acts.layers import ActivationLayer
from keras_acts.layers import FReLU
from keras_acts.layers import MetaAcon
from keras_acts.layers import NPWLU
from keras_acts.layers import PWLU
from keras_acts.layers import Serf
from keras_acts.registry import iter_layers

matplotlib = require("matplotlib", feature="keras_acts.plot")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DEFAULT_X_RANGE = (-4.0, 4.0)
NUM_POINTS = 401
FUNNEL_POINTS = 400
# The layers with a panel of their own.
_PANELS = (PWLU, NPWLU, AconC, AconA, AconB, MetaAcon, Serf, FReLU, AconFReLU)   # scatter points per channel of the FReLU / ACON-FReLU panels
_PANEL_SIZE = (4.0, 3.2)


def keras_acts_layers(model):
    """The keras_acts activation layers of ``model`` in order:
    ``list(iter_layers(model, types=ActivationLayer))``.

    Nested models and layers are searched too, depth first, each model's layers
    in their ``model.layers`` (topological) order.

    Example:
        >>> from keras_acts.models import small_cnn
        >>> [type(l).__name__ for l in keras_acts_layers(small_cnn("acon_c"))]
        ['AconC', 'AconC', 'AconC', 'AconC']
    """
    return list(iter_layers(model, types=ActivationLayer))


def _new_figure(num_panels, ncols):
    ncols = max(1, min(ncols, num_panels))
    nrows = math.ceil(num_panels / ncols)
    fig = Figure(figsize=(_PANEL_SIZE[0] * ncols, _PANEL_SIZE[1] * nrows))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(num_panels)]
    return fig, axes


def _save(fig, path):
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=110)


def _channel_subset(num_channels, max_channels):
    """Up to ``max_channels`` channel indices spread evenly over ``num_channels``."""
    if num_channels <= max_channels:
        return np.arange(num_channels)
    return np.unique(np.linspace(0, num_channels - 1, max_channels).round().astype(int))


def _numpy(weight):
    return np.asarray(keras.ops.convert_to_numpy(weight), dtype=np.float32)


def _colors(count):
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, max(count, 1))]


def _relu_reference(ax, x):
    ax.plot(x, np.maximum(x, 0.0), color="0.55", linestyle="--", linewidth=1.0,
            label="ReLU", gid="relu-reference")


def _pwlu_panel(ax, layer, x_range, max_channels):
    left, right, points, k_left, k_right = (_numpy(w) for w in (
        layer.left_bound, layer.right_bound, layer.points, layer.left_slope,
        layer.right_slope))
    in_phase1 = layer.in_phase1
    if x_range is None:
        margin = 0.15 * float(np.max(right) - np.min(left))
        x_range = (float(np.min(left)) - margin, float(np.max(right)) + margin)
    x = np.linspace(x_range[0], x_range[1], NUM_POINTS, dtype=np.float32)
    active = not in_phase1
    _relu_reference(ax, x)
    if layer.channelwise:
        chans = _channel_subset(points.shape[0], max_channels)
        # One column of x per channel: ops.pwlu evaluates all channels at once.
        grid = np.repeat(x[:, None], points.shape[0], axis=1)
        y = ops.pwlu(grid, left, right, points, k_left, k_right, axis=-1, active=active)
        y = np.asarray(y)
        bounds = np.asarray(ops.pwlu(np.stack([left, right]), left, right, points, k_left,
                                     k_right, axis=-1, active=active))
        curves = [(f"ch {c}", y[:, c], left[c], right[c], bounds[0, c], bounds[1, c], f"ch{c}")
                  for c in chans]
    else:
        y = np.asarray(ops.pwlu(x, left, right, points, k_left, k_right, active=active))
        ends = np.asarray(ops.pwlu(np.stack([left, right]), left, right, points, k_left,
                                   k_right, active=active))
        curves = [("layer-wise", y, float(left), float(right), ends[0], ends[1], "all")]
    for (label, yc, bl, br, fl, fr, gid), color in zip(curves, _colors(len(curves))):
        ax.plot(x, yc, color=color, linewidth=1.2, label=label, gid=f"pwlu-{gid}")
        ax.plot([bl, br], [fl, fr], linestyle="none", marker="|", markersize=10,
                markeredgewidth=2, color=color, gid=f"pwlu-bounds-{gid}")
    num = points.shape[0] if layer.channelwise else 1
    note = " (phase I: ReLU)" if in_phase1 else ""
    ax.set_title(f"{layer.name}: PWLU, {len(curves)}/{num} curves{note}", fontsize=9)
    ax.text(0.02, 0.97, "| = bounds B_L, B_R", transform=ax.transAxes, fontsize=7,
            va="top")


def _acon_panel(ax, layer, x_range, max_channels):
    p1, p2, beta = (_numpy(w).reshape(-1) for w in (layer.p1, layer.p2, layer.beta))
    x = np.linspace(*(x_range or DEFAULT_X_RANGE), NUM_POINTS, dtype=np.float32)
    chans = _channel_subset(p1.size, max_channels)
    y = np.asarray(ops.acon_c(x[:, None], p1[None, chans], p2[None, chans],
                              beta[None, chans]))
    _relu_reference(ax, x)
    for i, (c, color) in enumerate(zip(chans, _colors(len(chans)))):
        ax.plot(x, y[:, i], color=color, linewidth=1.2, label=f"ch {c}", gid=f"acon-ch{c}")
    ax.set_title(f"{layer.name}: ACON-C, {len(chans)}/{p1.size} curves", fontsize=9)


def _npwlu_panel(ax, layer, x_range, max_channels):
    left, widths, start, slopes, k_left, k_right = (
        _numpy(w) for w in layer.parameters().values())
    knots = _numpy(layer.knots)                      # (C, N + 1) or (N + 1,)
    active = not layer.in_phase1
    if x_range is None:
        margin = 0.15 * float(np.max(knots) - np.min(knots))
        x_range = (float(np.min(knots)) - margin, float(np.max(knots)) + margin)
    x = np.linspace(x_range[0], x_range[1], NUM_POINTS, dtype=np.float32)
    params = (left, widths, start, slopes, k_left, k_right)
    _relu_reference(ax, x)
    if layer.channelwise:
        num = knots.shape[0]
        grid = np.repeat(x[:, None], num, axis=1)
        y = np.asarray(ops.npwlu(grid, *params, axis=-1, active=active))
        # The function at every channel's own knots: knots as rows, channel on the last axis.
        at_knots = np.asarray(ops.npwlu(np.ascontiguousarray(knots.T), *params, axis=-1,
                                        active=active))
        curves = [(f"ch {c}", y[:, c], knots[c], at_knots[:, c], f"ch{c}")
                  for c in _channel_subset(num, max_channels)]
    else:
        num = 1
        y = np.asarray(ops.npwlu(x, *params, active=active))
        at_knots = np.asarray(ops.npwlu(knots, *params, active=active))
        curves = [("layer-wise", y, knots, at_knots, "all")]
    for (label, yc, kc, fk, gid), color in zip(curves, _colors(len(curves))):
        ax.plot(x, yc, color=color, linewidth=1.2, label=label, gid=f"npwlu-{gid}")
        ax.plot(kc, fk, linestyle="none", marker="o", markersize=3.5, color=color,
                gid=f"npwlu-knots-{gid}")
    note = " (phase I: ReLU)" if layer.in_phase1 else ""
    ax.set_title(f"{layer.name}: N-PWLU, {len(curves)}/{num} curves{note}", fontsize=9)
    ax.text(0.02, 0.97, f"o = knots k_0..k_{layer.num_intervals}", transform=ax.transAxes,
            fontsize=7, va="top")


def _acon_ab_panel(ax, layer, x_range, max_channels):
    beta = _numpy(layer.beta).reshape(-1)
    p = _numpy(layer.p).reshape(-1) if isinstance(layer, AconB) else None
    x = np.linspace(*(x_range or DEFAULT_X_RANGE), NUM_POINTS, dtype=np.float32)
    chans = _channel_subset(beta.size, max_channels)
    if p is None:
        kind, y = "ACON-A", np.asarray(ops.acon_a(x[:, None], beta[None, chans]))
    else:
        kind, y = "ACON-B", np.asarray(ops.acon_b(x[:, None], p[None, chans],
                                                  beta[None, chans]))
    _relu_reference(ax, x)
    tag = kind.lower().replace("-", "")
    for i, (c, color) in enumerate(zip(chans, _colors(len(chans)))):
        ax.plot(x, y[:, i], color=color, linewidth=1.2, label=f"ch {c}", gid=f"{tag}-ch{c}")
    ax.set_title(f"{layer.name}: {kind}, {len(chans)}/{beta.size} curves", fontsize=9)


def _message_panel(ax, title, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _funnel_panel(ax, layer, model, inputs, max_channels):
    """FReLU / ACON-FReLU: output against input at the layer, from sample inputs."""
    kind = "FReLU" if isinstance(layer, FReLU) else "ACON-FReLU"
    title = f"{layer.name}: {kind}"
    if getattr(layer, "strides", 1) != 1:
        _message_panel(ax, title, "stride 2: output and input pixels\ndo not correspond "
                                  "(no panel)")
        return False
    if inputs is None:
        _message_panel(ax, title, "pass inputs=... (sample images)\nto plot f(x) against x")
        return False
    x_in = _layer_inputs(model, layer, inputs)
    y_out = np.asarray(keras.ops.convert_to_numpy(layer(x_in, training=False)))
    x_in = np.asarray(keras.ops.convert_to_numpy(x_in))
    num = x_in.shape[-1]
    chans = _channel_subset(num, max_channels)
    x_flat, y_flat = x_in.reshape(-1, num), y_out.reshape(-1, num)
    keep = _channel_subset(x_flat.shape[0], FUNNEL_POINTS)
    lo, hi = float(np.min(x_flat[keep][:, chans])), float(np.max(x_flat[keep][:, chans]))
    _relu_reference(ax, np.linspace(lo, hi, 2, dtype=np.float32))
    for c, color in zip(chans, _colors(len(chans))):
        ax.plot(x_flat[keep, c], y_flat[keep, c], linestyle="none", marker=".",
                markersize=2, alpha=0.6, color=color, label=f"ch {c}",
                gid=f"funnel-ch{c}")
    ax.set_xlabel(f"x (layer input; f(x) at {len(keep)} positions per channel)", fontsize=7)
    ax.set_title(f"{title}, {len(chans)}/{num} ch", fontsize=9)
    return True


def _layer_inputs(model, layer, inputs):
    """The inputs ``layer`` receives when ``model`` runs on ``inputs`` (inference)."""
    try:
        sub_model = keras.Model(model.input, layer.input)
    except Exception:  # noqa: BLE001 - nested/subclassed models: capture on the fly
        sub_model = None
    if sub_model is not None:
        return sub_model(inputs, training=False)
    captured = []
    original = layer.call

    def capture(x, *args, **kwargs):
        captured.append(x)
        return original(x, *args, **kwargs)

    layer.call = capture
    try:
        model(inputs, training=False)
    finally:
        del layer.call
    if not captured:
        raise ValueError(f"Could not capture the inputs of layer {layer.name!r}.")
    return captured[0]


def _meta_acon_panel(ax, layer, model, inputs):
    if inputs is None:
        ax.text(0.5, 0.5, "pass inputs=... (sample images)\nto plot the generated β",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_title(f"{layer.name}: Meta-ACON β", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    beta = np.asarray(layer.generate_beta(_layer_inputs(model, layer, inputs), training=False))
    ax.hist(beta.reshape(-1), bins=40, range=(0.0, 1.0), color="tab:purple", alpha=0.8,
            gid="meta-acon-beta")
    ax.axvline(float(np.median(beta)), color="k", linestyle="--", linewidth=1.0,
               label=f"median {np.median(beta):.3f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("β (per sample and channel)")
    ax.set_ylabel("count")
    ax.set_title(f"{layer.name}: Meta-ACON β, {beta.shape[0]} samples x {beta.shape[1]} ch",
                 fontsize=9)


def _serf_panel(ax, layer, x_range):
    x = np.linspace(*(x_range or DEFAULT_X_RANGE), NUM_POINTS, dtype=np.float32)
    _relu_reference(ax, x)
    ax.plot(x, np.asarray(ops.serf(x)), color="tab:red", linewidth=1.4, label="Serf",
            gid="serf")
    ax.set_title(f"{layer.name}: Serf (no parameters)", fontsize=9)


def _unsupported_panel(ax, layer):
    ax.text(0.5, 0.5, f"no panel for {type(layer).__name__}", ha="center", va="center",
            transform=ax.transAxes, fontsize=8)
    ax.set_title(f"{layer.name}: {type(layer).__name__}", fontsize=9)


def activation_shapes(model, path=None, x_range=None, max_channels=8, inputs=None, ncols=4):
    """Plot the activation functions a model has learned, one panel per layer.

    Every keras_acts layer of ``model`` (nested models included; other
    activations are skipped) gets one subplot, in layer order:

    * PWLU: the curve of up to ``max_channels`` channels (evenly spread; the
      one shared curve for ``channelwise=False``), each with its bounds B_L, B_R
      marked by ``|``; in phase I the layer computes ReLU and the title says so.
    * NPWLU: the same, each curve with its N + 1 (non-uniform) knots
      k_0..k_N marked by ``o`` at (k_i, f(k_i)); default x range: the span of
      the layer's knots (all channels) plus 15 % on each side.
    * AconC, AconA, AconB: per-channel curves (up to ``max_channels``; with
      ``shared_axes`` each parameter position counts as a channel).
    * MetaAcon: histogram of the generated β over the samples and channels of
      ``inputs`` (a batch the model accepts; the layer's own input is obtained
      through a sub-model). Without ``inputs`` the panel says so.
    * Serf: its fixed curve.
    * FReLU, AconFReLU: their output depends on a pixel's 3x3 neighbourhood,
      so there is no curve; the panel scatters the layer's output f(x)
      against its input x (inference mode) at up to ``FUNNEL_POINTS``
      positions of ``inputs`` per channel, up to ``max_channels`` channels.
      Without ``inputs``, or for ``strides=2`` (output pixels no longer match
      input pixels), the panel says so instead.
    * any other keras_acts layer: a panel naming its class (no curve yet).

    Every curve panel carries a dashed ReLU reference. All curves come from
    :mod:`keras_acts.ops` with the layers' current weights.

    Args:
        model: a built Keras model containing keras_acts layers.
        path: where to write a PNG (directories are created); None: no file.
        x_range: (low, high) of the curves; default: (-4, 4), and for PWLU the
            span of its bounds plus 15 % on each side.
        max_channels: at most this many curves per panel.
        inputs: sample model inputs for the Meta-ACON β histogram and the
            FReLU / ACON-FReLU scatter.
        ncols: panels per row.

    Returns the ``matplotlib.figure.Figure`` (Agg canvas). Raises ``ValueError``
    when the model has no keras_acts layer or is not built.

    Example:
        >>> import numpy as np
        >>> from keras_acts.models import small_cnn
        >>> model = small_cnn("meta_acon", width=4)
        >>> x = np.random.default_rng(0).normal(size=(8, 28, 28, 1)).astype("float32")
        >>> fig = activation_shapes(model, "shapes.png", inputs=x)
        >>> len(fig.axes) == len(keras_acts_layers(model))
        True
    """
    if not model.built:
        raise ValueError("activation_shapes needs a built model (call it on data first).")
    if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
        raise ValueError(f"`max_channels` must be an integer >= 1; received {max_channels!r}.")
    if x_range is not None:
        x_range = tuple(float(v) for v in x_range)
        if len(x_range) != 2 or not x_range[0] < x_range[1]:
            raise ValueError(f"`x_range` must be (low, high) with low < high; received "
                             f"{x_range!r}.")
    layers = keras_acts_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} contains no keras_acts layer (any of "
            f"{', '.join(c.__name__ for c in _PANELS)}).")
    if inputs is not None:
        inputs = keras.ops.convert_to_tensor(inputs)
    fig, axes = _new_figure(len(layers), ncols)
    for ax, layer in zip(axes, layers):
        legend = "lower right"
        if isinstance(layer, PWLU):
            _pwlu_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, NPWLU):
            _npwlu_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, AconC):
            _acon_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, (AconA, AconB)):
            _acon_ab_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, MetaAcon):
            _meta_acon_panel(ax, layer, model, inputs)
            legend = "upper left" if inputs is not None else None
        elif isinstance(layer, Serf):
            _serf_panel(ax, layer, x_range)
        elif isinstance(layer, (FReLU, AconFReLU)):
            if not _funnel_panel(ax, layer, model, inputs, max_channels):
                continue
            legend = "upper left"
        else:
            _unsupported_panel(ax, layer)
            continue
        if legend:
            ax.legend(fontsize=6, loc=legend)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Learned activations of {model.name}", fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _as_runs(value):
    """A History, a dict of metric lists, or a list of those -> list of dicts."""
    runs = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for run in runs:
        history = getattr(run, "history", run)
        if not isinstance(history, dict):
            raise ValueError("learning_curves expects keras History objects or dicts of "
                             f"metric lists; received {type(run).__name__}.")
        out.append(history)
    return out


def _mean_band(series):
    length = min(len(s) for s in series)
    stacked = np.asarray([np.asarray(s[:length], dtype=np.float64) for s in series])
    return stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def _smooth(values, window):
    """Centred moving average over ``window`` values (fewer at both ends)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or values.size == 0:
        return values
    half = window // 2
    sums = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(values.size)
    low = np.maximum(index - half, 0)
    high = np.minimum(index + window - half, values.size)
    return (sums[high] - sums[low]) / (high - low)


def learning_curves(histories, path=None, metrics=("loss", "accuracy"), smooth=20):
    """Plot training and validation curves of several runs, one line per label.

    ``histories`` maps a label (e.g. the activation's name) to a
    ``keras.callbacks.History``, a dict of per-epoch metric lists
    (``history.history``) or a list of those (one per seed; the line is the
    mean over seeds and the shaded band spans min..max). For each name in
    ``metrics`` one panel shows the per-epoch training (solid, "o") and
    ``val_`` (dashed, "s") values. If the dicts also hold ``"batch_<metric>"``
    lists (the value of every training step, as ``keras_acts.demo`` records
    them), a panel per such metric shows them against the step, smoothed by a
    centred moving average of ``smooth`` steps; these panels come first.

    Returns the ``matplotlib.figure.Figure`` (Agg canvas); writes a PNG when
    ``path`` is given.

    Example:
        >>> h_relu = {"loss": [1.0, 0.6], "accuracy": [0.6, 0.8]}
        >>> h_pwlu = {"loss": [0.9, 0.5], "accuracy": [0.65, 0.82]}
        >>> fig = learning_curves({"relu": h_relu, "pwlu": h_pwlu}, "curves.png")
        >>> len(fig.axes)
        2
    """
    if not histories:
        raise ValueError("learning_curves needs at least one history.")
    runs = {label: _as_runs(value) for label, value in histories.items()}
    panels = [("step", m) for m in metrics
              if any(f"batch_{m}" in r for rs in runs.values() for r in rs)]
    panels += [("epoch", m) for m in metrics]
    fig, axes = _new_figure(len(panels), 2 if len(panels) == 4 else len(panels))
    colors = dict(zip(runs, _colors(len(runs))))
    for ax, (kind, metric) in zip(axes, panels):
        for label, rs in runs.items():
            if kind == "step":
                keys = [(f"batch_{metric}", "-", None)]
            else:
                keys = [(metric, "-", "o"), (f"val_{metric}", "--", "s")]
            for key, style, marker in keys:
                series = [r[key] for r in rs if len(r.get(key, ()))]
                if not series:
                    continue
                if kind == "step":
                    series = [_smooth(s, smooth) for s in series]
                mean, low, high = _mean_band(series)
                steps = np.arange(1, mean.size + 1)
                name = f"{label} (val)" if key.startswith("val_") else label
                ax.plot(steps, mean, linestyle=style, marker=marker, markersize=3,
                        color=colors[label], linewidth=1.2, label=name)
                if len(series) > 1:
                    ax.fill_between(steps, low, high, color=colors[label], alpha=0.15)
        if kind == "step":
            ax.set_title(f"training {metric} per step (centred moving average of {smooth})",
                         fontsize=9)
            ax.set_xlabel("step")
        else:
            ax.set_title(f"{metric} per epoch (solid: train, dashed: validation)", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, path)
    return fig
