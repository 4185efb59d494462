"""The one name -> layer lookup, the one list of our activations and the one
layer walker.

* :data:`HEADLINE` / :func:`names`: keras_acts' headline activations by name
  (``"pwlu"``, ``"acon_c"``, ``"meta_acon"``, ``"serf"``), in this order;
  :data:`FAMILY` the papers' family (``"npwlu"``, ``"acon_a"``, ``"acon_b"``,
  ``"frelu"``, ``"acon_frelu"``); :data:`LAYERS` both.
* :func:`get`: a FRESH keras_acts layer for a name, class, config or layer.
* :func:`make_activation`: a fresh layer for any activation name, ours or
  Keras' (``"relu"``, ``"swish"``, ... give ``keras.layers.Activation``).
* :func:`iter_layers`: every layer inside a model, nested models and layers
  included; with ``types=ActivationLayer`` exactly our activation layers
  (``isinstance(layer, ActivationLayer)`` is the one "is this ours" test).

Example:
    >>> import keras
    >>> names()
    ('pwlu', 'acon_c', 'meta_acon', 'serf')
    >>> model = keras.Sequential([keras.Input((4,)), make_activation("pwlu"),
    ...                           make_activation("relu")])
    >>> [type(layer).__name__ for layer in iter_layers(model, types=ActivationLayer)]
    ['PWLU']
"""

import keras

from keras_acts import _private
from keras_acts.layers import AconA
from keras_acts.layers import AconB
from keras_acts.layers import AconC
from keras_acts.layers import AconFReLU
from keras_acts.layers import ActivationLayer
from keras_acts.layers import FReLU
from keras_acts.layers import MetaAcon
from keras_acts.layers import NPWLU
from keras_acts.layers import PWLU
from keras_acts.layers import Serf

#: The papers' headline units: what the main job, the backbone tables and the
#: benchmarks compare, in this order.
HEADLINE = {
    "pwlu": PWLU,
    "acon_c": AconC,
    "meta_acon": MetaAcon,
    "serf": Serf,
}
#: The family built around them (issue 16): non-uniform PWLU, ACON-A/B, FReLU
#: and ACON-FReLU (the last two need spatial rank-4 input).
FAMILY = {
    "npwlu": NPWLU,
    "acon_a": AconA,
    "acon_b": AconB,
    "frelu": FReLU,
    "acon_frelu": AconFReLU,
}
#: Every keras_acts activation by name: what :func:`get` knows.
LAYERS = {**HEADLINE, **FAMILY}
_ALIASES = {cls.__name__.lower(): key for key, cls in LAYERS.items()}
_ALIASES.update({"aconc": "acon_c", "metaacon": "meta_acon", "acon-c": "acon_c",
                 "meta-acon": "meta_acon", "acon-a": "acon_a", "acon-b": "acon_b",
                 "acon-frelu": "acon_frelu", "n-pwlu": "npwlu", "n_pwlu": "npwlu"})

__all__ = ["ActivationLayer", "FAMILY", "HEADLINE", "LAYERS", "get", "iter_layers", "make_activation", "names"]


def names(family=False):
    """The names of keras_acts' headline activations, in registry order; with
    ``family=True`` every registered activation (the family after them).

    Example:
        >>> names()
        ('pwlu', 'acon_c', 'meta_acon', 'serf')
        >>> names(family=True)[4:]
        ('npwlu', 'acon_a', 'acon_b', 'frelu', 'acon_frelu')
    """
    return tuple(LAYERS if family else HEADLINE)


def _key(name):
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def get(identifier, **kwargs):
    """Return a FRESH keras_acts layer for a name, class, config dict or layer.

    Names: "pwlu", "acon_c", "meta_acon", "serf" and the class names ("PWLU",
    "AconC", "MetaAcon", "Serf"), case-insensitive. ``kwargs`` go to the
    constructor. A layer instance is cloned from its config (never shared); a
    dict must be a serialized layer (``keras.saving.serialize_keras_object``).

    Example:
        >>> get("pwlu", num_intervals=8).num_intervals
        8
        >>> get("AconC") is get("AconC")
        False
    """
    if isinstance(identifier, keras.layers.Layer):
        config = identifier.get_config()
        config.pop("name", None)
        config.update(kwargs)
        return type(identifier).from_config(config)
    if isinstance(identifier, type) and issubclass(identifier, keras.layers.Layer):
        return identifier(**kwargs)
    if isinstance(identifier, dict):
        layer = keras.saving.deserialize_keras_object(identifier) \
            if "class_name" in identifier else None
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "A config dict for a keras_acts activation must be a serialized layer, "
                "`keras.saving.serialize_keras_object(layer)` (with 'class_name' and "
                f"'config'); received {identifier!r}.")
        return get(layer, **kwargs) if kwargs else layer
    if isinstance(identifier, str):
        key = _key(identifier)
        if key in LAYERS:
            return LAYERS[key](**kwargs)
    raise ValueError(
        f"Unknown keras_acts activation {identifier!r}; allowed names: "
        f"{sorted(LAYERS)} (or {[c.__name__ for c in LAYERS.values()]}), a layer class, "
        "a config dict or a layer instance.")


def make_activation(activation, **kwargs):
    """A fresh activation layer for any activation: ours or a Keras one.

    * one of our names (see :func:`get`), a keras_acts layer class, a config
      dict or a layer instance (a template, cloned): a new keras_acts layer,
      ``kwargs`` going to its constructor;
    * any other name Keras knows (``"relu"``, ``"swish"``, ``"gelu"``, ...):
      ``keras.layers.Activation(name, **kwargs)`` (``kwargs`` such as ``name``
      or ``dtype``);
    * a callable taking no arguments (a factory): called, and its result
      returned (``kwargs`` are not accepted then).

    Raises ``ValueError`` for a name neither we nor Keras know, listing ours.

    Example:
        >>> [type(make_activation(a)).__name__ for a in ("pwlu", "relu", Serf)]
        ['PWLU', 'Activation', 'Serf']
        >>> make_activation("swish", name="act").activation.__name__
        'silu'
    """
    if isinstance(activation, str):
        if _key(activation) in LAYERS:
            return get(activation, **kwargs)
        try:
            keras.activations.get(activation)
        except ValueError:
            raise ValueError(
                f"Unknown activation {activation!r} for `activation`; allowed: keras_acts' "
                f"{list(LAYERS)} (or their class names) or an activation name Keras knows "
                "('relu', 'swish', 'gelu', ...).") from None
        return keras.layers.Activation(activation, **kwargs)
    if (callable(activation) and not isinstance(activation, keras.layers.Layer)
            and not isinstance(activation, type)):
        if kwargs:
            raise TypeError(f"Keyword arguments {sorted(kwargs)} cannot be passed with a "
                            f"factory `activation`; received {activation!r}.")
        return activation()
    return get(activation, **kwargs)


def iter_layers(model, types=None):
    """Every layer inside ``model`` (not ``model`` itself), each object once.

    Depth first: each model's layers in ``model.layers`` (topological) order,
    every layer followed by the layers nested in it (sub-models, and sublayers
    such as MetaAcon's batch norms). ``types`` (a class or a tuple of classes)
    keeps only the layers that are instances of them; ``ActivationLayer``
    selects exactly keras_acts' activation layers.

    Example:
        >>> import keras
        >>> inner = keras.Sequential([keras.Input((4,)), MetaAcon()])
        >>> outer = keras.Sequential([keras.Input((4,)), inner, PWLU()])
        >>> [type(layer).__name__ for layer in iter_layers(outer)]
        ['Sequential', 'MetaAcon', 'GeneratorBatchNorm', 'GeneratorBatchNorm', 'PWLU']
        >>> [layer.name for layer in iter_layers(outer, types=PWLU)] == [outer.layers[-1].name]
        True
    """
    seen = set()

    def walk(parent):
        children = parent.layers if isinstance(parent, keras.Model) else _private.sublayers(parent)
        for layer in children:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if types is None or isinstance(layer, types):
                yield layer
            yield from walk(layer)

    return walk(model)
