"""The main job: ReLU, Swish, the keras_acts activations and, from the papers'
family, N-PWLU (4 intervals) and ACON-FReLU on Fashion-MNIST.

Run ``python -m keras_acts.demo`` (``--help`` lists the flags). It

1. loads Fashion-MNIST (``keras_acts.data.fashion_mnist.load_data``: Debian's
   ``dataset-fashion-mnist`` IDX files, installed with ``apt-get`` when
   missing, or ``--data-dir``), all 60,000 training and 10,000 test images;
2. trains the same small CNN (``keras_acts.models.small_cnn``: one conv-BN-
   activation per block, flatten head) once per activation and seed with Adam
   and a one-cycle schedule (linear warm-up over the first 10 % of the steps,
   cosine decay to 0);
3. re-estimates every batch norm's moving statistics on training batches
   (``keras_acts.recalibration.recalibrate_batch_norm``) and reports, per run,
   the test accuracy in inference mode before and after, and in
   batch-statistics mode (the gap it closes);
4. prints markdown tables: per activation the test accuracy mean ± std over
   seeds, the paired difference to ReLU on the same seeds with its 95 %
   t-interval and the verdict it supports (``keras_acts.stats``), and the runs;
5. saves PNGs (learned activation shapes of each learnable activation's best
   run, learning curves) and exports the best keras_acts run to TFLite
   (``keras_acts.export``: builtin ops, parity with the Keras model);
6. writes ``results.json`` and ``results.md`` to ``--out`` (``outputs/demo``).

``--protocol long`` trains longer over more seeds (see ``PROTOCOLS``); any
flag given explicitly overrides the protocol's value.

Example:
    $ python -m keras_acts.demo --epochs 1 --seeds 1 --activations relu,pwlu
"""

import argparse
import json
import math
import os
import sys
import time

import keras
import numpy as np

from keras_acts._flags import add_flag
from keras_acts.callbacks import RunRecorder
from keras_acts.callbacks import pwlu_layers
from keras_acts.data.fashion_mnist import DEFAULT_DIR
from keras_acts.data.fashion_mnist import APT_PACKAGE
from keras_acts.data.fashion_mnist import DatasetUnavailable
from keras_acts.data.fashion_mnist import load_data
from keras_acts.data.fashion_mnist import prepare_images
from keras_acts.layers import NPWLU
from keras_acts.layers import PWLU
from keras_acts.models import small_cnn
from keras_acts.recalibration import predict_with_batch_statistics
from keras_acts.recalibration import recalibrate_batch_norm
from keras_acts.comparison import runs_table
from keras_acts.comparison import summarize
from keras_acts.comparison import summary_table
from keras_acts.registry import names
from keras_acts.report import machine

# The papers' family members that the main job also trains (issue 16): N-PWLU
# with 4 intervals (its default) and ACON-FReLU. Every activation site of the
# main job's small_cnn is a conv-BN-activation inside a block (rank-4 NHWC
# input; the head is flatten -> dense logits, no activation), so ACON-FReLU
# replaces every site, as for the other activations.
FAMILY_ROWS = ("npwlu", "acon_frelu")
KERAS_ACTS = names() + FAMILY_ROWS  # the registry's headline activations, then these
ACTIVATIONS = ("relu", "swish") + KERAS_ACTS
LEARNABLE = ("pwlu", "acon_c", "meta_acon", "npwlu", "acon_frelu")
TWO_PHASE = ("pwlu", "npwlu")   # phase I for --pwlu-phase1-steps, then realignment
# The protocols: what a plain run (default) and --protocol long do.
PROTOCOLS = {
    "default": dict(epochs=2, seeds=3, batch_size=128, learning_rate=3e-3, width=24,
                    recalibration_steps=100),
    "long": dict(epochs=12, seeds=5, batch_size=128, learning_rate=3e-3, width=24,
                 recalibration_steps=200),
}
WARMUP_FRACTION = 0.1
BN_MOMENTUM = 0.9
SHAPE_SAMPLES = 256
VAL_IMAGES = 2000     # per-epoch validation (learning curves) on the first test images
EVAL_BATCH = 1000
MAX_GAP = 0.005       # inference vs batch-statistics accuracy, after recalibration


def one_cycle(peak, total_steps, warmup_fraction=WARMUP_FRACTION):
    """Linear warm-up from ``peak / 25`` to ``peak`` over ``warmup_fraction`` of the
    steps, then cosine decay to 0 at ``total_steps``.

    Example:
        >>> schedule = one_cycle(3e-3, 100)
        >>> [round(float(schedule(s)), 5) for s in (0, 10, 100)]
        [0.00012, 0.003, 0.0]
    """
    warmup = max(1, int(warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        peak / 25, max(1, total_steps - warmup), alpha=0.0, warmup_target=peak,
        warmup_steps=warmup)


def _pp(value):
    return f"{100 * value:.2f}"


def _accuracy(logits, labels):
    return float(np.mean(np.asarray(logits).argmax(-1) == labels))


def _factory(name, args):
    """The activation for ``small_cnn``: PWLU and N-PWLU (4 intervals) with the
    job's phase I length, any other name as the registry makes it.

    Example:
        >>> args = parse_args(["--pwlu-phase1-steps", "7"])
        >>> layer = _factory("npwlu", args)()
        >>> type(layer).__name__, layer.num_intervals, layer.phase1_steps
        ('NPWLU', 4, 7)
    """
    if name in TWO_PHASE:
        cls = PWLU if name == "pwlu" else NPWLU
        return lambda: cls(phase1_steps=args.pwlu_phase1_steps)
    return name


def train_run(name, seed, data, args, verbose):
    """Train, recalibrate and evaluate one (activation, seed) run; return (model, record)."""
    (x, y), (xt, yt) = data
    keras.backend.clear_session(free_memory=False)   # layer names restart at pwlu, pwlu_1...
    keras.utils.set_random_seed(seed)
    factory = _factory(name, args)
    model = small_cnn(factory, name=f"small_cnn_{name}", width=args.width, convs_per_block=1,
                      head="flatten", bn_momentum=BN_MOMENTUM)
    steps = args.epochs * math.ceil(len(x) / args.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(one_cycle(args.learning_rate, steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=args.jit)
    recorder = RunRecorder(len(x), args.batch_size)
    load_start = os.getloadavg()[0]
    run_start = start = time.perf_counter()
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(xt[:VAL_IMAGES], yt[:VAL_IMAGES]),
                        validation_batch_size=EVAL_BATCH, callbacks=[recorder], verbose=verbose)
    fit_s = time.perf_counter() - start
    before = _accuracy(model.predict(xt, batch_size=EVAL_BATCH, verbose=0), yt)
    start = time.perf_counter()
    # Training batches in a seeded random order, the training batch size.
    order = np.random.default_rng(seed).permutation(len(x))[:args.recalibration_steps
                                                             * args.batch_size]
    recalibrate_batch_norm(model, x[order], steps=args.recalibration_steps,
                           batch_size=args.batch_size)
    recalibration_s = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(xt, yt, batch_size=EVAL_BATCH, verbose=0)
    batch_stats = _accuracy(predict_with_batch_statistics(model, xt, args.batch_size), yt)
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    curves.update({f"batch_{k}": v for k, v in recorder.per_step.items()})
    record = {
        "activation": name, "seed": seed, "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss), "accuracy_before_recalibration": before,
        "batch_statistics_accuracy": batch_stats,
        "gap_after": abs(float(test_accuracy) - batch_stats),
        "gap_before": abs(before - batch_stats),
        "epoch_seconds": recorder.epoch_seconds, "fit_seconds": fit_s,
        "recalibration_seconds": recalibration_s,
        "run_seconds": time.perf_counter() - run_start,
        "load_average": [load_start, os.getloadavg()[0]],
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "history": curves,
    }
    if name in TWO_PHASE:
        record["pwlu_layers_still_in_phase1"] = int(sum(layer.in_phase1
                                                        for layer in pwlu_layers(model)))
    return model, record


# --------------------------------------------------------------------------- export
def export_best(model, name, x_test, y_test, out_dir):
    """TFLite export (float32, builtin ops) of ``model`` with ``keras_acts.export``'s
    parity report and the TFLite test accuracy; a dict with ``status``.

    ``status`` is ``"ok"`` (with ``path``, ``size_bytes``, ``parity``,
    ``tflite_test_accuracy``), ``"unavailable"`` (the ``export`` extra is not
    installed) or ``"failed"``: any error of the conversion, the builtin-only
    check or the TFLite run is caught, printed on one line naming the
    activation, and returned as ``reason``, so the job still writes its
    results (and exits with status 1). Every activation of the main job,
    N-PWLU and ACON-FReLU included, converts to builtin ops today.
    """
    try:
        from keras_acts.export import format_parity
        from keras_acts.export import parity_report
        from keras_acts.export import run_tflite
        from keras_acts.export import to_tflite
    except ImportError as err:
        print(f"TFLite export unavailable (keras_acts.export: {err}); skipping the export step.")
        return {"status": "unavailable", "reason": str(err)}
    path = os.path.join(out_dir, f"best_{name}.tflite")
    try:
        to_tflite(model, path)
        parity = parity_report(model, path, x_test, batch_size=EVAL_BATCH)
        accuracy = _accuracy(run_tflite(path, x_test, batch_size=EVAL_BATCH), y_test)
    except Exception as err:  # noqa: BLE001 - reported, the job goes on
        reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
        print(f"TFLite export of the best {name} run FAILED: {reason}")
        return {"status": "failed", "activation": name, "reason": reason}
    result = {"status": "ok", "path": path, "activation": name,
              "size_bytes": os.path.getsize(path), "parity": parity,
              "tflite_test_accuracy": accuracy}
    print(f"TFLite ({name}, float32, {result['size_bytes'] / 1024:.0f} KiB): "
          f"{format_parity(parity)}; test accuracy {100 * accuracy:.2f} % -> {path}")
    return result


# ----------------------------------------------------------------------------- main
def _activations(text):
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = sorted(set(names) - set(ACTIVATIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown activation(s) {unknown}; choose from {', '.join(ACTIVATIONS)}")
    return names


def _int_at_least(low):
    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def parse_args(argv=None):
    """The main job's flags; the protocol fills those not given.

    Example:
        >>> args = parse_args(["--epochs", "1"])
        >>> args.epochs, args.seeds, args.protocol
        (1, 3, 'default')
    """
    p = argparse.ArgumentParser(
        prog="python -m keras_acts.demo",
        description="Train a small CNN on Fashion-MNIST with ReLU, Swish and the keras_acts "
                    "activations over several seeds; print comparison tables, save figures, "
                    "export the best run to TFLite.")

    def add(flag, **kwargs):   # dashed flags, the underscore spelling as an alias
        add_flag(p, flag, **kwargs)

    add("--protocol", choices=sorted(PROTOCOLS), default="default",
        help="; ".join(f"{k}: {v}" for k, v in PROTOCOLS.items()))
    add("--epochs", type=_int_at_least(1), help="epochs per run")
    add("--seeds", type=_int_at_least(1), help="runs per activation, seeds 0..N-1")
    add("--activations", type=_activations, default=list(ACTIVATIONS),
        help=f"comma-separated subset of {','.join(ACTIVATIONS)} (default: all)")
    add("--batch-size", type=_int_at_least(2), help="training (and recalibration) batch")
    add("--learning-rate", type=float, help="Adam's peak learning rate (one-cycle)")
    add("--width", type=_int_at_least(1), help="channels of the first conv (second: 2x)")
    add("--recalibration-steps", type=_int_at_least(1),
        help="training batches used to re-estimate the BN statistics")
    add("--train-subset", type=_int_at_least(0), default=0,
        help="training images used (fixed random subset); 0: all 60000 (default)")
    add("--test-subset", type=_int_at_least(0), default=0,
        help="test images used; 0: all 10000 (default)")
    add("--pwlu-phase1-steps", type=_int_at_least(0),
        help="PWLU and N-PWLU phase I length in steps (default: half of the first "
             "epoch)")
    add("--data-dir", default=DEFAULT_DIR, help=f"the four IDX files (default {DEFAULT_DIR})")
    add("--no-install", dest="install", action="store_false",
        help=f"do not apt-get install {APT_PACKAGE} when the data is missing")
    add("--out", default=os.path.join("outputs", "demo"), help="default outputs/demo")
    add("--jit", action=argparse.BooleanOptionalAction, default=False,
        help="XLA-compile the training step (default off: slower on CPU)")
    add("--export", action=argparse.BooleanOptionalAction, default=True,
        help="export the best keras_acts model to TFLite (default on)")
    args = p.parse_args(argv)
    for key, value in PROTOCOLS[args.protocol].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _subset(images, labels, size, seed):
    """Standardised images and int32 labels; a fixed random subset of ``size`` if > 0."""
    if size and size < len(images):
        keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:size])
        images, labels = images[keep], labels[keep]
    return prepare_images(images), labels.astype(np.int32)


def main(argv=None):
    """Run the main job; returns the exit code (0 ok, 1 export failed, 2 data
    unavailable). A run whose inference and batch-statistics accuracies differ by
    more than 0.5 points after recalibration is named in a warning."""
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        (x, y), (xt, yt) = load_data(args.data_dir, install=args.install)
    except (DatasetUnavailable, ValueError) as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)  # one line
        return 2
    x, y = _subset(x, y, args.train_subset, seed=1234)
    xt, yt = _subset(xt, yt, args.test_subset, seed=4321)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    if args.pwlu_phase1_steps is None:
        args.pwlu_phase1_steps = max(1, steps_per_epoch // 2)
    args.recalibration_steps = min(args.recalibration_steps, len(x) // args.batch_size or 1)
    os.makedirs(args.out, exist_ok=True)
    info = machine()
    print(f"Fashion-MNIST from {args.data_dir}: {len(x)} training / {len(xt)} test images; "
          f"protocol {args.protocol}: {len(args.activations)} activations x {args.seeds} seeds "
          f"x {args.epochs} epochs of {steps_per_epoch} steps of {args.batch_size}, Adam "
          f"one-cycle peak {args.learning_rate:g}, width {args.width}; BN recalibration on "
          f"{args.recalibration_steps} batches; PWLU/N-PWLU phase I {args.pwlu_phase1_steps} steps; "
          f"{info['cpus']}-CPU {info['cpu']}, Keras {info.get('keras')} on "
          f"{info.get('backend')}.", flush=True)
    verbose = 1 if sys.stdout.isatty() else 2
    data = ((x, y), (xt, yt))
    records, best = [], {}
    for i, name in enumerate(args.activations):
        for seed in range(args.seeds):
            print(f"[{i * args.seeds + seed + 1}/{len(args.activations) * args.seeds}] "
                  f"{name}, seed {seed}", flush=True)
            model, r = train_run(name, seed, data, args, verbose)
            records.append(r)
            print(f"    test accuracy {_pp(r['test_accuracy'])} % (before recalibration "
                  f"{_pp(r['accuracy_before_recalibration'])} %, batch statistics "
                  f"{_pp(r['batch_statistics_accuracy'])} %); run {r['run_seconds']:.0f}"
                  f" s, load average {r['load_average'][0]:.1f}", flush=True)
            if r.get("pwlu_layers_still_in_phase1"):
                print(f"    note: {r['pwlu_layers_still_in_phase1']} {name} layer(s) still in "
                      "phase I (ReLU): the run was shorter than --pwlu-phase1-steps.")
            if name not in best or r["test_accuracy"] > best[name][1]["test_accuracy"]:
                best[name] = (model, r)

    rows = summarize(records, args.activations)
    tables = summary_table(rows) + "\n\n" + runs_table(records)
    print(f"\nFashion-MNIST test accuracy ({len(xt)} images, inference mode after BN "
          f"recalibration) after {args.epochs} epoch(s) on {len(x)} training images, "
          f"{args.seeds} seed(s). Δ: paired over seeds, 95 % t-interval; the verdict reads the "
          "interval only. Train s/epoch: wall-clock median, first epoch left out when there "
          "are more; other load on the machine inflates it.\n")
    print(tables, flush=True)

    figures = {"learning_curves": os.path.join(args.out, "learning_curves.png")}
    from keras_acts.plot import activation_shapes   # noqa: PLC0415 (matplotlib: plot extra)
    from keras_acts.plot import learning_curves     # noqa: PLC0415
    learning_curves({name: [r["history"] for r in records if r["activation"] == name]
                     for name in args.activations}, figures["learning_curves"])
    for name in (n for n in args.activations if n in LEARNABLE):
        figures[f"shapes_{name}"] = os.path.join(args.out, f"shapes_{name}.png")
        activation_shapes(best[name][0], figures[f"shapes_{name}"], inputs=xt[:SHAPE_SAMPLES])
    print("\nFigures: " + ", ".join(figures.values()))

    export = {"status": "skipped (--no-export)"}
    if args.export:
        pick = max([n for n in args.activations if n in KERAS_ACTS] or args.activations,
                   key=lambda n: best[n][1]["test_accuracy"])
        print(f"\nExporting the best {pick} run (seed {best[pick][1]['seed']}, test accuracy "
              f"{_pp(best[pick][1]['test_accuracy'])} %) to TFLite ...", flush=True)
        export = export_best(best[pick][0], pick, xt, yt, args.out)

    over = [r for r in records if r["gap_after"] > MAX_GAP]
    for r in over:
        print(f"WARNING: {r['activation']} seed {r['seed']}: inference and batch-statistics "
              f"accuracies differ by {_pp(r['gap_after'])} points after recalibration.")
    results = {"command": "python -m keras_acts.demo " + " ".join(
                   sys.argv[1:] if argv is None else argv),
               "config": vars(args), "train_images": len(x), "test_images": len(xt),
               "machine": info, "summary": rows, "runs": records, "figures": figures,
               "tflite": export, "total_seconds": time.perf_counter() - started}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(tables + "\n")
    print(f"\nResults: {os.path.join(args.out, 'results.json')} (total "
          f"{results['total_seconds'] / 60:.1f} min)")
    return 1 if export.get("status") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
