"""TFLite / LiteRT export of Keras models that use keras_acts layers.

The model is traced as a ``tf.function`` (dynamic batch dimension) inside
:func:`keras_acts.ops.export_mode`, so every keras_acts op emits its
inference-only, builtin-op formulation (``ops/``: Serf with a rational erf,
PWLU as a sum of hinges -- a table lookup for int8 --, ACON-C/Meta-ACON plain
arithmetic, ACON-C's first multiply written to fold into a preceding
convolution). The variables are frozen into constants, which lets the
converter fold PWLU's tables, PWLU's phase switch and Meta-ACON's
inference-mode batch norms (into the generator's FULLY_CONNECTED ops).
Conversion allows TFLite builtin ops only (``TFLITE_BUILTINS``, or
``TFLITE_BUILTINS_INT8`` for full-integer int8) and the resulting flatbuffer is
checked for Flex/custom ops; anything else raises :class:`ExportError` naming
the op and the layer that produced it.

Quantization modes (``quantization=``):

* ``None`` / ``"none"``: float32.
* ``"float16"``: float16 weights (dequantized at load on CPU), float32 maths.
* ``"dynamic_range"``: int8 weights, activations quantized on the fly.
* ``"int8"``: full integer with a representative dataset; every op int8
  (``TFLITE_BUILTINS_INT8``). The model is traced under
  ``export_mode(quantization="int8")``, so Serf uses its short bounded-range
  formulation (``x * sigmoid(cubic(clip(x)))``, max abs error 0.0066) instead of
  the 1e-6 rational erf, whose ~30 requantized steps cost 34 points of accuracy. Input and output stay **float32** by default
  (QUANTIZE / DEQUANTIZE at the ends, so callers feed the same arrays as to the
  Keras model); ``int8_io=True`` makes them int8 (``run_tflite`` then quantizes
  and dequantizes with the tensors' scale and zero point).
"""

import os
import re

import numpy as np
import tensorflow as tf

from keras_acts import ops

QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")


class ExportError(ValueError):
    """Raised when a model cannot be exported to builtin-only TFLite.

    The message names the offending TensorFlow/TFLite op(s) and the Keras
    layer(s) that produced them.

    Example:
        >>> try:
        ...     to_tflite(model_with_erf)
        ... except ExportError as e:
        ...     print(e)   # "... op 'Erf' (produced by layer 'my_erf' (MyErf)) ..."
    """


# --------------------------------------------------------------------- tracing
def _input_spec(model, input_shape):
    if input_shape is None:
        shape = getattr(model, "input_shape", None)
        if shape is None:
            raise ExportError(
                f"Model {model.name!r} has no input shape; pass input_shape=(...) "
                "(without the batch dimension).")
        if isinstance(shape, (list, dict)) and shape and not isinstance(shape[0], (int, type(None))):
            raise ExportError(f"Model {model.name!r} has several inputs; to_tflite exports "
                              "single-input models.")
        shape = tuple(shape)[1:]
    dtype = tf.float32
    inputs = getattr(model, "inputs", None)
    if inputs:
        dtype = tf.as_dtype(inputs[0].dtype)
    return tf.TensorSpec([None] + [None if d is None else int(d) for d in shape], dtype,
                         name="inputs")


def export_concrete_function(model, input_shape=None, quantization=None):
    """Trace ``model`` under ``export_mode`` and freeze its variables.

    Returns a concrete function of one input with a dynamic batch dimension
    (``input_shape`` excludes the batch; default ``model.input_shape[1:]``),
    calling ``model(x, training=False)`` with every variable folded into a
    constant. This is the graph :func:`to_tflite` converts. ``quantization``
    is passed to ``export_mode``: with ``"int8"`` the ops trace their
    int8-friendly formulations (Serf: :func:`keras_acts.ops.builtin.serf.serf_int8_builtin`).

    Example:
        >>> fn = export_concrete_function(keras_acts.models.small_cnn("serf"))
        >>> fn.inputs[0].shape
        TensorShape([None, 28, 28, 1])
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = _input_spec(model, input_shape)
    with ops.export_mode(quantization=quantization):
        fn = tf.function(lambda inputs: model(inputs, training=False))
        concrete = fn.get_concrete_function(spec)
    return convert_variables_to_constants_v2(concrete)


# ------------------------------------------------------------------ diagnostics
def _layers(model):
    layers = getattr(model, "_flatten_layers", None)
    if layers is None:
        return list(getattr(model, "layers", []))
    return [layer for layer in layers(include_self=False, recursive=True)]


def _layer_for_node(model, node_name):
    """Best guess of the layer whose name scope contains graph node ``node_name``."""
    layers = _layers(model)
    parts = [p for p in node_name.split("@")[0].split("/") if p][:-1]
    for part in reversed(parts):                      # innermost scope first
        exact = [layer for layer in layers if layer.name == part]
        if exact:
            return exact[0]
        stem = re.sub(r"_\d+$", "", part)
        loose = [layer for layer in layers if layer.name == stem]
        if loose:
            return loose[0]
    return None


def _describe_layer(layer, node_name):
    if layer is None:
        return f"graph node {node_name!r} (not inside a known layer)"
    return f"layer {layer.name!r} ({type(layer).__name__}; graph node {node_name!r})"


def _graph_nodes(concrete):
    """(op type, node name) of every node of a concrete function and its library."""
    graph_def = concrete.graph.as_graph_def()
    for node in graph_def.node:
        yield node.op, node.name
    for function in graph_def.library.function:
        for node in function.node_def:
            yield node.op, node.name


def _diagnose_conversion_error(error, model, concrete=None):
    message = str(error)
    op_types = set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message))
    for line in re.findall(r"TF Select ops: ([\w, ]+)", message):
        op_types.update(t.strip() for t in line.split(",") if t.strip())
    for found in re.findall(r"'tf\.(\w+)' op is not supported", message):
        op_types.add(found)
    nodes = {}
    for op_type, node in re.findall(r'fused\["(\w+):", (?:callsite\()?"([^"]+)"', message):
        if op_type in op_types:
            nodes.setdefault(op_type, []).append(node)
    if concrete is not None:
        for op_type, node in _graph_nodes(concrete):
            if op_type in op_types:
                nodes.setdefault(op_type, []).append(node)
    if not op_types:
        first = "\n".join(message.strip().splitlines()[:6])
        return (f"Model {model.name!r} could not be converted to builtin-only TFLite. "
                f"Converter error (first lines):\n{first}")
    lines = []
    for op_type in sorted(op_types):
        where = sorted({_describe_layer(_layer_for_node(model, n), n.split("@")[0])
                        for n in nodes.get(op_type, [])})
        lines.append(f"  - TensorFlow op 'tf.{op_type}' has no TFLite builtin kernel; produced by "
                     + ("; ".join(where) if where else "an unknown layer"))
    return (f"Model {model.name!r} cannot be exported with TFLite builtin ops only (no Flex / "
            "SELECT_TF_OPS, which LiteRT on device cannot run):\n" + "\n".join(lines) +
            "\nGive the layer an export-mode formulation from builtin ops "
            "(keras_acts.ops.export_mode_enabled()) or replace it before export.")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - older installs
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _op_table(model_content):
    """[(opcode name, is_custom, [output tensor names of ops using it])] of a flatbuffer."""
    schema = _schema()
    buf = bytearray(model_content)
    root = schema.Model.GetRootAs(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(root.OperatorCodesLength()):
        oc = root.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        custom = oc.CustomCode()
        custom = custom.decode() if isinstance(custom, bytes) else custom
        is_custom = code == schema.BuiltinOperator.CUSTOM or bool(custom)
        codes.append([f"CUSTOM:{custom}" if is_custom else names.get(code, str(code)),
                      is_custom, []])
    for s in range(root.SubgraphsLength()):
        sub = root.Subgraphs(s)
        for o in range(sub.OperatorsLength()):
            op = sub.Operators(o)
            outs = [sub.Tensors(op.Outputs(k)).Name() for k in range(op.OutputsLength())]
            codes[op.OpcodeIndex()][2].extend(
                n.decode() if isinstance(n, bytes) else n for n in outs)
    return codes


def builtin_op_names(model_content):
    """Sorted operator names used by a TFLite flatbuffer (bytes or path).

    Builtin ops by name ("CONV_2D", "GATHER"), custom and Flex ops as
    "CUSTOM:<code>" (e.g. "CUSTOM:FlexErf").

    Example:
        >>> builtin_op_names(to_tflite(model))
        ['ADD', 'CONV_2D', 'FULLY_CONNECTED', 'LOGISTIC', 'MEAN', 'MUL', ...]
    """
    return sorted({name for name, _, _ in _op_table(_read(model_content))})


def check_builtin_only(model_content, model=None):
    """Raise :class:`ExportError` if the flatbuffer holds any Flex or custom op.

    The message names each offending op code and, when ``model`` is given, the
    layer whose name scope produced it (from the op's output tensor names).
    Returns the sorted list of builtin op names otherwise.

    Example:
        >>> check_builtin_only(open("model.tflite", "rb").read())
        ['ADD', 'CONV_2D', ...]
    """
    table = _op_table(_read(model_content))
    bad = [(name, outs) for name, custom, outs in table if custom]
    if bad:
        lines = []
        for name, outs in bad:
            where = sorted({_describe_layer(_layer_for_node(model, o), o) if model is not None
                            else repr(o) for o in outs})
            lines.append(f"  - {name}: " + "; ".join(where))
        raise ExportError("The converted model contains non-builtin (Flex/custom) ops, which "
                          "LiteRT cannot run without extra delegates:\n" + "\n".join(lines))
    return sorted({name for name, _, _ in table})


# ------------------------------------------------------------------- conversion
def representative_from_array(samples, num_samples=None, batch_size=1):
    """A ``representative_dataset`` callable from an array of model inputs.

    Yields ``[samples[i:i + batch_size]]`` as float32 for the first
    ``num_samples`` samples (all by default). ``uint8`` images are NOT rescaled:
    pass what the model expects.

    Example:
        >>> rep = representative_from_array(x_train[:200])
        >>> to_tflite(model, "m.tflite", "int8", representative_dataset=rep)
    """
    samples = np.asarray(samples)
    n = len(samples) if num_samples is None else min(int(num_samples), len(samples))

    def generate():
        for start in range(0, n, batch_size):
            yield [samples[start:min(start + batch_size, n)].astype(np.float32)]

    return generate


def _normalize_quantization(quantization):
    q = "none" if quantization is None else str(quantization).lower().replace("-", "_")
    if q not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be None or one of {QUANTIZATIONS}; "
                         f"received {quantization!r}.")
    return q


def to_tflite(model, path=None, quantization=None, representative_dataset=None, *,
              input_shape=None, int8_io=False):
    """Convert a Keras model to a builtin-only TFLite flatbuffer (dynamic batch).

    Traces ``model(x, training=False)`` under :func:`keras_acts.ops.export_mode`
    (builtin formulations of every keras_acts op), freezes the variables,
    converts with ``TFLITE_BUILTINS`` only (``TFLITE_BUILTINS_INT8`` for
    ``"int8"``), checks the flatbuffer for Flex/custom ops and writes it to
    ``path`` when given.

    Args:
        model: single-input Keras model (functional, sequential or subclassed
            with ``input_shape``).
        path: where to write the ``.tflite`` file (optional).
        quantization: None/"none", "float16", "dynamic_range" or "int8".
        representative_dataset: for "int8" (required): a callable returning an
            iterator of ``[input_batch]`` lists (TF convention), or an array of
            inputs (wrapped by :func:`representative_from_array`, 1 per step).
        input_shape: input shape without batch, when the model has none.
        int8_io: "int8" only: int8 input/output tensors instead of float32.

    Returns the flatbuffer bytes. Raises :class:`ExportError` naming the op and
    layer when the model contains something that has no builtin TFLite form.

    Example:
        >>> model = keras_acts.models.small_cnn("serf")
        >>> flat = to_tflite(model, "serf.tflite")
        >>> run_tflite(flat, np.zeros([3, 28, 28, 1], np.float32)).shape
        (3, 10)
    """
    q = _normalize_quantization(quantization)
    if q == "int8" and representative_dataset is None:
        raise ValueError("quantization='int8' needs a representative_dataset (calibration "
                         "inputs): a generator function or an array of model inputs.")
    if int8_io and q != "int8":
        raise ValueError("int8_io=True needs quantization='int8'.")
    concrete = export_concrete_function(model, input_shape, q)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if q in ("float16", "dynamic_range", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if q == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if q == "int8":
        if not callable(representative_dataset):
            representative_dataset = representative_from_array(representative_dataset)
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8 if int8_io else tf.float32
        converter.inference_input_type = io
        converter.inference_output_type = io
    try:
        content = converter.convert()
    except Exception as error:  # ConverterError and friends
        raise ExportError(_diagnose_conversion_error(error, model, concrete)) from error
    check_builtin_only(content, model)
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    return content


# ---------------------------------------------------------------------- running
def _read(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    with open(path_or_bytes, "rb") as f:
        return f.read()


def load_interpreter(path_or_bytes, input_shape=None, num_threads=None, xnnpack=True):
    """A LiteRT interpreter for a flatbuffer, input resized to ``input_shape``.

    ``input_shape`` includes the batch (e.g. ``(8, 28, 28, 1)``); tensors are
    allocated. ``num_threads`` None lets LiteRT choose. ``xnnpack`` True (the
    LiteRT default) applies the default XNNPACK delegate; False runs every op
    in LiteRT's builtin reference/optimized kernels
    (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

    Example:
        >>> it = load_interpreter("m.tflite", (1, 224, 224, 3), num_threads=2)
        >>> it.invoke()
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
        >>> y = run_tflite("model.tflite", x_test[:100], num_threads=2)
        >>> y.shape
        (100, 10)
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

    Returns a dict: ``max_abs`` (max |tflite - keras|), ``max_rel`` (``max_abs``
    divided by max |keras|, the tensor-relative error used by the tests),
    ``mean_abs``, ``ref_max_abs``, ``batch`` and, for rank-2 outputs with more
    than one column, ``argmax_agreement`` (fraction of equal top-1 classes).

    Example:
        >>> r = parity_report(model, "model.tflite", x[:64])
        >>> r["max_rel"] < 1e-5
        True
    """
    x = np.asarray(inputs)
    got = run_tflite(path_or_bytes, x, num_threads=num_threads, batch_size=batch_size,
                     xnnpack=xnnpack)
    ref = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
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
        >>> print(format_parity(parity_report(model, flat, x)))
        batch 64: max abs 3.1e-07, max rel 1.2e-07, mean abs 4.0e-08, top-1 agreement 100.00%
    """
    text = (f"batch {report['batch']}: max abs {report['max_abs']:.3g}, "
            f"max rel {report['max_rel']:.3g}, mean abs {report['mean_abs']:.3g}")
    if "argmax_agreement" in report:
        text += f", top-1 agreement {100 * report['argmax_agreement']:.2f}%"
    return text
