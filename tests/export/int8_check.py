"""Int8 full-integer accuracy check on Fashion-MNIST (shared by the tests).

Not a test module itself (no ``test_`` prefix): the check lives in
:mod:`keras_acts.export.accuracy` (the TFLite benchmark runs it too).
"""

from keras_acts.export.accuracy import FULL  # noqa: F401
from keras_acts.export.accuracy import fashion_mnist  # noqa: F401
from keras_acts.export.accuracy import int8_accuracy  # noqa: F401
