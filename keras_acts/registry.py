"""Name -> layer lookup for the keras_acts activations."""

from keras_acts.layers import AconA
from keras_acts.layers import AconB
from keras_acts.layers import AconC
from keras_acts.layers import AconFReLU
from keras_acts.layers import FReLU
from keras_acts.layers import MetaAcon
from keras_acts.layers import NPWLU
from keras_acts.layers import PWLU
from keras_acts.layers import Serf

LAYERS = {
    "pwlu": PWLU,
    "acon_c": AconC,
    "meta_acon": MetaAcon,
    "serf": Serf,
    "acon_a": AconA,
    "acon_b": AconB,
    "frelu": FReLU,
    "acon_frelu": AconFReLU,
    "npwlu": NPWLU,
}
_ALIASES = {cls.__name__.lower(): key for key, cls in LAYERS.items()}
_ALIASES.update({"aconc": "acon_c", "metaacon": "meta_acon", "acon-c": "acon_c",
                 "meta-acon": "meta_acon", "acon-a": "acon_a", "acon-b": "acon_b",
                 "acon-frelu": "acon_frelu", "n-pwlu": "npwlu", "n_pwlu": "npwlu"})


def get(identifier, **kwargs):
    """Return a FRESH keras_acts layer for a name, class, config dict or layer.

    Names: "pwlu", "acon_c", "meta_acon", "serf" and the class names ("PWLU",
    "AconC", "MetaAcon", "Serf"), case-insensitive. ``kwargs`` go to the
    constructor. A layer instance is cloned from its config (never shared).

    Example:
        >>> layer = get("pwlu", num_intervals=8)
        >>> get("AconC") is get("AconC")
        False
    """
    import keras

    if isinstance(identifier, keras.layers.Layer):
        config = identifier.get_config()
        config.pop("name", None)
        config.update(kwargs)
        return type(identifier).from_config(config)
    if isinstance(identifier, type) and issubclass(identifier, keras.layers.Layer):
        return identifier(**kwargs)
    if isinstance(identifier, dict):
        layer = keras.saving.deserialize_keras_object(identifier)
        return get(layer, **kwargs) if kwargs else layer
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        key = _ALIASES.get(key, key)
        if key in LAYERS:
            return LAYERS[key](**kwargs)
    raise ValueError(
        f"Unknown keras_acts activation {identifier!r}; allowed names: "
        f"{sorted(LAYERS)} (or {[c.__name__ for c in LAYERS.values()]}), a layer class, "
        "a config dict or a layer instance.")
