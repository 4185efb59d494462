"""ShuffleNetV2 and TFNet (keras_acts.backbones.acon_nets): parameter counts against
the papers' tables, activation sites where the official code puts them, the
swap of every site, the forward pass against a float64 NumPy transcription of
the official PyTorch code, serialization, errors."""

import numpy as np
import pytest
import keras

from keras_acts import layers as L
from keras_acts import registry
from keras_acts.backbones import acon_nets
from keras_acts.backbones import find_activation_sites
from keras_acts.backbones.builders import build

from backbone_checks import assert_save_load_identical
from backbone_checks import random_images
from family_reference import acon_frelu as ref_acon_frelu
from family_reference import depthwise3x3
from family_reference import max_pool3x3_s2

SHUFFLENETS = sorted(acon_nets.SHUFFLENET_V2_CHANNELS)
TFNETS = sorted(acon_nets.TFNET_WIDTHS)

# The papers' tables, in millions of parameters at 1000 classes, 224x224:
# ShuffleNetV2 (Ma et al., ECCV 2018, table 8: 0.5x 1.4M, 1.0x 2.3M, 1.5x 3.5M,
# 2.0x 7.4M; plain ReLU, megvii code: no conv biases) and TFNet (the ACON paper,
# CVPR 2021: 0.5 1.3M, 1.0 1.9M; ACON-FReLU, the official code's biases).
PAPER_MILLIONS = {"shufflenet_v2_0.5x": 1.4, "shufflenet_v2_1.0x": 2.3,
                  "shufflenet_v2_1.5x": 3.5, "shufflenet_v2_2.0x": 7.4,
                  "tfnet_0.5": 1.3, "tfnet_1.0": 1.9}


def torch_param_count(model):
    """What PyTorch's ``sum(p.numel() for p in model.parameters())`` counts: the
    trainable weights (BN running statistics are buffers there)."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def shufflenet_site_channels(name):
    """Channels at each ShuffleNetV2 activation site, from the official code's
    arithmetic (independent of the builder)."""
    stem, *stages, last = acon_nets.SHUFFLENET_V2_CHANNELS[name]
    channels, inp = [stem], stem
    for repeats, out in zip((4, 8, 4), stages):
        channels += [out // 2, out - inp, inp]          # stride 2: pw1, pw2, proj pw
        channels += [out // 2, out // 2] * (repeats - 1)  # stride 1: pw1, pw2
        inp = out
    return channels + [last]


@pytest.mark.parametrize("name", sorted(PAPER_MILLIONS))
def test_parameter_count_matches_the_papers_table(name):
    # Tolerance: the papers give 0.1M; the count must round to their figure
    # (|count - paper| < 0.05M). Measured: 1.366M, 2.279M, 3.507M, 7.403M, 1.345M, 1.923M.
    model = build(name, input_shape=(224, 224, 3), num_classes=1000)
    count = torch_param_count(model)
    assert round(count / 1e6, 1) == PAPER_MILLIONS[name], count


@pytest.mark.parametrize("name", ["shufflenet_v2_0.5x", "shufflenet_v2_1.0x"])
def test_acon_c_adds_three_parameters_per_site_channel(name):
    # ShuffleNetV2-ACON: AconC has p1, p2 and beta per channel at each of the 37
    # sites; Meta-ACON's beta generator (two 1x1 convs, r=16, + BNs) adds more.
    relu = torch_param_count(build(name, input_shape=(224, 224, 3), num_classes=1000))
    acon = torch_param_count(build(name, activation="acon_c", input_shape=(224, 224, 3),
                                   num_classes=1000))
    assert acon - relu == 3 * sum(shufflenet_site_channels(name))
    meta = torch_param_count(build(name, activation="meta_acon", input_shape=(224, 224, 3),
                                   num_classes=1000))
    assert meta > acon


def test_shufflenet_activation_sites_are_the_official_ones():
    model = build("shufflenet_v2_0.5x", input_shape=(64, 64, 3))
    sites = find_activation_sites(model)
    # 1 stem + 3 stride-2 blocks x 3 + 13 stride-1 blocks x 2 + 1 last conv.
    assert len(sites) == 37
    assert [s.channels for s in sites] == shufflenet_site_channels("shufflenet_v2_0.5x")
    # Every activation follows a 1x1 conv's BN (the stem's 3x3 conv excepted):
    # never the depthwise convs, whose BN output stays linear.
    assert sites[0].kernel_size == (3, 3)
    assert all(s.kernel_size == (1, 1) for s in sites[1:])
    assert all(not isinstance(s.producer, keras.layers.DepthwiseConv2D) for s in sites)
    per_block = {}
    for s in sites[1:-1]:
        block = s.name.split("_")[0] + "_" + s.name.split("_")[1]
        per_block[block] = per_block.get(block, 0) + 1
    assert per_block == {f"stage{st}_block{b}": 3 if b == 1 else 2
                         for st, n in zip((2, 3, 4), (4, 8, 4)) for b in range(1, n + 1)}


def test_shufflenet_activation_swaps_every_site():
    model = build("shufflenet_v2_0.5x", activation="acon_c", input_shape=(64, 64, 3),
                  num_classes=10)
    assert sum(isinstance(layer, L.AconC) for layer in model.layers) == 37
    assert find_activation_sites(model) == []  # no ReLU left anywhere
    assert model.output_shape == (None, 10)
    # FReLU-type activations go to every site too: all of them are spatial maps.
    frelu = build("shufflenet_v2_0.5x", activation="acon_frelu", input_shape=(64, 64, 3))
    assert sum(isinstance(layer, L.AconFReLU) for layer in frelu.layers) == 37


def test_tfnet_activation_sites_are_the_official_ones():
    model = build("tfnet_0.5", input_shape=(64, 64, 3))
    acts = [layer for layer in model.layers if isinstance(layer, L.AconFReLU)]
    # 2 per block (after the first pointwise conv and after the merge) x 16 blocks
    # + the last conv's; the stem keeps a plain ReLU.
    assert len(acts) == 33
    assert [s.name for s in find_activation_sites(model)] == ["stem_relu"]
    strided = [a.name for a in acts if a.strides == 2]
    assert strided == [f"stage{s}_block1_act2" for s in (1, 2, 3, 4)]
    channels = [a.kernel.shape[2] for a in acts]
    assert channels[:4] == [8, 16, 16, 16] and channels[-1] == 1024
    # Only pointwise and depthwise convolutions (the stem's 3x3 conv aside).
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.kernel_size == (1, 1) for c in convs if c.name != "stem_conv")
    assert model.output_shape == (None, 2, 2, 1024)


def test_tfnet_activation_swaps_every_site():
    model = build("tfnet_0.5", activation="acon_c", input_shape=(64, 64, 3), num_classes=5)
    assert sum(isinstance(layer, L.AconC) for layer in model.layers) == 33
    assert not any(isinstance(layer, L.AconFReLU) for layer in model.layers)
    # The 4 strided sites keep the resolution step as ACON-FReLU's x1 path: a max-pool.
    pools = [layer.name for layer in model.layers
             if isinstance(layer, acon_nets.TorchMaxPool2D)]
    assert pools == [f"stage{s}_block1_act2_pool" for s in (1, 2, 3, 4)]
    assert model.output_shape == (None, 5)
    frelu = build("tfnet_0.5", activation="frelu", input_shape=(64, 64, 3))
    assert sum(isinstance(layer, L.FReLU) for layer in frelu.layers) == 33
    assert frelu.output_shape == (None, 2, 2, 1024)


def test_channel_shuffle_split_matches_the_official_reshape():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 12)).astype("float32")
    a, b = acon_nets.ChannelShuffleSplit()(x)
    # The official channel_shuffle on NCHW: reshape (B*C/2, 2, HW), permute, split.
    nchw = x.transpose(0, 3, 1, 2)
    n, c, h, w = nchw.shape
    y = nchw.reshape(n * c // 2, 2, h * w).transpose(1, 0, 2).reshape(2, n, c // 2, h, w)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), y[0].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), y[1].transpose(0, 2, 3, 1))


@pytest.mark.parametrize("size", [7, 8])
def test_torch_max_pool_matches_reference(size):
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(acon_nets.TorchMaxPool2D()(x))
    np.testing.assert_array_equal(got, max_pool3x3_s2(x).astype("float32"))


# --- the forward pass against a NumPy transcription of the official code -----

def _w(v):
    return np.asarray(keras.ops.convert_to_numpy(v), np.float64)


def _randomize(model, seed=0):
    """Variance-preserving random weights (the official init's tiny stem and
    1/fan_in kernels would let the batch norms' shifts dominate the output and
    hide a misplaced pixel), random BN statistics and biases."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c))
            layer.beta.assign(rng.uniform(-0.1, 0.1, c))
            layer.moving_mean.assign(rng.uniform(-0.1, 0.1, c))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            shape = tuple(kernel.shape)
            fan_in = np.prod(shape[:-1]) if len(shape) == 2 or shape[-1] != 1 else 9
            kernel.assign(rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape))
        bias = getattr(layer, "bias", None)
        if bias is not None and hasattr(bias, "assign"):
            bias.assign(rng.uniform(-0.1, 0.1, tuple(bias.shape)))


def _all_layers(model):
    return list(registry.iter_layers(model))


def _bn(x, layer):
    return ((x - _w(layer.moving_mean)) / np.sqrt(_w(layer.moving_variance) + layer.epsilon)
            * _w(layer.gamma) + _w(layer.beta))


def _conv(model, name, x, stride=1):
    """Conv2d(k, stride, padding=k // 2) + BN of layer ``name`` (NHWC, float64)."""
    layer = model.get_layer(name)
    k = _w(layer.kernel)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        y = depthwise3x3(x, k[:, :, :, 0], 0.0, stride)
    else:
        kh = k.shape[0]
        xp = np.pad(x, ((0, 0), (kh // 2,) * 2, (kh // 2,) * 2, (0, 0)))
        ho, wo = (x.shape[1] - 1) // stride + 1, (x.shape[2] - 1) // stride + 1
        y = np.zeros((x.shape[0], ho, wo, k.shape[3]))
        for i in range(kh):
            for j in range(kh):
                patch = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride, :]
                y += patch @ k[i, j]
    if layer.use_bias:
        y = y + _w(layer.bias)
    return _bn(y, model.get_layer(name + "_bn"))


def shufflenet_reference(model, name, x):
    """The megvii ShuffleNetV2 forward (eval mode), float64."""
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    x = max_pool3x3_s2(relu(_conv(model, "stem_conv", x, 2)))
    for stage, repeats in zip((2, 3, 4), (4, 8, 4)):
        for block in range(1, repeats + 1):
            p = f"stage{stage}_block{block}"
            if block == 1:
                proj = relu(_conv(model, f"{p}_proj_pw", _conv(model, f"{p}_proj_dw", x, 2)))
                main, stride = x, 2
            else:
                nchw = x.transpose(0, 3, 1, 2)
                n, c, h, w = nchw.shape
                s = nchw.reshape(n * c // 2, 2, h * w).transpose(1, 0, 2)
                s = s.reshape(2, n, c // 2, h, w).transpose(0, 1, 3, 4, 2)
                proj, main, stride = s[0], s[1], 1
            y = relu(_conv(model, f"{p}_pw1", main))
            y = relu(_conv(model, f"{p}_pw2", _conv(model, f"{p}_dw", y, stride)))
            x = np.concatenate([proj, y], axis=-1)
    x = relu(_conv(model, "last_conv", x)).mean(axis=(1, 2))
    head = model.get_layer("predictions")
    return x @ _w(head.kernel) + (_w(head.bias) if head.use_bias else 0.0)


def _acon_frelu(model, name, x):
    layer = model.get_layer(name)
    bn = lambda b: (_w(b.gamma), _w(b.beta), _w(b.moving_mean),  # noqa: E731
                    _w(b.moving_variance), b.epsilon)
    return ref_acon_frelu(x, _w(layer.kernel)[:, :, :, 0], _w(layer.bias), bn(layer.bn1),
                          bn(layer.bn2), stride=layer.strides)


def tfnet_reference(model, x):
    """The official TFNet forward (eval mode), float64."""
    x = np.maximum(_conv(model, "stem_conv", x, 2), 0.0)
    for stage, repeats in enumerate((2, 3, 8, 3), 1):
        for block in range(1, repeats + 1):
            p = f"stage{stage}_block{block}"
            y = _conv(model, f"{p}_pw2", _acon_frelu(model, f"{p}_act1",
                                                     _conv(model, f"{p}_pw1", x)))
            merged = np.concatenate([x, y], axis=-1) if block == 1 else x + y
            x = _acon_frelu(model, f"{p}_act2", merged)
    x = _acon_frelu(model, "last_conv_act", _conv(model, "last_conv", x)).mean(axis=(1, 2))
    head = model.get_layer("predictions")
    return x @ _w(head.kernel) + _w(head.bias)


@pytest.mark.parametrize("name,use_bias", [("shufflenet_v2_0.5x", False),
                                           ("shufflenet_v2_0.5x", True), ("tfnet_0.5", True)])
def test_forward_matches_the_official_code(name, use_bias):
    size = (66, 66, 3) if name.startswith("shufflenet") else (64, 64, 3)  # odd + even maps
    model = build(name, input_shape=size, num_classes=7, use_bias=use_bias)
    _randomize(model)
    x = random_images(size, batch=2)
    got = _w(model(x, training=False))
    if name.startswith("shufflenet"):
        want = shufflenet_reference(model, name, x.astype(np.float64))
    else:
        want = tfnet_reference(model, x.astype(np.float64))
    scale = np.abs(want).max()
    assert scale > 1e-3  # the comparison is not between two near-zero arrays
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name,activation", [("shufflenet_v2_0.5x", "acon_c"),
                                             ("tfnet_0.5", None)])
def test_save_and_reload(tmp_path, name, activation):
    x = random_images((32, 32, 3), batch=2)
    model = build(name, activation=activation, input_shape=(32, 32, 3), num_classes=4)
    assert_save_load_identical(model, x, str(tmp_path / f"{name}.keras"))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError,
                       match=r"Unknown backbone 'shufflenet_v2_3x'.*shufflenet_v2_0\.5x"):
        build("shufflenet_v2_3x")
    with pytest.raises(ValueError, match="num_classes.*positive int.*received num_classes=0"):
        build("tfnet_0.5", input_shape=(32, 32, 3), num_classes=0)
    with pytest.raises(ValueError, match=r"input_shape.*\(height, width, channels\).*"
                                         r"received input_shape=\(32, 32\)"):
        build("shufflenet_v2_0.5x", input_shape=(32, 32))
    with pytest.raises(ValueError, match="match.*placement.*received match='relu'"):
        build("tfnet_0.5", activation="acon_c", input_shape=(32, 32, 3), match="relu")
    with pytest.raises(ValueError, match="not available from source 'keras_hub'"):
        build("tfnet_0.5", source="keras_hub")
    with pytest.raises(ValueError, match="even number of channels.*received"):
        acon_nets.ChannelShuffleSplit()(np.zeros((1, 2, 2, 3), "float32"))
