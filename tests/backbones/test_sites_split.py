"""backbones/sites.py split into kinds (vocabulary, node classification), graph (the
graph view) and placements (policies): the public names stay where they were, and
a new placement policy is one function registered in PLACEMENTS."""

import keras
import pytest

from keras_acts.backbones import graph
from keras_acts.backbones import kinds
from keras_acts.backbones import placements
from keras_acts.backbones import sites
from keras_acts.backbones import swap_activations


def _bottleneck(name="block"):
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 1, name="reduce")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv3")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.Add(name="add")([inputs, x])
    x = keras.layers.ReLU(name="out_relu")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x),
                       name=name)


def test_sites_reexports_the_pieces():
    assert sites.ActivationSite is graph.ActivationSite
    assert sites.GraphView is graph.GraphView
    assert sites.HIDDEN_KINDS is kinds.HIDDEN_KINDS and sites.KINDS is kinds.KINDS
    assert sites.canonical_kind is kinds.canonical_kind
    assert sites.PLACEMENTS is placements.PLACEMENTS
    assert sites.site_selector is placements.site_selector
    assert sites.acon_resnet is placements.acon_resnet


def test_graph_view_roles_and_kinds_of_a_bottleneck():
    view = graph.GraphView(_bottleneck())
    described = [(s.name, s.kind, s.pattern, s.role, s.block_type, s.kernel_size)
                 for s in view.sites]
    assert described == [
        ("relu1", "relu", "layer", "branch", "bottleneck", (1, 1)),   # BN looked through
        ("relu2", "relu", "layer", "branch", "bottleneck", (3, 3)),
        ("out_relu", "relu", "layer", "block_output", "bottleneck", None),  # after the Add
        ("head_act", "softmax", "fused", "outside", None, None),
    ]
    assert [s.name for s in sites.find_activation_sites(_bottleneck())] == [
        "relu1", "relu2", "out_relu"]                                 # softmax is no hidden kind
    assert [s.name for s in sites.find_activation_sites(
        _bottleneck(), placement="acon_resnet")] == ["relu2"]


def test_a_new_placement_policy_is_one_function(monkeypatch):
    def only_block_outputs(site):
        return site.role == "block_output"

    monkeypatch.setitem(placements.PLACEMENTS, "block_outputs", only_block_outputs)
    model = _bottleneck()
    assert [s.name for s in sites.find_activation_sites(model, placement="block_outputs")] == [
        "out_relu"]
    swapped = swap_activations(model, "serf", placement="block_outputs")
    assert [type(layer).__name__ for layer in swapped.layers if layer.name.endswith("relu")
            or layer.name.startswith("relu")] == ["ReLU", "ReLU", "Serf"]
    with pytest.raises(ValueError, match="Unknown placement.*block_outputs"):
        sites.find_activation_sites(model, placement="block_output")


def test_kinds_classify_single_nodes():
    x = keras.Input((4,))
    for fn, kind in ((keras.ops.relu, "relu"), (keras.ops.silu, "swish"),
                     (keras.activations.gelu, "gelu"), (keras.ops.sigmoid, "sigmoid")):
        node = kinds._node(kinds._private.keras_history(fn(x)).operation)
        assert kinds.classify(node) == (kind, "op")
    assert kinds.classify(kinds._node(kinds._private.keras_history(x + 1.0).operation)) is None
    assert kinds.canonical_kind("Hard-SiLU") == "hard_swish"
