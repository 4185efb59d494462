"""Floor 4 of keras_acts: TFLite / LiteRT export with builtin ops only.

Three modules: :mod:`~keras_acts.export.convert` (Keras model -> flatbuffer,
:func:`to_tflite`; :func:`export_litert`: the same through Keras'
``model.export(format="litert")``), :mod:`~keras_acts.export.flatbuffer` (which ops a
flatbuffer holds, Flex/custom check naming the layer) and
:mod:`~keras_acts.export.runtime` (LiteRT interpreter, :func:`run_tflite`,
:func:`parity_report`); :mod:`~keras_acts.export.accuracy` holds the
Fashion-MNIST int8 check.

Example:
    >>> import keras, numpy as np, keras_acts
    >>> from keras_acts.export import to_tflite, run_tflite, parity_report
    >>> model = keras.Sequential([keras.Input((4,)), keras_acts.Serf()])
    >>> flatbuffer = to_tflite(model)          # to_tflite(model, "model.tflite") writes it
    >>> x = np.ones((3, 4), np.float32)
    >>> run_tflite(flatbuffer, x, num_threads=2).shape
    (3, 4)
    >>> parity_report(model, flatbuffer, x)["max_rel"] < 1e-5
    True
"""

from keras_acts.export.convert import QUANTIZATIONS
from keras_acts.export.convert import converter_options
from keras_acts.export.convert import export_litert
from keras_acts.export.convert import export_concrete_function
from keras_acts.export.convert import representative_from_array
from keras_acts.export.convert import to_tflite
from keras_acts.export.flatbuffer import ExportError
from keras_acts.export.flatbuffer import builtin_op_names
from keras_acts.export.flatbuffer import check_builtin_only
from keras_acts.export.flatbuffer import op_counts
from keras_acts.export.runtime import format_parity
from keras_acts.export.runtime import load_interpreter
from keras_acts.export.runtime import parity_report
from keras_acts.export.runtime import run_tflite
from keras_acts.export.runtime import xnnpack_partitions
from keras_acts.export.runtime import xnnpack_refused

__all__ = ["ExportError", "QUANTIZATIONS", "builtin_op_names", "check_builtin_only",
           "converter_options", "export_concrete_function", "export_litert", "format_parity", "load_interpreter", "op_counts",
           "parity_report", "representative_from_array", "run_tflite", "to_tflite",
           "xnnpack_partitions", "xnnpack_refused"]
