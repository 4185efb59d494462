"""The main job: ReLU, Swish and the keras_acts activations on Fashion-MNIST.

Run ``python -m keras_acts.demo`` (``--help`` lists the flags). It

1. loads Fashion-MNIST from Debian's ``dataset-fashion-mnist`` IDX files
   (``/usr/share/datasets/fashion-mnist``), installing the package with
   ``apt-get`` when it is missing (and saying so), or from ``--data-dir``;
2. trains the same small CNN (``keras_acts.models.small_cnn``: two conv blocks
   with BN) once per activation and seed, with Keras progress bars;
3. prints a markdown table (test accuracy mean ± std over seeds, difference to
   ReLU, trainable parameters, training seconds per epoch, time ratio to ReLU);
4. saves PNGs: the learned activation shapes of each learnable activation's
   best run (``keras_acts.plot.activation_shapes``) and the learning curves;
5. exports the best run that uses a keras_acts activation to TFLite (builtin
   ops, ``keras_acts.export``) and reports its parity with the Keras model and
   its test accuracy;
6. writes everything to ``--out`` (default ``outputs/demo``): ``results.json``,
   ``results.md``, the PNGs and the ``.tflite`` file.

The defaults (6 activations x 2 seeds x 2 epochs on 6,000 training images,
the full 10,000-image test set) take about ten minutes on a 2-core CPU.

Training: Adam (``--learning-rate``, 1e-3), batch 128, the model's BN momentum
set to 0.9 for these short runs, per-epoch validation on the first 2,000 test
images (learning curves only); the reported test accuracy is measured once,
after training, on the whole test set. The "best" runs (figures, export) are
picked by that test accuracy: fine for a demonstration, not a model selection.

PWLU's phase I (ReLU while input statistics are collected) lasts
``--pwlu-phase1-steps`` steps, by default half of the first epoch, after which
every PWLU layer realigns itself; the paper's 5 of ~100 epochs would not fit a
2-epoch run.

Example:
    $ python -m keras_acts.demo --epochs 1 --seeds 1 --activations relu,pwlu
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_acts.callbacks import pwlu_layers
from keras_acts.data.fashion_mnist import DEFAULT_DIR
from keras_acts.data.fashion_mnist import load_fashion_mnist
from keras_acts.layers import PWLU
from keras_acts.models import small_cnn
from keras_acts.plot import activation_shapes
from keras_acts.plot import learning_curves

ACTIVATIONS = ("relu", "swish", "pwlu", "acon_c", "meta_acon", "serf")
KERAS_ACTS = ("pwlu", "acon_c", "meta_acon", "serf")
LEARNABLE = ("pwlu", "acon_c", "meta_acon")
APT_PACKAGE = "dataset-fashion-mnist"
# Fashion-MNIST training-set pixel mean and std (of x / 255).
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530
SHAPE_SAMPLES = 256
# Per-epoch validation uses the first VAL_IMAGES test images (learning curves);
# the reported test accuracy is measured once, after training, on the whole test set.
VAL_IMAGES = 2000
BN_MOMENTUM = 0.9
STEP_METRICS = ("loss", "accuracy")


class DatasetUnavailable(RuntimeError):
    """Fashion-MNIST is neither present nor installable (the demo exits with code 2).

    Example:
        >>> raise DatasetUnavailable("apt-get is not available")
    """


# ----------------------------------------------------------------------------- data
def _apt_prefix():
    """Command prefix to run apt-get as root, or None (with the reason)."""
    if shutil.which("apt-get") is None:
        return None, "apt-get is not available on this machine"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return [], None
    if shutil.which("sudo") is not None:
        return ["sudo", "-n"], None
    return None, "not running as root and sudo is not available"


def install_dataset(runner=subprocess.run, log=print):
    """``apt-get install -y dataset-fashion-mnist`` (after ``apt-get update`` if the
    first attempt fails). Returns True on success; says what it does.

    Example:
        >>> install_dataset()
        True
    """
    prefix, reason = _apt_prefix()
    if prefix is None:
        log(f"Cannot install {APT_PACKAGE}: {reason}.")
        return False
    install = prefix + ["apt-get", "install", "-y", APT_PACKAGE]
    log(f"Installing Debian's {APT_PACKAGE}: {' '.join(install)}")
    if runner(install).returncode == 0:
        return True
    update = prefix + ["apt-get", "update"]
    log(f"Install failed; refreshing the package lists ({' '.join(update)}) and retrying.")
    if runner(update).returncode != 0:
        log("apt-get update failed.")
        return False
    return runner(install).returncode == 0


def load_data(directory=DEFAULT_DIR, install=True, runner=subprocess.run, log=print):
    """Fashion-MNIST from ``directory``; installs the Debian package when the
    default directory is empty and ``install`` is True.

    Raises ``DatasetUnavailable`` with instructions when the files cannot be had.

    Example:
        >>> (x, y), (xt, yt) = load_data()
    """
    try:
        return load_fashion_mnist(directory)
    except FileNotFoundError as err:
        missing = str(err)
    if not install or os.path.abspath(directory) != os.path.abspath(DEFAULT_DIR):
        raise DatasetUnavailable(
            f"{missing}\n(Automatic installation only fills {DEFAULT_DIR}; pass --data-dir "
            "with the four IDX files, or drop --no-install.)")
    log(f"Fashion-MNIST is not in {directory}.")
    if not install_dataset(runner=runner, log=log):
        raise DatasetUnavailable(
            f"Fashion-MNIST is missing and {APT_PACKAGE} could not be installed. Install it "
            f"yourself (as root: apt-get update && apt-get install -y {APT_PACKAGE}) or pass "
            "--data-dir DIR holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
            "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].")
    log(f"Installed {APT_PACKAGE}.")
    return load_fashion_mnist(directory)


def prepare_images(images):
    """uint8 (N, 28, 28) -> standardised float32 (N, 28, 28, 1).

    Example:
        >>> prepare_images(np.zeros((2, 28, 28), np.uint8)).shape
        (2, 28, 28, 1)
    """
    x = images.astype(np.float32) / 255.0
    return ((x - PIXEL_MEAN) / PIXEL_STD)[..., None]


def _subset(x, y, size, seed):
    if not size or size >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:size])
    return x[idx], y[idx]


# ------------------------------------------------------------------------- training
class RunRecorder(keras.callbacks.Callback):
    """Training loss and accuracy of every step; training seconds per epoch.

    Keras logs the epoch's running (sample-weighted) means after each batch;
    the value of batch b is recovered as (W_b m_b - W_{b-1} m_{b-1}) / n_b
    with W the cumulative sample count. The epoch clock stops when validation
    starts, so it measures training only.

    Example:
        >>> recorder = RunRecorder(num_samples=6000, batch_size=128)
        >>> model.fit(x, y, batch_size=128, callbacks=[recorder])
        >>> len(recorder.per_step["loss"]), recorder.epoch_seconds
    """

    def __init__(self, num_samples, batch_size):
        super().__init__()
        steps = math.ceil(num_samples / batch_size)
        sizes = [batch_size] * (steps - 1) + [num_samples - batch_size * (steps - 1)]
        self.cumulative = np.cumsum(sizes, dtype=np.float64)
        self.per_step = {key: [] for key in STEP_METRICS}
        self.epoch_seconds = []
        self._start = None
        self._weighted = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._weighted = {key: 0.0 for key in STEP_METRICS}
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        size = self.cumulative[batch] - (self.cumulative[batch - 1] if batch else 0.0)
        for key in STEP_METRICS:
            total = float(logs[key]) * self.cumulative[batch]
            self.per_step[key].append((total - self._weighted[key]) / size)
            self._weighted[key] = total

    def _stop_clock(self):
        if self._start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):
        self._stop_clock()

    def on_epoch_end(self, epoch, logs=None):
        self._stop_clock()


def activation_factory(name, pwlu_phase1_steps):
    """What ``small_cnn`` gets for ``name``: PWLU with the demo's phase I length,
    otherwise the name itself.

    Example:
        >>> layer = activation_factory("pwlu", 40)()
        >>> layer.phase1_steps
        40
    """
    if name == "pwlu":
        return lambda: PWLU(phase1_steps=pwlu_phase1_steps)
    return name


def trainable_parameters(model):
    """Number of trainable scalars of ``model``.

    Example:
        >>> trainable_parameters(small_cnn("relu"))
        65834
    """
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def train_run(name, seed, data, args, pwlu_phase1_steps, verbose):
    """Train one (activation, seed) run; return (model, record dict).

    Example:
        >>> model, record = train_run("relu", 0, data, args, 40, verbose=2)
    """
    (x, y), (xt, yt) = data
    keras.backend.clear_session(free_memory=False)  # layer names restart at pwlu, pwlu_1...
    keras.utils.set_random_seed(seed)
    # Keras' BN momentum 0.99 leaves the moving statistics far from the data after
    # a few hundred steps; 0.9 (PyTorch's 0.1) suits these short runs.
    model = small_cnn(activation_factory(name, pwlu_phase1_steps), name=f"small_cnn_{name}",
                      bn_momentum=BN_MOMENTUM)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=args.jit)
    recorder = RunRecorder(len(x), args.batch_size)
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(xt[:VAL_IMAGES], yt[:VAL_IMAGES]),
                        validation_batch_size=512, callbacks=[recorder], verbose=verbose)
    test_loss, test_accuracy = model.evaluate(xt, yt, batch_size=512, verbose=0)
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    curves.update({f"batch_{k}": v for k, v in recorder.per_step.items()})
    still_phase1 = sum(layer.in_phase1 for layer in pwlu_layers(model))
    record = {
        "activation": name,
        "seed": seed,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "epoch_seconds": recorder.epoch_seconds,
        "trainable_parameters": trainable_parameters(model),
        "history": curves,
    }
    if name == "pwlu":
        record["pwlu_layers_still_in_phase1"] = int(still_phase1)
    return model, record


# -------------------------------------------------------------------------- summary
def seconds_per_epoch(records):
    """Median training seconds per epoch over runs, leaving out each run's first
    epoch (graph tracing) when it has more than one.

    Example:
        >>> seconds_per_epoch([{"epoch_seconds": [9.0, 5.0]}, {"epoch_seconds": [8.0, 6.0]}])
        5.5
    """
    times = [t for r in records
             for t in (r["epoch_seconds"][1:] if len(r["epoch_seconds"]) > 1
                       else r["epoch_seconds"])]
    return float(np.median(times))


def summarize(records, activations):
    """Per-activation summary rows (dicts) from the run records.

    Example:
        >>> rows = summarize(records, ["relu", "pwlu"])
        >>> rows[0]["accuracy_mean"]
        0.85...
    """
    rows = []
    for name in activations:
        runs = [r for r in records if r["activation"] == name]
        acc = np.asarray([r["test_accuracy"] for r in runs])
        rows.append({
            "activation": name,
            "seeds": [r["seed"] for r in runs],
            "accuracies": acc.tolist(),
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else None,
            "trainable_parameters": runs[0]["trainable_parameters"],
            "seconds_per_epoch": seconds_per_epoch(runs),
        })
    relu = next((row for row in rows if row["activation"] == "relu"), None)
    for row in rows:
        row["accuracy_delta_vs_relu"] = (row["accuracy_mean"] - relu["accuracy_mean"]
                                         if relu else None)
        row["time_ratio_vs_relu"] = (row["seconds_per_epoch"] / relu["seconds_per_epoch"]
                                     if relu else None)
    return rows


def markdown_table(rows):
    """The results table in markdown (accuracy in %, delta in percentage points).

    Example:
        >>> print(markdown_table(summarize(records, ["relu"])))
    """
    lines = [
        "| activation | test accuracy % (mean ± std) | Δ vs ReLU (pp) | trainable params "
        "| train s/epoch | time ratio to ReLU |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        std = "n/a" if row["accuracy_std"] is None else f"{100 * row['accuracy_std']:.2f}"
        delta = row["accuracy_delta_vs_relu"]
        ratio = row["time_ratio_vs_relu"]
        lines.append(
            f"| {row['activation']} | {100 * row['accuracy_mean']:.2f} ± {std} "
            f"(n={len(row['seeds'])}) | "
            f"{'n/a' if delta is None else f'{100 * delta:+.2f}'} | "
            f"{row['trainable_parameters']:,} | {row['seconds_per_epoch']:.1f} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}x'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- export
def export_and_check(model, name, x_test, y_test, out_dir, log=print):
    """Convert ``model`` to TFLite (float32, builtin ops) and compare it with Keras.

    Uses ``keras_acts.export.to_tflite`` (which refuses Flex/custom ops) and
    ``run_tflite``. Returns a dict: ``status`` ("ok", "unavailable" when
    ``keras_acts.export`` is missing, "failed" with the error), the file, the
    max abs logit difference (also relative to max |Keras logit|), the argmax
    agreement and the TFLite and Keras test accuracies.

    Example:
        >>> export_and_check(model, "pwlu", x_test, y_test, "outputs/demo")["status"]
        'ok'
    """
    try:
        from keras_acts.export import run_tflite
        from keras_acts.export import to_tflite
    except ImportError as err:
        log(f"TFLite export unavailable (keras_acts.export: {err}); skipping the export step.")
        return {"status": "unavailable", "reason": str(err)}
    path = os.path.join(out_dir, f"best_{name}.tflite")
    try:
        start = time.perf_counter()
        to_tflite(model, path)
        convert_s = time.perf_counter() - start
        keras_logits = np.asarray(model.predict(x_test, batch_size=512, verbose=0))
        tflite_logits = np.asarray(run_tflite(path, x_test)).reshape(keras_logits.shape)
    except Exception as err:  # noqa: BLE001 - reported, the demo goes on
        log(f"TFLite export FAILED: {type(err).__name__}: {err}")
        return {"status": "failed", "reason": f"{type(err).__name__}: {err}"}
    diff = np.abs(tflite_logits.astype(np.float64) - keras_logits)
    scale = float(np.max(np.abs(keras_logits)))
    result = {
        "status": "ok",
        "path": path,
        "activation": name,
        "size_bytes": os.path.getsize(path),
        "convert_seconds": convert_s,
        "max_abs_logit_diff": float(diff.max()),
        "max_rel_logit_diff": float(diff.max()) / scale if scale > 0 else float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "argmax_agreement": float(np.mean(tflite_logits.argmax(-1) == keras_logits.argmax(-1))),
        "keras_test_accuracy": float(np.mean(keras_logits.argmax(-1) == y_test)),
        "tflite_test_accuracy": float(np.mean(tflite_logits.argmax(-1) == y_test)),
    }
    log(f"TFLite ({name}, float32, {result['size_bytes'] / 1024:.0f} KiB): max |logit diff| "
        f"{result['max_abs_logit_diff']:.2e}, argmax agreement "
        f"{100 * result['argmax_agreement']:.2f} %, test accuracy "
        f"{100 * result['tflite_test_accuracy']:.2f} % (Keras "
        f"{100 * result['keras_test_accuracy']:.2f} %) -> {path}")
    return result


# ----------------------------------------------------------------------------- main
def _activations(text):
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ACTIVATIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown activation(s) {unknown}; choose from {', '.join(ACTIVATIONS)}")
    return list(dict.fromkeys(names))


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv=None):
    """The demo's command-line flags.

    Example:
        >>> parse_args(["--epochs", "1"]).epochs
        1
    """
    p = argparse.ArgumentParser(
        prog="python -m keras_acts.demo",
        description="Train a small CNN on Fashion-MNIST with ReLU, Swish and the keras_acts "
                    "activations; print a comparison table, save figures, export to TFLite.")
    p.add_argument("--epochs", type=_positive, default=2, help="epochs per run (default 2)")
    p.add_argument("--seeds", type=_positive, default=2,
                   help="runs per activation, seeds 0..N-1 (default 2)")
    p.add_argument("--activations", type=_activations, default=list(ACTIVATIONS),
                   help=f"comma-separated subset of {','.join(ACTIVATIONS)} (default: all)")
    p.add_argument("--batch-size", type=_positive, default=128, help="default 128")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam, default 1e-3")
    p.add_argument("--train-subset", type=_non_negative, default=6000,
                   help="training images used, a fixed random subset; 0: all 60000 "
                        "(default 6000)")
    p.add_argument("--test-subset", type=_non_negative, default=0,
                   help="test images used; 0: all 10000 (default 0)")
    p.add_argument("--pwlu-phase1-steps", type=_non_negative, default=None,
                   help="PWLU phase I length in steps (default: half of the first epoch)")
    p.add_argument("--data-dir", default=DEFAULT_DIR,
                   help=f"directory with the four IDX files (default {DEFAULT_DIR})")
    p.add_argument("--no-install", dest="install", action="store_false",
                   help=f"do not apt-get install {APT_PACKAGE} when the data is missing")
    p.add_argument("--out", default=os.path.join("outputs", "demo"),
                   help="output directory (default outputs/demo)")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=False,
                   help="XLA-compile the training step (default off: slower on CPU)")
    p.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                   help="export the best keras_acts model to TFLite (default on)")
    return p.parse_args(argv)


def main(argv=None):
    """Run the demo; returns the process exit code (0 ok, 1 export failed,
    2 data unavailable).

    Example:
        >>> main(["--epochs", "1", "--seeds", "1", "--activations", "relu,serf"])
        0
    """
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        (x, y), (xt, yt) = load_data(args.data_dir, install=args.install)
    except (DatasetUnavailable, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    x, y = _subset(x, y, args.train_subset, seed=1234)
    xt, yt = _subset(xt, yt, args.test_subset, seed=4321)
    data = ((prepare_images(x), y.astype(np.int32)), (prepare_images(xt), yt.astype(np.int32)))
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    phase1 = (args.pwlu_phase1_steps if args.pwlu_phase1_steps is not None
              else max(1, steps_per_epoch // 2))
    os.makedirs(args.out, exist_ok=True)
    total_runs = len(args.activations) * args.seeds
    print(f"Fashion-MNIST from {args.data_dir}: {len(x)} training / {len(xt)} test images; "
          f"{len(args.activations)} activations x {args.seeds} seeds x {args.epochs} epochs "
          f"({steps_per_epoch} steps of {args.batch_size}; validation curves on the first "
          f"{min(VAL_IMAGES, len(xt))} test images); PWLU phase I: {phase1} steps; "
          f"jit={'on' if args.jit else 'off'}; TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs.", flush=True)
    verbose = 1 if sys.stdout.isatty() else 2
    records, best = [], {}
    for i, name in enumerate(args.activations):
        for seed in range(args.seeds):
            print(f"[{i * args.seeds + seed + 1}/{total_runs}] {name}, seed {seed}", flush=True)
            model, record = train_run(name, seed, data, args, phase1, verbose)
            records.append(record)
            print(f"    test accuracy {100 * record['test_accuracy']:.2f} %, "
                  f"train s/epoch {', '.join(f'{t:.1f}' for t in record['epoch_seconds'])}",
                  flush=True)
            if record.get("pwlu_layers_still_in_phase1"):
                print(f"    note: {record['pwlu_layers_still_in_phase1']} PWLU layer(s) still "
                      "in phase I (ReLU): the run was shorter than --pwlu-phase1-steps.")
            if name not in best or record["test_accuracy"] > best[name][1]["test_accuracy"]:
                best[name] = (model, record)

    rows = summarize(records, args.activations)
    table = markdown_table(rows)
    print(f"\nFashion-MNIST test accuracy on {len(xt)} test images after {args.epochs} "
          f"epoch(s) on {len(x)} training images, {args.seeds} seed(s) (std over seeds). Train "
          "s/epoch: wall-clock median, first epoch (graph tracing) left out when there are "
          "more; other load on the machine inflates it.\n")
    print(table, flush=True)

    figures = {}
    path = os.path.join(args.out, "learning_curves.png")
    learning_curves({name: [r["history"] for r in records if r["activation"] == name]
                     for name in args.activations}, path)
    figures["learning_curves"] = path
    samples = data[1][0][:SHAPE_SAMPLES]
    for name in args.activations:
        if name in LEARNABLE:
            path = os.path.join(args.out, f"shapes_{name}.png")
            activation_shapes(best[name][0], path, inputs=samples)
            figures[f"shapes_{name}"] = path
    print("\nFigures: " + ", ".join(figures.values()))

    export = {"status": "skipped (--no-export)"}
    if args.export:
        candidates = [n for n in args.activations if n in KERAS_ACTS] or list(args.activations)
        pick = max(candidates, key=lambda n: best[n][1]["test_accuracy"])
        print(f"\nExporting the best {pick} run (seed {best[pick][1]['seed']}, test accuracy "
              f"{100 * best[pick][1]['test_accuracy']:.2f} %) to TFLite ...", flush=True)
        export = export_and_check(best[pick][0], pick, data[1][0], data[1][1], args.out)

    results = {
        "command": "python -m keras_acts.demo " + " ".join(argv if argv is not None
                                                           else sys.argv[1:]),
        "config": {k: v for k, v in vars(args).items()},
        "pwlu_phase1_steps": phase1,
        "train_images": len(x),
        "test_images": len(xt),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "tensorflow": tf.__version__, "keras": keras.__version__},
        "summary": rows,
        "runs": records,
        "figures": figures,
        "tflite": export,
        "total_seconds": time.perf_counter() - started,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n")
    print(f"\nResults: {os.path.join(args.out, 'results.json')} (total "
          f"{results['total_seconds'] / 60:.1f} min)")
    return 1 if export.get("status") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
