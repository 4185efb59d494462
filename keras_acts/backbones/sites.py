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
It holds the public entry points and re-exports the pieces, which live in:

* :mod:`keras_acts.backbones.kinds` -- the vocabulary of activation kinds and
  the classification of single nodes (a new kind goes there);
* :mod:`keras_acts.backbones.placements` -- the placement policies and
  ``match`` (a new policy is one function there);
* :mod:`keras_acts.backbones.graph` -- the graph view: nodes, sites, residual
  structure.
"""

import keras

from keras_acts.backbones.graph import ActivationSite
from keras_acts.backbones.graph import GraphView
from keras_acts.backbones.graph import graph_function
from keras_acts.backbones.graph import wrapped_children
from keras_acts.backbones.kinds import HIDDEN_KINDS
from keras_acts.backbones.kinds import KINDS
from keras_acts.backbones.kinds import OTHER_KINDS
from keras_acts.backbones.kinds import canonical_kind
from keras_acts.backbones.placements import PLACEMENTS
from keras_acts.backbones.placements import acon_resnet
from keras_acts.backbones.placements import site_selector

__all__ = ["ActivationSite", "GraphView", "HIDDEN_KINDS", "KINDS", "OTHER_KINDS", "PLACEMENTS",
           "acon_resnet", "candidate_sites", "canonical_kind", "find_activation_sites",
           "graph_function", "site_selector", "wrapped_children"]


def candidate_sites(model, path=()):
    """Every activation site of ``model`` and its sub-models, before any
    ``match``/``placement`` filtering (gates such as sigmoid included).

    For task models (see :func:`wrapped_children`) only the backbone's sites.
    A sub-model called several times is listed once.

    Example:
        >>> import keras
        >>> inputs = keras.Input((4,))
        >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="elu")])
        >>> x = keras.layers.Dense(4, activation="relu")(inner(inputs))
        >>> model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
        >>> [s.kind for s in candidate_sites(model)]
        ['elu', 'relu', 'softmax']
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
        >>> import keras
        >>> inputs = keras.Input((8, 8, 4))
        >>> x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
        >>> x = keras.layers.Add()([inputs, keras.layers.Conv2D(4, 3, padding="same")(x)])
        >>> model = keras.Model(inputs, keras.layers.ReLU(name="out")(x))
        >>> [(s.name, s.role) for s in find_activation_sites(model)]
        [('c1_act', 'branch'), ('out', 'block_output')]
        >>> [s.name for s in find_activation_sites(model, placement="acon_resnet")]   # basic
        ['c1_act', 'out']
    """
    keep = site_selector(match, placement)
    return [site for site in candidate_sites(model) if keep(site)]
