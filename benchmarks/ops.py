"""Op-level benchmark: forward and forward+backward time of every activation,
with all parameter gradients, in graph mode and under XLA, against ReLU.

For PWLU (channel-wise, layer-wise), ACON-C, Meta-ACON, Serf, the references
ReLU and ``keras.activations.silu``, and a plain autodiff implementation of
each of our formulas (``benchmarks/reference.py``), on a (32, 56, 56, 64) and a
(8, 14, 14, 64) float32 tensor. All candidates of one (size, mode, compiler)
are timed in interleaved rounds; the table shows the median time and its ratio
to ReLU's median from the same rounds. "fwd+bwd" returns the output and every
gradient (input and parameters), as a training step needs them. The bytes kept
for the backward pass come from :func:`keras_acts.ops.memory.saved_for_backward`.

Usage::

    python -m benchmarks.ops            # full run, writes benchmarks/results/ops.json
    python -m benchmarks.ops --quick    # smoke run: small tensor, few repeats
"""

import argparse
import json
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.reference import plain_acon_c
from benchmarks.reference import plain_pwlu
from benchmarks.reference import plain_serf
from keras_acts import ops
from keras_acts.layers import MetaAcon
from keras_acts.ops.memory import saved_bytes
from keras_acts.ops.memory import saved_for_backward

BIG = (32, 56, 56, 64)
SMALL = (8, 14, 14, 64)
NUM_INTERVALS = 16
RESULTS = os.path.join(os.path.dirname(__file__), "results", "ops.json")


def _pwlu_params(channels, channelwise, rng):
    grid = np.linspace(-3.0, 3.0, NUM_INTERVALS + 1)
    points = np.maximum(grid, 0.0) + 0.1 * np.sin(3 * grid)
    if channelwise:
        shift = rng.uniform(-0.2, 0.2, channels)
        return [tf.constant(v, tf.float32) for v in (
            -3.0 + shift, 3.0 + shift, np.tile(points, (channels, 1)),
            np.full(channels, 0.05), np.ones(channels))]
    return [tf.constant(v, tf.float32) for v in (-3.0, 3.0, points, 0.05, 1.0)]


class PlainMetaAcon(MetaAcon):
    """MetaAcon whose activation is the plain autodiff ACON-C formula."""

    def call(self, inputs, training=False):
        beta = self.generate_beta(inputs, training=bool(training))
        c = beta.shape[-1]
        beta = tf.reshape(beta, [-1, 1, 1, c])
        p1 = tf.reshape(tf.convert_to_tensor(self.p1), [1, 1, 1, c])
        p2 = tf.reshape(tf.convert_to_tensor(self.p2), [1, 1, 1, c])
        return plain_acon_c(inputs, p1, p2, beta)


def candidates(shape):
    """name -> (fn, params, kind) with kind "ours", "plain" or "reference".

    ``fn(x, *params)``; a Keras layer's trainable weights are differentiated too.
    """
    rng = np.random.default_rng(0)
    c = shape[-1]
    pc, pl = _pwlu_params(c, True, rng), _pwlu_params(c, False, rng)
    acon = [tf.constant(rng.normal(size=(1, 1, 1, c)), tf.float32) for _ in range(2)]
    acon.append(tf.ones([1, 1, 1, c]))
    meta, plain_meta = MetaAcon(name="meta_acon_bench"), PlainMetaAcon(name="plain_meta_acon_bench")
    meta.build(shape)
    plain_meta.build(shape)
    plain_meta.set_weights(meta.get_weights())
    return {
        "relu": (tf.nn.relu, [], "reference"),
        "silu": (keras.activations.silu, [], "reference"),
        "pwlu_channelwise": (ops.pwlu, pc, "ours"),
        "pwlu_layerwise": (ops.pwlu, pl, "ours"),
        "acon_c": (ops.acon_c, acon, "ours"),
        "meta_acon": (lambda x: meta(x, training=True), [], "ours"),
        "serf": (ops.serf, [], "ours"),
        "plain_pwlu_channelwise": (plain_pwlu, pc, "plain"),
        "plain_pwlu_layerwise": (plain_pwlu, pl, "plain"),
        "plain_acon_c": (plain_acon_c, acon, "plain"),
        "plain_meta_acon": (lambda x: plain_meta(x, training=True), [], "plain"),
        "plain_serf": (plain_serf, [], "plain"),
    }


def _compiled(fn, backward, jit):
    if not backward:
        return tf.function(lambda x, dy, *p: fn(x, *p), jit_compile=jit)

    def step(x, dy, *p):
        with tf.GradientTape() as tape:
            tape.watch(x)
            tape.watch(p)
            y = fn(x, *p)
        sources = [x, *p, *tape.watched_variables()]
        # y is returned too: otherwise XLA drops the forward as dead code and
        # "forward+backward" would time the backward alone.
        return [y, *tape.gradient(y, sources, output_gradients=dy,
                                  unconnected_gradients="zero")]

    return tf.function(step, jit_compile=jit)


def _run_once(f, x, dy, params):
    start = time.perf_counter()
    out = f(x, dy, *params)
    for t in tf.nest.flatten(out):
        t.numpy()
    return time.perf_counter() - start


def time_group(cands, shape, backward, jit, repeats, warmup=2):
    """Median seconds per candidate, candidates interleaved in every round."""
    x = tf.random.stateless_normal(shape, seed=[0, 1])
    dy = tf.random.stateless_normal(shape, seed=[0, 2])
    funcs = {name: (_compiled(fn, backward, jit), params)
             for name, (fn, params, _) in cands.items()}
    for f, params in funcs.values():
        for _ in range(warmup):
            _run_once(f, x, dy, params)
    samples = {name: [] for name in funcs}
    for r in range(repeats):
        names = list(funcs) if r % 2 == 0 else list(reversed(list(funcs)))
        for name in names:
            f, params = funcs[name]
            samples[name].append(_run_once(f, x, dy, params))
    return {name: statistics.median(v) for name, v in samples.items()}


def memory(cands, shape):
    x = tf.zeros(shape)
    out = {}
    for name, (fn, params, _) in cands.items():
        out[name] = saved_bytes(saved_for_backward(fn, x, *params))
    return out


def run(shapes, repeats, modes=("graph", "xla")):
    rows = []
    for shape in shapes:
        cands = candidates(shape)
        mem = memory(cands, shape)
        x_bytes = int(np.prod(shape)) * 4
        timings = {}
        for mode in modes:
            for backward in (False, True):
                med = time_group(cands, shape, backward, mode == "xla", repeats)
                timings[(mode, backward)] = med
        for name, (_, _, kind) in cands.items():
            row = {"name": name, "kind": kind, "shape": list(shape),
                   "saved_bytes": mem[name], "saved_x": mem[name] / x_bytes}
            for mode in modes:
                for backward in (False, True):
                    med = timings[(mode, backward)]
                    key = f"{mode}_{'fwd_bwd' if backward else 'fwd'}"
                    row[key + "_ms"] = med[name] * 1e3
                    row[key + "_ratio"] = med[name] / med["relu"]
            rows.append(row)
    return rows


def markdown(rows, modes=("graph", "xla")):
    cols = [f"{m} {p}" for m in modes for p in ("fwd", "fwd+bwd")]
    lines = ["| shape | activation | " + " | ".join(cols) + " | kept for backward |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for r in rows:
        cells = []
        for m in modes:
            for p in ("fwd", "fwd_bwd"):
                cells.append(f"{r[f'{m}_{p}_ms']:.2f} ms ({r[f'{m}_{p}_ratio']:.2f}x)")
        shape = "x".join(str(d) for d in r["shape"])
        lines.append(f"| {shape} | {r['name']} | " + " | ".join(cells)
                     + f" | {r['saved_bytes'] / 2**20:.2f} MiB ({r['saved_x']:.2f} x) |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small tensor, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    shapes = [SMALL] if args.quick else [BIG, SMALL]
    repeats = args.repeats or (3 if args.quick else 15)
    rows = run(shapes, repeats)
    table = markdown(rows)
    print(f"Times: median of {repeats} interleaved rounds; (Nx) = ratio to ReLU in the same "
          "rounds. Kept for backward: bytes saved between forward and backward "
          "(x = input size).")
    print(table)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"device": platform.processor() or platform.machine(),
                   "cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
                   "repeats": repeats, "quick": args.quick, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
