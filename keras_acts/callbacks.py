"""Keras callbacks for the keras_acts learning methods."""

import keras

from keras_acts.layers import PWLU
from keras_acts.registry import iter_layers


def pwlu_layers(model):
    """All PWLU layers of ``model``, nested models included:
    ``list(iter_layers(model, types=PWLU))``.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), PWLU(), keras.layers.Dense(2)])
        >>> [type(layer).__name__ for layer in pwlu_layers(model)]
        ['PWLU']
    """
    return list(iter_layers(model, types=PWLU))


def realign_pwlu(model, strategy=None):
    """Realign every PWLU layer of ``model`` still in phase I; return their count.

    On TensorFlow it runs in ``strategy``'s cross-replica context (default: the
    current strategy), so every replica's copy receives the same realigned
    parameters (their statistics are all-gathered in phase I).

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), PWLU(phase1_steps=None)])
        >>> realign_pwlu(model)   # ends phase I everywhere
        1
    """
    layers = [layer for layer in pwlu_layers(model) if layer.built and layer.in_phase1]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow backend only)

        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            for layer in layers:
                layer.realign()
    else:
        for layer in layers:
            layer.realign()
    return len(layers)


class PWLUPhaseCallback(keras.callbacks.Callback):
    """End PWLU's phase I at an epoch boundary (the paper uses 5 epochs).

    At the end of epoch ``phase1_epochs`` every PWLU layer still in phase I is
    realigned from its running statistics. Give the layers ``phase1_steps=None``
    so that only this callback ends phase I.

    Example:
        >>> callback = PWLUPhaseCallback(phase1_epochs=5)
        >>> # model.fit(ds, epochs=100, callbacks=[callback])
    """

    def __init__(self, phase1_epochs=5, verbose=0):
        super().__init__()
        if isinstance(phase1_epochs, bool) or not isinstance(phase1_epochs, int) \
                or phase1_epochs < 1:
            raise ValueError(
                f"`phase1_epochs` must be an integer >= 1; received {phase1_epochs!r}.")
        self.phase1_epochs = phase1_epochs
        self.verbose = verbose

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.phase1_epochs:
            count = realign_pwlu(self.model)
            if self.verbose:
                print(f"PWLUPhaseCallback: realigned {count} PWLU layer(s) after epoch "
                      f"{epoch + 1}.")
