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

All models are converted by ``keras_acts.export.to_tflite`` in float32 and, with
``--quantizations none int8`` (the default), in full-integer int8 (float32 in/out,
every op int8; the same ``--calibration`` seeded random images for every model),
and timed in one process, interleaved round by round (drift and other load on the
machine hit every model alike): batch 1, ``--threads`` LiteRT threads (XNNPACK
default delegate), ``--warmup`` invokes, then ``--rounds`` x ``--per-round`` timed
invokes per model; the median is reported. Float32 ratios are to the float32
original, int8 ratios to the int8 original. The table also gives each model's
operator count and XNNPACK partitions (1: XNNPACK runs the whole graph; each
refused op splits it).

``--pwlu-forms`` adds rows ``pwlu [form]`` for the other PWLU formulations
(``keras_acts.ops.builtin.pwlu.FLOAT_FORMS`` in float32: knots_sum, broadcast, conv,
hinges, lookup, beside the exported knots_dw; ``INT8_FORMS`` in int8: knots_dw
beside the exported lookup). ``--accuracy`` adds the Fashion-MNIST int8 check
(``keras_acts.export.accuracy.int8_accuracy``: small CNN, 2 epochs on 20 000
images, top-1 float and int8 on the 10 000 test images) per activation.

Reference "floor" rows replace every site by 1, 2 or 4 elementwise builtin ops
that the converter cannot fold into the convolution (:class:`ElementwiseChain`):
they show what each elementwise pass per site costs, a lower bound for any
activation built from that many builtin ops.

Usage::

    python benchmarks/tflite.py [--threads 2] [--rounds 15] [--per-round 10]
        [--quantizations none int8] [--pwlu-forms] [--accuracy]
        [--json benchmarks/results/tflite.json] [--activations pwlu acon_c meta_acon serf]

Example (shell)::

    python benchmarks/tflite.py --rounds 5   # prints a markdown table
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_acts  # noqa: E402
from keras_acts.export import load_interpreter  # noqa: E402
from keras_acts.export import op_counts  # noqa: E402
from keras_acts.export import to_tflite  # noqa: E402
from keras_acts.export import xnnpack_partitions  # noqa: E402
from keras_acts.export import xnnpack_refused  # noqa: E402
from keras_acts.report import describe_machine  # noqa: E402
from keras_acts.report import machine  # noqa: E402
from keras_acts.report import markdown_table  # noqa: E402
from keras_acts.registry import names  # noqa: E402

ACTIVATIONS = names()  # the four headline activations, in registry order
# Reference rows: every site replaced by a chain of this many builtin elementwise
# ops that the converter cannot fold into the convolution (x*x, then +x, *x, ...),
# the cost floor of any activation that needs that many ops.
FLOOR_OPS = (1, 2, 4)
# Latency-ratio targets of issue 13: (float32 / float32 original, int8 / int8 original).
TARGETS = {"pwlu": (3.0, 1.3), "acon_c": (1.4, 1.3), "meta_acon": (1.7, 1.5),
           "serf": (1.8, 1.5)}
ORIGINAL = "relu/hard_swish (original)"
LAYER_KWARGS = {"pwlu": {"phase1_steps": 0}}


@keras.saving.register_keras_serializable(package="keras_acts_benchmarks")
class ElementwiseChain(keras.layers.Layer):
    """``ops`` builtin elementwise ops on the whole tensor: y = x*x, y += x, y *= x, ...

    Each op reads x and the running result, so TFLite cannot fold it into the
    preceding convolution (unlike a MUL/ADD by a constant). Used to measure what
    one elementwise pass per activation site costs in LiteRT.

    Example:
        >>> tuple(ElementwiseChain(2)(keras.ops.ones((1, 4))).shape)
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
        >>> model = perturb_parameters(with_activation(mobilenet_v3_small(32), "acon_c")[0])
    """
    from keras_acts.layers import ActivationLayer
    from keras_acts.registry import iter_layers

    rng = np.random.default_rng(seed)
    for layer in iter_layers(model, types=ActivationLayer):
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
        >>> medians, times = measure({"relu": to_tflite(mobilenet_v3_small(32))}, threads=2,
        ...                          warmup=1, rounds=1, per_round=2, input_size=32)
        >>> len(times["relu"])
        2
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


def _convert(model, path, quantization, calibration, pwlu_form=None):
    import contextlib

    from keras_acts.ops.builtin.pwlu import use_float_form
    from keras_acts.ops.builtin.pwlu import use_int8_form

    context = contextlib.nullcontext()
    if pwlu_form:
        use = use_int8_form if quantization == "int8" else use_float_form
        context = use(pwlu_form)
    with context:
        return to_tflite(model, path, quantization=None if quantization == "none" else
                         quantization, representative_dataset=calibration
                         if quantization == "int8" else None)


def _forms(quantization):
    """The PWLU forms that ``--pwlu-forms`` times for one quantization, less the default."""
    from keras_acts.ops.builtin.pwlu import DEFAULT_FLOAT_FORM
    from keras_acts.ops.builtin.pwlu import DEFAULT_INT8_FORM
    from keras_acts.ops.builtin.pwlu import FLOAT_FORMS
    from keras_acts.ops.builtin.pwlu import INT8_FORMS

    if quantization == "int8":
        return [f for f in INT8_FORMS if f != DEFAULT_INT8_FORM]
    return [f for f in FLOAT_FORMS if f != DEFAULT_FLOAT_FORM]


def _ratio(value):
    return "" if value is None else f"{value:.2f}"


def _target(row, q):
    target = row.get(f"target_{q}")
    if target is None:
        return ""
    ratio = row.get(f"latency_ratio_{q}")
    return f"<= {target:.2f} " + ("ok" if ratio is not None and ratio <= target else "MISSED")


def markdown(rows, quantizations):
    """The float32 / int8 side-by-side table of :func:`main`'s rows.

    Example:
        >>> print(markdown([{"activation": "serf", "sites": 3, "latency_ms_none": 2.0,
        ...                  "latency_ratio_none": 1.5, "size_ratio_none": 1.0,
        ...                  "ops_none": 40, "partitions_none": 1}], ["none"]).splitlines()[0])
        | activation | sites | float32 ms | float32 x | float32 target | float32 ops / XNNPACK partitions | float32 size x |
    """
    labels = {"none": "float32", "int8": "int8"}
    header = ["activation", "sites"]
    for q in quantizations:
        n = labels[q]
        header += [f"{n} ms", f"{n} x", f"{n} target", f"{n} ops / XNNPACK partitions",
                   f"{n} size x"]
    accuracy = any("fmnist_float" in r for r in rows)
    if accuracy:
        header += ["F-MNIST float / int8 top-1 (drop)"]
    lines = []
    for r in rows:
        line = [r["activation"], r["sites"]]
        for q in quantizations:
            if f"latency_ms_{q}" not in r:
                line += ["", "", "", "", ""]
                continue
            line += [f"{r[f'latency_ms_{q}']:.2f}", _ratio(r.get(f"latency_ratio_{q}")),
                     _target(r, q), f"{r[f'ops_{q}']} / {r[f'partitions_{q}']}",
                     f"{r[f'size_ratio_{q}']:.3f}"]
        if accuracy:
            line += [f"{100 * r['fmnist_float']:.2f}% / {100 * r['fmnist_int8']:.2f}% "
                     f"({r['fmnist_float'] * 100 - r['fmnist_int8'] * 100:+.2f})"
                     if "fmnist_float" in r else ""]
        lines.append(line)
    return markdown_table(header, lines)


def main(argv=None):
    """Run the benchmark, print the markdown table, write the JSON results.

    Example:
        >>> main(["--rounds", "3", "--per-round", "5"])   # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", "--per_round", type=int, default=10)
    parser.add_argument("--input-size", "--input_size", type=int, default=224)
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    parser.add_argument("--quantizations", nargs="+", default=["none", "int8"],
                        choices=["none", "int8"])
    parser.add_argument("--calibration", type=int, default=8,
                        help="int8: number of seeded random calibration images (same for all)")
    parser.add_argument("--pwlu-forms", "--pwlu_forms", action="store_true",
                        help="add float32 rows for PWLU's other float formulations")
    parser.add_argument("--accuracy", action="store_true",
                        help="add the Fashion-MNIST int8 check (float vs int8 top-1)")
    parser.add_argument("--floor-ops", "--floor_ops", nargs="*", type=int,
                        default=list(FLOOR_OPS),
                        help="reference rows: k non-foldable elementwise ops per site")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "tflite.json"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    base = mobilenet_v3_small(args.input_size)
    models = {ORIGINAL: (base, 0, None)}
    for act in args.activations:
        swapped, n_sites = with_activation(base, act)
        models[act] = (perturb_parameters(swapped), n_sites, None)
        if act == "pwlu" and args.pwlu_forms:
            from keras_acts.ops.builtin.pwlu import DEFAULT_FLOAT_FORM
            from keras_acts.ops.builtin.pwlu import DEFAULT_INT8_FORM
            from keras_acts.ops.builtin.pwlu import FLOAT_FORMS
            from keras_acts.ops.builtin.pwlu import INT8_FORMS

            for form in dict.fromkeys([*FLOAT_FORMS, *INT8_FORMS]):
                if form != DEFAULT_FLOAT_FORM or form != DEFAULT_INT8_FORM:
                    models[f"pwlu [{form}]"] = (models[act][0], n_sites, form)
    for k in args.floor_ops:
        floor, n_sites = with_floor(base, k)
        models[f"floor: {k} elementwise op{'s' if k > 1 else ''}/site"] = (floor, n_sites, None)
    calibration = np.random.default_rng(1).uniform(
        -1, 1, (args.calibration, args.input_size, args.input_size, 3)).astype(np.float32)
    workdir = tempfile.mkdtemp(prefix="keras_acts_tflite_bench_")
    paths, info = {}, {}
    for key, (model, n_sites, form) in models.items():
        for q in args.quantizations:
            if form is not None and form not in _forms(q):
                continue
            stem = "".join(c if c.isalnum() else "_" for c in key) + f"_{q}"
            path = os.path.join(workdir, stem + ".tflite")
            start = time.perf_counter()
            content = _convert(model, path, q, calibration, form)
            counts = op_counts(content)
            paths[(key, q)] = path
            info[(key, q)] = {"size": len(content), "convert_s": time.perf_counter() - start,
                              "ops": sum(counts.values()), "op_counts": counts,
                              "partitions": xnnpack_partitions(
                                  content, (1, args.input_size, args.input_size, 3),
                                  args.threads),
                              "refused": xnnpack_refused(
                                  content, (1, args.input_size, args.input_size, 3),
                                  args.threads)}
            print(f"converted {key} ({q}): {info[(key, q)]['ops']} ops, "
                  f"{info[(key, q)]['partitions']} XNNPACK partitions, refused "
                  f"{info[(key, q)]['refused']}", file=sys.stderr)
    load_start = os.getloadavg()
    medians, raw = measure(paths, args.threads, args.warmup, args.rounds, args.per_round,
                           args.input_size)
    load_end = os.getloadavg()
    rows = []
    for key, (model, n_sites, form) in models.items():
        row = {"activation": key, "sites": n_sites}
        for q in args.quantizations:
            if (key, q) not in paths:
                continue
            base_key = (ORIGINAL, q)
            ratio = medians[(key, q)] / medians[base_key]
            row.update({
                f"latency_ms_{q}": medians[(key, q)],
                f"latency_ms_p10_{q}": float(np.percentile(raw[(key, q)], 10)),
                f"latency_ms_p90_{q}": float(np.percentile(raw[(key, q)], 90)),
                f"latency_ratio_{q}": ratio,
                f"size_bytes_{q}": info[(key, q)]["size"],
                f"size_ratio_{q}": info[(key, q)]["size"] / info[base_key]["size"],
                f"ops_{q}": info[(key, q)]["ops"],
                f"op_counts_{q}": info[(key, q)]["op_counts"],
                f"partitions_{q}": info[(key, q)]["partitions"],
                f"xnnpack_refused_{q}": info[(key, q)]["refused"],
                f"convert_s_{q}": info[(key, q)]["convert_s"],
            })
            if key in TARGETS:
                row[f"target_{q}"] = TARGETS[key][0 if q == "none" else 1]
        rows.append(row)
    if args.accuracy:
        from keras_acts.export.accuracy import FULL
        from keras_acts.export.accuracy import int8_accuracy

        for row in rows:
            act = "relu" if row["activation"] == ORIGINAL else row["activation"]
            if act == "relu" or act in args.activations:
                r = int8_accuracy(act, **FULL)
                row["fmnist_float"], row["fmnist_int8"] = r["float_acc"], r["int8_acc"]
                print(f"Fashion-MNIST {act}: {r}", file=sys.stderr)
    table = markdown(rows, args.quantizations)
    caption = (f"MobileNetV3-Small {args.input_size}x{args.input_size}, batch 1, LiteRT "
               f"{args.threads} threads (XNNPACK), median of {args.rounds * args.per_round} "
               f"invokes, {describe_machine()}; load average {load_start[0]:.2f} -> "
               f"{load_end[0]:.2f}")
    print(caption)
    print(table)
    result = {
        "model": "keras.applications.MobileNetV3Small (weights=None, include_top=True)",
        "input": [1, args.input_size, args.input_size, 3],
        "threads": args.threads,
        "warmup": args.warmup,
        "invokes_per_model": args.rounds * args.per_round,
        "calibration_images": args.calibration,
        "machine": machine(),
        "load_average": {"start": load_start, "end": load_end},
        "rows": rows,
        "caption": caption,
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
