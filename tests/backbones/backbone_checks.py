"""Checks shared by the backbone tests (imported from the test modules)."""

import numpy as np
import keras

from keras_acts import _private
from keras_acts import registry
from keras_acts.layers import ActivationLayer

ACTIVATIONS = registry.names()
ACT_TYPES = ActivationLayer


def layers_of(model):
    """Every layer inside ``model`` (recursively, each object once)."""
    return list(registry.iter_layers(model))


def activation_layers(model, types=ACT_TYPES):
    return list(registry.iter_layers(model, types=types))


def assert_fresh_sites(model, n_sites, types=ACT_TYPES):
    """``n_sites`` activation layers, each a distinct object used at one node."""
    acts = activation_layers(model, types)
    assert len(acts) == n_sites
    assert len({id(a) for a in acts}) == n_sites
    for act in acts:
        assert len(_private.inbound_nodes(act)) == 1, act.name


def assert_nothing_shared(old, new):
    """No layer object and no variable is shared between the two models."""
    assert not {id(x) for x in layers_of(old)} & {id(x) for x in layers_of(new)}
    assert not {id(w) for w in old.weights} & {id(w) for w in new.weights}


def assert_same_other_weights(old, new, types=ACT_TYPES):
    """The non-activation weights of ``new`` equal ``old``'s, in order and value."""
    inside = {id(w) for layer in activation_layers(new, types) for w in layer.weights}
    others = [w for w in new.weights if id(w) not in inside]
    assert len(others) == len(old.weights)
    for a, b in zip(old.weights, others):
        assert a.name == b.name and tuple(a.shape) == tuple(b.shape), (a.path, b.path)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b), err_msg=a.path)


def random_images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch,) + tuple(shape)).astype("float32")


def train_one_step(model, x, y=None, loss="mse", eager=True):
    """One SGD step (MSE towards zeros unless ``y`` is given); returns the loss.

    ``eager=True`` skips tf.function tracing (seconds instead of ~30 s per model
    on 2 CPU cores); the slow tests train in graph mode.
    """
    if y is None:
        y = keras.tree.map_structure(lambda t: np.zeros(t.shape, "float32"),
                                     model(x, training=False))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, run_eagerly=eager,
                  jit_compile=False)
    before = [np.array(keras.ops.convert_to_numpy(w), copy=True)
              for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    loss_value = history.history["loss"][-1]
    assert np.isfinite(loss_value)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    return loss_value


def assert_save_load_identical(model, x, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                                   keras.ops.convert_to_numpy(b)),
        model(x, training=False), loaded(x, training=False))
    return loaded
