"""Re-estimate batch-norm moving statistics after training ("precise BN").

During training a ``BatchNormalization`` layer normalises with the statistics of
the current batch and keeps an exponential moving average of them for
inference. That average lags the weights: it mixes statistics of older weights
(momentum 0.99 remembers the last ~100 steps, 0.9 the last ~10), so at the end
of training the inference-mode model is not the model that was trained. The
lag is largest where the statistics move fastest relative to their spread:
Meta-ACON's generator (two batch norms on per-sample pooled vectors) lost 3-6
accuracy points at inference in the main job before this module existed.

:func:`recalibrate_batch_norm` runs the trained model forward in training mode
on ``steps`` batches of training data, with the weights fixed, and sets every
batch norm's moving mean and variance to the exact average of its per-batch
statistics (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021)::

    moving_mean     = (1 / K) * sum_k mean_k
    moving_variance = (1 / K) * sum_k var_k

where ``mean_k``, ``var_k`` are what the layer computes from batch k in
training mode (biased variance for ``keras.layers.BatchNormalization``, the
unbiased one for :class:`~keras_acts.layers.GeneratorBatchNorm`, as each layer
updates its moving variance). The forward passes are stateless
(``model.stateless_call``): nothing else in the model changes (PWLU's phase-I
statistics and step counter, seed generators, other layers' state), and the
optimizer is not involved. Use batches of the size used in training: the
per-batch variance depends on it.

:class:`BatchNormRecalibration` does the same at the end of ``fit``;
:func:`predict_with_batch_statistics` gives the outputs of the model in
batch-statistics mode (what training sees), also without changing any state.
"""

import keras
import numpy as np

__all__ = ["BatchNormRecalibration", "batch_norm_layers", "predict_with_batch_statistics",
           "recalibrate_batch_norm"]


def batch_norm_layers(model):
    """The batch norms of ``model`` that normalise with batch statistics in training.

    Every built, trainable ``keras.layers.BatchNormalization`` (subclasses such
    as Meta-ACON's :class:`~keras_acts.layers.GeneratorBatchNorm` included) in
    ``model``, nested models and layers' sublayers included, each once. A frozen
    batch norm (``trainable=False``) uses its moving statistics in training too,
    so it has no lag and is left out.

    Example:
        >>> from keras_acts.models import small_cnn
        >>> layers = batch_norm_layers(small_cnn("meta_acon", width=8))
        >>> len(layers), sorted({type(layer).__name__ for layer in layers})   # 4 + 4 x 2
        (12, ['BatchNormalization', 'GeneratorBatchNorm'])
    """
    from keras_acts.registry import iter_layers

    layers = iter_layers(model, types=keras.layers.BatchNormalization)
    return [layer for layer in layers if layer.built and layer.trainable]


def _is_array(value):
    return isinstance(value, np.ndarray) or keras.ops.is_tensor(value)


def _batches(data, batch_size, steps):
    """Input batches (the ``x`` part) from arrays or an iterable of batches."""
    if _is_array(data) or isinstance(data, tuple):
        x = data[0] if isinstance(data, tuple) else data
        if not _is_array(x) and not isinstance(x, dict):
            raise ValueError("`data` as a tuple must be (x, y) or (x, y, sample_weight) arrays; "
                             f"received a tuple whose first element is {type(x).__name__}.")
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 2:
            raise ValueError(f"`batch_size` must be an integer >= 2; received {batch_size!r}.")
        count = len(next(iter(x.values()))) if isinstance(x, dict) else int(x.shape[0])
        # Full batches only (the last, smaller one is a noisier estimate), unless
        # the data holds less than one batch.
        full = count // batch_size
        bounds = ([(i * batch_size, (i + 1) * batch_size) for i in range(full)]
                  or [(0, count)])
        for start, stop in bounds[:steps]:
            yield (keras.tree.map_structure(lambda a: a[start:stop], x))
        return
    if batch_size is not None:
        raise ValueError("`batch_size` applies to array data only; an iterable of batches "
                         f"(received {type(data).__name__}) brings its own batches.")
    if keras.backend.backend() != "tensorflow" and hasattr(data, "as_numpy_iterator"):
        data = data.as_numpy_iterator()   # a tf.data.Dataset feeding JAX or PyTorch
    for k, batch in enumerate(data):
        if steps is not None and k >= steps:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _check_steps(steps):
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 1):
        raise ValueError(f"`steps` must be None (all batches) or an integer >= 1; "
                         f"received {steps!r}.")


def _stateless_forward(model):
    """``f(trainable, non_trainable, x) -> (outputs, new non_trainable)`` in
    training mode, compiled where the backend allows it."""

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=True)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415 (JAX backend only)

        return jax.jit(forward)
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415 (TensorFlow backend only)

        return tf.function(forward, reduce_retracing=True)
    if backend == "torch":
        import torch  # noqa: PLC0415 (PyTorch backend only)

        def no_grad(*args):
            with torch.no_grad():
                return forward(*args)

        return no_grad
    return forward


def _scope(strategy):
    """``strategy.scope()`` on TensorFlow (default: the current strategy), else a no-op."""
    import contextlib  # noqa: PLC0415

    if keras.backend.backend() != "tensorflow":
        if strategy is not None:
            raise ValueError("`strategy` is a tf.distribute strategy, for the TensorFlow "
                             f"backend only; the backend is {keras.backend.backend()!r}.")
        return contextlib.nullcontext()
    import tensorflow as tf  # noqa: PLC0415 (TensorFlow backend only)

    return (strategy or tf.distribute.get_strategy()).scope()


def _check_batch(x):
    size = keras.tree.flatten(x)[0].shape[0]
    if size is not None and size < 2:
        raise ValueError("Batch statistics need batches of at least 2 samples; received a "
                         "batch of 1 (use the training batch size).")


def _values(variables):
    return [v.value for v in variables]


def recalibrate_batch_norm(model, data, steps=None, batch_size=None, strategy=None):
    """Set every batch norm's moving statistics to the average over training batches.

    For each layer of :func:`batch_norm_layers(model) <batch_norm_layers>`,
    after ``K`` training-mode forward passes (weights fixed) on batches of
    ``data``::

        moving_mean     = mean_k(batch mean_k)
        moving_variance = mean_k(batch variance_k)

    with each layer's own definition of the batch statistics (see the module
    docstring), i.e. what a moving average with momentum ``k / (k + 1)`` at
    step ``k`` would hold. Batch norms that feed later ones see the earlier
    layers in batch-statistics mode, as in training. Nothing else in the model
    changes: the forward passes are ``model.stateless_call``, and only the
    moving statistics are written.

    Args:
        model: a built Keras model (or layer).
        data: arrays — ``x`` or a tuple ``(x, y[, sample_weight])`` (labels are
            ignored), split into ``batch_size`` batches, full batches only — or
            an iterable of batches (``tf.data.Dataset``, a generator, a list)
            yielding ``x`` or ``(x, y[, ...])``. Use training data, with the
            training batch size and preprocessing (augmentation included).
        steps: number of batches to use; ``None`` uses all (an infinite
            iterable needs ``steps``).
        batch_size: for array data (default 32, Keras' ``fit`` default).
        strategy: TensorFlow only, a ``tf.distribute`` strategy whose variables
            the model holds (default: the current strategy); the forward passes
            run in its scope on one device and the new statistics are assigned
            to every replica.

    Returns:
        ``{"layers": number of batch norms recalibrated, "batches": K}``.

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
        >>> x = np.arange(12, dtype="float32").reshape(4, 3)   # batches [0:2], [2:4]
        >>> recalibrate_batch_norm(model, x, batch_size=2)
        {'layers': 1, 'batches': 2}
        >>> bn = model.layers[0]
        >>> bn.moving_mean.numpy().tolist(), bn.moving_variance.numpy().tolist()
        ([4.5, 5.5, 6.5], [2.25, 2.25, 2.25])
    """
    _check_steps(steps)
    layers = batch_norm_layers(model)
    for layer in layers:
        if getattr(layer, "renorm", False):
            raise ValueError(f"Batch norm {layer.name!r} uses batch renormalization "
                             "(renorm=True); recalibrate_batch_norm supports plain batch norms.")
    if not layers:
        return {"layers": 0, "batches": 0}
    with _scope(strategy):
        non_trainable = model.non_trainable_variables
        index = {id(v): i for i, v in enumerate(non_trainable)}
        slots = [(index[id(layer.moving_mean)], index[id(layer.moving_variance)])
                 for layer in layers]
        momenta = [layer.momentum for layer in layers]
        sums = [None] * len(layers)
        count = 0
        try:
            for layer in layers:   # the moving average becomes the batch statistics
                layer.momentum = 0.0
            forward = _stateless_forward(model)
            trainable_values = _values(model.trainable_variables)
            non_trainable_values = _values(non_trainable)
            for x in _batches(data, batch_size, steps):
                _check_batch(x)
                _, new = forward(trainable_values, non_trainable_values, x)
                for j, (mean_slot, var_slot) in enumerate(slots):
                    stats = np.stack([keras.ops.convert_to_numpy(new[mean_slot]),
                                      keras.ops.convert_to_numpy(new[var_slot])]
                                     ).astype(np.float64)
                    sums[j] = stats if sums[j] is None else sums[j] + stats
                count += 1
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
        if count == 0:
            raise ValueError("`data` gave no batch; recalibrate_batch_norm needs training data.")
        for layer, total in zip(layers, sums):
            mean, variance = total / count
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return {"layers": len(layers), "batches": count}


def predict_with_batch_statistics(model, x, batch_size=32, strategy=None):
    """The model's outputs in training mode (batch statistics), batch by batch,
    without changing any state.

    What the model computes during training on these batches: every batch
    norm normalises with the statistics of its batch. Compared with
    ``model.predict`` (inference mode, moving statistics), it measures the lag
    of the moving statistics. All samples are used; the last batch may be
    smaller (a last single sample is computed in a batch with the ones before it).

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
        >>> y = predict_with_batch_statistics(model, np.arange(12.0).reshape(4, 3), batch_size=2)
        >>> np.round(y[:2, 0], 2).tolist(), model.layers[0].moving_mean.numpy().tolist()
        ([-1.0, 1.0], [0.0, 0.0, 0.0])
    """
    count = int(x.shape[0])
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 2:
        raise ValueError(f"`batch_size` must be an integer >= 2; received {batch_size!r}.")
    if count < 2:
        raise ValueError(f"Batch statistics need at least 2 samples; received {count}.")
    outputs = []
    with _scope(strategy):
        forward = _stateless_forward(model)
        trainable_values = _values(model.trainable_variables)
        non_trainable_values = _values(model.non_trainable_variables)
        for start in range(0, count, batch_size):
            # A last batch of one sample has no statistics: that sample is
            # computed in a batch with the samples before it.
            first = start if count - start > 1 else max(0, count - batch_size)
            y, _ = forward(trainable_values, non_trainable_values,
                           x[first:start + batch_size])
            outputs.append(keras.ops.convert_to_numpy(y)[start - first:])
    return np.concatenate(outputs)


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrate every batch norm at the end of ``fit`` (see :func:`recalibrate_batch_norm`).

    ``data``, ``steps``, ``batch_size`` and ``strategy`` are passed on. Put it
    last in the callback list, after callbacks that restore weights (such as
    ``EarlyStopping(restore_best_weights=True)``), so it sees the final ones.
    ``verbose=1`` prints what it did.

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
        ...                           keras.layers.BatchNormalization(), keras.layers.Dense(1)])
        >>> model.compile("adam", "mse")
        >>> x, y = np.random.normal(size=(64, 3)), np.zeros((64, 1))
        >>> callback = BatchNormRecalibration((x, y), batch_size=16)
        >>> _ = model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
        >>> callback.result
        {'layers': 1, 'batches': 4}
    """

    def __init__(self, data, steps=None, batch_size=None, strategy=None, verbose=0):
        super().__init__()
        _check_steps(steps)
        self.data = data
        self.steps = steps
        self.batch_size = batch_size
        self.strategy = strategy
        self.verbose = verbose
        self.result = None

    def on_train_end(self, logs=None):
        self.result = recalibrate_batch_norm(self.model, self.data, steps=self.steps,
                                             batch_size=self.batch_size,
                                             strategy=self.strategy)
        if self.verbose:
            print(f"BatchNormRecalibration: {self.result['layers']} batch norm(s) re-estimated "
                  f"on {self.result['batches']} batch(es).")
