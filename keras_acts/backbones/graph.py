"""The graph view: one functional graph's nodes in topological order, and the
activation sites found in them (:class:`ActivationSite`), with where each sits
in the residual structure.

Node-level classification comes from :mod:`keras_acts.backbones.kinds`; this
module adds what needs the whole graph: producers and consumers, the
hard-sigmoid / hard-swish sub-graphs, residual blocks and unique names.

Example:
    >>> import keras
    >>> inputs = keras.Input((8,))
    >>> x = keras.layers.Dense(4, activation="relu", name="fc")(inputs)
    >>> view = GraphView(keras.Model(inputs, keras.layers.ReLU(name="act")(x)))
    >>> [(s.name, s.kind, s.pattern) for s in view.sites]
    [('fc_act', 'relu', 'fused'), ('act', 'relu', 'layer')]
"""

import collections
import dataclasses
from typing import Any
from typing import Optional

import keras

from keras_acts import _private
from keras_acts.backbones.kinds import TRANSPARENT
from keras_acts.backbones.kinds import activation_kind
from keras_acts.backbones.kinds import channel_axis
from keras_acts.backbones.kinds import classify
from keras_acts.backbones.kinds import close
from keras_acts.backbones.kinds import is_merge
from keras_acts.backbones.kinds import is_multiply
from keras_acts.backbones.kinds import is_op
from keras_acts.backbones.kinds import kernel_size
from keras_acts.backbones.kinds import scalar_operand

_SUBCLASSED_HELP = (
    "{cls} '{name}' is a subclassed model: its call() is Python code, not a graph "
    "of layers, so its activations cannot be found or replaced by graph surgery. "
    "Either build the model functionally (keras.Input + layer calls) or as a "
    "keras.Sequential, or put keras_acts layers into its code directly: create one "
    "new layer per activation site in __init__, e.g. keras_acts.get('pwlu'), never "
    "one shared instance. Functional sub-models it holds (e.g. a backbone) can be "
    "swapped with swap_activations() and assigned back.")


@dataclasses.dataclass(frozen=True, eq=False)
class ActivationSite:
    """One place in a model where an activation is applied.

    Attributes:
        name: name the replacement layer gets (the replaced layer's own name for
            ``"layer"``/``"op"``/``"hard_swish_subgraph"`` sites, so
            ``model.get_layer(name)`` and keras-cv's pyramid layer names keep
            working; ``"<layer>_act"`` for ``"fused"`` ones; made unique).
            Sub-graph sites take the name of their last op.
        kind: canonical activation (``"relu"``, ``"relu6"``, ``"swish"``,
            ``"hard_swish"``, ``"gelu"``, ...) or ``None`` when not a known one.
        pattern: ``"layer"``, ``"fused"``, ``"op"``, ``"hard_swish_subgraph"`` or
            ``"hard_sigmoid_subgraph"``.
        layer: the operation holding the activation (the Activation/ReLU layer,
            the Conv/Dense layer, the op, or the last op of a sub-graph).
        path: names of the enclosing models, outermost first.
        index: position among the sites of the innermost model (topological).
        shape: output shape; ``channels``: size of ``channel_axis``.
        channel_axis: -1, or 1 for channels-first convolutions upstream.
        dtype: the replaced layer's dtype policy (``None`` for plain ops).
        producer: first op upstream that is not normalisation/padding/dropout
            (for ``"fused"``: the layer itself); ``kernel_size`` its kernel size.
        role: ``"branch"`` (inside a residual branch, i.e. the path leads to an
            ``Add`` without forking), ``"block_output"`` (right after a residual
            ``Add``) or ``"outside"`` (stem, heads, non-residual nets).
        block: name of the residual ``Add`` of the block (``None`` outside).
        block_type: ``"bottleneck"`` when a branch activation of that block
            follows a 1x1 convolution, else ``"basic"`` (``None`` outside).

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 4))
        >>> x = keras.layers.Conv2D(4, 1, name="reduce")(inputs)
        >>> x = keras.layers.ReLU(name="relu1")(x)
        >>> x = keras.layers.Conv2D(4, 3, padding="same", name="conv3")(x)
        >>> x = keras.layers.ReLU(name="relu2")(x)
        >>> x = keras.layers.Add(name="add")([inputs, x])
        >>> block = keras.Model(inputs, keras.layers.ReLU(name="out_relu")(x))
        >>> site = GraphView(block).sites[1]
        >>> site.name, site.kind, site.pattern, site.role, site.block_type, site.kernel_size
        ('relu2', 'relu', 'layer', 'branch', 'bottleneck', (3, 3))
    """

    name: str
    kind: Optional[str]
    pattern: str
    layer: Any = dataclasses.field(repr=False)
    path: tuple = ()
    index: int = 0
    shape: tuple = ()
    channels: Optional[int] = None
    channel_axis: int = -1
    dtype: Any = dataclasses.field(default=None, repr=False)
    producer: Any = dataclasses.field(default=None, repr=False)
    kernel_size: Optional[tuple] = None
    role: str = "outside"
    block: Optional[str] = None
    block_type: Optional[str] = None
    # Graph bookkeeping for the rebuild (not part of the public description).
    node: Any = dataclasses.field(default=None, repr=False)
    input_tensor: Any = dataclasses.field(default=None, repr=False)
    absorbed: tuple = dataclasses.field(default=(), repr=False)


def wrapped_children(model):
    """``[(attribute, sub_model)]`` for task-style models rebuilt from config.

    keras-hub / keras-cv tasks (classifiers, detectors) and keras-hub's
    ``RetinaNetBackbone`` keep their backbone as a constructor argument
    (``backbone``, ``image_encoder``). Their activations are swapped inside that
    sub-model only, and the outer model is rebuilt with its own class.

    Example:
        >>> import keras
        >>> wrapped_children(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
        []
    """
    if type(model) in (_private.functional_class(), keras.Model, keras.Sequential):
        return []
    found = [(attr, getattr(model, attr, None)) for attr in ("backbone", "image_encoder")]
    found = [(attr, child) for attr, child in found if isinstance(child, keras.Model)]
    if not found:
        return []
    try:
        config = model.get_config()
    except (NotImplementedError, TypeError):
        return []
    return [(attr, child) for attr, child in found if attr in config]


def graph_function(model):
    """The ``Functional`` graph of ``model`` (a Sequential's inner graph).

    Raises ``TypeError`` for subclassed models, with what to do instead, and
    ``ValueError`` for a Sequential model that has not been built.

    Example:
        >>> graph_function(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
        <Functional ...>
    """
    if isinstance(model, keras.Sequential):
        function = _private.functional_graph(model)
        if function is None:
            raise ValueError(
                f"Sequential model '{model.name}' has no input shape yet: start it "
                "with keras.Input(shape) or call model.build(input_shape) first.")
        return function
    if _private.is_functional(model):
        return model
    raise TypeError(_SUBCLASSED_HELP.format(cls=type(model).__name__, name=model.name))


class GraphView:
    """Nodes of one functional graph in topological order, with producer and
    consumer maps, and the activation sites found in it (not in sub-models).

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 4))
        >>> x = keras.layers.Conv2D(4, 1, name="reduce")(inputs)
        >>> x = keras.layers.ReLU(name="relu1")(x)
        >>> x = keras.layers.Conv2D(4, 3, padding="same", name="conv3")(x)
        >>> x = keras.layers.ReLU(name="relu2")(x)
        >>> x = keras.layers.Add(name="add")([inputs, x])
        >>> block = keras.Model(inputs, keras.layers.ReLU(name="out_relu")(x))
        >>> view = GraphView(block)
        >>> [(s.name, s.role) for s in view.sites]
        [('relu1', 'branch'), ('relu2', 'branch'), ('out_relu', 'block_output')]
    """

    def __init__(self, model, path=()):
        self.model = model
        self.function = graph_function(model)
        self.path = tuple(path) + (model.name,)
        by_depth = _private.nodes_by_depth(self.function)
        self.nodes = [n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]
                      if n.operation is not None and not n.is_input]
        self.producer = {}
        self.consumers = collections.defaultdict(list)
        for node in self.nodes:
            for t in node.outputs:
                self.producer[id(t)] = node
            for t in node.input_tensors:
                self.consumers[id(t)].append(node)
        self.output_ids = {id(t) for t in self.function.outputs}
        self.sites = self._find_sites()

    # --- helpers on tensors -------------------------------------------------
    def _single_consumer(self, tensor):
        if id(tensor) in self.output_ids:
            return None
        consumers = self.consumers[id(tensor)]
        return consumers[0] if len(consumers) == 1 else None

    def _upstream(self, tensor):
        """First producing node that is not a transparent single-input layer."""
        node = self.producer.get(id(tensor))
        while (node is not None and isinstance(node.operation, TRANSPARENT)
               and len(node.input_tensors) == 1):
            node = self.producer.get(id(node.input_tensors[0]))
        return node

    def _merge_downstream(self, tensor):
        """The residual Add reached from ``tensor`` along a path without forks."""
        seen = set()
        while id(tensor) not in seen:
            seen.add(id(tensor))
            node = self._single_consumer(tensor)
            if node is None or isinstance(node.operation, keras.Model):
                return None
            if is_merge(node):
                return node
            if len(node.outputs) != 1:
                return None
            tensor = node.outputs[0]
        return None

    # --- hard sigmoid / hard swish spelled out with ops ---------------------
    def _private(self, tensor):
        """True when ``tensor`` feeds exactly one node and is no model output."""
        return id(tensor) not in self.output_ids and len(self.consumers[id(tensor)]) == 1

    def _hard_sigmoid(self, node):
        """``(x, (relu6, add))`` when ``node`` is the last op of relu6(x + 3) / 6."""
        scale = scalar_operand(node)
        if len(node.input_tensors) != 1 or not (
                is_multiply(node) and close(scale, 1 / 6)
                or is_op(node, "Divide", "TrueDivide") and close(scale, 6)):
            return None
        chain = []
        for check in (lambda n: activation_kind(n.operation) == "relu6",
                      lambda n: is_op(n, "Add") and close(scalar_operand(n), 3)):
            tensor = (chain[-1] if chain else node).input_tensors[0]
            found = self.producer.get(id(tensor)) if self._private(tensor) else None
            if found is None or len(found.input_tensors) != 1 or not check(found):
                return None
            chain.append(found)
        return chain[-1].input_tensors[0], tuple(chain)

    def _hard_swish(self, node, hard_sigmoids):
        """``(x, absorbed nodes)`` when ``node`` is the product x * hard_sigmoid(x)."""
        if not is_multiply(node) or len(node.input_tensors) != 2:
            return None
        a, b = node.input_tensors
        for x, gate in ((a, b), (b, a)):
            gate_node = self.producer.get(id(gate)) if self._private(gate) else None
            if gate_node is None:
                continue
            if id(gate_node) in hard_sigmoids and hard_sigmoids[id(gate_node)][0] is x:
                return x, (gate_node,) + hard_sigmoids[id(gate_node)][1]
            if (activation_kind(gate_node.operation) == "hard_sigmoid"
                    and len(gate_node.input_tensors) == 1 and gate_node.input_tensors[0] is x):
                return x, (gate_node,)
        return None

    # --- sites ---------------------------------------------------------------
    def _find_sites(self):
        hard_sigmoids = {id(n): found for n in self.nodes
                         if (found := self._hard_sigmoid(n)) is not None}
        hard_swishes = {id(n): found for n in self.nodes
                        if (found := self._hard_swish(n, hard_sigmoids)) is not None}
        inside = {id(n) for _, nodes in hard_swishes.values() for n in nodes}
        inside |= {id(n) for _, nodes in hard_sigmoids.values() for n in nodes}

        raw = []
        for node in self.nodes:
            if id(node) in hard_swishes:
                x, nodes = hard_swishes[id(node)]
                raw.append((node, "hard_swish", "hard_swish_subgraph", x, nodes))
            elif id(node) in inside:
                continue
            elif id(node) in hard_sigmoids:
                x, nodes = hard_sigmoids[id(node)]
                raw.append((node, "hard_sigmoid", "hard_sigmoid_subgraph", x, nodes))
            elif (found := classify(node)) is not None:
                kind, pattern = found
                raw.append((node, kind, pattern, node.input_tensors[0], ()))

        # Residual structure: which Add each branch activation leads to.
        merges = {}
        for node, _, pattern, x, _ in raw:
            merges[id(node)] = self._merge_downstream(node.outputs[0])
        bottleneck = set()
        producers = {}
        for node, _, pattern, x, _ in raw:
            if pattern == "fused":
                producer = node.operation
            else:
                up = self._upstream(x)
                producer = None if up is None else up.operation
            producers[id(node)] = producer
            merge = merges[id(node)]
            kernel = kernel_size(producer)
            if merge is not None and kernel and all(k == 1 for k in kernel):
                bottleneck.add(id(merge))

        names = _SiteNames(self.nodes)
        sites = []
        for index, (node, kind, pattern, x, absorbed) in enumerate(raw):
            producer = producers[id(node)]
            merge = merges[id(node)]
            role = "branch" if merge is not None else "outside"
            if merge is None and pattern != "fused":
                up = self._upstream(x)
                if up is not None and is_merge(up):
                    merge, role = up, "block_output"
            op = node.operation
            out = node.outputs[0]
            axis = channel_axis(producer)
            shape = tuple(out.shape)
            sites.append(ActivationSite(
                name=names.allocate(op, pattern),
                kind=kind, pattern=pattern, layer=op, path=self.path, index=index,
                shape=shape, channels=shape[axis] if shape else None, channel_axis=axis,
                dtype=getattr(op, "dtype_policy", None) if isinstance(op, keras.layers.Layer)
                else None,
                producer=producer, kernel_size=kernel_size(producer), role=role,
                block=None if merge is None else merge.operation.name,
                block_type=None if merge is None else
                ("bottleneck" if id(merge) in bottleneck else "basic"),
                node=node, input_tensor=x, absorbed=tuple(absorbed)))
        return sites


class _SiteNames:
    """Unique names for replacement layers within one graph."""

    def __init__(self, nodes):
        self.used = {n.operation.name for n in nodes}
        self.given = set()

    def allocate(self, op, pattern):
        base = f"{op.name}_act" if pattern == "fused" else op.name
        if pattern != "fused" and base not in self.given:
            self.given.add(base)
            return base
        name, i = base, 1
        while name in self.used or name in self.given:
            name, i = f"{base}_{i}", i + 1
        self.given.add(name)
        return name
