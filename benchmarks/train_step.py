"""Model-level benchmark: XLA training-step time of ResNet-18 and MobileNetV3-Small
with each keras_acts layer in place of the original activation, as a ratio to
the original model measured in the same interleaved rounds.

ResNet-18 (keras-hub ``ResNetBackbone`` config, 64x64x3 input, batch 32): every
ReLU replaced. MobileNetV3-Small (keras-cv ``MobileNetV3Backbone`` config): its
hard-swish activations replaced. Both built from config by
``keras_acts.backbones.build`` (random weights, nothing downloaded), topped with
global average pooling and a 10-way dense head (the pipelines' classifier,
``keras_acts.training.models.build_classifier``; softmax cross-entropy from
logits), trained with SGD inside one
``tf.function(jit_compile=True)`` step. PWLU is timed in its phase II (all
parameters training; ``phase1_steps=0``).

Usage::

    python -m benchmarks.train_step           # writes benchmarks/results/train_step.json
    python -m benchmarks.train_step --quick   # smoke run: fewer repeats
"""

import argparse
import json
import os
import platform
import statistics
import time

import keras
import tensorflow as tf

from keras_acts.registry import HEADLINE
from keras_acts.training.models import build_classifier

BATCH = 32
IMAGE_SIZE = 64
INPUT = (IMAGE_SIZE, IMAGE_SIZE, 3)
CLASSES = 10
RESULTS = os.path.join(os.path.dirname(__file__), "results", "train_step.json")

MODELS = {
    # name: (backbone, source, match, reference activation name)
    "resnet18": ("resnet18", "keras_hub", None, "relu"),
    "mobilenet_v3_small": ("mobilenet_v3_small", "keras", "hard_swish", "hard_swish"),
}


def build_model(backbone, source, activation=None, match=None):
    """The pipelines' classifier (``keras_acts.training.models.build_classifier``:
    backbone from config, GAP, dense logits) at the benchmark's input size;
    ``activation=None`` keeps the backbone's own activations. PWLU runs in its
    phase II (``phase1_steps=0``).

    Example:
        >>> model = build_model("resnet18", "keras_hub", "serf")
    """
    act_kwargs = {"phase1_steps": 0} if activation == "pwlu" else {}
    return build_classifier(backbone, activation, CLASSES, IMAGE_SIZE, source=source,
                            match=match, **act_kwargs)


def train_step_fn(model):
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def run(model_names, activations, repeats, warmup=3):
    x = tf.random.stateless_normal((BATCH,) + INPUT, seed=[0, 1])
    y = tf.random.stateless_uniform((BATCH,), seed=[0, 2], maxval=CLASSES, dtype=tf.int32)
    rows = []
    for model_name in model_names:
        backbone, source, match, ref = MODELS[model_name]
        steps = {ref: train_step_fn(build_model(backbone, source))}
        for act in activations:
            steps[act] = train_step_fn(build_model(backbone, source, act, match))
        for step in steps.values():
            for _ in range(warmup):
                step(x, y).numpy()
        samples = {name: [] for name in steps}
        for r in range(repeats):
            names = list(steps) if r % 2 == 0 else list(reversed(list(steps)))
            for name in names:
                start = time.perf_counter()
                steps[name](x, y).numpy()
                samples[name].append(time.perf_counter() - start)
        med = {name: statistics.median(v) for name, v in samples.items()}
        for name in steps:
            rows.append({"model": model_name, "activation": name, "reference": ref,
                         "step_ms": med[name] * 1e3, "ratio": med[name] / med[ref]})
    return rows


def markdown(rows):
    lines = ["| model | activation | XLA train step | ratio to original |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['activation']} | {r['step_ms']:.1f} ms | "
                     f"{r['ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--activations", nargs="*", default=list(HEADLINE), choices=list(HEADLINE))
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 15)
    rows = run(args.models, args.activations, repeats)
    print(f"Batch {BATCH}, input {INPUT}, SGD, XLA; median of {repeats} interleaved steps; "
          "ratio to the original model in the same rounds.")
    print(markdown(rows))
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"device": platform.processor() or platform.machine(),
                   "cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
                   "batch": BATCH, "input": list(INPUT), "repeats": repeats,
                   "quick": args.quick, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
