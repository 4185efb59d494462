"""Keras callbacks for the keras_acts learning methods, batch-norm
recalibration (from :mod:`keras_acts.recalibration`) and run recording."""

import math
import time

import keras
import numpy as np

from keras_acts.layers import NPWLU
from keras_acts.layers import PWLU
from keras_acts.recalibration import BatchNormRecalibration
from keras_acts.recalibration import recalibrate_batch_norm
from keras_acts.registry import iter_layers

__all__ = ["BatchNormRecalibration", "PWLUPhaseCallback", "RunRecorder", "pwlu_layers",
           "realign_pwlu", "recalibrate_batch_norm"]


#: The layers with PWLU's two-phase learning method (phase I statistics ->
#: realignment -> phase II): what the phase callback and ``realign_pwlu`` handle.
TWO_PHASE_LAYERS = (PWLU, NPWLU)


def pwlu_layers(model):
    """All PWLU and N-PWLU layers of ``model`` (:data:`TWO_PHASE_LAYERS`), nested
    models included: ``list(iter_layers(model, types=TWO_PHASE_LAYERS))``.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), PWLU(), keras.layers.Dense(2),
        ...                           NPWLU()])
        >>> [type(layer).__name__ for layer in pwlu_layers(model)]
        ['PWLU', 'NPWLU']
    """
    return list(iter_layers(model, types=TWO_PHASE_LAYERS))


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


class RunRecorder(keras.callbacks.Callback):
    """Per-step training metrics and training seconds per epoch of one ``fit``.

    Keras logs the epoch's running (sample-weighted) means after each batch;
    the value of batch b is recovered as ``(W_b m_b - W_{b-1} m_{b-1}) / n_b``
    with ``W`` the cumulative sample count (``num_samples`` in batches of
    ``batch_size``, the last one smaller). The epoch clock stops when
    validation starts, so ``epoch_seconds`` measures training only.

    Example:
        >>> recorder = RunRecorder(num_samples=10, batch_size=4, metrics=("loss",))
        >>> recorder.on_epoch_begin(0)
        >>> for b, running in enumerate([1.0, 1.5, 1.8]):   # batches of 4, 4, 2
        ...     recorder.on_train_batch_end(b, {"loss": running})
        >>> recorder.on_epoch_end(0)
        >>> [round(v, 6) for v in recorder.per_step["loss"]], len(recorder.epoch_seconds)
        ([1.0, 2.0, 3.0], 1)
    """

    def __init__(self, num_samples, batch_size, metrics=("loss", "accuracy")):
        super().__init__()
        steps = math.ceil(num_samples / batch_size)
        sizes = [batch_size] * (steps - 1) + [num_samples - batch_size * (steps - 1)]
        self.cumulative = np.cumsum(sizes, dtype=np.float64)
        self.metrics = tuple(metrics)
        self.per_step = {key: [] for key in self.metrics}
        self.epoch_seconds = []
        self._start = None
        self._weighted = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._weighted = {key: 0.0 for key in self.metrics}
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        size = self.cumulative[batch] - (self.cumulative[batch - 1] if batch else 0.0)
        for key in self.metrics:
            total = float(logs[key]) * self.cumulative[batch]
            self.per_step[key].append(float((total - self._weighted[key]) / size))
            self._weighted[key] = total

    def _stop_clock(self):
        if self._start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):
        self._stop_clock()

    def on_epoch_end(self, epoch, logs=None):
        self._stop_clock()
