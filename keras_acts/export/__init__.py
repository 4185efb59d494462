"""Floor 4 of keras_acts: TFLite / LiteRT export with builtin ops only.

Example:
    >>> from keras_acts.export import to_tflite, run_tflite, parity_report
    >>> flatbuffer = to_tflite(model, "model.tflite")
    >>> y = run_tflite("model.tflite", x, num_threads=2)
"""

from keras_acts.export.tflite import QUANTIZATIONS
from keras_acts.export.tflite import ExportError
from keras_acts.export.tflite import builtin_op_names
from keras_acts.export.tflite import check_builtin_only
from keras_acts.export.tflite import export_concrete_function
from keras_acts.export.tflite import format_parity
from keras_acts.export.tflite import load_interpreter
from keras_acts.export.tflite import parity_report
from keras_acts.export.tflite import representative_from_array
from keras_acts.export.tflite import run_tflite
from keras_acts.export.tflite import to_tflite

__all__ = ["ExportError", "QUANTIZATIONS", "builtin_op_names", "check_builtin_only",
           "export_concrete_function", "format_parity", "load_interpreter", "parity_report", "representative_from_array",
           "run_tflite", "to_tflite"]
