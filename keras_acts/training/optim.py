"""Optimizer of the papers' recipes: SGD with momentum and weight decay that
excludes normalization layers and keras_acts activation parameters.

Example:
    >>> from keras_acts.training.models import build_classifier
    >>> model = build_classifier("tiny_cnn", "serf", num_classes=3, image_size=16)
    >>> opt = make_sgd(model, learning_rate=0.1, momentum=0.9, weight_decay=5e-5)
"""

import keras

from keras_acts.layers import ActivationLayer
from keras_acts.registry import iter_layers

_NORM_TYPES = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
               keras.layers.GroupNormalization)


def weight_decay_exclusions(model, exclude_bias=False):
    """Variables that must not be weight-decayed: every weight of a
    normalization layer (BN, LN, GN; gamma and beta) and of a keras_acts
    activation layer (PWLU points/bounds/slopes, ACON p1/p2/beta, Meta-ACON's
    beta generator), plus biases when ``exclude_bias``. Nested layers are
    searched. Returns a list without duplicates.

    Example:
        >>> import keras_acts
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
        ...                           keras.layers.BatchNormalization(), keras_acts.AconC()])
        >>> sorted(v.path.split("/")[-1] for v in weight_decay_exclusions(model))
        ['beta', 'beta', 'gamma', 'p1', 'p2']
    """
    seen, out = set(), []

    def add(variables):
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)

    for layer in iter_layers(model, types=(*_NORM_TYPES, ActivationLayer)):
        add(layer.trainable_weights)
    if exclude_bias:
        add(v for v in model.trainable_weights if v.path.split("/")[-1] == "bias")
    return out


def make_sgd(model, learning_rate, momentum=0.9, weight_decay=0.0, nesterov=False,
             exclude_bias=False, loss_scale=None):
    """SGD with momentum and decoupled weight decay (Keras' ``weight_decay``:
    ``w -= lr * weight_decay * w`` each step, close to PyTorch's L2 ``weight_decay``
    for SGD) that skips :func:`weight_decay_exclusions`. ``loss_scale=True``
    wraps it in ``keras.optimizers.LossScaleOptimizer`` (needed with
    ``mixed_float16``); ``None`` decides from the global dtype policy. Create
    it inside ``strategy.scope()``; the optimizer is built on the model's
    trainable variables so a checkpoint can restore its state immediately.

    Example:
        >>> import tensorflow as tf
        >>> from keras_acts.training.models import build_classifier
        >>> from keras_acts.training.schedules import WarmupDecay
        >>> with tf.distribute.get_strategy().scope():
        ...     model = build_classifier("tiny_cnn", "pwlu", num_classes=3, image_size=16)
        ...     opt = make_sgd(model, WarmupDecay(0.1, 1000, 50), weight_decay=1e-4)
        >>> len(opt.variables) > 1   # built: momentum slots exist already
        True
    """
    opt = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                               nesterov=nesterov, weight_decay=weight_decay or None)
    if weight_decay:
        opt.exclude_from_weight_decay(var_list=weight_decay_exclusions(model, exclude_bias))
    if loss_scale is None:
        loss_scale = keras.mixed_precision.global_policy().name == "mixed_float16"
    if loss_scale:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    opt.build(model.trainable_variables)
    return opt


def current_learning_rate(optimizer):
    """The learning rate the optimizer applies at its current iteration (float).

    Example:
        >>> round(current_learning_rate(keras.optimizers.SGD(0.1)), 6)
        0.1
    """
    # ``learning_rate`` evaluates a schedule at ``iterations`` (a LossScaleOptimizer
    # forwards it to its inner optimizer).
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
