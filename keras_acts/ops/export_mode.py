"""The export-mode switch: inside :func:`export_mode` the ops trace their
TFLite-builtin formulations (:mod:`keras_acts.ops.builtin`) instead of the training kernels.

Backend-neutral (no TensorFlow import): the ops check :func:`export_mode_enabled`
on every backend, and only then import the TensorFlow formulations.
"""

import contextlib
import threading

_state = threading.local()


def export_mode_enabled():
    """True inside :func:`export_mode`: ops use TFLite-builtin formulations.

    Example:
        >>> with export_mode():
        ...     assert export_mode_enabled()
    """
    return getattr(_state, "export", False)


def export_quantization():
    """Quantization the current export targets: None, "float16", "dynamic_range", "int8".

    Set by :func:`export_mode` (``quantization=``); None outside it. Ops use it
    to trace a quantization-friendly formulation where the accurate float one
    does not survive full-integer int8 (e.g. Serf's float form).

    Example:
        >>> with export_mode(quantization="int8"):
        ...     assert export_quantization() == "int8"
    """
    if not export_mode_enabled():
        return None
    return getattr(_state, "quantization", None)


@contextlib.contextmanager
def export_mode(enabled=True, quantization=None):
    """Context in which the ops trace inference-only, TFLite-builtin graphs.

    Inside it the ops skip their custom gradients (a converted model never
    differentiates) and replace ops that TFLite lacks as builtins (``tf.Erf``)
    by builtin formulations whose error is documented in each op.
    ``quantization`` (None/"none", "float16", "dynamic_range" or "int8") names
    the target of the export; with "int8" (full integer) ops may trace a
    shorter, bounded-range formulation (see :func:`export_quantization`).

    Example:
        >>> import tensorflow as tf
        >>> from keras_acts.ops import serf
        >>> with export_mode():
        ...     y = serf(tf.constant([1.0]))   # uses serf_gelu_builtin (one TFLite GELU)
        >>> with export_mode(quantization="int8"):
        ...     y = serf(tf.constant([1.0]))   # uses serf_int8_builtin
    """
    if quantization is not None:
        quantization = str(quantization).lower().replace("-", "_")
        if quantization == "none":
            quantization = None
    previous = export_mode_enabled(), getattr(_state, "quantization", None)
    _state.export = enabled
    _state.quantization = quantization
    try:
        yield
    finally:
        _state.export, _state.quantization = previous
