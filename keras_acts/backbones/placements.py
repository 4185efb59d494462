"""Placement policies: which of a model's activation sites a swap replaces.

A policy is a predicate ``f(site) -> bool`` on an
:class:`~keras_acts.backbones.graph.ActivationSite`, which records where the
site sits in the residual structure (``role``, ``block``, ``block_type``,
``kernel_size``). Adding a named policy is one small function here and one
entry in :data:`PLACEMENTS`; ``swap_activations(..., placement=f)`` also takes
any predicate directly. :func:`site_selector` combines a policy with ``match``
(which activation kinds).

Example:
    >>> sorted(PLACEMENTS)
    ['acon_resnet', 'all']
"""

from keras_acts.backbones.kinds import HIDDEN_KINDS
from keras_acts.backbones.kinds import KINDS
from keras_acts.backbones.kinds import canonical_kind


def every_site(site):
    """The default policy: every site.

    Example:
        >>> every_site(None)
        True
    """
    return True


def acon_resnet(site):
    """ACON's ResNet placement (Ma et al., CVPR 2021): in bottleneck blocks only
    the activation after the 3x3 convolution; in basic blocks every activation
    of the block (both, the one after the residual ``Add`` included); nothing
    outside residual blocks (the stem keeps its activation).

    ResNet-18: 16 of its 17 ReLUs; ResNet-50: 16 of 49.

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 4))
        >>> x = keras.layers.Conv2D(4, 1, name="reduce")(inputs)
        >>> x = keras.layers.ReLU(name="relu1")(x)
        >>> x = keras.layers.Conv2D(4, 3, padding="same", name="conv3")(x)
        >>> x = keras.layers.ReLU(name="relu2")(x)
        >>> x = keras.layers.Add(name="add")([inputs, x])
        >>> block = keras.Model(inputs, keras.layers.ReLU(name="out_relu")(x))
        >>> from keras_acts.backbones.graph import GraphView
        >>> [s.name for s in GraphView(block).sites if acon_resnet(s)]   # a bottleneck
        ['relu2']
    """
    if site.role == "outside":
        return False
    if site.block_type == "basic":
        return True
    return site.role == "branch" and bool(site.kernel_size) and max(site.kernel_size) > 1


PLACEMENTS = {"all": every_site, "acon_resnet": acon_resnet}


def is_spatial_site(site):
    """Whether ``site`` acts on a spatial feature map: rank 4 (batch, height,
    width, channels) and not 1x1.

    FReLU and ACON-FReLU take their condition from a 3x3 depthwise convolution
    over the neighbourhood of each pixel, so they apply only there. Not
    spatial: sites after ``Dense`` / ``Flatten`` / global pooling (rank 2) and
    1x1 maps such as a squeeze-and-excite gate's (global pooling with
    ``keepdims=True``), where the 3x3 condition would see zeros around every
    pixel. A map whose size is unknown (``None``) counts as spatial.

    Example:
        >>> import keras
        >>> from keras_acts.backbones.graph import GraphView
        >>> inputs = keras.Input((None, None, 8))
        >>> x = keras.layers.ReLU(name="hidden")(keras.layers.Conv2D(8, 3)(inputs))
        >>> s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
        >>> s = keras.layers.ReLU(name="se")(keras.layers.Conv2D(8, 1)(s))
        >>> y = keras.layers.Dense(4, activation="relu", name="fc")(keras.layers.Flatten()(s))
        >>> [(site.name, is_spatial_site(site)) for site in GraphView(keras.Model(inputs, y)).sites]
        [('hidden', True), ('se', False), ('fc_act', False)]
    """
    shape = tuple(site.shape or ())
    if len(shape) != 4:
        return False
    spatial = (shape[2], shape[3]) if site.channel_axis == 1 else (shape[1], shape[2])
    return spatial != (1, 1)


def needs_spatial_input(layer):
    """Whether the activation ``layer`` (or layer class) needs :func:`is_spatial_site`
    sites: FReLU and ACON-FReLU (their condition is a depthwise 3x3 conv).

    Example:
        >>> from keras_acts.layers import AconC, FReLU
        >>> needs_spatial_input(FReLU), needs_spatial_input(AconC())
        (True, False)
    """
    from keras_acts.layers import AconFReLU
    from keras_acts.layers import FReLU

    cls = layer if isinstance(layer, type) else type(layer)
    return issubclass(cls, (FReLU, AconFReLU))


def site_selector(match=None, placement="all"):
    """Predicate ``site -> bool`` for a ``match`` and a ``placement``.

    ``match``: ``None`` (every hidden-layer activation, :data:`HIDDEN_KINDS`), a
    kind name or a list of them (aliases such as ``"silu"`` accepted), or a
    predicate ``f(layer) -> bool`` on the site's layer. ``placement``: a name in
    :data:`PLACEMENTS` (``"all"``, ``"acon_resnet"``) or ``f(site) -> bool``.
    Raises ``ValueError`` for unknown names, listing the allowed ones.

    Example:
        >>> import keras
        >>> from keras_acts.backbones.graph import GraphView
        >>> inputs = keras.Input((4,))
        >>> x = keras.layers.Dense(4, activation="relu", name="fc1")(inputs)
        >>> x = keras.layers.Dense(4, activation="gelu", name="fc2")(x)
        >>> model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="gate")(x))
        >>> keep = site_selector(["relu", "sigmoid"], "all")
        >>> [s.name for s in GraphView(model).sites if keep(s)]
        ['fc1_act', 'gate']
        >>> [s.name for s in GraphView(model).sites if site_selector()(s)]   # hidden kinds
        ['fc1_act', 'fc2_act']
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
