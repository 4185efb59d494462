"""Guard test of keras_acts._private: every private Keras / TensorFlow internal the
package relies on still exists and still means what we use it for.

When a Keras or TensorFlow upgrade breaks one, the failure names the function in
keras_acts/_private.py and the internal that changed, so the fix is one function.
"""

import inspect

import keras
import numpy as np
import pytest

from keras_acts import _private
from keras_acts import registry


def _fail(function, internal, detail):
    pytest.fail(f"keras_acts._private.{function} relies on {internal}, which changed under "
                f"Keras {keras.__version__} ({keras.backend.backend()}): {detail}. Update "
                f"keras_acts/_private.py.{function}.", pytrace=False)


def _check(function, internal, call):
    try:
        return call()
    except (AttributeError, ImportError, KeyError, TypeError, ValueError) as err:
        _fail(function, internal, f"{type(err).__name__}: {err}")


def _graph():
    a = keras.Input((3,), name="a")
    b = keras.Input((3,), name="b")
    x = keras.layers.Dense(3, name="fc")(a)
    y = keras.ops.relu(x) + b
    return keras.Model({"a": a, "b": b}, [y, x], name="graph"), x, y


def test_every_private_function_is_guarded_here():
    guarded = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    public = {name for name, obj in vars(_private).items()
              if inspect.isfunction(obj) and obj.__module__ == _private.__name__
              and not name.startswith("_")}
    assert public <= guarded, f"no guard test for {sorted(public - guarded)}"


def test_functional_class():
    cls = _check("functional_class", "keras.src.models.functional.Functional",
                 _private.functional_class)
    model, _, _ = _graph()
    if not (isinstance(cls, type) and issubclass(cls, keras.Model) and type(model) is cls):
        _fail("functional_class", "keras.src.models.functional.Functional",
              f"keras.Model(inputs, outputs) is a {type(model).__name__}, not {cls!r}")


def test_is_functional():
    model, _, _ = _graph()
    assert _private.is_functional(model)
    assert not _private.is_functional(keras.layers.Dense(2))


def test_functional_graph():
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    graph = _check("functional_graph", "Sequential._functional",
                   lambda: _private.functional_graph(seq))
    if not _private.is_functional(graph) or graph.layers[-1] is not seq.layers[-1]:
        _fail("functional_graph", "Sequential._functional",
              f"expected the functional graph of the Sequential's layers, got {graph!r}")
    assert _private.functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None


def test_nodes_by_depth():
    model, x, y = _graph()
    by_depth = _check("nodes_by_depth", "Functional._nodes_by_depth",
                      lambda: _private.nodes_by_depth(model))
    if not isinstance(by_depth, dict) or not all(isinstance(d, int) for d in by_depth):
        _fail("nodes_by_depth", "Functional._nodes_by_depth", f"not {{int: [Node]}}: {by_depth!r}")
    ops = [n.operation.name for d in sorted(by_depth, reverse=True) for n in by_depth[d]]
    # Inputs first, then Dense, the relu op, the add op (topological when read deepest first).
    assert ops.index("fc") < ops.index(_private.keras_history(y).operation.name), ops
    assert {"a", "b", "fc"} <= set(ops), ops
    outputs = [t for n in by_depth[0] for t in n.outputs]
    assert any(t is y for t in outputs), "depth 0 should hold the output nodes"


def test_input_structure():
    model, _, _ = _graph()
    struct = _check("input_structure", "Functional._inputs_struct",
                    lambda: _private.input_structure(model))
    if not isinstance(struct, dict) or sorted(struct) != ["a", "b"]:
        _fail("input_structure", "Functional._inputs_struct",
              f"expected the inputs dict given to keras.Model, got {struct!r}")


def test_output_structure():
    model, x, y = _graph()
    struct = _check("output_structure", "Functional._outputs_struct",
                    lambda: _private.output_structure(model))
    if not isinstance(struct, list) or struct[0] is not y or struct[1] is not x:
        _fail("output_structure", "Functional._outputs_struct",
              f"expected the outputs list given to keras.Model, got {struct!r}")


def test_keras_history():
    _, x, _ = _graph()
    history = _check("keras_history", "KerasTensor._keras_history",
                     lambda: _private.keras_history(x))
    try:
        operation, node_index, tensor_index = history
        name = operation.name
    except (TypeError, ValueError, AttributeError) as err:
        _fail("keras_history", "KerasTensor._keras_history", f"{history!r}: {err}")
    assert (name, node_index, tensor_index) == ("fc", 0, 0)
    assert history.operation is operation
    assert _private.keras_history(np.zeros(2)) is None


def test_sublayers():
    layer = registry.get("meta_acon")
    subs = _check("sublayers", "Layer._layers", lambda: _private.sublayers(layer))
    if [type(s).__name__ for s in subs] != ["GeneratorBatchNorm", "GeneratorBatchNorm"] \
            or subs[0] is not layer.bn1:
        _fail("sublayers", "Layer._layers", f"expected MetaAcon's bn1, bn2; got {subs!r}")


def test_inbound_nodes():
    dense = keras.layers.Dense(2)
    dense(keras.Input((3,)))
    dense(keras.Input((3,)))
    nodes = _check("inbound_nodes", "Layer._inbound_nodes",
                   lambda: _private.inbound_nodes(dense))
    if len(nodes) != 2 or any(n.operation is not dense for n in nodes):
        _fail("inbound_nodes", "Layer._inbound_nodes", f"expected 2 nodes of the layer: {nodes!r}")


def test_is_keras_op():
    _, x, y = _graph()
    add = _private.keras_history(y).operation
    if not _private.is_keras_op(add, "Add"):
        _fail("is_keras_op", f"module prefix {_private.KERAS_OP_MODULE_PREFIX!r}",
              f"x + y records {type(add).__module__}.{type(add).__name__}")
    assert not _private.is_keras_op(add, "Multiply")
    assert not _private.is_keras_op(_private.keras_history(x).operation)  # a Dense layer


def test_is_activation_op():
    x = keras.Input((3,))
    for fn in (keras.ops.relu, keras.ops.silu, keras.activations.gelu):
        op = _private.keras_history(fn(x)).operation
        if not _private.is_activation_op(op):
            _fail("is_activation_op", f"modules {_private.ACTIVATION_OP_MODULES}",
                  f"{fn.__name__}(x) records {type(op).__module__}.{type(op).__name__}")
    assert not _private.is_activation_op(_private.keras_history(x + 1.0).operation)
    assert not _private.is_activation_op(keras.layers.ReLU())


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow only")
def test_convert_variables_to_constants():
    import tensorflow as tf

    v = tf.Variable(2.0)
    fn = tf.function(lambda t: t * v).get_concrete_function(tf.TensorSpec([], tf.float32))
    frozen = _check("convert_variables_to_constants",
                    "tensorflow.python.framework.convert_to_constants",
                    lambda: _private.convert_variables_to_constants(fn))
    assert not frozen.variables
    assert float(frozen(tf.constant(3.0))[0]) == 6.0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow only")
def test_litert_ops_details():
    pytest.importorskip("ai_edge_litert")
    import keras_acts
    from keras_acts.export import load_interpreter
    from keras_acts.export import to_tflite

    flat = to_tflite(keras.Sequential([keras.Input((4,)), keras_acts.Serf()]))
    ops = _check("litert_ops_details", "ai_edge_litert Interpreter._get_ops_details",
                 lambda: _private.litert_ops_details(load_interpreter(flat, (1, 4))))
    names = [op["op_name"] for op in ops]
    assert "GELU" in names and names.count("DELEGATE") == 1, names
    assert all({"index", "op_name", "inputs", "outputs"} <= set(op) for op in ops)


def test_compile_loss():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
    assert _private.compile_loss(model) == (None, None)
    model.compile(loss={"out": "mse"})
    container, user_loss = _check("compile_loss", "Model._compile_loss._user_loss",
                                  lambda: _private.compile_loss(model))
    assert isinstance(user_loss, dict) and set(user_loss) == {"out"}
    assert container.built is False
    container.build({"out": keras.ops.zeros((1, 1))}, {"out": keras.ops.zeros((1, 1))})
    assert container.built


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="Keras' LiteRT exporter: TensorFlow")
def test_keras_litert_export_kwargs(tmp_path):
    """While model.export(format="litert", **kwargs) traces the model, the layer sees the
    exporter's keyword arguments; outside it, None."""
    import os

    import tensorflow as tf

    module, cls, method, attribute = _private.LITERT_EXPORTER
    exporter = _check("keras_litert_export_kwargs", f"{module}.{cls}.{method}",
                      lambda: getattr(getattr(__import__(module, fromlist=[cls]), cls), method))
    if not callable(exporter):
        _fail("keras_litert_export_kwargs", f"{module}.{cls}.{method}", "not a method")
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen.append(_private.keras_litert_export_kwargs())
            return x

    model = keras.Sequential([keras.Input((3,)), Probe()])
    assert _private.keras_litert_export_kwargs() is None
    model.predict(np.zeros((2, 3), "float32"), verbose=0)
    assert seen and all(s is None for s in seen), seen
    seen.clear()
    model.export(os.path.join(tmp_path, "m.tflite"), format="litert", verbose=False,
                 optimizations=[tf.lite.Optimize.DEFAULT])
    if not seen or seen[0] is None:
        _fail("keras_litert_export_kwargs", f"{module}.{cls}.{method} / .{attribute}",
              f"the model was traced outside that method's frame (saw {seen!r})")
    assert seen[0] == {"optimizations": [tf.lite.Optimize.DEFAULT]}, seen
