"""Floor 1 of keras_acts: the maths of each activation as pure TensorFlow
functions (forward, backward, custom-gradient wrapper, builtin export form).

Example:
    >>> from keras_acts import ops
    >>> y = ops.serf(tf.constant([0.5]))
"""

from keras_acts.ops.export_mode import export_mode
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.acon import acon_c
from keras_acts.ops.pwlu import pwlu
from keras_acts.ops.pwlu import realigned_parameters
from keras_acts.ops.serf import serf

__all__ = ["acon_c", "export_mode", "export_mode_enabled", "pwlu",
           "realigned_parameters", "serf"]
