"""Op-level benchmark: forward and forward+backward time of every activation,
with all parameter gradients, against ReLU, on TensorFlow (graph mode and XLA)
or JAX (``jax.jit``).

For PWLU (channel-wise, layer-wise), ACON-C, Meta-ACON, Serf, the references
ReLU and SiLU (``keras.ops``: ``tf.nn.relu`` / ``jax.nn.relu``), and a plain
autodiff implementation of each of our formulas (:mod:`keras_acts.ops.plain`),
on a (32, 56, 56, 64) and a (8, 14, 14, 64) float32 tensor. All candidates of
one (size, mode, pass) are timed in interleaved rounds; the table shows the
median time and its ratio to ReLU's median from the same rounds.
"fwd+bwd" returns the output and every gradient (input and parameters), as a
training step needs them. The bytes kept for the backward pass come from
:func:`keras_acts.ops.memory.saved_for_backward`.

Usage::

    python -m benchmarks.ops                     # TensorFlow, writes results/ops.json
    python -m benchmarks.ops --backend jax       # JAX, writes results/ops_jax.json
    python -m benchmarks.ops --quick             # smoke run: small tensor, few repeats
    python -m benchmarks.ops --only npwlu,pwlu_channelwise   # these rows and ReLU only
"""

import argparse
import json
import os
import statistics
import sys
import time

BIG = (32, 56, 56, 64)
SMALL = (8, 14, 14, 64)
NUM_INTERVALS = 16
RESULTS = os.path.join(os.path.dirname(__file__), "results")
MODES = {"tensorflow": ("graph", "xla"), "jax": ("xla",)}


def _pwlu_params(channels, channelwise, rng):
    import numpy as np
    from keras import ops as K

    grid = np.linspace(-3.0, 3.0, NUM_INTERVALS + 1)
    points = np.maximum(grid, 0.0) + 0.1 * np.sin(3 * grid)
    if channelwise:
        shift = rng.uniform(-0.2, 0.2, channels)
        values = (-3.0 + shift, 3.0 + shift, np.tile(points, (channels, 1)),
                  np.full(channels, 0.05), np.ones(channels))
    else:
        values = (-3.0, 3.0, points, 0.05, 1.0)
    return [K.convert_to_tensor(np.asarray(v), "float32") for v in values]


def candidates(shape):
    """name -> (fn, params, layer, kind), kind "ours", "plain" or "reference".

    ``fn(x, *params)``; a Keras ``layer``'s trainable weights are differentiated too.
    """
    import numpy as np
    from keras import ops as K

    from keras_acts import ops
    from keras_acts.layers import MetaAcon
    from keras_acts.ops.plain import plain_acon_c
    from keras_acts.ops.plain import plain_pwlu
    from keras_acts.ops.plain import plain_serf

    class PlainMetaAcon(MetaAcon):
        """MetaAcon whose activation is the plain autodiff ACON-C formula."""

        def call(self, inputs, training=False):
            beta = K.reshape(self.generate_beta(inputs, training=bool(training)),
                             (-1, 1, 1, shape[-1]))
            p1, p2 = (K.reshape(p, (1, 1, 1, shape[-1])) for p in (self.p1, self.p2))
            return plain_acon_c(inputs, p1, p2, beta)

    rng = np.random.default_rng(0)
    c = shape[-1]
    pc, pl = _pwlu_params(c, True, rng), _pwlu_params(c, False, rng)
    acon = [K.convert_to_tensor(rng.normal(size=(1, 1, 1, c)), "float32") for _ in range(2)]
    acon.append(K.ones((1, 1, 1, c)))
    family = _family_layers(shape)
    meta = MetaAcon(name="meta_acon_bench")
    plain_meta = PlainMetaAcon(name="plain_meta_acon_bench")
    meta.build(shape)
    plain_meta.build(shape)
    plain_meta.set_weights(meta.get_weights())
    return {
        "relu": (K.relu, [], None, "reference"),
        "silu": (K.silu, [], None, "reference"),
        "pwlu_channelwise": (ops.pwlu, pc, None, "ours"),
        "pwlu_layerwise": (ops.pwlu, pl, None, "ours"),
        "acon_c": (ops.acon_c, acon, None, "ours"),
        "meta_acon": (None, [], meta, "ours"),
        "serf": (ops.serf, [], None, "ours"),
        "plain_pwlu_channelwise": (plain_pwlu, pc, None, "plain"),
        "plain_pwlu_layerwise": (plain_pwlu, pl, None, "plain"),
        "plain_acon_c": (plain_acon_c, acon, None, "plain"),
        "plain_meta_acon": (None, [], plain_meta, "plain"),
        "plain_serf": (plain_serf, [], None, "plain"),
        **family,
    }


def _family_layers(shape):
    """The papers' family as built layers (issue 16 rows): N-PWLU (4 intervals,
    phase II), ACON-A, ACON-B, ACON-FReLU, and the block ACON-FReLU is measured
    against: depthwise 3x3 conv + BN + ReLU ("reference")."""
    import keras

    from keras_acts.layers import AconA
    from keras_acts.layers import AconB
    from keras_acts.layers import AconFReLU
    from keras_acts.layers import NPWLU

    block = keras.Sequential([keras.layers.DepthwiseConv2D(3, padding="same"),
                              keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
                              keras.layers.ReLU()], name="dwconv_bn_relu_bench")
    layers = {"npwlu": NPWLU(phase1_steps=0, name="npwlu_bench"),
              "acon_a": AconA(name="acon_a_bench"),
              "acon_b": AconB(name="acon_b_bench"),
              "acon_frelu": AconFReLU(name="acon_frelu_bench"),
              "dwconv_bn_relu": block}
    out = {}
    for name, layer in layers.items():
        layer.build(shape)
        out[name] = (None, [], layer, "reference" if name == "dwconv_bn_relu" else "ours")
    return out


# ------------------------------------------------------------- per backend
def _tensorflow_step(fn, params, layer, backward, jit):
    import tensorflow as tf

    if layer is not None:
        def fn(x):
            return layer(x, training=True)

    if not backward:
        return tf.function(lambda x, dy: fn(x, *params), jit_compile=jit)

    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            tape.watch(params)
            y = fn(x, *params)
        sources = [x, *params, *tape.watched_variables()]
        # y is returned too: otherwise XLA drops the forward as dead code and
        # "forward+backward" would time the backward alone.
        return [y, *tape.gradient(y, sources, output_gradients=dy,
                                  unconnected_gradients="zero")]

    return tf.function(step, jit_compile=jit)


def _training(layer):
    """``{"training": True}`` when the layer's ``call`` takes it (``stateless_call``
    passes keyword arguments straight to ``call``)."""
    import inspect

    return {"training": True} if "training" in inspect.signature(layer.call).parameters else {}


def _jax_step(fn, params, layer, backward, jit):
    import jax

    if layer is not None:
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def apply(x, *weights):
            return layer.stateless_call(list(weights), non_trainable, x, **_training(layer))[0]

        weights = trainable
    else:
        def apply(x, *weights):
            return fn(x, *weights)

        weights = list(params)
    if not backward:
        step = jax.jit(lambda x, dy, *w: apply(x, *w))
    else:
        def step(x, dy, *w):
            y, vjp = jax.vjp(apply, x, *w)
            return [y, *vjp(dy)]

        step = jax.jit(step)
    return lambda x, dy: step(x, dy, *weights)


def _block(out):
    import keras

    for t in (out if isinstance(out, (list, tuple)) else [out]):
        keras.ops.convert_to_numpy(t)


def time_group(cands, shape, backward, mode, repeats, warmup=2):
    """Median seconds per candidate, candidates interleaved in every round."""
    import keras
    import numpy as np

    rng = np.random.default_rng(1)
    x = keras.ops.convert_to_tensor(rng.normal(size=shape), "float32")
    dy = keras.ops.convert_to_tensor(rng.normal(size=shape), "float32")
    make = _tensorflow_step if keras.backend.backend() == "tensorflow" else _jax_step
    funcs = {name: make(fn, params, layer, backward, mode == "xla")
             for name, (fn, params, layer, _) in cands.items()}
    for f in funcs.values():
        for _ in range(warmup):
            _block(f(x, dy))
    samples = {name: [] for name in funcs}
    for r in range(repeats):
        names = list(funcs) if r % 2 == 0 else list(reversed(list(funcs)))
        for name in names:
            start = time.perf_counter()
            _block(funcs[name](x, dy))
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in samples.items()}


def memory(cands, shape):
    """Bytes each candidate keeps for its backward pass (the layer's: training mode)."""
    import keras

    from keras_acts.ops.memory import saved_bytes
    from keras_acts.ops.memory import saved_for_backward

    x = keras.ops.zeros(shape)
    out = {}
    for name, (fn, params, layer, _) in cands.items():
        if layer is not None:
            if keras.backend.backend() == "jax":
                trainable = [v.value for v in layer.trainable_variables]
                non_trainable = [v.value for v in layer.non_trainable_variables]

                def fn(t, layer=layer, trainable=trainable, non_trainable=non_trainable):
                    return layer.stateless_call(trainable, non_trainable, t,
                                                **_training(layer))[0]
            else:
                def fn(t, layer=layer):
                    return layer(t, training=True)
        out[name] = saved_bytes(saved_for_backward(fn, x, *params))
    return out


def select(cands, only):
    """The candidates named in ``only`` (a list; None keeps all), ReLU always kept
    (every ratio is to ReLU in the same rounds).

    Example:
        >>> sorted(select({"relu": 0, "silu": 1, "npwlu": 2}, ["npwlu"]))
        ['npwlu', 'relu']
    """
    if only is None:
        return dict(cands)
    unknown = sorted(set(only) - set(cands))
    if unknown:
        raise ValueError(f"`--only` must name candidates among {sorted(cands)}; "
                         f"received {unknown}.")
    return {name: c for name, c in cands.items() if name == "relu" or name in only}


def run(shapes, repeats, modes, only=None):
    rows = []
    for shape in shapes:
        cands = select(candidates(shape), only)
        mem = memory(cands, shape)
        x_bytes = 4
        for d in shape:
            x_bytes *= d
        timings = {(mode, backward): time_group(cands, shape, backward, mode, repeats)
                   for mode in modes for backward in (False, True)}
        for name, (_, _, _, kind) in cands.items():
            row = {"name": name, "kind": kind, "shape": list(shape),
                   "saved_bytes": mem[name], "saved_x": mem[name] / x_bytes}
            for (mode, backward), med in timings.items():
                key = f"{mode}_{'fwd_bwd' if backward else 'fwd'}"
                row[key + "_ms"] = med[name] * 1e3
                row[key + "_ratio"] = med[name] / med["relu"]
            rows.append(row)
    return rows


def markdown(rows, modes):
    """The results table in markdown (one row per shape and candidate).

    Example:
        >>> print(markdown([], ("xla",)).splitlines()[0])
        | shape | activation | xla fwd | xla fwd+bwd | kept for backward |
    """
    from keras_acts.report import markdown_table

    header = ["shape", "activation"] + [f"{m} {p}" for m in modes
                                        for p in ("fwd", "fwd+bwd")] + ["kept for backward"]
    body = []
    for r in rows:
        cells = [f"{r[f'{m}_{p}_ms']:.2f} ms ({r[f'{m}_{p}_ratio']:.2f}x)"
                 for m in modes for p in ("fwd", "fwd_bwd")]
        body.append(["x".join(str(d) for d in r["shape"]), r["name"], *cells,
                     f"{r['saved_bytes'] / 2**20:.2f} MiB ({r['saved_x']:.2f} x)"])
    return markdown_table(header, body)


def parse_args(argv=None):
    """The benchmark's flags (``--backend``, ``--quick``, ``--repeats``, ``--only``, ``--output``).

    Example:
        >>> parse_args(["--backend", "jax"]).backend
        'jax'
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ops",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(MODES), default=None,
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--quick", action="store_true", help="small tensor, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", default=None,
                        help="comma-separated candidates to time (ReLU is always timed too)")
    parser.add_argument("--output", default=None,
                        help="JSON path (default benchmarks/results/ops[_jax].json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = args.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise SystemExit(f"error: keras is already imported with the "
                         f"{sys.modules['keras'].backend.backend()} backend; run "
                         f"KERAS_BACKEND={backend} python -m benchmarks.ops")
    os.environ["KERAS_BACKEND"] = backend
    from keras_acts.report import machine

    modes = MODES[backend]
    shapes = [SMALL] if args.quick else [BIG, SMALL]
    repeats = args.repeats or (3 if args.quick else 15)
    only = None if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    rows = run(shapes, repeats, modes, only)
    print(f"Backend {backend}. Times: median of {repeats} interleaved rounds; (Nx) = ratio "
          "to ReLU in the same rounds. Kept for backward: bytes saved between forward and "
          "backward (x = input size).")
    print(markdown(rows, modes))
    output = args.output or os.path.join(
        RESULTS, "ops.json" if backend == "tensorflow" else f"ops_{backend}.json")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as f:
        json.dump({"backend": backend, "machine": machine(), "repeats": repeats,
                   "quick": args.quick, "only": only, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
