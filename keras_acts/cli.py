"""Command line entry point ``keras-acts`` (console script declared in pyproject).

Subcommands:

* ``export MODEL.keras OUT.tflite [--quantize {none,float16,dynamic_range,int8}]
  [--calibration FILE.npy|fashion_mnist] [--num-calibration N] [--int8-io]
  [--parity-samples N] [--threads T]``: convert with
  :func:`keras_acts.export.to_tflite` (builtin TFLite ops only) and print the
  parity report (LiteRT vs Keras) on calibration / parity inputs.

Example:
    $ keras-acts export model.keras model_int8.tflite --quantize int8 \\
          --calibration fashion_mnist --num-calibration 200
"""

import argparse
import os
import sys


def _load_inputs(source, model, count):
    """Inputs for calibration / parity: a .npy file, "fashion_mnist", or random."""
    import numpy as np

    if source is None:
        shape = tuple(d if d is not None else 1 for d in model.input_shape[1:])
        return np.random.default_rng(0).normal(0, 1, (count,) + shape).astype("float32")
    if source == "fashion_mnist":
        from keras_acts.data.fashion_mnist import load_fashion_mnist

        (x, _), _ = load_fashion_mnist()
        x = x.astype("float32") / 255.0
        want = tuple(model.input_shape[1:])
        if len(want) == 3 and x.ndim == 3:
            x = x[..., None]
        rng = np.random.default_rng(0)
        return x[rng.permutation(len(x))[:count]]
    x = np.load(source)
    return x[:count].astype("float32")


def _export(args):
    import keras

    import keras_acts  # noqa: F401  (registers the layers for deserialization)
    from keras_acts.export import format_parity
    from keras_acts.export import parity_report
    from keras_acts.export import representative_from_array
    from keras_acts.export import to_tflite

    model = keras.saving.load_model(args.model, compile=False)
    quantization = None if args.quantize == "none" else args.quantize
    if quantization == "int8" and args.calibration is None:
        print("error: --quantize int8 needs --calibration FILE.npy or fashion_mnist",
              file=sys.stderr)
        return 2
    calibration = None
    if args.calibration is not None:
        calibration = _load_inputs(args.calibration, model, args.num_calibration)
    rep = representative_from_array(calibration) if quantization == "int8" else None
    flat = to_tflite(model, args.output, quantization=quantization, representative_dataset=rep,
                     int8_io=args.int8_io)
    print(f"wrote {args.output} ({len(flat) / 1e6:.3f} MB, quantization={args.quantize}, "
          "builtin ops only)")
    if args.parity_samples > 0:
        inputs = _load_inputs(args.calibration, model, args.parity_samples)
        report = parity_report(model, flat, inputs, num_threads=args.threads)
        print("parity vs Keras: " + format_parity(report))
    return 0


def main(argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; returns the exit code.

    Example:
        >>> main(["export", "model.keras", "model.tflite", "--quantize", "float16"])
        wrote model.tflite (...)
        0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="keras-acts", description="keras_acts tools")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="convert a .keras model to builtin-only TFLite")
    exp.add_argument("model", help="input .keras file")
    exp.add_argument("output", help="output .tflite file")
    exp.add_argument("--quantize", default="none",
                     choices=["none", "float16", "dynamic_range", "int8"])
    exp.add_argument("--calibration", default=None,
                     help="FILE.npy of model inputs or 'fashion_mnist' (images scaled to [0, 1]); "
                          "required for int8, also used for the parity report")
    exp.add_argument("--num-calibration", type=int, default=200,
                     help="calibration samples for int8 (default 200)")
    exp.add_argument("--int8-io", action="store_true",
                     help="int8 input/output tensors (default: float32 io)")
    exp.add_argument("--parity-samples", type=int, default=256,
                     help="inputs for the parity report (0 skips it)")
    exp.add_argument("--threads", type=int, default=None, help="LiteRT threads for parity")
    args = parser.parse_args(argv)
    from keras_acts.export import ExportError

    try:
        return _export(args)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
