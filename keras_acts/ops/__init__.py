"""Floor 1 of keras_acts: the maths of each activation, written once in
``keras.ops`` for every Keras backend (pure forward and backward functions
behind one memory-lean custom gradient, :mod:`keras_acts.ops.gradient`), the
compiler tricks (:mod:`keras_acts.ops.xla`) and, for TensorFlow, the
TFLite-builtin export formulations (:mod:`keras_acts.ops.builtin`).

Example:
    >>> from keras import ops as K
    >>> from keras_acts import ops
    >>> y = ops.serf(K.convert_to_tensor([0.5]))
"""

from keras_acts.ops.export_mode import export_mode
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.acon import acon_c
from keras_acts.ops.acon_family import acon_a
from keras_acts.ops.acon_family import acon_b
from keras_acts.ops.frelu import smooth_max
from keras_acts.ops.npwlu import npwlu
from keras_acts.ops.pwlu import pwlu
from keras_acts.ops.pwlu import realigned_parameters
from keras_acts.ops.serf import serf

__all__ = ["acon_a", "acon_b", "acon_c", "export_mode", "export_mode_enabled", "npwlu", "pwlu",
           "realigned_parameters", "serf", "smooth_max"]
