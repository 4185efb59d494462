"""The export-mode switch: inside :func:`export_mode` the ops trace their
TFLite-builtin formulations (:mod:`keras_acts.ops.builtin`) instead of the training kernels.

Keras' own exporter is recognised too: while ``model.export(path, format="litert")``
traces the model (TensorFlow backend), export mode is on with the quantization its
converter keyword arguments ask for (:func:`keras_litert_quantization`), so the plain
Keras call gives the same builtin-only flatbuffer as :func:`keras_acts.export.to_tflite`.
An explicit :func:`export_mode` (including ``export_mode(False)``) takes precedence.

Backend-neutral (no TensorFlow import): the ops check :func:`export_mode_enabled`
on every backend, and only then import the TensorFlow formulations.
"""

import contextlib
import threading

import keras

from keras_acts import _private

_state = threading.local()


def _keras_litert_kwargs():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf  # noqa: PLC0415 (the TensorFlow backend has loaded it)

    if not tf.inside_function():   # Keras' exporter traces a tf.function
        return None
    return _private.keras_litert_export_kwargs()


def keras_litert_quantization(kwargs):
    """The quantization a Keras LiteRT export's converter keyword arguments ask for.

    ``representative_dataset`` given: "int8" (full-integer calibration);
    ``optimizations`` with ``target_spec={"supported_types": [tf.float16]}``:
    "float16"; ``optimizations`` alone: "dynamic_range"; otherwise None (float32).

    Example:
        >>> import tensorflow as tf
        >>> keras_litert_quantization({})
        >>> keras_litert_quantization({"optimizations": [tf.lite.Optimize.DEFAULT]})
        'dynamic_range'
        >>> keras_litert_quantization({"optimizations": [tf.lite.Optimize.DEFAULT],
        ...                            "target_spec": {"supported_types": [tf.float16]}})
        'float16'
    """
    if kwargs.get("representative_dataset") is not None:
        return "int8"
    if not kwargs.get("optimizations"):
        return None
    spec = kwargs.get("target_spec")
    types = spec.get("supported_types", ()) if isinstance(spec, dict) else ()
    if any(getattr(t, "name", str(t)) == "float16" for t in types or ()):
        return "float16"
    return "dynamic_range"


def export_mode_enabled():
    """True inside :func:`export_mode`, or while Keras' ``model.export(format="litert")``
    traces the model: ops use TFLite-builtin formulations.

    Example:
        >>> with export_mode():
        ...     assert export_mode_enabled()
        >>> export_mode_enabled()
        False
    """
    explicit = getattr(_state, "export", None)
    if explicit is not None:
        return explicit
    return _keras_litert_kwargs() is not None


def export_quantization():
    """Quantization the current export targets: None, "float16", "dynamic_range", "int8".

    Set by :func:`export_mode` (``quantization=``); None outside it. Ops use it
    to trace a quantization-friendly formulation where the accurate float one
    does not survive full-integer int8 (e.g. Serf's float form).

    Example:
        >>> with export_mode(quantization="int8"):
        ...     assert export_quantization() == "int8"
    """
    explicit = getattr(_state, "export", None)
    if explicit is not None:
        return getattr(_state, "quantization", None) if explicit else None
    kwargs = _keras_litert_kwargs()
    return None if kwargs is None else keras_litert_quantization(kwargs)


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
    previous = getattr(_state, "export", None), getattr(_state, "quantization", None)
    _state.export = bool(enabled)
    _state.quantization = quantization
    try:
        yield
    finally:
        _state.export, _state.quantization = previous
