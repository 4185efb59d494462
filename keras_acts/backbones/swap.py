"""Graph surgery: replace a model's fixed activations by keras_acts layers.

:func:`swap_activations` rebuilds a model's functional graph node by node
(topological order), copying every layer from its config with its weights, and
puts a *fresh* activation layer at every selected site (see
:mod:`keras_acts.backbones.sites`). Sub-models are rebuilt recursively (a
sub-model called twice stays shared); keras-hub / keras-cv task models keep
their class and are rebuilt from config around their swapped backbone.
"""

import inspect
import warnings

import keras

from keras_acts import _private
from keras_acts.backbones.placements import is_spatial_site
from keras_acts.backbones.placements import needs_spatial_input
from keras_acts.backbones.sites import GraphView
from keras_acts.backbones.sites import site_selector
from keras_acts.backbones.sites import wrapped_children
from keras_acts.registry import make_activation


@keras.saving.register_keras_serializable(package="keras_acts")
class SwappedModel(keras.Model):
    """Functional model returned by :func:`swap_activations`.

    A plain functional model that also keeps the feature-pyramid metadata of the
    backbone it came from, remapped to the new graph and saved in its config, so
    detectors can be built on it: ``pyramid_outputs`` (keras-hub: level ->
    KerasTensor, used by ``RetinaNetBackbone``) and ``pyramid_level_inputs``
    (keras-cv: level -> layer name, used by ``YOLOV8Detector``).

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> p2 = keras.layers.Conv2D(4, 3, strides=2, name="p2")(inputs)
        >>> p3 = keras.layers.Conv2D(4, 3, strides=2, name="p3")(p2)
        >>> model = SwappedModel(inputs, p3, pyramid_outputs={"P2": p2, "P3": p3},
        ...                      pyramid_level_inputs={"P2": "p2", "P3": "p3"})
        >>> sorted(model.pyramid_outputs)
        ['P2', 'P3']
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        pyramid_outputs = kwargs.pop("pyramid_outputs", None) or {}
        pyramid_level_inputs = kwargs.pop("pyramid_level_inputs", None) or {}
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._pyramid_outputs = {k: self._tensor(v) for k, v in pyramid_outputs.items()}
        self._pyramid_level_inputs = dict(pyramid_level_inputs)

    @property
    def pyramid_outputs(self):
        """Dict level -> KerasTensor (empty when the source had none).

        Example:
            >>> inputs = keras.Input((8, 8, 3))
            >>> p2 = keras.layers.Conv2D(4, 3, strides=2)(inputs)
            >>> model = SwappedModel(inputs, p2, pyramid_outputs={"P2": p2})
            >>> model.pyramid_outputs["P2"].shape
            (None, 3, 3, 4)
        """
        return dict(self._pyramid_outputs)

    @property
    def pyramid_level_inputs(self):
        """Dict level -> layer name (empty when the source had none).

        Example:
            >>> inputs = keras.Input((8, 8, 3))
            >>> p2 = keras.layers.Conv2D(4, 3, strides=2, name="p2")(inputs)
            >>> model = SwappedModel(inputs, p2, pyramid_level_inputs={"P2": "p2"})
            >>> model.get_layer(model.pyramid_level_inputs["P2"]).name
            'p2'
        """
        return dict(self._pyramid_level_inputs)

    def _tensor(self, spec):
        """A KerasTensor of this graph from a tensor or ``[op name, k, index]``."""
        if isinstance(spec, keras.KerasTensor):
            return spec
        op_name, occurrence, index = spec
        by_depth = _private.nodes_by_depth(self)
        nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]
                 if n.operation is not None and n.operation.name == op_name]
        return nodes[occurrence].outputs[index]

    def _spec(self, tensor):
        op, _, index = _private.keras_history(tensor)
        by_depth = _private.nodes_by_depth(self)
        nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]
                 if n.operation is op]
        occurrence = next(i for i, n in enumerate(nodes) if any(t is tensor for t in n.outputs))
        return [op.name, occurrence, index]

    def get_config(self):
        """Functional config plus the pyramid metadata.

        Example:
            >>> inputs = keras.Input((8, 8, 3))
            >>> p2 = keras.layers.Conv2D(4, 3, strides=2, name="p2")(inputs)
            >>> model = SwappedModel(inputs, p2, pyramid_outputs={"P2": p2})
            >>> model.get_config()["pyramid_outputs"]
            {'P2': ['p2', 0, 0]}
            >>> sorted(SwappedModel.from_config(model.get_config()).pyramid_outputs)
            ['P2']
        """
        config = super().get_config()
        if self._pyramid_outputs:
            config["pyramid_outputs"] = {k: self._spec(v)
                                         for k, v in self._pyramid_outputs.items()}
        if self._pyramid_level_inputs:
            config["pyramid_level_inputs"] = dict(self._pyramid_level_inputs)
        return config


def swap_activations(model, activation, match=None, placement="all"):
    """Return a NEW model with a fresh ``activation`` layer at every matching site.

    Sites (see :class:`ActivationSite`): ``Activation`` layers, ``ReLU`` /
    ``LeakyReLU`` / ``ELU`` layers, activation ops in the graph, the fused
    ``activation=`` of Conv / Dense layers (split into the layer with a linear
    activation followed by the new layer) and keras-cv's hard-swish sub-graph
    ``x * ReLU(6)(x + 3) / 6`` (replaced as a whole). Activations inside custom
    layers (e.g. a squeeze-and-excite layer) are part of those layers and kept.

    Every other layer is copied from its config together with its weights, so the
    new model starts with exactly the original's weights and shares no layer
    or variable with it. Works on Functional and Sequential models, on sub-models
    nested in them (rebuilt recursively; a sub-model called twice stays shared),
    and on keras-hub / keras-cv task models (classifiers, detectors,
    ``RetinaNetBackbone``): there only the backbone is swapped and the task is
    rebuilt with its own class and its own head weights. The result is not
    compiled. Subclassed models raise ``TypeError`` explaining what to do.

    FReLU and ACON-FReLU (``"frelu"``, ``"acon_frelu"``, their classes or
    templates) need a spatial feature map: selected sites that are not one
    (after ``Dense`` / global pooling, or on 1x1 maps such as
    squeeze-and-excite gates; see
    :func:`~keras_acts.backbones.placements.is_spatial_site`) keep their
    activation, with one ``UserWarning`` giving how many were skipped; when no
    selected site is spatial a ``ValueError`` says so. (A factory ``f(site)``
    decides for itself: it can read ``site.shape``.)

    Args:
        model: a built ``keras.Model`` (Functional, Sequential or task model).
        activation: what to put at each site, one fresh layer per site:
            a ``keras_acts`` name (``"pwlu"``, ``"acon_c"``, ``"meta_acon"``,
            ``"serf"``), a Keras activation name (``"relu"``, ``"gelu"``: a
            ``keras.layers.Activation``), a layer class, a layer instance used
            as a template (cloned from its config per site) or a config dict --
            all resolved by ``keras_acts.registry.make_activation`` and given the
            site's name and dtype policy (and ``axis=1`` after channels-first
            convolutions) -- or a factory ``f(site) -> keras.layers.Layer``
            returning a new layer per call.
        match: which activation kinds: ``None`` (all hidden-layer kinds: relu,
            relu6, leaky_relu, elu, selu, celu, gelu, swish/silu, hard_swish,
            mish), a name or list of names, or a predicate ``f(layer) -> bool``
            on the site's layer (any kind, gates included).
        placement: ``"all"``, ``"acon_resnet"`` (ACON's ResNet policy: only the
            activation after the 3x3 conv in bottleneck blocks, every one in
            basic blocks, none outside blocks) or a predicate ``f(site) -> bool``.

    Returns:
        A new model: a :class:`SwappedModel` for functional models, a
        ``keras.Sequential`` for Sequential ones, the task's own class for tasks.

    Example:
        >>> import keras_hub, keras_acts
        >>> backbone = keras_hub.models.ResNetBackbone(
        ...     input_conv_filters=[64], input_conv_kernel_sizes=[7],
        ...     stackwise_num_filters=[64, 128, 256, 512],
        ...     stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2],
        ...     block_type="basic_block", image_shape=(64, 64, 3))
        >>> swapped = keras_acts.swap_activations(backbone, "pwlu")
        >>> sum(isinstance(l, keras_acts.PWLU) for l in swapped.layers)
        17
    """
    make_layer = _activation_factory(activation)
    keep = site_selector(match, placement)
    spatial_only = _needs_spatial(activation)
    swapper = _Swapper(make_layer, keep, spatial_only)
    new_model = swapper.swap(model, ())
    if swapper.skipped:
        kind = type(make_activation(activation)).__name__
        names = ", ".join(swapper.skipped[:5]) + (", ..." if len(swapper.skipped) > 5 else "")
        if not swapper.made:
            raise ValueError(
                f"{kind} needs spatial input (rank 4, larger than 1x1: its condition is a "
                f"depthwise 3x3 conv) and none of the {len(swapper.skipped)} selected "
                f"activation site(s) of model '{model.name}' has one ({names}); use it in a "
                "convolutional network's blocks or pick another activation.")
        warnings.warn(
            f"swap_activations: {kind} needs spatial input; skipped {len(swapper.skipped)} "
            f"of {len(swapper.skipped) + len(swapper.made)} selected site(s) that are not "
            f"spatial feature maps (after Dense / global pooling, or 1x1): {names}. They "
            "keep their original activation.", UserWarning, stacklevel=2)
    return new_model


def _needs_spatial(activation):
    """Whether the layers ``activation`` resolves to need spatial sites (a
    factory ``f(site)`` is not probed: it can check ``site.shape`` itself)."""
    if callable(activation) and not isinstance(activation, (type, keras.layers.Layer)):
        return False
    return needs_spatial_input(make_activation(activation))


def _activation_factory(activation):
    """``site -> fresh layer`` for any accepted ``activation`` argument.

    Everything but a factory goes through :func:`keras_acts.registry.make_activation`
    (our names, classes, templates and configs; Keras activation names), with
    the site's name, dtype policy and channel axis.
    """
    if (callable(activation) and not isinstance(activation, (type, keras.layers.Layer))):
        return activation
    if not isinstance(activation, (str, dict, type, keras.layers.Layer)):
        raise TypeError("`activation` must be a keras_acts name, a Keras activation name, a "
                        "layer class, a layer instance (template), a config dict or a factory "
                        f"f(site) -> layer; received {activation!r}.")
    probe = make_activation(activation)  # fails early, listing the allowed names
    accepts_axis = "axis" in inspect.signature(type(probe).__init__).parameters

    def factory(site):
        kwargs = {"name": site.name}
        if site.dtype is not None:
            kwargs["dtype"] = getattr(site.dtype, "name", site.dtype)  # a plain string
        if accepts_axis and site.channel_axis != -1:
            kwargs["axis"] = site.channel_axis
        return make_activation(activation, **kwargs)

    return factory


def clone_layer(layer, **overrides):
    """A new, unbuilt layer with ``layer``'s config (``overrides`` applied).

    Example:
        >>> conv = keras.layers.Conv2D(8, 3, activation="relu", name="conv")
        >>> linear = clone_layer(conv, activation="linear")
        >>> linear.activation.__name__, linear.built
        ('linear', False)
    """
    config = layer.get_config()
    config.update(overrides)
    return type(layer).from_config(_portable_config(layer, config))


def _portable_config(layer, config):
    """``config`` with known non-deserializable pieces replaced by equivalents.

    keras-cv's MobileNetV3 gives its ``SqueezeAndExcite2D`` layers an instance of
    an unregistered ``HardSigmoidActivation`` layer, which breaks loading a saved
    functional graph; Keras' own ``"hard_sigmoid"`` (relu6(x + 3) / 6) is the
    same function.
    """
    if type(config.get("excite_activation")).__name__ == "HardSigmoidActivation":
        config["excite_activation"] = "hard_sigmoid"
    return config


def copy_weights(source, target):
    """Assign ``source``'s weight values to ``target`` (same structure).

    Raises ``ValueError`` when the number or shapes of the weights differ.

    Example:
        >>> old, new = keras.layers.Dense(2), keras.layers.Dense(2)
        >>> old.build((None, 3)); new.build((None, 3))
        >>> copy_weights(old, new)
        >>> import numpy as np
        >>> np.array_equal(keras.ops.convert_to_numpy(new.kernel),
        ...                keras.ops.convert_to_numpy(old.kernel))
        True
    """
    if isinstance(source, keras.layers.Layer):
        src, dst = source.weights, target.weights
    else:
        src, dst = list(source), list(target)
    if len(src) != len(dst):
        raise ValueError(f"Cannot copy {len(src)} weights onto {len(dst)}.")
    for s, d in zip(src, dst):
        if tuple(s.shape) != tuple(d.shape):
            raise ValueError(f"Weight shape mismatch: {s.path} {tuple(s.shape)} vs "
                             f"{d.path} {tuple(d.shape)}.")
        d.assign(s.value)


class _Swapper:
    """One swap run: the new-layer factory, the selector, and caches so that a
    sub-model or layer used at several nodes is rebuilt once."""

    def __init__(self, make_layer, keep, spatial_only=False):
        self.make_layer = make_layer
        self.keep = keep
        self.spatial_only = spatial_only
        self.skipped = []  # names of selected sites left as they are (not spatial)
        self.models = {}
        self.made = {}

    def _selected(self, site):
        if not self.keep(site):
            return False
        if self.spatial_only and not is_spatial_site(site):
            self.skipped.append("/".join(site.path[1:] + (site.name,)))  # below the top model
            return False
        return True

    def swap(self, model, path):
        if not isinstance(model, keras.Model):
            raise TypeError(f"swap_activations expects a keras.Model; received {model!r}.")
        if id(model) not in self.models:
            children = wrapped_children(model)
            if children:
                new = self._rebuild_task(model, children, path)
            else:
                new = self._rebuild_graph(model, path)
            self.models[id(model)] = new
        return self.models[id(model)]

    def _new_activation(self, site):
        layer = self.make_layer(site)
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"The activation factory returned {layer!r} for site "
                            f"'{site.name}'; it must return a keras.layers.Layer.")
        if id(layer) in self.made:
            raise ValueError(
                f"The activation factory returned the same layer object for sites "
                f"'{self.made[id(layer)][0]}' and '{site.name}'; return a NEW layer on "
                "every call (sharing one instance would share its weights).")
        self.made[id(layer)] = (site.name, layer)
        return layer

    def _rebuild_graph(self, model, path):
        view = GraphView(model, path)
        function = view.function
        sites = {id(s.node): s for s in view.sites if self._selected(s)}
        absorbed = {id(n) for s in sites.values() for n in s.absorbed}
        # A Sequential is rebuilt as a Sequential: its new layers are collected
        # here and called once, by the new Sequential, before the weight copy.
        sequential = isinstance(model, keras.Sequential)

        new_inputs = keras.tree.map_structure(_new_input,
                                             _private.input_structure(function))
        tensors = {id(old): new for old, new in
                   zip(function.inputs, keras.tree.flatten(new_inputs))}
        clones, pairs, applied = {}, [], []

        def clone(op, **overrides):
            key = (id(op), tuple(overrides))
            if key not in clones:
                clones[key] = clone_layer(op, **overrides)
                pairs.append((op, clones[key]))
            return clones[key]

        def apply(op, *args, **kwargs):
            applied.append(op)
            return None if sequential else op(*args, **kwargs)

        for node in view.nodes:
            site = sites.get(id(node))
            needed = node.input_tensors if site is None else [site.input_tensor]
            if id(node) in absorbed or any(id(t) not in tensors for t in needed):
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            op = node.operation
            if site is None:
                if isinstance(op, keras.Model):
                    op = self.swap(op, view.path)
                elif isinstance(op, keras.layers.Layer):
                    op = clone(op)
                # else: a stateless keras op (ops.add, ops.split, ...), reused.
                outputs = apply(op, *args, **kwargs)
            else:
                if site.pattern == "fused":
                    x = apply(clone(op, activation="linear"), *args, **kwargs)
                else:
                    x = tensors[id(site.input_tensor)]
                outputs = apply(self._new_activation(site), x)
            for i, old_t in enumerate(node.outputs):
                tensors[id(old_t)] = None if sequential else keras.tree.flatten(outputs)[i]

        if sequential:
            new_model = keras.Sequential([_new_input(function.inputs[0])] + applied,
                                         name=model.name)
        else:
            outputs = keras.tree.pack_sequence_as(
                _private.output_structure(function), [tensors[id(t)] for t in function.outputs])
            new_model = SwappedModel(new_inputs, outputs, name=model.name,
                                     **_pyramids(model, view, tensors))
        for old, new in pairs:
            copy_weights(old, new)
        return new_model

    def _rebuild_task(self, model, children, path):
        config = model.get_config()
        swapped = {}
        for attr, child in children:
            swapped[attr] = self.swap(child, path + (model.name,))
            config[attr] = keras.saving.serialize_keras_object(swapped[attr])
        new_model = type(model).from_config(config)
        for attr, child in swapped.items():
            copy_weights(child, getattr(new_model, attr))
        copy_weights(_weights_outside(model, [c for _, c in children]),
                     _weights_outside(new_model, [getattr(new_model, a) for a in swapped]))
        return new_model


def _new_input(tensor):
    """A fresh ``keras.Input`` like ``tensor`` (named after its InputLayer)."""
    history = _private.keras_history(tensor)
    name = history.operation.name if history and history.operation else tensor.name
    return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse,
                       name=name)


def _weights_outside(model, children):
    inside = {id(w) for child in children for w in child.weights}
    return [w for w in model.weights if id(w) not in inside]


def _pyramids(model, view, tensors):
    """keras-hub ``pyramid_outputs`` / keras-cv ``pyramid_level_inputs`` of
    ``model`` mapped onto the rebuilt graph."""
    found = {}
    outputs = getattr(model, "pyramid_outputs", None)
    if isinstance(outputs, dict) and outputs and all(
            isinstance(t, keras.KerasTensor) for t in outputs.values()):
        found["pyramid_outputs"] = {k: tensors[id(t)] for k, t in outputs.items()
                                    if id(t) in tensors}
    names = getattr(model, "pyramid_level_inputs", None)
    if isinstance(names, dict) and names and all(isinstance(n, str) for n in names.values()):
        mapped = {}
        for level, name in names.items():
            nodes = [n for n in view.nodes if n.operation.name == name]
            new = tensors.get(id(nodes[0].outputs[0])) if len(nodes) == 1 else None
            if new is not None:
                mapped[level] = _private.keras_history(new).operation.name
        found["pyramid_level_inputs"] = mapped
    return found
