"""Base class of the keras_acts layers: config plumbing shared by all four."""

import keras

_GETTERS = {
    "_initializer": keras.initializers.get,
    "_regularizer": keras.regularizers.get,
    "_constraint": keras.constraints.get,
}


class ActivationLayer(keras.layers.Layer):
    """A shape-preserving activation layer whose config is declared, not hand-written.

    Subclasses list their plain constructor arguments in ``_config_args`` and set
    initializers / regularizers / constraints with :meth:`_set_keras_objects`;
    ``get_config()`` then returns every constructor argument, Keras objects
    serialized.

    Example:
        >>> class Scale(ActivationLayer):
        ...     _config_args = ("axis",)
        ...     def __init__(self, axis=-1, scale_initializer="ones", **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.axis = axis
        ...         self._set_keras_objects(scale_initializer=scale_initializer)
    """

    _config_args = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self._keras_object_args = []

    def _set_keras_objects(self, **objects):
        """Resolve ``<name>_initializer|_regularizer|_constraint`` values and keep them."""
        for name, value in objects.items():
            getter = next(g for suffix, g in _GETTERS.items() if name.endswith(suffix))
            setattr(self, name, getter(value))
            self._keras_object_args.append(name)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self._config_args})
        config.update({name: keras.saving.serialize_keras_object(getattr(self, name))
                       for name in self._keras_object_args})
        return config
