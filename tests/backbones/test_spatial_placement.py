"""swap_activations with FReLU / ACON-FReLU: sites that are not spatial feature
maps (after Dense or global pooling, 1x1 squeeze-and-excite maps) are skipped
with one warning; a model with no spatial site is refused."""

import warnings

import numpy as np
import pytest
import keras

import keras_acts
from keras_acts.backbones import find_activation_sites
from keras_acts.backbones import swap_activations
from keras_acts.backbones.builders import build

from backbone_checks import random_images


def se_model():
    """conv + ReLU (spatial), a squeeze-and-excite ReLU on a 1x1 map, a Dense ReLU."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="hidden")(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    s = keras.layers.ReLU(name="se_relu")(keras.layers.Conv2D(4, 1, name="se_reduce")(s))
    s = keras.layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(s)
    x = keras.layers.Multiply(name="excite")([x, s])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(6, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


@pytest.mark.parametrize("activation", ["frelu", "acon_frelu", keras_acts.FReLU,
                                        keras_acts.AconFReLU()])
def test_non_spatial_sites_are_skipped_with_one_warning(activation):
    model = se_model()
    with pytest.warns(UserWarning) as record:
        swapped = swap_activations(model, activation)
    messages = [str(w.message) for w in record if "swap_activations" in str(w.message)]
    assert len(messages) == 1
    assert "skipped 2 of 3 selected site(s)" in messages[0]
    assert "se_relu" in messages[0] and "fc_act" in messages[0]
    funnels = [layer.name for layer in swapped.layers
               if isinstance(layer, (keras_acts.FReLU, keras_acts.AconFReLU))]
    assert funnels == ["hidden"]
    # The skipped sites keep their ReLU.
    assert [s.name for s in find_activation_sites(swapped)] == ["se_relu", "fc_act"]
    x = random_images((16, 16, 3))
    assert swapped(x).shape == (2, 2)


def test_other_activations_still_replace_every_site():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        swapped = swap_activations(se_model(), "acon_c")
    assert sum(isinstance(layer, keras_acts.AconC) for layer in swapped.layers) == 3


def test_no_spatial_site_is_refused_clearly():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(8, activation="relu", name="fc1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="relu", name="fc2")(x))
    with pytest.raises(ValueError, match=r"AconFReLU needs spatial input.*none of the 2 "
                                         r"selected activation site\(s\).*fc1_act, fc2_act"):
        swap_activations(model, "acon_frelu")


def test_mobilenet_v3_squeeze_excite_relus_are_skipped():
    # keras.applications' MobileNetV3Small: 32 sites, 9 of them the
    # squeeze-and-excite ReLUs on 1x1 maps; ACON-FReLU goes to the other 23.
    model = build("mobilenet_v3_small", input_shape=(96, 96, 3))
    se = [s.name for s in find_activation_sites(model) if "squeeze_excite" in s.name]
    assert len(se) == 9
    with pytest.warns(UserWarning, match=r"skipped 9 of 32 selected site\(s\)"):
        swapped = swap_activations(model, "acon_frelu")
    assert sum(isinstance(layer, keras_acts.AconFReLU) for layer in swapped.layers) == 23
    assert sorted(s.name for s in find_activation_sites(swapped)) == sorted(se)
    out = swapped(random_images((96, 96, 3)), training=False)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
