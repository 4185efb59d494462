"""The vocabulary of activation kinds and the classification of single graph nodes.

A *kind* is the canonical name of an activation function (``"relu"``,
``"relu6"``, ``"swish"``, ``"hard_swish"``, ...; :func:`canonical_kind` maps
aliases such as ``"silu"`` onto them). :func:`classify` tells whether one node
of a functional graph applies an activation, and how (``"layer"``, ``"fused"``
or ``"op"``); the other helpers describe a node's operation (merge, multiply,
scalar operand, kernel size, channel axis) for :mod:`keras_acts.backbones.graph`.

A new activation kind is one more name in :data:`HIDDEN_KINDS` (replaced by
default) or :data:`OTHER_KINDS` (replaced only when asked for), plus an alias in
``_ALIASES`` when Keras spells it differently.

Example:
    >>> canonical_kind("SiLU"), "hard_swish" in HIDDEN_KINDS
    ('swish', True)
"""

import keras

from keras_acts import _private

# Canonical activation kinds that are hidden-layer nonlinearities: the default
# of ``match``. Gates and output activations (sigmoid, hard_sigmoid, softmax,
# tanh, linear, ...) are only replaced when asked for by name or predicate.
HIDDEN_KINDS = ("relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "swish",
                "hard_swish", "mish")
OTHER_KINDS = ("sigmoid", "hard_sigmoid", "tanh", "softplus", "softsign", "softmax",
               "log_softmax", "exponential", "linear", "glu", "sparse_plus",
               "squareplus", "tanh_shrink", "hard_tanh", "hard_shrink", "soft_shrink",
               "threshold", "sparsemax", "sparse_sigmoid", "silu")
KINDS = HIDDEN_KINDS + tuple(k for k in OTHER_KINDS if k != "silu")

_ALIASES = {"silu": "swish", "hard_silu": "hard_swish", "hardswish": "hard_swish",
            "hardsilu": "hard_swish", "leakyrelu": "leaky_relu",
            "hardsigmoid": "hard_sigmoid", "hardtanh": "hard_tanh",
            "logsoftmax": "log_softmax", "tanhshrink": "tanh_shrink",
            "hardshrink": "hard_shrink", "softshrink": "soft_shrink",
            "sparseplus": "sparse_plus", "sparsesigmoid": "sparse_sigmoid"}

# Layers whose `activation=` argument is applied last in `call()`, so that it can
# be split off into a separate layer without changing the function.
FUSABLE = tuple(getattr(keras.layers, n) for n in (
    "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "Dense", "EinsumDense") if hasattr(keras.layers, n))

# Single-input layers looked through when finding the op that produced a site's
# input (normalisation, padding, noise): "the activation after the 3x3 conv"
# is Conv -> BatchNormalization -> Activation.
TRANSPARENT = tuple(getattr(keras.layers, n) for n in (
    "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "Identity") if hasattr(keras.layers, n))

def canonical_kind(name):
    """Canonical activation kind for a name: lower-case, ``silu`` -> ``swish``,
    ``hard_silu`` -> ``hard_swish``; ``None`` stays ``None``.

    Example:
        >>> canonical_kind("SiLU"), canonical_kind("hard_silu")
        ('swish', 'hard_swish')
    """
    if name is None:
        return None
    key = str(name).strip().lower().replace("-", "_")
    return _ALIASES.get(key, _ALIASES.get(key.replace("_", ""), key))


def _node(operation):
    """The node at which ``operation`` was called last (for the examples)."""
    return _private.inbound_nodes(operation)[-1]


def is_op(node, *class_names):
    """True when ``node`` runs one of Keras' own op classes named ``class_names``
    (``x + y`` on symbolic tensors records an ``Add`` op, not a layer).

    Example:
        >>> x = keras.Input((3,))
        >>> is_op(_node(_private.keras_history(x + 1.0).operation), "Add")
        True
    """
    return _private.is_keras_op(node.operation, *class_names)


def is_merge(node):
    """True for a residual merge: an ``Add`` layer or op with two or more inputs.

    Example:
        >>> a, b = keras.Input((3,)), keras.Input((3,))
        >>> add = keras.layers.Add()
        >>> _ = add([a, b])
        >>> is_merge(_node(add))
        True
    """
    return (isinstance(node.operation, keras.layers.Add) or is_op(node, "Add")) and len(
        node.input_tensors) >= 2


def is_multiply(node):
    """True for a ``Multiply`` layer or op.

    Example:
        >>> a = keras.Input((3,))
        >>> mul = keras.layers.Multiply()
        >>> _ = mul([a, a])
        >>> is_multiply(_node(mul))
        True
    """
    return isinstance(node.operation, keras.layers.Multiply) or is_op(node, "Multiply")


def scalar_operand(node):
    """The single Python/NumPy scalar argument of a binary op node, else None.

    Example:
        >>> x = keras.Input((3,))
        >>> scalar_operand(_node(_private.keras_history(x + 3).operation))
        3.0
    """
    values = [a for a in node.arguments.args if not isinstance(a, keras.KerasTensor)]
    if len(values) != 1:
        return None
    try:
        return float(values[0])
    except (TypeError, ValueError):
        return None


def close(value, target):
    """True when ``value`` (possibly None) equals ``target`` to 1e-6 relative.

    Example:
        >>> close(0.1666667, 1 / 6), close(None, 6.0)
        (True, False)
    """
    return value is not None and abs(value - target) < 1e-6 * max(1.0, abs(target))


def _function_kind(fn):
    if isinstance(fn, keras.layers.Layer):
        return None
    return canonical_kind(getattr(fn, "__name__", None))


def _relu_kind(max_value, negative_slope, threshold):
    if threshold not in (None, 0, 0.0):
        return None
    if negative_slope:
        return "leaky_relu" if max_value is None else None
    if max_value is None:
        return "relu"
    return "relu6" if float(max_value) == 6.0 else None


def activation_kind(op):
    """Activation kind computed by a single-input operation, or None.

    Example:
        >>> activation_kind(keras.layers.ReLU(max_value=6)), activation_kind(keras.layers.Dense(2))
        ('relu6', None)
    """
    if isinstance(op, keras.layers.Activation):
        return _function_kind(op.activation)
    if isinstance(op, keras.layers.ReLU) or type(op).__name__ == "ReLU" and (
            _private.is_activation_op(op)):
        return _relu_kind(getattr(op, "max_value", None), getattr(op, "negative_slope", 0),
                          getattr(op, "threshold", 0))
    if isinstance(op, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(op, keras.layers.ELU):
        return "elu"
    if _private.is_activation_op(op):
        kind = canonical_kind(type(op).__name__)
        return kind if kind in KINDS else None
    return None


def classify(node):
    """``(kind, pattern)`` when ``node`` is an activation site, else None.

    ``pattern``: ``"layer"`` (an activation layer), ``"fused"`` (the
    ``activation=`` of a Conv / Dense layer) or ``"op"`` (an activation op).

    Example:
        >>> dense = keras.layers.Dense(2, activation="gelu")
        >>> _ = dense(keras.Input((3,)))
        >>> classify(_node(dense))
        ('gelu', 'fused')
    """
    op = node.operation
    if isinstance(op, keras.Model) or len(node.input_tensors) != 1 or len(node.outputs) != 1:
        return None
    if isinstance(op, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                       keras.layers.ELU)):
        return activation_kind(op), "layer"
    if isinstance(op, FUSABLE):
        kind = _function_kind(op.activation)
        if kind == "linear":
            return None
        return kind, "fused"
    if not isinstance(op, keras.layers.Layer):
        kind = activation_kind(op)
        if kind is not None:
            return kind, "op"
    return None


def kernel_size(op):
    """The kernel size of a convolution as a tuple, ``None`` for other operations.

    Example:
        >>> kernel_size(keras.layers.Conv2D(4, 3)), kernel_size(keras.layers.Dense(2))
        ((3, 3), None)
    """
    kernel = getattr(op, "kernel_size", None)
    if kernel is None:
        return None
    return tuple(kernel) if isinstance(kernel, (tuple, list)) else (int(kernel),)


def channel_axis(op):
    """1 after a channels-first layer, else -1.

    Example:
        >>> channel_axis(keras.layers.Conv2D(4, 3, data_format="channels_first"))
        1
    """
    data_format = getattr(op, "data_format", None)
    return 1 if data_format == "channels_first" else -1
