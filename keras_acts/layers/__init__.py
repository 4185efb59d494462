"""Floor 2 of keras_acts: the Keras layers (weights, build, config, state).

Every keras_acts activation layer is an :class:`ActivationLayer`, so
``isinstance(layer, ActivationLayer)`` tells our layers apart from Keras' ones.

Example:
    >>> from keras_acts.layers import PWLU, AconC, MetaAcon, Serf, ActivationLayer
    >>> all(issubclass(c, ActivationLayer) for c in (PWLU, AconC, MetaAcon, Serf))
    True
"""

from keras_acts.layers._base import ActivationLayer
from keras_acts.layers.acon_c import AconC
from keras_acts.layers.acon_family import AconA
from keras_acts.layers.acon_family import AconB
from keras_acts.layers.batch_norm import GeneratorBatchNorm
from keras_acts.layers.frelu import AconFReLU
from keras_acts.layers.frelu import FReLU
from keras_acts.layers.meta_acon import MetaAcon
from keras_acts.layers.npwlu import NPWLU
from keras_acts.layers.pwlu import PWLU
from keras_acts.layers.serf import Serf

__all__ = ["AconA", "AconB", "AconC", "AconFReLU", "ActivationLayer", "FReLU",
           "GeneratorBatchNorm", "MetaAcon", "NPWLU", "PWLU", "Serf"]
