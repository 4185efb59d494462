"""Builders and swaps on the real keras-hub / keras-cv / keras backbones.

Default run: ResNet-18 (keras-hub) and MobileNetV3-Small (keras.applications) with every
activation, a nested keras-hub classifier, the builders' errors. ``-m slow``:
every builder x every activation, the detectors, and the site / parameter
counts of every backbone.
"""

import numpy as np
import pytest
import keras

import keras_acts
from keras_acts.backbones import SwappedModel
from keras_acts.backbones import find_activation_sites
from keras_acts.backbones import swap_activations
from keras_acts.backbones.builders import available
from keras_acts.backbones.builders import build

from backbone_checks import ACTIVATIONS
from backbone_checks import activation_layers
from backbone_checks import assert_fresh_sites
from backbone_checks import assert_nothing_shared
from backbone_checks import assert_same_other_weights
from backbone_checks import assert_save_load_identical
from backbone_checks import random_images
from backbone_checks import train_one_step

pytestmark = pytest.mark.filterwarnings(
    # keras-cv's SqueezeAndExcite2D has no build(); harmless when reloading.
    "ignore:`build\\(\\)` was called on layer 'squeeze_and_excite2d")

SMALL = (32, 32, 3)
MEDIUM = (64, 64, 3)

# Activation sites of each backbone ("all" placement, default match) and under
# ACON's ResNet placement.
SITES = {
    ("resnet18", "keras_hub"): (17, 16), ("resnet18", "keras_cv"): (17, 16),
    ("resnet50", "keras_hub"): (49, 16), ("resnet50", "keras_cv"): (49, 16),
    ("retinanet_resnet50", "keras_hub"): (49, 16),
    # 17 blocks: 16 expand + 17 depthwise ReLU6, plus stem and last conv.
    ("mobilenet_v2", "keras"): (35, None),
    # ReLU layers in the first 3 (small) / 6 (large) blocks, Activation("hard_swish")
    # layers, and the squeeze-and-excite ReLUs (9 / 8; keras-cv hid those).
    ("mobilenet_v3_small", "keras"): (32, None),
    ("mobilenet_v3_large", "keras"): (39, None),
    # stem, 15 expand, 16 depthwise, top + 16 fused swish in the SE reduce convs.
    ("efficientnet_b0", "keras_hub"): (49, None),
    **{(f"yolo_v8_{size}", "keras_cv"): (n, None)
       for size, n in (("xs", 27), ("s", 27), ("m", 39), ("l", 51), ("xl", 51))},
    # ShuffleNetV2 (keras_acts' own builder): stem, 3 stride-2 blocks x 3,
    # 13 stride-1 blocks x 2, last conv. (TFNet builds its ACON-FReLU in:
    # tests/backbones/test_acon_nets.py.)
    **{(f"shufflenet_v2_{w}", "keras_acts"): (37, None) for w in ("0.5x", "1.0x", "1.5x", "2.0x")},
}
FAST_CASES = [("resnet18", "keras_hub"), ("mobilenet_v3_small", "keras")]
# Graph-mode training for every builder (the larger YOLOv8 sizes only get their
# sites counted); the fast cases train eagerly in the default run.
SLOW_CASES = [c for c in available()
              if c[0] not in ("yolo_v8_s", "yolo_v8_m", "yolo_v8_l", "yolo_v8_xl")
              and not c[0].startswith("tfnet") and c[0] not in (
                  "shufflenet_v2_1.0x", "shufflenet_v2_1.5x", "shufflenet_v2_2.0x")]

_ORIGINALS = {}


def original(name, source, input_shape):
    """The unswapped backbone, built once per session (swaps never modify it)."""
    key = (name, source, input_shape)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = build(name, source=source, input_shape=input_shape)
    return _ORIGINALS[key]


def check_backbone(name, source, activation, input_shape, tmp_path, eager):
    """The issue's checks for one backbone x activation."""
    model = original(name, source, input_shape)
    n_sites = SITES[(name, source)][0]
    assert len(find_activation_sites(model)) == n_sites
    swapped = swap_activations(model, activation)
    assert_fresh_sites(swapped, n_sites)
    assert_nothing_shared(model, swapped)
    assert_same_other_weights(model, swapped)
    x = random_images(input_shape)
    train_one_step(swapped, x, eager=eager)
    assert_save_load_identical(swapped, x, tmp_path / "swapped.keras")
    return swapped


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name,source", FAST_CASES)
def test_backbone_swap_train_save(name, source, activation, tmp_path):
    check_backbone(name, source, activation, SMALL, tmp_path, eager=True)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name,source", SLOW_CASES)
def test_every_builder_every_activation(name, source, activation, tmp_path):
    check_backbone(name, source, activation, MEDIUM, tmp_path, eager=False)


@pytest.mark.parametrize("name,source", FAST_CASES)
def test_swap_with_the_same_activation_changes_nothing(name, source):
    model = original(name, source, SMALL)
    same = swap_activations(model, lambda site: keras.layers.Activation(site.kind,
                                                                          name=site.name))
    x = random_images(SMALL)
    np.testing.assert_allclose(same(x), model(x), rtol=1e-5, atol=1e-5)


def test_build_returns_swapped_model_with_pyramids():
    model = build("resnet18", activation="acon_c", input_shape=SMALL)
    assert isinstance(model, SwappedModel)
    assert_fresh_sites(model, 17, keras_acts.AconC)
    reference = original("resnet18", "keras_hub", SMALL).pyramid_outputs
    assert sorted(model.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    for level, tensor in model.pyramid_outputs.items():
        assert tensor.shape == reference[level].shape
    assert build("resnet18", input_shape=SMALL).__class__.__name__ == "ResNetBackbone"


def test_keras_cv_pyramid_names_point_at_swapped_layers():
    model = original("resnet18", "keras_cv", SMALL)
    swapped = swap_activations(model, "serf", match="relu")
    assert len(activation_layers(swapped)) == 17
    assert swapped.pyramid_level_inputs == model.pyramid_level_inputs
    for level, name in swapped.pyramid_level_inputs.items():
        assert (swapped.get_layer(name).output.shape
                == model.get_layer(model.pyramid_level_inputs[level]).output.shape)
    assert isinstance(swapped.get_layer(model.pyramid_level_inputs["P2"]), keras_acts.Serf)


@pytest.mark.parametrize("size,hard_swish,relu,squeeze_excite", [
    ("small", 18, 14, 9), ("large", 20, 19, 8)])
def test_keras_applications_mobilenet_v3_sites(size, hard_swish, relu, squeeze_excite):
    """keras.applications' MobileNetV3 (Keras 3.15) spells hard-swish as an
    Activation("hard_swish") layer and its squeeze-and-excite gate as
    ReLU(6)(x + 3) / 6: the first are sites, the gate is a hard_sigmoid
    sub-graph (replaced only on request) and never a hidden relu6 site. Without
    the squeeze-and-excite ReLUs the sites are keras-cv's 23 / 31, on the
    same parameter count."""
    model = original(f"mobilenet_v3_{size}", "keras", SMALL)
    sites = find_activation_sites(model)
    kinds = [(s.kind, s.pattern) for s in sites]
    assert kinds.count(("hard_swish", "layer")) == hard_swish
    assert kinds.count(("relu", "layer")) == relu and len(sites) == hard_swish + relu
    assert sum("squeeze_excite" in s.name for s in sites) == squeeze_excite
    gates = find_activation_sites(model, match="hard_sigmoid")
    assert gates and all(s.pattern == "hard_sigmoid_subgraph" for s in gates)
    assert len(gates) == squeeze_excite
    params = {"small": 939120, "large": 2996352}[size]  # keras-cv 0.9's MobileNetV3 counts
    assert build(f"mobilenet_v3_{size}", input_shape=(224, 224, 3)).count_params() == params
    swapped = swap_activations(model, "acon_c",
                               placement=lambda site: "squeeze_excite" not in site.name)
    assert_fresh_sites(swapped, {"small": 23, "large": 31}[size], keras_acts.AconC)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_acon_resnet_placement(name):
    model = original(name, "keras_hub", SMALL)
    sites = find_activation_sites(model, placement="acon_resnet")
    assert len(sites) == SITES[(name, "keras_hub")][1]
    if name == "resnet50":  # bottleneck: only the activation after the 3x3 conv
        assert all(s.name.endswith("_2_relu") and s.kernel_size == (3, 3) for s in sites)
    else:  # basic blocks: all of the block's activations, the stem excluded
        assert "conv1_relu" not in [s.name for s in sites]
    swapped = swap_activations(model, "meta_acon", placement="acon_resnet")
    assert_fresh_sites(swapped, len(sites))


def test_nested_task_model_keeps_its_class_and_head(tmp_path):
    import keras_hub

    backbone = build("resnet18", input_shape=SMALL)
    classifier = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=4)
    swapped = swap_activations(classifier, "pwlu")
    assert type(swapped) is type(classifier)
    assert isinstance(swapped.backbone, SwappedModel)
    assert_fresh_sites(swapped, 17)
    assert_nothing_shared(classifier, swapped)
    assert_same_other_weights(classifier, swapped)
    x = random_images(SMALL)
    # The classifier returns logits: with from_logits=False Keras clips them to
    # [eps, 1 - eps] and the gradient can vanish, depending on the random init.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_one_step(swapped, x, y=np.array([0, 3]), loss=loss)
    assert_save_load_identical(swapped, x, tmp_path / "classifier.keras")


def test_build_errors():
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet19'.*'resnet18'"):
        build("resnet19")
    with pytest.raises(ValueError, match=r"Unknown source 'timm'.*'keras_hub', 'keras_cv'"):
        build("resnet18", source="timm")
    with pytest.raises(ValueError, match=r"subclassed block layers.*\['keras'\]"):
        build("mobilenet_v3_small", source="keras_hub")
    with pytest.raises(ValueError, match=r"source 'keras' builds the same network"):
        build("mobilenet_v3_large", source="keras_cv")
    with pytest.raises(ValueError, match="CrossStagePartial"):
        build("csp_darknet")


@pytest.mark.slow
def test_yolo_v8_detector(tmp_path):
    import keras_cv

    backbone = build("yolo_v8_xs", input_shape=MEDIUM)
    detector = keras_cv.models.YOLOV8Detector(
        backbone=backbone, num_classes=3, bounding_box_format="xywh", fpn_depth=1)
    swapped = swap_activations(detector, "acon_c")
    assert type(swapped) is type(detector) and isinstance(swapped.backbone, SwappedModel)
    assert_fresh_sites(swapped, 27)
    assert_nothing_shared(detector, swapped)
    assert_same_other_weights(detector, swapped)
    assert_save_load_identical(swapped, random_images(MEDIUM), tmp_path / "yolo.keras")


@pytest.mark.slow
def test_retinanet_detector(tmp_path):
    import keras_hub

    anchors = keras_hub.layers.AnchorGenerator(
        bounding_box_format="yxyx", min_level=3, max_level=7, num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=build("retinanet_resnet50", input_shape=MEDIUM), num_classes=3,
        anchor_generator=anchors, bounding_box_format="yxyx")
    swapped = swap_activations(detector, "serf")
    assert type(swapped) is type(detector)
    assert type(swapped.backbone) is type(detector.backbone)
    assert isinstance(swapped.backbone.image_encoder, SwappedModel)
    assert_fresh_sites(swapped, 49)
    assert_same_other_weights(detector, swapped)
    assert_save_load_identical(swapped, random_images(MEDIUM), tmp_path / "retinanet.keras")


@pytest.mark.slow
@pytest.mark.parametrize("name,source", sorted(SITES))
def test_site_counts_of_every_backbone(name, source):
    model = build(name, source=source, input_shape=MEDIUM)
    total, acon = SITES[(name, source)]
    assert len(find_activation_sites(model)) == total
    if acon is not None:
        assert len(find_activation_sites(model, placement="acon_resnet")) == acon


@pytest.mark.slow
def test_parameter_counts_match_library_presets():
    """Originals have the parameter counts of the library presets' metadata;
    Serf adds none, ACON-C adds 3 per channel per site."""
    expected = {"resnet18": 11186112, "resnet50": 23561152, "yolo_v8_xs": 1277680,
                "yolo_v8_s": 5089760}
    for name, count in expected.items():
        model = build(name, input_shape=(None, None, 3))
        assert model.count_params() == count, name
    model = original("resnet18", "keras_hub", SMALL)
    channels = sum(s.channels for s in find_activation_sites(model))
    assert swap_activations(model, "serf").count_params() == model.count_params()
    assert swap_activations(model, "acon_c").count_params() == (model.count_params()
                                                                + 3 * channels)
