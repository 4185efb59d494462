"""The one place where keras_acts reaches into private Keras / TensorFlow internals.

Keras 3 has no public API for a few things graph surgery, layer walking and
constant folding need: the ``Functional`` class, a functional graph's nodes by
depth and its input/output structures, the node that produced a symbolic tensor,
a layer's tracked sub-layers, telling Keras' own op classes apart from user
code, and TensorFlow's variables-to-constants conversion. Every such access is
a function here, and ``tests/test_private.py`` calls each one against the
installed Keras / TensorFlow, so an upgrade that renames or removes one fails
that test, naming the function and the attribute that changed, instead of
failing somewhere deep inside a swap or an export.

Everything else in the package uses public API (for example
``optimizer.learning_rate`` evaluates a schedule at the current iteration).

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> is_functional(functional_graph(model))
    True
"""

import importlib
import sys

import keras

# Where Keras 3 defines the activation ops that can appear as nodes of a
# functional graph (``keras.ops.relu(x)``, ``keras.activations.silu(x)``).
ACTIVATION_OP_MODULES = ("keras.src.ops.nn", "keras.src.activations.activations")
# Prefix of the modules that define Keras' own (non-layer) op classes.
KERAS_OP_MODULE_PREFIX = "keras.src.ops"
# The class of ``keras.Model(inputs, outputs)`` objects; no public alias in Keras 3.
FUNCTIONAL_CLASS = ("keras.src.models.functional", "Functional")
# Keras' LiteRT exporter (``model.export(path, format="litert")``): the module, the
# class, the method on the stack while it traces the model (ExportArchive endpoint
# -> SavedModel -> converter), and the attribute holding the converter keyword
# arguments the user passed to ``model.export``.
LITERT_EXPORTER = ("keras.src.export.litert", "LiteRTExporter", "_convert_to_tflite", "kwargs")


def functional_class():
    """The class Keras gives functional models (``keras.Model(inputs, outputs)``).

    Example:
        >>> functional_class().__name__
        'Functional'
    """
    module, name = FUNCTIONAL_CLASS
    return getattr(importlib.import_module(module), name)


def is_functional(model):
    """True for a functional model (including keras-hub / keras-cv backbones).

    Example:
        >>> import keras
        >>> inputs = keras.Input((3,))
        >>> is_functional(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
        True
    """
    return isinstance(model, functional_class())


def functional_graph(sequential):
    """The functional graph inside a built ``keras.Sequential`` (``None`` before
    it has an input shape).

    Example:
        >>> import keras
        >>> functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None
        True
    """
    return getattr(sequential, "_functional", None)


def nodes_by_depth(function):
    """``{depth: [node, ...]}`` of a functional model (depth 0: the outputs).

    Example:
        >>> import keras
        >>> inputs = keras.Input((3,))
        >>> sorted(nodes_by_depth(keras.Model(inputs, keras.layers.Dense(2)(inputs))))
        [0, 1]
    """
    return function._nodes_by_depth


def input_structure(function):
    """The nested structure of a functional model's inputs, as it was given.

    Example:
        >>> import keras
        >>> a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
        >>> model = keras.Model({"a": a, "b": b}, keras.layers.Add()([a, b]))
        >>> sorted(input_structure(model))
        ['a', 'b']
    """
    return function._inputs_struct


def output_structure(function):
    """The nested structure of a functional model's outputs, as it was given.

    Example:
        >>> import keras
        >>> inputs = keras.Input((3,))
        >>> model = keras.Model(inputs, [inputs, keras.layers.Dense(2)(inputs)])
        >>> type(output_structure(model)).__name__
        'list'
    """
    return function._outputs_struct


def keras_history(tensor):
    """``(operation, node_index, tensor_index)`` of a symbolic tensor, or ``None``.

    Example:
        >>> import keras
        >>> keras_history(keras.Input((3,), name="x")).operation.name
        'x'
    """
    return getattr(tensor, "_keras_history", None)


def sublayers(layer):
    """The layers ``layer`` tracks directly as attributes (one level, in order).

    Example:
        >>> from keras_acts import MetaAcon
        >>> [type(l).__name__ for l in sublayers(MetaAcon())]
        ['GeneratorBatchNorm', 'GeneratorBatchNorm']
    """
    return list(layer._layers)


def inbound_nodes(layer):
    """The graph nodes at which ``layer`` has been called.

    Example:
        >>> import keras
        >>> dense = keras.layers.Dense(2)
        >>> _ = dense(keras.Input((3,)))
        >>> len(inbound_nodes(dense))
        1
    """
    return list(layer._inbound_nodes)


def is_keras_op(operation, *class_names):
    """True when ``operation`` is one of Keras' own (non-layer) op objects, e.g.
    the ``Add`` a ``x + y`` on symbolic tensors records; with ``class_names``,
    only those classes.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> is_keras_op(keras_history(x + 1.0).operation, "Add")
        True
    """
    if isinstance(operation, keras.layers.Layer):
        return False
    cls = type(operation)
    return cls.__module__.startswith(KERAS_OP_MODULE_PREFIX) and (
        not class_names or cls.__name__ in class_names)


def is_activation_op(operation):
    """True when ``operation`` is a Keras activation op object (``ReLU``,
    ``Silu``, ...) recorded by ``keras.ops.relu(x)`` / ``keras.activations.*``.

    Example:
        >>> import keras
        >>> x = keras.Input((3,))
        >>> is_activation_op(keras_history(keras.ops.relu(x)).operation)
        True
    """
    return (not isinstance(operation, keras.layers.Layer)
            and type(operation).__module__ in ACTIVATION_OP_MODULES)


def keras_litert_export_kwargs():
    """The converter keyword arguments of the Keras LiteRT export running on this
    thread (``model.export(path, format="litert", **kwargs)``), or ``None``.

    Keras traces ``model.__call__(training=False)`` inside
    ``LiteRTExporter._convert_to_tflite`` with nothing a layer could tell apart
    from ``predict``; this looks for that method's frame on the current stack
    (tracing is synchronous) and returns a copy of the exporter's ``kwargs``
    (``optimizations``, ``representative_dataset``, ``target_spec`` ...).
    :func:`keras_acts.ops.export_mode_enabled` uses it so that a plain
    ``model.export(format="litert")`` traces the builtin formulations.
    Cheap outside an export: ``None`` at once unless Keras' LiteRT module is
    loaded, then a walk up the Python stack.

    Example:
        >>> keras_litert_export_kwargs() is None   # not inside model.export
        True
    """
    module_name, class_name, method_name, attribute = LITERT_EXPORTER
    module = sys.modules.get(module_name)
    method = getattr(getattr(module, class_name, None), method_name, None)
    code = getattr(method, "__code__", None)
    if code is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return dict(getattr(frame.f_locals.get("self"), attribute, None) or {})
        frame = frame.f_back
    return None


def convert_variables_to_constants(concrete_function):
    """A TensorFlow concrete function with every variable folded into a constant
    (``tensorflow.python.framework.convert_to_constants``; TensorFlow only).

    Example:
        >>> import tensorflow as tf
        >>> v = tf.Variable(2.0)
        >>> fn = tf.function(lambda x: x * v).get_concrete_function(tf.TensorSpec([]))
        >>> float(convert_variables_to_constants(fn)(tf.constant(3.0))[0])
        6.0
    """
    from tensorflow.python.framework.convert_to_constants import (  # noqa: PLC0415
        convert_variables_to_constants_v2)

    return convert_variables_to_constants_v2(concrete_function)


def litert_ops_details(interpreter):
    """The nodes of a LiteRT interpreter after delegation: a list of dicts with
    ``index``, ``op_name``, ``inputs``, ``outputs`` (``Interpreter._get_ops_details``;
    the XNNPACK delegate's partitions appear as ``op_name == "DELEGATE"``).

    Example:
        >>> import keras, keras_acts
        >>> from keras_acts.export import load_interpreter, to_tflite
        >>> flat = to_tflite(keras.Sequential([keras.Input((4,)), keras_acts.Serf()]))
        >>> ops = litert_ops_details(load_interpreter(flat, (1, 4)))
        >>> [op["op_name"] for op in ops][-1]
        'DELEGATE'
    """
    return interpreter._get_ops_details()


def compile_loss(model):
    """A compiled model's loss container and the user's loss structure:
    ``(model._compile_loss, model._compile_loss._user_loss)``, or ``(None, None)``
    before ``compile``. Keras builds the container lazily on the first loss call;
    a ``strategy.run`` loop must build it outside the replicated step.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(loss={"dense": "mse"})
        >>> container, user_loss = compile_loss(model)
        >>> type(user_loss).__name__, container.built
        ('dict', False)
    """
    container = getattr(model, "_compile_loss", None)
    if container is None:
        return None, None
    return container, container._user_loss
