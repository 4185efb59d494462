"""LiteRT runtime: run a flatbuffer (:func:`run_tflite`) and compare it with Keras
(:func:`parity_report`, the one parity computation of the package).

XNNPACK (LiteRT's default CPU delegate) is on unless ``xnnpack=False``;
:func:`xnnpack_partitions` counts the delegate's partitions (one means XNNPACK
took the whole graph; each op it refuses splits the graph).
"""

import numpy as np

from keras_acts import _private
from keras_acts.export.flatbuffer import _read


def _example_flatbuffer():
    # A tiny Serf model for the examples below (TensorFlow needed to convert).
    import keras

    import keras_acts
    from keras_acts.export.convert import to_tflite

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras_acts.Serf()])
    return model, to_tflite(model)


def load_interpreter(path_or_bytes, input_shape=None, num_threads=None, xnnpack=True):
    """A LiteRT interpreter for a flatbuffer, input resized to ``input_shape``.

    ``input_shape`` includes the batch (e.g. ``(8, 28, 28, 1)``); tensors are
    allocated. ``num_threads`` None lets LiteRT choose. ``xnnpack`` True (the
    LiteRT default) applies the default XNNPACK delegate; False runs every op
    in LiteRT's builtin reference/optimized kernels
    (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

    Example:
        >>> model, flat = _example_flatbuffer()
        >>> it = load_interpreter(flat, (2, 4), num_threads=2)
        >>> it.invoke()
        >>> it.get_output_details()[0]["shape"].tolist()
        [2, 4]
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    kwargs = {} if xnnpack else {
        "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interpreter = Interpreter(model_content=_read(path_or_bytes), num_threads=num_threads,
                              **kwargs)
    if input_shape is not None:
        detail = interpreter.get_input_details()[0]
        if tuple(detail["shape"]) != tuple(input_shape):
            interpreter.resize_tensor_input(detail["index"], list(input_shape), strict=False)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(x, detail):
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(x.dtype, np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y, detail):
    scale, zero = detail["quantization"]
    if np.issubdtype(y.dtype, np.integer) and scale:
        return (y.astype(np.float32) - zero) * scale
    return y


def run_tflite(path_or_bytes, inputs, num_threads=None, batch_size=256, xnnpack=True):
    """Run a TFLite model on ``inputs`` with the LiteRT interpreter.

    Works for any batch size (the input is resized; large inputs are run in
    chunks of ``batch_size``). Float inputs to int8-io models are quantized and
    int8 outputs dequantized with the tensors' scale and zero point. Returns a
    float ``np.ndarray`` (a list of them for several outputs). ``xnnpack``: see
    :func:`load_interpreter`.

    Example:
        >>> model, flat = _example_flatbuffer()   # bytes, or a path to a .tflite file
        >>> run_tflite(flat, np.ones((100, 4), np.float32), num_threads=2).shape
        (100, 4)
    """
    x = np.asarray(inputs)
    content = _read(path_or_bytes)
    interpreter, shape, chunks = None, None, []
    for start in range(0, max(len(x), 1), batch_size):
        batch = x[start:start + batch_size]
        if interpreter is None or batch.shape != shape:
            interpreter = load_interpreter(content, batch.shape, num_threads, xnnpack)
            shape = batch.shape
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], _quantize(batch, detail))
        interpreter.invoke()
        chunks.append([_dequantize(interpreter.get_tensor(o["index"]), o)
                       for o in interpreter.get_output_details()])
    outputs = [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
    return outputs[0] if len(outputs) == 1 else outputs


def parity_report(model, path_or_bytes, inputs, num_threads=None, batch_size=256, xnnpack=True):
    """Compare the TFLite model's outputs with the Keras model's on ``inputs``.

    The one parity computation of the package (tests, ``keras-acts export``,
    the demo). ``model`` is a Keras model (``model.predict`` gives the
    reference), or the reference outputs themselves (an array for ``inputs``).
    Returns a dict: ``max_abs`` (max |tflite - keras|), ``max_rel`` (``max_abs``
    divided by max |keras|, the tensor-relative error used by the tests),
    ``mean_abs``, ``ref_max_abs``, ``batch`` and, for rank-2 outputs with more
    than one column, ``argmax_agreement`` (fraction of equal top-1 classes).
    ``xnnpack``: see :func:`load_interpreter`.

    Example:
        >>> model, flat = _example_flatbuffer()
        >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
        >>> parity_report(model, flat, x)["max_rel"] < 1e-5
        True
        >>> parity_report(model.predict(x, verbose=0), flat, x)["batch"]
        64
    """
    x = np.asarray(inputs)
    got = run_tflite(path_or_bytes, x, num_threads=num_threads, batch_size=batch_size,
                     xnnpack=xnnpack)
    if hasattr(model, "predict"):
        ref = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    else:
        ref = np.asarray(model)
    got = np.asarray(got, np.float64).reshape(ref.shape)
    ref = ref.astype(np.float64)
    diff = np.abs(got - ref)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    report = {
        "batch": int(len(x)),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "ref_max_abs": scale,
    }
    report["max_rel"] = report["max_abs"] / scale if scale > 0 else report["max_abs"]
    if ref.ndim == 2 and ref.shape[1] > 1:
        report["argmax_agreement"] = float(np.mean(got.argmax(1) == ref.argmax(1)))
    return report


def format_parity(report):
    """One-line text form of a :func:`parity_report` dict.

    Example:
        >>> print(format_parity({"batch": 64, "max_abs": 3.1e-7, "max_rel": 1.2e-7,
        ...                      "mean_abs": 4e-8, "argmax_agreement": 1.0}))
        batch 64: max abs 3.1e-07, max rel 1.2e-07, mean abs 4e-08, top-1 agreement 100.00%
    """
    text = (f"batch {report['batch']}: max abs {report['max_abs']:.3g}, "
            f"max rel {report['max_rel']:.3g}, mean abs {report['mean_abs']:.3g}")
    if "argmax_agreement" in report:
        text += f", top-1 agreement {100 * report['argmax_agreement']:.2f}%"
    return text


def _delegate_view(path_or_bytes, input_shape, num_threads):
    interpreter = load_interpreter(path_or_bytes, input_shape, num_threads)
    try:
        return interpreter, _private.litert_ops_details(interpreter)
    except AttributeError:  # pragma: no cover - LiteRT changed its private API
        return interpreter, None


def xnnpack_partitions(path_or_bytes, input_shape=None, num_threads=None):
    """Number of XNNPACK delegate partitions LiteRT makes of a flatbuffer.

    1 when XNNPACK runs the whole graph; every op it refuses (GATHER, CAST,
    EXPAND_DIMS, ...) runs in LiteRT's own kernels and splits the graph into
    more partitions (0: XNNPACK took nothing). Read from the interpreter's
    nodes (its DELEGATE nodes; the LiteRT interpreter's private node list through
    ``keras_acts._private.litert_ops_details``, guarded by tests/test_private.py;
    None if it is missing).

    Example:
        >>> model, flat = _example_flatbuffer()
        >>> xnnpack_partitions(flat, (1, 4))
        1
    """
    _, ops = _delegate_view(path_or_bytes, input_shape, num_threads)
    if ops is None:  # pragma: no cover
        return None
    return sum(op["op_name"] == "DELEGATE" for op in ops)


def xnnpack_refused(path_or_bytes, input_shape=None, num_threads=None):
    """``{op name: count}`` of the operators XNNPACK left to LiteRT's own kernels.

    An operator ran outside XNNPACK when none of its outputs is an output of a
    DELEGATE node and one of them feeds a DELEGATE node or is a model output
    (operators inside a partition only feed their own partition). Same private
    interpreter API as :func:`xnnpack_partitions` (None if missing).

    Example:
        >>> model, flat = _example_flatbuffer()
        >>> xnnpack_refused(flat, (1, 4))
        {}
    """
    interpreter, ops = _delegate_view(path_or_bytes, input_shape, num_threads)
    if ops is None:  # pragma: no cover
        return None
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    delegate_out = {t for op in delegates for t in op["outputs"]}
    boundary = {t for op in delegates for t in op["inputs"]}
    boundary |= {d["index"] for d in interpreter.get_output_details()}
    refused = {}
    for op in ops:
        outputs = set(op["outputs"])
        if op["op_name"] == "DELEGATE" or outputs & delegate_out or not outputs & boundary:
            continue
        refused[op["op_name"]] = refused.get(op["op_name"], 0) + 1
    return refused
