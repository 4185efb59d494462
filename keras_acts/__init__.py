"""keras_acts: learnable activation functions for Keras 3 / TensorFlow.

Layers: :class:`PWLU`, :class:`AconC`, :class:`MetaAcon`, :class:`Serf`, and the
papers' families: :class:`NPWLU`, :class:`AconA`, :class:`AconB`, :class:`FReLU`,
:class:`AconFReLU`; function :func:`serf`; lookup :func:`get` and :func:`make_activation`;
layer walker :func:`iter_layers` (``types=ActivationLayer`` for ours); graph surgery
:func:`swap_activations`; sub-packages ``backbones``, ``export``, ``training``
and module ``plot`` (imported on first use: they pull in keras-cv / keras-hub,
LiteRT and matplotlib).

Example:
    >>> import keras, keras_acts
    >>> model = keras.Sequential([keras.Input((28, 28, 1)),
    ...                           keras.layers.Conv2D(16, 3), keras_acts.PWLU()])
"""

import importlib

from keras_acts import ops
from keras_acts.callbacks import PWLUPhaseCallback
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
from keras_acts.ops import serf
from keras_acts.registry import get
from keras_acts.registry import iter_layers
from keras_acts.registry import make_activation
from keras_acts.registry import names

__version__ = "0.1.0"

_LAZY_MODULES = ("backbones", "export", "training", "plot")


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"keras_acts.{name}")
    if name == "swap_activations":
        return importlib.import_module("keras_acts.backbones").swap_activations
    raise AttributeError(f"module 'keras_acts' has no attribute {name!r}")


__all__ = ["AconA", "AconB", "AconC", "AconFReLU", "ActivationLayer", "FReLU", "MetaAcon",
           "NPWLU", "PWLU", "PWLUPhaseCallback", "Serf", "get", "iter_layers",
           "make_activation", "names", "ops", "serf", "swap_activations",
           *_LAZY_MODULES]
