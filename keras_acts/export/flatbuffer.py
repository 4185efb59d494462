"""Flatbuffer inspection: which TFLite ops a model uses, and who produced them.

:func:`builtin_op_names` and :func:`op_counts` read the operator table of a
``.tflite`` flatbuffer (the LiteRT schema); :func:`check_builtin_only` raises
:class:`ExportError` naming every Flex/custom op and the Keras layer whose name
scope produced it. No TensorFlow import.
"""

import re


class ExportError(ValueError):
    """Raised when a model cannot be exported to builtin-only TFLite.

    The message names the offending TensorFlow/TFLite op(s) and the Keras
    layer(s) that produced them.

    Example:
        >>> import keras, tensorflow as tf
        >>> from keras_acts.export import to_tflite
        >>> class MyErf(keras.layers.Layer):
        ...     def call(self, x):
        ...         return tf.math.erf(x)
        >>> model = keras.Sequential([keras.Input((2,)), MyErf(name="my_erf")])
        >>> try:
        ...     to_tflite(model)
        ... except ExportError as e:
        ...     print("my_erf" in str(e) and "Erf" in str(e))
        True
    """


def _layers(model):
    from keras_acts.registry import iter_layers

    return list(iter_layers(model))


def layer_for_node(model, node_name):
    """Best guess of the layer whose name scope contains graph node ``node_name``.

    The innermost scope of ``node_name`` (``"model/my_layer/Erf"``) that names one
    of the model's layers (nested ones included; a ``_<n>`` suffix ignored), or None.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="d")])
        >>> layer_for_node(m, "sequential/d/MatMul").name
        'd'
    """
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


def describe_layer(layer, node_name):
    """Text naming ``layer`` (or only the graph node when None) for error messages.

    Example:
        >>> describe_layer(None, "x/Erf")
        "graph node 'x/Erf' (not inside a known layer)"
    """
    if layer is None:
        return f"graph node {node_name!r} (not inside a known layer)"
    return f"layer {layer.name!r} ({type(layer).__name__}; graph node {node_name!r})"


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
        >>> import keras, keras_acts
        >>> from keras_acts.export import to_tflite
        >>> model = keras.Sequential([keras.Input((3,)), keras_acts.AconC()])
        >>> builtin_op_names(to_tflite(model))
        ['ADD', 'LOGISTIC', 'MUL']
    """
    return sorted({name for name, _, _ in _op_table(_read(model_content))})


def op_counts(model_content):
    """``{operator name: number of operators}`` of a TFLite flatbuffer (bytes or path).

    Counts every operator of every subgraph; Flex/custom ops as "CUSTOM:<code>".

    Example:
        >>> import keras, keras_acts
        >>> from keras_acts.export import to_tflite
        >>> model = keras.Sequential([keras.Input((3,)), keras_acts.AconC()])
        >>> op_counts(to_tflite(model))
        {'MUL': 2, 'LOGISTIC': 1, 'ADD': 1}
    """
    return {name: len(outputs) for name, _, outputs in _op_table(_read(model_content))
            if outputs}


def check_builtin_only(model_content, model=None):
    """Raise :class:`ExportError` if the flatbuffer holds any Flex or custom op.

    The message names each offending op code and, when ``model`` is given, the
    layer whose name scope produced it (from the op's output tensor names).
    Returns the sorted list of builtin op names otherwise.

    Example:
        >>> import keras, keras_acts
        >>> from keras_acts.export import to_tflite
        >>> model = keras.Sequential([keras.Input((3,)), keras_acts.Serf()])
        >>> "GELU" in check_builtin_only(to_tflite(model))
        True
    """
    table = _op_table(_read(model_content))
    bad = [(name, outs) for name, custom, outs in table if custom]
    if bad:
        lines = []
        for name, outs in bad:
            where = sorted({describe_layer(layer_for_node(model, o), o) if model is not None
                            else repr(o) for o in outs})
            lines.append(f"  - {name}: " + "; ".join(where))
        raise ExportError("The converted model contains non-builtin (Flex/custom) ops, which "
                          "LiteRT cannot run without extra delegates:\n" + "\n".join(lines))
    return sorted({name for name, _, _ in table})


def _read(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    with open(path_or_bytes, "rb") as f:
        return f.read()


