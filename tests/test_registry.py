"""keras_acts.registry: the one list of our activations, the one name -> fresh
layer function (ours and Keras'), and the one layer walker."""

import keras
import pytest

import keras_acts
from keras_acts import registry
from keras_acts.layers import ActivationLayer


def test_names_are_the_registry_in_order():
    assert registry.names() == ("pwlu", "acon_c", "meta_acon", "serf")
    assert registry.names() == tuple(registry.HEADLINE)
    assert registry.names(family=True) == tuple(registry.LAYERS)
    assert set(registry.LAYERS) == set(registry.HEADLINE) | set(registry.FAMILY)
    assert keras_acts.names is registry.names
    assert all(issubclass(cls, ActivationLayer) for cls in registry.LAYERS.values())


@pytest.mark.parametrize("name", registry.names(family=True))
def test_make_activation_gives_fresh_keras_acts_layers(name):
    cls = registry.LAYERS[name]
    for ident in (name, cls.__name__, name.upper(), cls, cls(),
                  keras.saving.serialize_keras_object(cls())):
        a, b = registry.make_activation(ident), registry.make_activation(ident)
        assert type(a) is cls and a is not b
    named = registry.make_activation(name, name="site_1")
    assert named.name == "site_1"


def test_make_activation_falls_back_to_keras_activation_layers():
    for name, fn in (("relu", "relu"), ("swish", "silu"), ("gelu", "gelu"), ("relu6", "relu6")):
        layer = registry.make_activation(name, name=f"act_{name}")
        assert type(layer) is keras.layers.Activation
        assert layer.activation.__name__ == fn and layer.name == f"act_{name}"
    # Our names win over Keras' (none collide today, the order is still fixed).
    assert type(registry.make_activation("serf")) is keras_acts.Serf


def test_make_activation_calls_factories_and_rejects_unknown_names():
    layer = registry.make_activation(lambda: keras_acts.PWLU(phase1_steps=3))
    assert isinstance(layer, keras_acts.PWLU) and layer.phase1_steps == 3
    with pytest.raises(TypeError, match="factory"):
        registry.make_activation(lambda: keras_acts.PWLU(), name="x")
    with pytest.raises(ValueError, match=r"allowed: keras_acts' \['pwlu'.*'rleu'|'rleu'.*allowed"):
        registry.make_activation("rleu")
    with pytest.raises(ValueError, match="allowed names"):
        registry.get("relu")  # get() is ours only
    with pytest.raises(ValueError, match="serialized layer"):
        registry.get(keras_acts.Serf().get_config())  # a bare config was returned as-is


def test_models_make_activation_is_the_registry_one():
    from keras_acts import models

    assert models.make_activation is registry.make_activation
    assert keras_acts.make_activation is registry.make_activation


def _nested():
    shared = keras_acts.Serf(name="shared_serf")
    inner = keras.Sequential([keras.Input((4,)), keras_acts.MetaAcon(name="meta"),
                              keras.layers.Dense(4, name="inner_fc")], name="inner")
    inputs = keras.Input((4,))
    x = keras_acts.PWLU(name="first")(inputs)
    x = shared(inner(x))
    x = shared(keras.layers.ReLU(name="relu")(x))
    return keras.Model(inputs, keras_acts.AconC(name="last")(x), name="outer")


def test_iter_layers_walks_nested_models_and_sublayers_once_in_order():
    model = _nested()
    names = [layer.name for layer in registry.iter_layers(model)]
    assert names[0].startswith("input_layer")
    assert names[1:4] == ["first", "inner", "meta"]
    assert names[6:] == ["inner_fc", "shared_serf", "relu", "last"]
    assert [type(layer).__name__ for layer in registry.iter_layers(model)][4:6] == [
        "GeneratorBatchNorm", "GeneratorBatchNorm"]   # MetaAcon's batch norms, after it
    assert len(names) == len(set(names))          # the shared Serf once
    assert model not in list(registry.iter_layers(model))


def test_iter_layers_types_and_the_one_is_ours_test():
    model = _nested()
    ours = list(registry.iter_layers(model, types=ActivationLayer))
    assert [layer.name for layer in ours] == ["first", "meta", "shared_serf", "last"]
    assert [layer.name for layer in registry.iter_layers(model, types=keras_acts.PWLU)] == [
        "first"]
    assert [layer.name for layer in registry.iter_layers(
        model, types=(keras.layers.ReLU, keras_acts.Serf))] == ["shared_serf", "relu"]
    # The callbacks' and the plots' walkers are this one.
    assert keras_acts.callbacks.pwlu_layers(model) == ours[:1]
