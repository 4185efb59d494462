"""keras_acts: learnable activation functions for Keras 3 / TensorFlow.

Layers: :class:`PWLU`, :class:`AconC`, :class:`MetaAcon`, :class:`Serf`;
function :func:`serf`; lookup :func:`get`.

Example:
    >>> import keras, keras_acts
    >>> model = keras.Sequential([keras.Input((28, 28, 1)),
    ...                           keras.layers.Conv2D(16, 3), keras_acts.PWLU()])
"""

from keras_acts import ops
from keras_acts.callbacks import PWLUPhaseCallback
from keras_acts.layers import AconC
from keras_acts.layers import MetaAcon
from keras_acts.layers import PWLU
from keras_acts.layers import Serf
from keras_acts.ops import serf
from keras_acts.registry import get

__version__ = "0.1.0"

__all__ = ["AconC", "MetaAcon", "PWLU", "PWLUPhaseCallback", "Serf", "get", "ops", "serf"]
