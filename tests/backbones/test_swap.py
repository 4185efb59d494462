"""swap_activations / find_activation_sites on small hand-built models."""

import numpy as np
import pytest
import keras

import keras_acts
from keras_acts.backbones import SwappedModel
from keras_acts.backbones import find_activation_sites
from keras_acts.backbones import swap_activations

from backbone_checks import activation_layers
from backbone_checks import assert_fresh_sites
from backbone_checks import assert_nothing_shared
from backbone_checks import assert_same_other_weights
from backbone_checks import assert_save_load_identical
from backbone_checks import random_images

L = keras.layers


def _np(t):
    return keras.ops.convert_to_numpy(t)


def same_function(site):
    """Replacement computing the original activation: the swap must not change outputs."""
    return L.Activation(site.kind, name=site.name)


def prelu(site):
    return L.PReLU(shared_axes=[1, 2], name=site.name)


def conv_bn(x, filters, kernel, name):
    x = L.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return L.BatchNormalization(name=f"{name}_bn")(x)


def toy_resnet():
    """Stem, one basic block, one bottleneck block, a softmax head."""
    x = inputs = keras.Input((8, 8, 8), name="images")
    x = L.Activation("relu", name="stem_relu")(conv_bn(x, 8, 3, "stem"))
    b = L.Activation("relu", name="basic_1_relu")(conv_bn(x, 8, 3, "basic_1"))
    b = conv_bn(b, 8, 3, "basic_2")
    x = L.Activation("relu", name="basic_out")(L.Add(name="basic_add")([x, b]))
    b = L.ReLU(name="neck_1_relu")(conv_bn(x, 4, 1, "neck_1"))
    b = L.Activation("relu", name="neck_2_relu")(conv_bn(b, 4, 3, "neck_2"))
    b = conv_bn(b, 8, 1, "neck_3")
    x = L.Activation("relu", name="neck_out")(L.Add(name="neck_add")([x, b]))
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


def toy_hard_swish():
    """keras-cv MobileNetV3's hard-swish spelling: x * ReLU(6)(x + 3) * (1 / 6), and
    keras.applications' squeeze-and-excite gate ReLU(6)(g + 3) * (1 / 6)."""
    x = inputs = keras.Input((8, 8, 4))
    x = L.Conv2D(4, 1, name="conv")(x)
    x = L.Multiply(name="hswish")([x, L.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0)])
    g = L.Conv2D(4, 1, name="se_conv")(L.GlobalAveragePooling2D(keepdims=True)(x))
    x = L.Multiply(name="se_mul")([x, L.ReLU(6.0, name="gate_relu6")(g + 3.0) * (1.0 / 6.0)])
    x = L.Conv2D(4, 1, activation=keras.activations.relu, name="fused")(x)
    x = L.Activation("relu6", name="act6")(x)
    outputs = keras.activations.relu(x)  # an op in the graph, not a layer
    return keras.Model(inputs, outputs, name="toy_hswish")


@pytest.fixture(scope="module")
def resnet():
    return toy_resnet()


def test_sites_of_toy_resnet(resnet):
    sites = find_activation_sites(resnet)
    assert [s.name for s in sites] == ["stem_relu", "basic_1_relu", "basic_out", "neck_1_relu",
                                       "neck_2_relu", "neck_out"]
    by_name = {s.name: s for s in sites}
    assert by_name["stem_relu"].role == "outside"
    assert by_name["basic_1_relu"].role == "branch"
    assert by_name["basic_1_relu"].block_type == "basic"
    assert by_name["basic_out"].role == "block_output"
    assert by_name["neck_1_relu"].kernel_size == (1, 1)
    assert by_name["neck_2_relu"].block == "neck_add"
    assert by_name["neck_out"].block_type == "bottleneck"
    assert by_name["neck_1_relu"].channels == 4
    assert [s.name for s in find_activation_sites(resnet, match="softmax")] == ["head_act"]


def test_acon_resnet_placement(resnet):
    names = [s.name for s in find_activation_sites(resnet, placement="acon_resnet")]
    assert names == ["basic_1_relu", "basic_out", "neck_2_relu"]
    swapped = swap_activations(resnet, prelu, placement="acon_resnet")
    assert {layer.name for layer in activation_layers(swapped, L.PReLU)} == set(names)
    assert isinstance(swapped.get_layer("stem_relu"), L.Activation)


def test_user_placement_and_predicate_match(resnet):
    sites = find_activation_sites(resnet, placement=lambda s: s.role == "block_output")
    assert [s.name for s in sites] == ["basic_out", "neck_out"]
    sites = find_activation_sites(resnet, match=lambda layer: isinstance(layer, L.ReLU))
    assert [s.name for s in sites] == ["neck_1_relu"]


def test_swap_keeps_function_and_weights(resnet):
    x = random_images((8, 8, 8))
    swapped = swap_activations(resnet, same_function)
    assert isinstance(swapped, SwappedModel)
    np.testing.assert_allclose(_np(swapped(x)), _np(resnet(x)), rtol=1e-6, atol=1e-6)
    assert_nothing_shared(resnet, swapped)
    assert_same_other_weights(resnet, swapped, types=L.PReLU)


def test_fresh_layer_per_site(resnet):
    swapped = swap_activations(resnet, "acon_c")
    assert_fresh_sites(swapped, 6)
    assert_same_other_weights(resnet, swapped)
    assert swapped.get_layer("basic_out").__class__ is keras_acts.AconC


def test_hard_swish_subgraph_fused_and_op_sites():
    model = toy_hard_swish()
    sites = find_activation_sites(model)
    assert [(s.kind, s.pattern) for s in sites] == [
        ("hard_swish", "hard_swish_subgraph"), ("relu", "fused"), ("relu6", "layer"),
        ("relu", "op")]
    gates = find_activation_sites(model, match="hard_sigmoid")  # not a hidden relu6
    assert [(s.kind, s.pattern) for s in gates] == [("hard_sigmoid", "hard_sigmoid_subgraph")]
    assert [s.name for s in find_activation_sites(model, match="hard_swish")] == ["hswish"]
    x = random_images((8, 8, 4))
    swapped = swap_activations(model, same_function, match=lambda layer: True)
    np.testing.assert_allclose(_np(swapped(x)), _np(model(x)), rtol=1e-6, atol=1e-6)
    assert [layer.name for layer in swapped.layers if isinstance(layer, L.Multiply)] == [
        "se_mul"]
    assert not any(isinstance(layer, L.ReLU) for layer in swapped.layers)
    assert swapped.get_layer("fused").activation is keras.activations.linear
    assert_same_other_weights(model, swapped, types=L.Activation)

    only_relu = swap_activations(model, prelu, match="relu")
    assert len(activation_layers(only_relu, L.PReLU)) == 2
    assert isinstance(only_relu.get_layer("hswish"), L.Multiply)  # hard-swish kept
    assert isinstance(only_relu.get_layer("relu6"), L.ReLU)
    assert isinstance(only_relu.get_layer("gate_relu6"), L.ReLU)


def test_sequential_model_stays_sequential():
    model = keras.Sequential([
        keras.Input((6, 6, 3)), L.Conv2D(4, 3, activation="swish", name="c1"),
        L.Conv2D(4, 3, name="c2"), L.LeakyReLU(0.1, name="leaky"), L.Flatten(name="flatten"),
        L.Dense(2, activation="gelu", name="d")], name="seq")
    swapped = swap_activations(model, "serf")
    assert isinstance(swapped, keras.Sequential) and swapped.name == "seq"
    assert [layer.name for layer in swapped.layers] == [
        "c1", "c1_act", "c2", "leaky", "flatten", "d", "d_act"]
    assert_fresh_sites(swapped, 3)
    assert_same_other_weights(model, swapped)
    x = random_images((6, 6, 3))
    leaky_like = lambda site: L.LeakyReLU(0.1, name=site.name) if site.kind == "leaky_relu" \
        else same_function(site)  # noqa: E731
    np.testing.assert_allclose(_np(swap_activations(model, leaky_like)(x)), _np(model(x)),
                               rtol=1e-6, atol=1e-6)


def test_nested_shared_submodel():
    inner = keras.Sequential([keras.Input((5, 5, 3)), L.Conv2D(3, 3, padding="same"),
                              L.Activation("swish", name="inner_swish")], name="inner")
    x = inputs = keras.Input((5, 5, 3))
    x = inner(inner(x))
    x = L.Dense(2, activation="relu", name="head")(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, x, name="outer")
    sites = find_activation_sites(model)
    assert [(s.path, s.name) for s in sites] == [(("outer", "inner"), "inner_swish"),
                                                 (("outer",), "head_act")]
    swapped = swap_activations(model, "meta_acon")
    new_inner = swapped.get_layer("inner")
    assert isinstance(new_inner, keras.Sequential) and new_inner is not inner
    assert sum(layer is new_inner for layer in swapped.layers) == 1
    assert_fresh_sites(new_inner, 1)
    assert len(activation_layers(swapped)) == 2
    assert_nothing_shared(model, swapped)
    x = random_images((5, 5, 3))
    np.testing.assert_allclose(_np(swap_activations(model, same_function)(x)), _np(model(x)),
                               rtol=1e-6, atol=1e-6)


def test_activation_forms():
    model = toy_resnet()
    template = keras_acts.PWLU(num_intervals=4)
    swapped = swap_activations(model, template)
    pwlus = activation_layers(swapped)
    assert len(pwlus) == 6 and all(p.num_intervals == 4 for p in pwlus)
    assert template not in pwlus and not template.built
    assert len(activation_layers(swap_activations(model, keras_acts.Serf))) == 6
    assert len(activation_layers(swap_activations(model, "AconC"))) == 6


def test_dtype_policy_and_channels_first_axis():
    x = inputs = keras.Input((4, 6, 6))
    x = L.Conv2D(4, 3, data_format="channels_first", name="conv")(x)
    x = L.Activation("relu", dtype="mixed_float16", name="act")(x)
    model = keras.Model(inputs, x)
    (site,) = find_activation_sites(model)
    assert site.channel_axis == 1 and site.channels == 4
    layer = swap_activations(model, "acon_c").get_layer("act")
    assert layer.axis in (1, -3) and layer.dtype_policy.name == "mixed_float16"


def test_save_load_of_swapped_functional(resnet, tmp_path):
    swapped = swap_activations(resnet, "acon_c")
    assert_save_load_identical(swapped, random_images((8, 8, 8)), tmp_path / "toy.keras")


def test_errors(resnet):
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2, activation="relu")

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed model.*Functional|Sequential"):
        swap_activations(model, "pwlu")
    with pytest.raises(ValueError, match="has no input shape"):
        swap_activations(keras.Sequential([L.Dense(2), L.ReLU()]), "pwlu")
    shared = L.PReLU()
    with pytest.raises(ValueError, match="same layer object"):
        swap_activations(resnet, lambda site: shared)
    with pytest.raises(TypeError, match="must return a keras.layers.Layer"):
        swap_activations(resnet, lambda site: keras.activations.relu)
    with pytest.raises(ValueError, match="allowed"):
        swap_activations(resnet, "no_such_activation")
    with pytest.raises(ValueError, match="Unknown activation name"):
        find_activation_sites(resnet, match="rleu")
    with pytest.raises(ValueError, match="Unknown placement"):
        find_activation_sites(resnet, placement="some_paper")
