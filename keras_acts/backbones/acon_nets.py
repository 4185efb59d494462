"""ShuffleNetV2 and TFNet, the networks of the ACON paper, as Keras functional models.

Both follow the official PyTorch code layer by layer:

* ShuffleNetV2 (Ma et al., ECCV 2018): megvii-model/ShuffleNet-Series,
  ``ShuffleNetV2/network.py`` and ``blocks.py``; its ACON form
  (Ma et al., "Activate or Not", CVPR 2021): nmaac/acon,
  ``ACON/ShuffleNetV2_ACON/network.py`` (the same network with ``AconC`` at
  every activation and ``bias=True`` on every conv and on the classifier).
  Stem: 3x3/2 conv (24 channels) + BN + activation, 3x3/2 max-pool; three
  stages of [4, 8, 4] blocks with output channels ``stage_channels[1:4]``;
  a 1x1 conv to ``stage_channels[4]`` + BN + activation; global average pool,
  (dropout 0.2 for 2.0x), linear classifier. Block, stride 2: main branch
  1x1 conv + BN + act, 3x3/2 depthwise conv + BN, 1x1 conv + BN + act; proj
  branch 3x3/2 depthwise + BN, 1x1 conv + BN + act; ``concat(proj, main)``.
  Stride 1: channel shuffle and split (the official ``channel_shuffle``: even
  channels pass through, odd ones enter the main branch), then
  ``concat(pass, main)``. Every conv is followed by BN; 3 activations per
  stride-2 block, 2 per stride-1 block, 37 in all.
* TFNet (nmaac/acon, ``TFNet/network.py``): only 1x1 and depthwise convs.
  Stem 3x3/2 conv (``int(16 * width)`` channels) + BN + ReLU (a plain ReLU in
  the official code); stages of [2, 3, 8, 3] blocks; block: 1x1 conv + BN +
  ACON-FReLU + 1x1 conv + BN, then ACON-FReLU of ``x + branch`` (stride 1) or
  of ``concat(x, branch)`` with stride 2 (the block doubles the channels and
  the stride-2 ACON-FReLU halves the resolution: its condition is a 3x3/2
  depthwise conv, its ``x1`` a 3x3/2 max-pool); 1x1 conv to 1024 + BN +
  ACON-FReLU; global average pool, (dropout 0.2 for widths above 0.5),
  linear classifier. 33 ACON-FReLU sites (2 per block, 4 of them strided,
  and the last conv's) plus the stem's ReLU.

PyTorch conventions kept: strided 3x3 convs pad one pixel of zeros on every
side (``ZeroPadding2D(1)`` + a valid conv; Keras' ``"same"`` pads only after on
even sizes), the stem max-pool pads with -inf (:class:`TorchMaxPool2D`),
batch norms use momentum 0.9 / epsilon 1e-5 (PyTorch's 0.1 / 1e-5), weights
start as in the official ``_initialize_weights`` (convs N(0, 1/fan_in of one
group), first conv N(0, 0.01), BN beta 1e-4, classifier N(0, 0.01)), and the
classifier returns logits. Channels-last.

Example:
    >>> model = shufflenet_v2("shufflenet_v2_0.5x", (64, 64, 3), num_classes=10)
    >>> model.output_shape
    (None, 10)
    >>> sum(isinstance(l, keras.layers.ReLU) for l in model.layers)
    37
"""

import inspect

import keras
from keras import ops as K

from keras_acts.backbones.graph import ActivationSite

#: ShuffleNetV2 output channels [stem, stage 2, stage 3, stage 4, last conv].
SHUFFLENET_V2_CHANNELS = {
    "shufflenet_v2_0.5x": (24, 48, 96, 192, 1024),
    "shufflenet_v2_1.0x": (24, 116, 232, 464, 1024),
    "shufflenet_v2_1.5x": (24, 176, 352, 704, 1024),
    "shufflenet_v2_2.0x": (24, 244, 488, 976, 2048),
}
SHUFFLENET_V2_REPEATS = (4, 8, 4)

#: TFNet width multiplier per name (stem channels ``int(16 * width)``).
TFNET_WIDTHS = {"tfnet_0.5": 0.5, "tfnet_1.0": 1.0, "tfnet_1.5": 1.5, "tfnet_2.0": 2.0}
TFNET_STAGES = (2, 3, 8, 3)
TFNET_LAST_CHANNELS = 1024

_BN = dict(momentum=0.9, epsilon=1e-5, beta_initializer=keras.initializers.Constant(1e-4))


@keras.saving.register_keras_serializable(package="keras_acts")
class ChannelShuffleSplit(keras.layers.Layer):
    """ShuffleNetV2's channel shuffle + split: ``(x[..., 0::2], x[..., 1::2])``.

    The official ``channel_shuffle`` (groups of 2) reshapes the C channels to
    (C/2, 2), transposes and splits, which gives the even channels as the
    first half (the pass-through) and the odd channels as the second (the
    block's main branch). Channels-last; C must be even.

    Example:
        >>> x = K.reshape(K.arange(8, dtype="float32"), (1, 1, 1, 8))
        >>> a, b = ChannelShuffleSplit()(x)
        >>> K.convert_to_numpy(a).ravel().tolist(), K.convert_to_numpy(b).ravel().tolist()
        ([0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0])
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError("ChannelShuffleSplit needs a known, even number of channels; "
                             f"received input_shape={tuple(input_shape)}.")
        self.built = True

    def call(self, inputs):
        return inputs[..., 0::2], inputs[..., 1::2]

    def compute_output_shape(self, input_shape):
        half = tuple(input_shape[:-1]) + (input_shape[-1] // 2,)
        return half, half


@keras.saving.register_keras_serializable(package="keras_acts")
class TorchMaxPool2D(keras.layers.Layer):
    """PyTorch's ``MaxPool2d(3, stride=2, padding=1)``: -inf padding of one
    pixel on every side, then a valid 3x3/2 max-pool (output ``(n - 1) // 2 + 1``).

    Example:
        >>> y = TorchMaxPool2D()(-K.ones((1, 4, 4, 1)))
        >>> tuple(y.shape), float(K.max(y))
        ((1, 2, 2, 1), -1.0)
    """

    def call(self, inputs):
        padded = K.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]],
                       constant_values=float("-inf"))
        return K.max_pool(padded, 3, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else (h - 1) // 2 + 1,
                None if w is None else (w - 1) // 2 + 1, c)


def _check_input_shape(input_shape, name):
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(f"{name}: `input_shape` must be (height, width, channels) with known "
                         f"channels (channels-last); received input_shape={input_shape!r}.")
    return shape


def _kernel_init(fan_in, first=False):
    return keras.initializers.RandomNormal(0.0, 0.01 if first else 1.0 / fan_in)


def _conv_bn(x, filters, kernel, strides, name, use_bias, depthwise=False, first=False):
    """Conv (PyTorch padding ``kernel // 2``) + BN; depthwise when asked."""
    if kernel > 1 and strides > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = keras.layers.DepthwiseConv2D(
            kernel, strides, padding=padding, use_bias=use_bias, name=name,
            depthwise_initializer=_kernel_init(1), bias_initializer="zeros")(x)
    else:
        x = keras.layers.Conv2D(
            filters, kernel, strides, padding=padding, use_bias=use_bias, name=name,
            kernel_initializer=_kernel_init(x.shape[-1], first), bias_initializer="zeros")(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn", **_BN)(x)


def _classifier(x, num_classes, dropout, use_bias):
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.layers.Dense(num_classes, use_bias=use_bias, name="predictions",
                              kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01))(x)


def _check_num_classes(num_classes):
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError("`num_classes` must be None (feature map output) or a positive int; "
                         f"received num_classes={num_classes!r}.")


def shufflenet_v2(name, input_shape=(224, 224, 3), num_classes=None, use_bias=False):
    """ShuffleNetV2 ``name`` with ReLU at its 37 activation sites.

    ``build(name, activation=...)`` swaps them (``"acon_c"`` gives
    ShuffleNetV2-ACON; pass ``use_bias=True`` too for the nmaac/acon code's
    biased convs and classifier). See the module docstring for the structure.

    Args:
        name: ``"shufflenet_v2_0.5x"``, ``"_1.0x"``, ``"_1.5x"`` or ``"_2.0x"``.
        input_shape: ``(height, width, 3)``; ``None`` sizes allowed.
        num_classes: ``None``: the last conv's feature map (B, H/32, W/32, C);
            else global pooling, (dropout 0.2 for 2.0x) and a linear layer of
            that many logits.
        use_bias: biases on the convs and the classifier (megvii: ``False``,
            nmaac/acon's ACON code: ``True``).

    Example:
        >>> model = shufflenet_v2("shufflenet_v2_1.0x", (None, None, 3))
        >>> model.output_shape
        (None, None, None, 1024)
    """
    if name not in SHUFFLENET_V2_CHANNELS:
        raise ValueError(f"Unknown ShuffleNetV2 {name!r}; allowed: "
                         f"{sorted(SHUFFLENET_V2_CHANNELS)}.")
    _check_num_classes(num_classes)
    shape = _check_input_shape(input_shape, name)
    channels = SHUFFLENET_V2_CHANNELS[name]

    def act(x, site):
        return keras.layers.ReLU(name=f"{site}_relu")(x)

    inputs = keras.Input(shape, name="images")
    x = act(_conv_bn(inputs, channels[0], 3, 2, "stem_conv", use_bias, first=True), "stem")
    x = TorchMaxPool2D(name="stem_pool")(x)
    for stage, (repeats, out) in enumerate(zip(SHUFFLENET_V2_REPEATS, channels[1:4]), 2):
        for block in range(1, repeats + 1):
            prefix = f"stage{stage}_block{block}"
            mid = out // 2
            if block == 1:  # stride 2: both branches see the whole input
                inp = x.shape[-1]
                proj = _conv_bn(x, inp, 3, 2, f"{prefix}_proj_dw", use_bias, depthwise=True)
                proj = act(_conv_bn(proj, inp, 1, 1, f"{prefix}_proj_pw", use_bias),
                           f"{prefix}_proj_pw")
                main, strides = x, 2
            else:
                proj, main = ChannelShuffleSplit(name=f"{prefix}_shuffle")(x)
                strides = 1
            branch_out = out - proj.shape[-1]
            y = act(_conv_bn(main, mid, 1, 1, f"{prefix}_pw1", use_bias), f"{prefix}_pw1")
            y = _conv_bn(y, mid, 3, strides, f"{prefix}_dw", use_bias, depthwise=True)
            y = act(_conv_bn(y, branch_out, 1, 1, f"{prefix}_pw2", use_bias), f"{prefix}_pw2")
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([proj, y])
    x = act(_conv_bn(x, channels[4], 1, 1, "last_conv", use_bias), "last_conv")
    if num_classes is not None:
        dropout = 0.2 if name == "shufflenet_v2_2.0x" else 0.0
        x = _classifier(x, num_classes, dropout, use_bias)
    return keras.Model(inputs, x, name=name.replace(".", "_"))


def _site_factory(activation):
    """``(name, channels, strides) -> [layers]`` for TFNet's activation sites."""
    from keras_acts.backbones.swap import _activation_factory

    make = _activation_factory("acon_frelu" if activation is None else activation)

    def layers_for(name, shape, strides):
        site = ActivationSite(name=name, kind=None, pattern="layer", layer=None,
                              shape=shape, channels=shape[-1])
        layer = make(site)
        if strides == 1:
            return [layer]
        params = inspect.signature(type(layer).__init__).parameters
        if "strides" in params:  # ACON-FReLU: the official strided form
            return [type(layer).from_config({**layer.get_config(), "strides": strides})]
        # Any other activation: its x1 path, a 3x3/2 max-pool, then the activation.
        return [TorchMaxPool2D(name=f"{name}_pool"), layer]

    return layers_for


def tfnet(name, input_shape=(224, 224, 3), num_classes=None, activation=None, use_bias=True):
    """TFNet ``name`` of the ACON paper with ``activation`` at its 33 sites.

    Args:
        name: ``"tfnet_0.5"``, ``"tfnet_1.0"``, ``"tfnet_1.5"`` or ``"tfnet_2.0"``.
        input_shape: ``(height, width, 3)``; ``None`` sizes allowed.
        num_classes: ``None`` for the feature map, else the classifier's logits
            (dropout 0.2 before it for widths above 0.5, as the official code).
        activation: ``None`` / ``"acon_frelu"`` (the official network), or
            anything :func:`keras_acts.swap_activations` accepts, one fresh layer
            per site (a factory gets an ``ActivationSite`` with the site's name
            and shape). At the 4 strided sites an activation with a ``strides``
            argument (ACON-FReLU) gets ``strides=2``; any other is preceded by
            the 3x3/2 max-pool that is ACON-FReLU's own ``x1`` path. The stem
            keeps its ReLU, as in the official code.
        use_bias: biases on the convs and the classifier (official: ``True``).

    Example:
        >>> model = tfnet("tfnet_0.5", (64, 64, 3), num_classes=10)
        >>> from keras_acts.layers import AconFReLU
        >>> sum(isinstance(l, AconFReLU) for l in model.layers), model.output_shape
        (33, (None, 10))
    """
    if name not in TFNET_WIDTHS:
        raise ValueError(f"Unknown TFNet {name!r}; allowed: {sorted(TFNET_WIDTHS)}.")
    _check_num_classes(num_classes)
    shape = _check_input_shape(input_shape, name)
    width = TFNET_WIDTHS[name]
    site_layers = _site_factory(activation)

    def act(x, site, strides=1):
        for layer in site_layers(site, tuple(x.shape), strides):
            x = layer(x)
        return x

    inputs = keras.Input(shape, name="images")
    x = _conv_bn(inputs, int(16 * width), 3, 2, "stem_conv", use_bias, first=True)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, repeats in enumerate(TFNET_STAGES, 1):
        for block in range(1, repeats + 1):
            prefix = f"stage{stage}_block{block}"
            channels = x.shape[-1]
            y = _conv_bn(x, channels, 1, 1, f"{prefix}_pw1", use_bias)
            y = act(y, f"{prefix}_act1")
            y = _conv_bn(y, channels, 1, 1, f"{prefix}_pw2", use_bias)
            if block == 1:
                x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, y])
                x = act(x, f"{prefix}_act2", strides=2)
            else:
                x = act(keras.layers.Add(name=f"{prefix}_add")([x, y]), f"{prefix}_act2")
    x = act(_conv_bn(x, TFNET_LAST_CHANNELS, 1, 1, "last_conv", use_bias), "last_conv_act")
    if num_classes is not None:
        x = _classifier(x, num_classes, 0.2 if width > 0.5 else 0.0, use_bias)
    return keras.Model(inputs, x, name=name.replace(".", "_"))
