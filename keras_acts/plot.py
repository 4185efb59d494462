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
from keras_acts.layers import ActivationLayer
from keras_acts.layers import PWLU
from keras_acts.layers import AconC
from keras_acts.layers import MetaAcon
from keras_acts.layers import Serf
from keras_acts.registry import iter_layers

matplotlib = require("matplotlib", feature="keras_acts.plot")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DEFAULT_X_RANGE = (-4.0, 4.0)
NUM_POINTS = 401
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

    Every keras_acts layer of ``model`` (PWLU, AconC, MetaAcon, Serf; nested
    models included; other activations are skipped) gets one subplot, in layer
    order:

    * PWLU: the curve of up to ``max_channels`` channels (evenly spread; the
      one shared curve for ``channelwise=False``), each with its bounds B_L, B_R
      marked by ``|``; in phase I the layer computes ReLU and the title says so.
    * AconC: per-channel curves (up to ``max_channels``; with ``shared_axes``
      each parameter position counts as a channel).
    * MetaAcon: histogram of the generated β over the samples and channels of
      ``inputs`` (a batch the model accepts; the layer's own input is obtained
      through a sub-model). Without ``inputs`` the panel says so.
    * Serf: its fixed curve.
    * any other keras_acts layer: a panel naming its class (no curve yet).

    PWLU, AconC and Serf panels carry a dashed ReLU reference. All curves come
    from :mod:`keras_acts.ops` with the layers' current weights.

    Args:
        model: a built Keras model containing keras_acts layers.
        path: where to write a PNG (directories are created); None: no file.
        x_range: (low, high) of the curves; default: (-4, 4), and for PWLU the
            span of its bounds plus 15 % on each side.
        max_channels: at most this many curves per panel.
        inputs: sample model inputs for the Meta-ACON β histogram.
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
            f"Model {model.name!r} contains no keras_acts layer (PWLU, AconC, MetaAcon, Serf).")
    if inputs is not None:
        inputs = keras.ops.convert_to_tensor(inputs)
    fig, axes = _new_figure(len(layers), ncols)
    for ax, layer in zip(axes, layers):
        if isinstance(layer, PWLU):
            _pwlu_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, AconC):
            _acon_panel(ax, layer, x_range, max_channels)
        elif isinstance(layer, MetaAcon):
            _meta_acon_panel(ax, layer, model, inputs)
        elif isinstance(layer, Serf):
            _serf_panel(ax, layer, x_range)
        else:
            _unsupported_panel(ax, layer)
            continue
        if not isinstance(layer, MetaAcon) or inputs is not None:
            ax.legend(fontsize=6, loc="lower right" if not isinstance(layer, MetaAcon)
                      else "upper left")
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
