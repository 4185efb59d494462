"""Activation sites of a Keras model: read-only graph analysis.

An *activation site* is one place in a model's graph where a fixed activation
is applied and could be replaced by a learnable layer:

* ``"layer"``: an ``Activation`` layer (``Activation("relu")``, ``"swish"``, ...),
  a ``ReLU`` (plain or ``max_value=6``), ``LeakyReLU`` or ``ELU`` layer;
* ``"fused"``: the ``activation=`` argument of a Conv / DepthwiseConv /
  SeparableConv / ConvTranspose / Dense / EinsumDense layer;
* ``"op"``: an activation op applied to a symbolic tensor, e.g. a
  ``keras.activations.relu(x)`` or ``keras.ops.silu(x)`` call in the graph;
* ``"hard_swish_subgraph"``: ``x * relu6(x + 3) / 6`` (or ``x * hard_sigmoid(x)``)
  spelled out with ops and a ``ReLU(6)`` layer, as keras-cv's MobileNetV3 does;
  ``"hard_sigmoid_subgraph"``: a ``relu6(x + 3) / 6`` gate on its own (the
  squeeze-and-excite gate of ``keras.applications.MobileNetV3``). Their inner
  ``ReLU(6)`` is never a site of its own (so a gate is never taken for a hidden
  ``relu6``).

Activations inside custom (subclassed) layers, e.g. keras-cv's
``SqueezeAndExcite2D``, are part of that layer and are not sites.

Each :class:`ActivationSite` also records where it sits in the residual
structure (``role``, ``block``, ``block_type``, ``kernel_size`` of the producing
convolution), which is what the placement policies (:data:`PLACEMENTS`) read.

This module never modifies a model; :mod:`keras_acts.backbones.swap` rebuilds.
"""

import collections
import dataclasses
from typing import Any
from typing import Optional

import keras
from keras.src.models.functional import Functional  # no public alias in Keras 3

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
_FUSABLE = tuple(getattr(keras.layers, n) for n in (
    "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "Dense", "EinsumDense") if hasattr(keras.layers, n))

# Single-input layers looked through when finding the op that produced a site's
# input (normalisation, padding, noise): "the activation after the 3x3 conv"
# is Conv -> BatchNormalization -> Activation.
_TRANSPARENT = tuple(getattr(keras.layers, n) for n in (
    "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "Identity") if hasattr(keras.layers, n))

# Modules of the (non-layer) activation ops that can appear in a functional graph.
_ACTIVATION_OP_MODULES = ("keras.src.ops.nn", "keras.src.activations.activations")

_SUBCLASSED_HELP = (
    "{cls} '{name}' is a subclassed model: its call() is Python code, not a graph "
    "of layers, so its activations cannot be found or replaced by graph surgery. "
    "Either build the model functionally (keras.Input + layer calls) or as a "
    "keras.Sequential, or put keras_acts layers into its code directly: create one "
    "new layer per activation site in __init__, e.g. keras_acts.get('pwlu'), never "
    "one shared instance. Functional sub-models it holds (e.g. a backbone) can be "
    "swapped with swap_activations() and assigned back.")


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
        >>> site = find_activation_sites(model)[0]
        >>> site.name, site.kind, site.pattern, site.role
        ('conv1_relu', 'relu', 'layer', 'outside')
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


def acon_resnet(site):
    """ACON's ResNet placement (Ma et al., CVPR 2021): in bottleneck blocks only
    the activation after the 3x3 convolution; in basic blocks every activation
    of the block (both, the one after the residual ``Add`` included); nothing
    outside residual blocks (the stem keeps its activation).

    ResNet-18: 16 of its 17 ReLUs; ResNet-50: 16 of 49.

    Example:
        >>> swap_activations(resnet50, "meta_acon", placement=acon_resnet)
    """
    if site.role == "outside":
        return False
    if site.block_type == "basic":
        return True
    return site.role == "branch" and bool(site.kernel_size) and max(site.kernel_size) > 1


PLACEMENTS = {"all": lambda site: True, "acon_resnet": acon_resnet}


def site_selector(match=None, placement="all"):
    """Predicate ``site -> bool`` for a ``match`` and a ``placement``.

    ``match``: ``None`` (every hidden-layer activation, :data:`HIDDEN_KINDS`), a
    kind name or a list of them (aliases such as ``"silu"`` accepted), or a
    predicate ``f(layer) -> bool`` on the site's layer. ``placement``: a name in
    :data:`PLACEMENTS` (``"all"``, ``"acon_resnet"``) or ``f(site) -> bool``.
    Raises ``ValueError`` for unknown names, listing the allowed ones.

    Example:
        >>> keep = site_selector(["relu", "hard_swish"], "all")
        >>> [s.name for s in candidate_sites(model) if keep(s)]
    """
    if placement is None:
        placement = "all"
    if isinstance(placement, str):
        if placement not in PLACEMENTS:
            raise ValueError(f"Unknown placement {placement!r}; allowed: "
                             f"{sorted(PLACEMENTS)} or a callable f(site) -> bool.")
        placement_fn = PLACEMENTS[placement]
    elif callable(placement):
        placement_fn = placement
    else:
        raise TypeError(f"`placement` must be a name in {sorted(PLACEMENTS)} or a "
                        f"callable f(site) -> bool; received {placement!r}.")

    if match is None:
        kinds = frozenset(HIDDEN_KINDS)
        match_fn = lambda site: site.kind in kinds  # noqa: E731
    elif callable(match) and not isinstance(match, str):
        match_fn = lambda site: bool(match(site.layer))  # noqa: E731
    else:
        names = [match] if isinstance(match, str) else list(match)
        kinds = frozenset(canonical_kind(n) for n in names)
        unknown = sorted(k for k in kinds if k not in KINDS)
        if unknown or not kinds:
            raise ValueError(f"Unknown activation name(s) in match={match!r}: {unknown}; "
                             f"allowed: {sorted(KINDS)} (aliases 'silu', 'hard_silu'), "
                             "or a predicate f(layer) -> bool.")
        match_fn = lambda site: site.kind in kinds  # noqa: E731
    return lambda site: match_fn(site) and bool(placement_fn(site))


def wrapped_children(model):
    """``[(attribute, sub_model)]`` for task-style models rebuilt from config.

    keras-hub / keras-cv tasks (classifiers, detectors) and keras-hub's
    ``RetinaNetBackbone`` keep their backbone as a constructor argument
    (``backbone``, ``image_encoder``). Their activations are swapped inside that
    sub-model only, and the outer model is rebuilt with its own class.

    Example:
        >>> wrapped_children(classifier)
        [('backbone', <ResNetBackbone ...>)]
    """
    if type(model) in (Functional, keras.Model, keras.Sequential):
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
        function = getattr(model, "_functional", None)
        if function is None:
            raise ValueError(
                f"Sequential model '{model.name}' has no input shape yet: start it "
                "with keras.Input(shape) or call model.build(input_shape) first.")
        return function
    if isinstance(model, Functional):
        return model
    raise TypeError(_SUBCLASSED_HELP.format(cls=type(model).__name__, name=model.name))


class GraphView:
    """Nodes of one functional graph in topological order, with producer and
    consumer maps, and the activation sites found in it (not in sub-models).

    Example:
        >>> view = GraphView(backbone)
        >>> len(view.sites)
        17
    """

    def __init__(self, model, path=()):
        self.model = model
        self.function = graph_function(model)
        self.path = tuple(path) + (model.name,)
        by_depth = self.function._nodes_by_depth
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
        while (node is not None and isinstance(node.operation, _TRANSPARENT)
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
            if _is_merge(node):
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
        scale = _scalar_operand(node)
        if len(node.input_tensors) != 1 or not (
                _is_multiply(node) and _close(scale, 1 / 6)
                or _is_op(node, "Divide", "TrueDivide") and _close(scale, 6)):
            return None
        chain = []
        for check in (lambda n: _activation_kind(n.operation) == "relu6",
                      lambda n: _is_op(n, "Add") and _close(_scalar_operand(n), 3)):
            tensor = (chain[-1] if chain else node).input_tensors[0]
            found = self.producer.get(id(tensor)) if self._private(tensor) else None
            if found is None or len(found.input_tensors) != 1 or not check(found):
                return None
            chain.append(found)
        return chain[-1].input_tensors[0], tuple(chain)

    def _hard_swish(self, node, hard_sigmoids):
        """``(x, absorbed nodes)`` when ``node`` is the product x * hard_sigmoid(x)."""
        if not _is_multiply(node) or len(node.input_tensors) != 2:
            return None
        a, b = node.input_tensors
        for x, gate in ((a, b), (b, a)):
            gate_node = self.producer.get(id(gate)) if self._private(gate) else None
            if gate_node is None:
                continue
            if id(gate_node) in hard_sigmoids and hard_sigmoids[id(gate_node)][0] is x:
                return x, (gate_node,) + hard_sigmoids[id(gate_node)][1]
            if (_activation_kind(gate_node.operation) == "hard_sigmoid"
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
            elif (found := _classify(node)) is not None:
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
            kernel = _kernel_size(producer)
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
                if up is not None and _is_merge(up):
                    merge, role = up, "block_output"
            op = node.operation
            out = node.outputs[0]
            axis = _channel_axis(producer)
            shape = tuple(out.shape)
            sites.append(ActivationSite(
                name=names.allocate(op, pattern),
                kind=kind, pattern=pattern, layer=op, path=self.path, index=index,
                shape=shape, channels=shape[axis] if shape else None, channel_axis=axis,
                dtype=getattr(op, "dtype_policy", None) if isinstance(op, keras.layers.Layer)
                else None,
                producer=producer, kernel_size=_kernel_size(producer), role=role,
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


def candidate_sites(model, path=()):
    """Every activation site of ``model`` and its sub-models, before any
    ``match``/``placement`` filtering (gates such as sigmoid included).

    For task models (see :func:`wrapped_children`) only the backbone's sites.
    A sub-model called several times is listed once.

    Example:
        >>> [s.kind for s in candidate_sites(model)][:3]
        ['relu', 'relu', 'relu']
    """
    sites, seen = [], set()

    def visit(m, prefix):
        if id(m) in seen:
            return
        seen.add(id(m))
        children = wrapped_children(m)
        if children:
            for _, child in children:
                visit(child, prefix + (m.name,))
            return
        view = GraphView(m, prefix)
        by_node = {id(s.node): s for s in view.sites}
        for node in view.nodes:
            if id(node) in by_node:
                sites.append(by_node[id(node)])
            elif isinstance(node.operation, keras.Model):
                visit(node.operation, view.path)

    visit(model, tuple(path))
    return sites


def find_activation_sites(model, match=None, placement="all"):
    """The activation sites :func:`swap_activations` would replace.

    Read-only. Arguments as in ``swap_activations``: ``match`` (``None`` = every
    hidden-layer activation kind, names, or ``f(layer) -> bool``), ``placement``
    (``"all"``, ``"acon_resnet"`` or ``f(site) -> bool``). Returns
    :class:`ActivationSite` objects in topological order, nested models included.

    Example:
        >>> sites = find_activation_sites(resnet18_backbone)
        >>> len(sites), sites[0].name
        (17, 'conv1_relu')
    """
    keep = site_selector(match, placement)
    return [site for site in candidate_sites(model) if keep(site)]


# --- classification of single nodes ---------------------------------------------

def _is_op(node, *class_names):
    op = node.operation
    return (not isinstance(op, keras.layers.Layer) and type(op).__name__ in class_names
            and type(op).__module__.startswith("keras.src.ops"))


def _is_merge(node):
    return (isinstance(node.operation, keras.layers.Add) or _is_op(node, "Add")) and len(
        node.input_tensors) >= 2


def _is_multiply(node):
    return isinstance(node.operation, keras.layers.Multiply) or _is_op(node, "Multiply")


def _scalar_operand(node):
    """The single Python/NumPy scalar argument of a binary op node, else None."""
    values = [a for a in node.arguments.args if not isinstance(a, keras.KerasTensor)]
    if len(values) != 1:
        return None
    try:
        return float(values[0])
    except (TypeError, ValueError):
        return None


def _close(value, target):
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


def _activation_kind(op):
    """Activation kind computed by a single-input operation, or None."""
    if isinstance(op, keras.layers.Activation):
        return _function_kind(op.activation)
    if isinstance(op, keras.layers.ReLU) or type(op).__name__ == "ReLU" and (
            type(op).__module__ in _ACTIVATION_OP_MODULES):
        return _relu_kind(getattr(op, "max_value", None), getattr(op, "negative_slope", 0),
                          getattr(op, "threshold", 0))
    if isinstance(op, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(op, keras.layers.ELU):
        return "elu"
    if not isinstance(op, keras.layers.Layer) and type(op).__module__ in _ACTIVATION_OP_MODULES:
        kind = canonical_kind(type(op).__name__)
        return kind if kind in KINDS else None
    return None


def _classify(node):
    """``(kind, pattern)`` when ``node`` is an activation site, else None."""
    op = node.operation
    if isinstance(op, keras.Model) or len(node.input_tensors) != 1 or len(node.outputs) != 1:
        return None
    if isinstance(op, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                       keras.layers.ELU)):
        return _activation_kind(op), "layer"
    if isinstance(op, _FUSABLE):
        kind = _function_kind(op.activation)
        if kind == "linear":
            return None
        return kind, "fused"
    if not isinstance(op, keras.layers.Layer):
        kind = _activation_kind(op)
        if kind is not None:
            return kind, "op"
    return None


def _kernel_size(op):
    kernel = getattr(op, "kernel_size", None)
    if kernel is None:
        return None
    return tuple(kernel) if isinstance(kernel, (tuple, list)) else (int(kernel),)


def _channel_axis(op):
    data_format = getattr(op, "data_format", None)
    return 1 if data_format == "channels_first" else -1
