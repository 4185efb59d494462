"""Conversion: Keras model -> builtin-only TFLite flatbuffer (:func:`to_tflite`).

The model is traced as a ``tf.function`` (dynamic batch dimension) inside
:func:`keras_acts.ops.export_mode`, so every keras_acts op emits its
inference-only, builtin-op formulation (``ops/builtin/``: Serf on the builtin
GELU op, PWLU as knot-major hinges summed by one depthwise convolution (float
and int8), ACON-C/Meta-ACON plain arithmetic (ACON-C's first multiply written to
fold into a preceding convolution; per-channel 1x1 depthwise convolutions for
int8; Meta-ACON's generator batch norms folded into its dense layers); the family: N-PWLU as a broadcast hinge sum over its
knots -- a clipped-interval sum for int8 --, ACON-A/B as ACON-C, FReLU /
ACON-FReLU with their batch-normed depthwise conv folded into one
DEPTHWISE_CONV_2D). The variables are frozen into constants, which lets the
converter fold PWLU's tables and PWLU's phase switch.
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
  the float form, whose every requantized step would cost accuracy. Input and
  output stay **float32** by default
  (QUANTIZE / DEQUANTIZE at the ends, so callers feed the same arrays as to the
  Keras model); ``int8_io=True`` makes them int8 (``run_tflite`` then quantizes
  and dequantizes with the tensors' scale and zero point).
"""

import os
import re

import numpy as np
import tensorflow as tf

from keras_acts import _private
from keras_acts import ops
from keras_acts.export.flatbuffer import ExportError
from keras_acts.export.flatbuffer import check_builtin_only
from keras_acts.export.flatbuffer import describe_layer
from keras_acts.export.flatbuffer import layer_for_node

QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")


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
        >>> from keras_acts.models import small_cnn
        >>> fn = export_concrete_function(small_cnn("serf", width=4))
        >>> fn.inputs[0].shape
        TensorShape([None, 28, 28, 1])
    """
    spec = _input_spec(model, input_shape)
    with ops.export_mode(quantization=quantization):
        fn = tf.function(lambda inputs: model(inputs, training=False))
        concrete = fn.get_concrete_function(spec)
    return _private.convert_variables_to_constants(concrete)


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
        where = sorted({describe_layer(layer_for_node(model, n), n.split("@")[0])
                        for n in nodes.get(op_type, [])})
        lines.append(f"  - TensorFlow op 'tf.{op_type}' has no TFLite builtin kernel; produced by "
                     + ("; ".join(where) if where else "an unknown layer"))
    return (f"Model {model.name!r} cannot be exported with TFLite builtin ops only (no Flex / "
            "SELECT_TF_OPS, which LiteRT on device cannot run):\n" + "\n".join(lines) +
            "\nGive the layer an export-mode formulation from builtin ops "
            "(keras_acts.ops.export_mode_enabled()) or replace it before export.")


def representative_from_array(samples, num_samples=None, batch_size=1):
    """A ``representative_dataset`` callable from an array of model inputs.

    Yields ``[samples[i:i + batch_size]]`` as float32 for the first
    ``num_samples`` samples (all by default). ``uint8`` images are NOT rescaled:
    pass what the model expects.

    Example:
        >>> rep = representative_from_array(np.zeros((5, 4)), batch_size=2)
        >>> [batch[0].shape for batch in rep()]
        [(2, 4), (2, 4), (1, 4)]
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


def converter_options(quantization=None, representative_dataset=None, int8_io=False):
    """``(quantization, {converter attribute: value})`` for a quantization mode.

    The TFLite converter settings of :func:`to_tflite` and :func:`export_litert`
    (where they are Keras' documented ``format="litert"`` keyword arguments):
    builtin ops only (``TFLITE_BUILTINS``; ``TFLITE_BUILTINS_INT8`` for "int8"),
    ``Optimize.DEFAULT`` for every quantization, float16 weights for
    "float16", the representative dataset and float32 (or int8) input/output
    for "int8". ``quantization`` comes back normalised ("none", ...).

    Example:
        >>> q, options = converter_options("float16")
        >>> q, sorted(options), options["target_spec"]["supported_types"]
        ('float16', ['optimizations', 'target_spec'], [tf.float16])
    """
    q = _normalize_quantization(quantization)
    if q == "int8" and representative_dataset is None:
        raise ValueError("quantization='int8' needs a representative_dataset (calibration "
                         "inputs): a generator function or an array of model inputs.")
    if int8_io and q != "int8":
        raise ValueError("int8_io=True needs quantization='int8'.")
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if q in ("float16", "dynamic_range", "int8"):
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if q == "float16":
        options["target_spec"]["supported_types"] = [tf.float16]
    if q == "int8":
        if not callable(representative_dataset):
            representative_dataset = representative_from_array(representative_dataset)
        options["representative_dataset"] = representative_dataset
        options["target_spec"]["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8 if int8_io else tf.float32
        options["inference_input_type"] = io
        options["inference_output_type"] = io
    return q, options


def export_litert(model, filepath, quantization=None, representative_dataset=None, *,
                  int8_io=False, input_signature=None, **converter_kwargs):
    """Keras' own ``model.export(filepath, format="litert")``, builtin ops only.

    Calls the public Keras exporter inside :func:`keras_acts.ops.export_mode`
    (so every keras_acts layer traces its builtin formulation, exactly as in
    :func:`to_tflite`) with the converter settings of
    :func:`converter_options` passed as Keras' documented LiteRT keyword
    arguments (``target_spec``, ``optimizations``, ``representative_dataset``,
    ``inference_input_type`` ...; ``converter_kwargs`` override them). The
    written flatbuffer is then checked for Flex/custom ops
    (:class:`ExportError` naming op and layer). TensorFlow backend (Keras'
    LiteRT exporter uses it); ``filepath`` must end in ``.tflite``. Returns the
    flatbuffer bytes.

    A plain ``model.export(path, format="litert", **kwargs)`` traces the
    builtin formulations too (export mode recognises Keras' exporter and reads
    the quantization from ``kwargs``, see :mod:`keras_acts.ops.export_mode`);
    this function adds builtin-only op sets and the Flex/custom check.

    Example:
        >>> import keras, keras_acts, os, tempfile
        >>> model = keras.Sequential([keras.Input((4,)), keras_acts.Serf()])
        >>> path = os.path.join(tempfile.mkdtemp(), "serf.tflite")
        >>> flat = export_litert(model, path)
        >>> "GELU" in check_builtin_only(flat)
        True
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError("export_litert uses Keras' LiteRT exporter on the TensorFlow backend; "
                         f"the backend is {keras.backend.backend()!r}. Use to_tflite, or "
                         "set KERAS_BACKEND=tensorflow.")
    q, options = converter_options(quantization, representative_dataset, int8_io)
    options.update(converter_kwargs)
    with ops.export_mode(quantization=q):
        model.export(os.fspath(filepath), format="litert", input_signature=input_signature,
                     verbose=False, **options)
    with open(filepath, "rb") as f:
        content = f.read()
    check_builtin_only(content, model)
    return content


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
        >>> from keras_acts.export import run_tflite
        >>> from keras_acts.models import small_cnn
        >>> model = small_cnn("serf", width=4)
        >>> flat = to_tflite(model)     # or to_tflite(model, "serf.tflite")
        >>> run_tflite(flat, np.zeros([3, 28, 28, 1], np.float32)).shape
        (3, 10)
    """
    q, options = converter_options(quantization, representative_dataset, int8_io)
    concrete = export_concrete_function(model, input_shape, q)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    for name, value in options.items():
        if name == "target_spec":
            for key, item in value.items():
                setattr(converter.target_spec, key, item)
        else:
            setattr(converter, name, value)
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


