"""LiteRT latency and file size of MobileNetV3-Small with each keras_acts activation.

The model is ``keras.applications.MobileNetV3Small`` built from its architecture
only (``weights=None``: nothing is downloaded), 224x224x3, with its classifier.
Its hidden activations -- every ``ReLU()`` and ``Activation("hard_swish")``
layer, not the ReLU / hard-sigmoid inside the squeeze-and-excite gates -- are
replaced by a fresh keras_acts layer each (``keras_acts.backbones.swap_activations``
when available, else a ``keras.models.clone_model`` activation factory). PWLU is
built in phase II (``phase1_steps=0``). Every keras_acts parameter is perturbed
(:func:`perturb_parameters`) so that no special initial value (beta = 1, ReLU-shaped
points) lets the converter drop an op a trained model would keep.

All models are converted by ``keras_acts.export.to_tflite`` (float32) and timed
in one process, interleaved round by round (drift and other load on the machine
hit every model alike): batch 1, ``--threads`` LiteRT threads (XNNPACK default
delegate), ``--warmup`` invokes, then ``--rounds`` x ``--per-round`` timed
invokes per model; the median is reported. Ratios are to the original
ReLU/hard-swish model.

Reference "floor" rows replace every site by 1, 2 or 4 elementwise builtin ops
that the converter cannot fold into the convolution (:class:`ElementwiseChain`):
they show what each elementwise pass per site costs, a lower bound for any
activation built from that many builtin ops.

Usage::

    python benchmarks/tflite.py [--threads 2] [--rounds 15] [--per-round 10]
        [--json benchmarks/results/tflite.json] [--activations pwlu acon_c meta_acon serf]

Example:
    >>> python benchmarks/tflite.py --rounds 5   # prints a markdown table
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_acts  # noqa: E402
from keras_acts.export import builtin_op_names  # noqa: E402
from keras_acts.export import load_interpreter  # noqa: E402
from keras_acts.export import to_tflite  # noqa: E402

ACTIVATIONS = ("pwlu", "acon_c", "meta_acon", "serf")
# Reference rows: every site replaced by a chain of this many builtin elementwise
# ops that the converter cannot fold into the convolution (x*x, then +x, *x, ...),
# the cost floor of any activation that needs that many ops.
FLOOR_OPS = (1, 2, 4)
TARGETS = {"pwlu": 1.15, "acon_c": 1.15, "meta_acon": 1.3, "serf": 1.3}
LAYER_KWARGS = {"pwlu": {"phase1_steps": 0}}


@keras.saving.register_keras_serializable(package="keras_acts_benchmarks")
class ElementwiseChain(keras.layers.Layer):
    """``ops`` builtin elementwise ops on the whole tensor: y = x*x, y += x, y *= x, ...

    Each op reads x and the running result, so TFLite cannot fold it into the
    preceding convolution (unlike a MUL/ADD by a constant). Used to measure what
    one elementwise pass per activation site costs in LiteRT.

    Example:
        >>> ElementwiseChain(2)(keras.ops.ones((1, 4))).shape
        (1, 4)
    """

    def __init__(self, ops=1, **kwargs):
        super().__init__(**kwargs)
        self.ops = ops

    def call(self, x):
        y = x
        for i in range(self.ops):
            y = y * x if i % 2 == 0 else y + x
        return y

    def get_config(self):
        return {**super().get_config(), "ops": self.ops}


def with_floor(model, ops):
    """``model`` with every activation site replaced by ``ElementwiseChain(ops)``.

    Example:
        >>> floor_model, n = with_floor(mobilenet_v3_small(), 1)
    """
    from keras_acts.backbones import swap_activations

    swapped = swap_activations(model, lambda *_, **__: ElementwiseChain(ops))
    return swapped, sum(isinstance(layer, ElementwiseChain) for layer in swapped.layers)


def mobilenet_v3_small(input_size=224):
    """keras.applications.MobileNetV3Small, random weights, no download.

    Example:
        >>> mobilenet_v3_small().count_params()
        2554968
    """
    return keras.applications.MobileNetV3Small(
        input_shape=(input_size, input_size, 3), weights=None, include_top=True,
        include_preprocessing=False)


def _is_site(layer):
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and "squeeze_excite" not in layer.name
    if isinstance(layer, keras.layers.Activation):
        name = getattr(layer.activation, "__name__", str(layer.activation))
        return name in ("hard_swish", "hard_silu", "relu")
    return False


def perturb_parameters(model, seed=0, scale=0.2):
    """Give every keras_acts layer trained-looking parameters, in place.

    Fresh layers hold special values (beta = 1, PWLU points on a ReLU) that let
    the TFLite converter drop ops (a MUL by 1) a trained model keeps; each
    trainable weight of a keras_acts layer is multiplied by U(1 - scale, 1 + scale)
    and shifted by N(0, scale / 4) so the timed graph is the general one.

    Example:
        >>> perturb_parameters(with_activation(mobilenet_v3_small(), "acon_c")[0])
    """
    from keras_acts.plot import keras_acts_layers

    rng = np.random.default_rng(seed)
    for layer in keras_acts_layers(model):
        for w in layer.trainable_weights:
            v = keras.ops.convert_to_numpy(w)
            w.assign(v * rng.uniform(1 - scale, 1 + scale, v.shape)
                     + rng.normal(0, scale / 4, v.shape))
    return model


def with_activation(model, activation):
    """A copy of ``model`` with every hidden activation site replaced.

    Uses ``keras_acts.backbones.swap_activations`` if the package has it, else
    clones the model with each site (see :func:`_is_site`) replaced by a fresh
    ``keras_acts.get(activation, **LAYER_KWARGS)``. Returns ``(model, n_sites)``.

    Example:
        >>> swapped, n = with_activation(mobilenet_v3_small(), "serf")
    """
    kwargs = LAYER_KWARGS.get(activation, {})
    try:  # the shared graph-surgery helper, when present
        from keras_acts.backbones import swap_activations
    except ImportError:
        swap_activations = None
    if swap_activations is not None:
        try:
            swapped = swap_activations(model, lambda *_, **__: keras_acts.get(activation, **kwargs))
            n = sum(isinstance(layer, type(keras_acts.get(activation)))
                    for layer in swapped.layers)
            if n:
                return swapped, n
        except Exception as error:  # fall back to the local factory
            print(f"swap_activations failed ({error!r}); using clone_model", file=sys.stderr)
    count = [0]

    def clone(layer):
        if _is_site(layer):
            count[0] += 1
            return keras_acts.get(activation, name=f"{activation}_{count[0]}", **kwargs)
        return layer.__class__.from_config(layer.get_config())

    swapped = keras.models.clone_model(model, clone_function=clone)
    return swapped, count[0]


def measure(paths, threads, warmup, rounds, per_round, input_size):
    """Median per-invoke latency (ms) of each flatbuffer, interleaved by rounds.

    Example:
        >>> measure({"relu": "a.tflite"}, threads=2, warmup=5, rounds=3, per_round=5,
        ...         input_size=224)
    """
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, input_size, input_size, 3)).astype(np.float32)
    interpreters = {}
    for key, path in paths.items():
        it = load_interpreter(path, x.shape, num_threads=threads)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        for _ in range(warmup):
            it.invoke()
        interpreters[key] = it
    times = {key: [] for key in paths}
    for _ in range(rounds):
        for key, it in interpreters.items():
            for _ in range(per_round):
                start = time.perf_counter()
                it.invoke()
                times[key].append(1e3 * (time.perf_counter() - start))
    return {key: statistics.median(v) for key, v in times.items()}, times


def main(argv=None):
    """Run the benchmark, print the markdown table, write the JSON results.

    Example:
        >>> main(["--rounds", "3", "--per-round", "5"])
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    parser.add_argument("--floor-ops", nargs="*", type=int, default=list(FLOOR_OPS),
                        help="reference rows: k non-foldable elementwise ops per site")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "tflite.json"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    base = mobilenet_v3_small(args.input_size)
    models = {"relu/hard_swish (original)": (base, 0)}
    for act in args.activations:
        swapped, n_sites = with_activation(base, act)
        models[act] = (perturb_parameters(swapped), n_sites)
    for k in args.floor_ops:
        models[f"floor: {k} elementwise op{'s' if k > 1 else ''}/site"] = with_floor(base, k)
    workdir = tempfile.mkdtemp(prefix="keras_acts_tflite_bench_")
    paths, sizes, ops_used, convert_s = {}, {}, {}, {}
    for key, (model, _) in models.items():
        path = os.path.join(workdir, "".join(c if c.isalnum() else "_" for c in key) + ".tflite")
        start = time.perf_counter()
        content = to_tflite(model, path)
        convert_s[key] = time.perf_counter() - start
        paths[key], sizes[key] = path, len(content)
        ops_used[key] = builtin_op_names(content)
    medians, raw = measure(paths, args.threads, args.warmup, args.rounds, args.per_round,
                           args.input_size)
    base_key = "relu/hard_swish (original)"
    rows = []
    for key, (model, n_sites) in models.items():
        act = key if key in TARGETS else None
        rows.append({
            "activation": key,
            "sites_replaced": n_sites,
            "latency_ms_median": medians[key],
            "latency_ms_p10": float(np.percentile(raw[key], 10)),
            "latency_ms_p90": float(np.percentile(raw[key], 90)),
            "latency_ratio": medians[key] / medians[base_key],
            "size_bytes": sizes[key],
            "size_ratio": sizes[key] / sizes[base_key],
            "target_latency_ratio": TARGETS.get(act),
            "meets_target": (None if act is None
                             else medians[key] / medians[base_key] <= TARGETS[act]),
            "ops": ops_used[key],
            "convert_s": convert_s[key],
        })
    header = ("| activation | sites | latency ms (median) | latency x | target | size MB "
              "| size x |\n|---|---|---|---|---|---|---|")
    lines = [header]
    for r in rows:
        target = "" if r["target_latency_ratio"] is None else (
            f"<= {r['target_latency_ratio']:.2f}x " + ("ok" if r["meets_target"] else "MISSED"))
        lines.append(f"| {r['activation']} | {r['sites_replaced']} | "
                     f"{r['latency_ms_median']:.2f} | {r['latency_ratio']:.2f} | {target} | "
                     f"{r['size_bytes'] / 1e6:.2f} | {r['size_ratio']:.3f} |")
    table = "\n".join(lines)
    print(f"MobileNetV3-Small {args.input_size}x{args.input_size}, batch 1, LiteRT "
          f"{args.threads} threads, float32, median of {args.rounds * args.per_round} invokes")
    print(table)
    result = {
        "model": "keras.applications.MobileNetV3Small (weights=None, include_top=True)",
        "input": [1, args.input_size, args.input_size, 3],
        "threads": args.threads,
        "warmup": args.warmup,
        "invokes_per_model": args.rounds * args.per_round,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "rows": rows,
        "markdown": table,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
