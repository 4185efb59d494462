"""Command line entry point ``keras-acts`` (console script declared in pyproject).

Subcommands:

* ``export MODEL.keras OUT.tflite [--quantize {none,float16,dynamic_range,int8}]
  [--calibration FILE.npy|fashion_mnist] [--num-calibration N] [--int8-io]
  [--parity-samples N] [--threads T]``: convert with
  :func:`keras_acts.export.to_tflite` (builtin TFLite ops only) and print the
  parity report (LiteRT vs Keras) on calibration / parity inputs.

Example (shell)::

    $ keras-acts export model.keras model_int8.tflite --quantize int8 \\
          --calibration fashion_mnist --num-calibration 200
"""

import argparse
import os
import sys

from keras_acts._extras import MissingExtraError
from keras_acts._flags import add_flag
from keras_acts._extras import require


class CliError(Exception):
    """Bad command-line input: :func:`main` prints ``error: <message>`` (one
    line naming the path or value at fault) and returns exit status 2.

    Example:
        >>> try:
        ...     _load_model("missing.keras")
        ... except CliError as err:
        ...     print(err)
        model file 'missing.keras' does not exist
    """


def _first_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _count(minimum):
    """An argparse type: an integer >= ``minimum`` (argparse names the flag)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _load_model(path):
    """The single-input Keras model in ``path`` (``CliError`` naming the path
    when it is missing, a folder, or not a loadable Keras model)."""
    if not os.path.exists(path):
        raise CliError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise CliError(f"model path {path!r} is a directory; expected a .keras file")
    import keras

    import keras_acts  # noqa: F401  (registers the layers for deserialization)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any failure to load is the file's
        raise CliError(f"cannot load a Keras model from {path!r}: {_first_line(err)}") from None
    if len(model.inputs) != 1:
        raise CliError(f"model {path!r} has {len(model.inputs)} inputs; export takes "
                       "single-input models")
    return model


def _expected_shape(model):
    return "(N, " + ", ".join("any" if d is None else str(d) for d in model.input_shape[1:]) + ")"


def _check_inputs(x, model, what):
    """``x`` as float32 if its shape fits the model's input, else ``CliError``."""
    import numpy as np

    want = tuple(model.input_shape[1:])
    if x.dtype.kind not in "biuf":
        raise CliError(f"{what} holds {x.dtype} values; expected numbers")
    if x.ndim != len(want) + 1 or any(w is not None and w != d for w, d in zip(want, x.shape[1:])):
        raise CliError(f"{what} has shape {tuple(x.shape)}; the model expects "
                       f"{_expected_shape(model)}")
    if len(x) == 0:
        raise CliError(f"{what} holds no samples; the model expects {_expected_shape(model)}")
    return np.asarray(x, dtype="float32")


def _load_inputs(source, model, count):
    """Inputs for calibration / parity: a .npy file, "fashion_mnist", or random."""
    import numpy as np

    if source is None:
        shape = tuple(d if d is not None else 1 for d in model.input_shape[1:])
        return np.random.default_rng(0).normal(0, 1, (count,) + shape).astype("float32")
    if source == "fashion_mnist":
        from keras_acts.data.fashion_mnist import load_fashion_mnist

        try:
            (x, _), _ = load_fashion_mnist()
        except (OSError, ValueError) as err:
            raise CliError(f"cannot read Fashion-MNIST for --calibration: {_first_line(err)}")
        x = x.astype("float32") / 255.0
        want = tuple(model.input_shape[1:])
        if len(want) == 3 and x.ndim == 3:
            x = x[..., None]
        x = _check_inputs(x, model, "Fashion-MNIST (--calibration fashion_mnist)")
        rng = np.random.default_rng(0)
        return x[rng.permutation(len(x))[:count]]
    if not os.path.isfile(source):
        raise CliError(f"calibration file {source!r} does not exist (expected a .npy file of "
                       f"model inputs {_expected_shape(model)} or 'fashion_mnist')")
    try:
        x = np.load(source, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any failure to read is the file's
        raise CliError(f"cannot read calibration file {source!r} as a .npy array: "
                       f"{_first_line(err)}") from None
    if not isinstance(x, np.ndarray):
        raise CliError(f"calibration file {source!r} is an .npz archive; save one array "
                       "with numpy.save")
    return _check_inputs(x, model, f"calibration array {source!r}")[:count]


def _export(args):
    require("tensorflow", extra="export", feature="keras-acts export")
    if args.parity_samples > 0:
        require("ai_edge_litert", extra="export", feature="keras-acts export's parity report "
                "(--parity-samples 0 skips it)")
    from keras_acts.export import format_parity
    from keras_acts.export import parity_report
    from keras_acts.export import representative_from_array
    from keras_acts.export import to_tflite

    quantization = None if args.quantize == "none" else args.quantize
    if quantization == "int8" and args.calibration is None:
        raise CliError("--quantize int8 needs --calibration FILE.npy or fashion_mnist")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if os.path.isdir(args.output):
        raise CliError(f"output {args.output!r} is a directory; expected a .tflite file path")
    if not os.path.isdir(out_dir):
        raise CliError(f"output directory {out_dir!r} does not exist")
    model = _load_model(args.model)
    calibration = None
    if args.calibration is not None:
        calibration = _load_inputs(args.calibration, model, args.num_calibration)
    rep = representative_from_array(calibration) if quantization == "int8" else None
    try:
        flat = to_tflite(model, args.output, quantization=quantization,
                         representative_dataset=rep, int8_io=args.int8_io)
    except OSError as err:
        raise CliError(f"cannot write {args.output!r}: {err.strerror or _first_line(err)}")
    print(f"wrote {args.output} ({len(flat) / 1e6:.3f} MB, quantization={args.quantize}, "
          "builtin ops only)")
    if args.parity_samples > 0:
        inputs = _load_inputs(args.calibration, model, args.parity_samples)
        report = parity_report(model, flat, inputs, num_threads=args.threads)
        print("parity vs Keras: " + format_parity(report))
    return 0


def main(argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; returns
    the exit code: 0 on success, 2 with one ``error:`` line on stderr for bad
    input (a missing or unloadable model, a missing, unreadable or wrongly
    shaped calibration array, a model that cannot be exported, a bad flag), 1
    with one ``error:`` line naming the ``pip install`` when an optional
    dependency is missing.

    Example:
        >>> from keras_acts.models import small_cnn
        >>> small_cnn("serf", width=4).save("model.keras")
        >>> main(["export", "model.keras", "model.tflite", "--quantize", "float16",
        ...       "--parity-samples", "4"])
        wrote model.tflite (... MB, quantization=float16, builtin ops only)
        parity vs Keras: batch 4: max abs ..., top-1 agreement ...
        0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="keras-acts", description="keras_acts tools")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="convert a .keras model to builtin-only TFLite")
    exp.add_argument("model", help="input .keras file")
    exp.add_argument("output", help="output .tflite file")
    add_flag(exp, "--quantize", default="none",
                     choices=["none", "float16", "dynamic_range", "int8"])
    add_flag(exp, "--calibration", default=None,
                     help="FILE.npy of model inputs or 'fashion_mnist' (images scaled to [0, 1]); "
                          "required for int8, also used for the parity report")
    add_flag(exp, "--num-calibration", type=_count(1), default=200,
                     help="calibration samples for int8 (default 200)")
    add_flag(exp, "--int8-io", action="store_true",
                     help="int8 input/output tensors (default: float32 io)")
    add_flag(exp, "--parity-samples", type=_count(0), default=256,
                     help="inputs for the parity report (0 skips it)")
    add_flag(exp, "--threads", type=_count(1), default=None,
                     help="LiteRT threads for parity")
    args = parser.parse_args(argv)
    try:
        return _export(args)
    except MissingExtraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        from keras_acts.export import ExportError

        if not isinstance(error, (CliError, ExportError)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
