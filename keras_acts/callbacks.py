"""Keras callbacks for the keras_acts learning methods."""

import keras
import tensorflow as tf

from keras_acts.layers import PWLU


def pwlu_layers(model):
    """All PWLU layers of ``model``, nested models included.

    Example:
        >>> [l.name for l in pwlu_layers(model)]
    """
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, PWLU)]


def realign_pwlu(model, strategy=None):
    """Realign every PWLU layer of ``model`` still in phase I; return their count.

    Runs in ``strategy``'s cross-replica context (default: the current
    strategy), so every replica's copy receives the same realigned parameters
    (their statistics are all-reduced in phase I).

    Example:
        >>> realign_pwlu(model)   # ends phase I everywhere
        3
    """
    strategy = strategy or tf.distribute.get_strategy()
    layers = [layer for layer in pwlu_layers(model) if layer.built and layer.in_phase1]
    with strategy.scope():
        for layer in layers:
            layer.realign()
    return len(layers)


class PWLUPhaseCallback(keras.callbacks.Callback):
    """End PWLU's phase I at an epoch boundary (the paper uses 5 epochs).

    At the end of epoch ``phase1_epochs`` every PWLU layer still in phase I is
    realigned from its running statistics. Give the layers ``phase1_steps=None``
    so that only this callback ends phase I.

    Example:
        >>> model.fit(ds, epochs=100, callbacks=[PWLUPhaseCallback(phase1_epochs=5)])
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
