"""TFLite-builtin formulations of the keras_acts ops (inference only, TensorFlow).

Under :func:`export_mode` the public ops (``keras_acts.ops.serf``, ``acon_c``,
``pwlu``, and the family's ``npwlu``, ``acon_a``/``acon_b`` -- ACON-C's form --
and ``frelu.smooth_max``) call the entry points below instead of their training kernels. Each
takes the op's own arguments and returns ``y`` in ``x``'s dtype, built from ops
that the TFLite converter maps to builtins (no Flex, no custom ops); which
formulation is traced may depend on :func:`export_quantization`.

Example:
    >>> import tensorflow as tf
    >>> from keras_acts.ops import builtin
    >>> with builtin.export_mode():
    ...     y = builtin.serf(tf.constant([1.0]))
"""

import tensorflow as tf

from keras_acts.ops._common import compute_dtype
from keras_acts.ops.export_mode import export_mode
from keras_acts.ops.export_mode import export_mode_enabled
from keras_acts.ops.export_mode import export_quantization
from keras_acts.ops.builtin.acon import acon_c_builtin
from keras_acts.ops.builtin.frelu import funnel_max
from keras_acts.ops.builtin.frelu import max_pool_3x3_s2
from keras_acts.ops.builtin.frelu import smooth_max_builtin
from keras_acts.ops.builtin.npwlu import npwlu_broadcast
from keras_acts.ops.builtin.npwlu import npwlu_clipped
from keras_acts.ops.builtin.npwlu import npwlu_tables
from keras_acts.ops.builtin.pwlu import FLOAT_FORMS
from keras_acts.ops.builtin.pwlu import INT8_FORMS
from keras_acts.ops.builtin.pwlu import float_form
from keras_acts.ops.builtin.pwlu import int8_form
from keras_acts.ops.builtin.pwlu import use_int8_form
from keras_acts.ops.builtin.pwlu import pwlu_broadcast
from keras_acts.ops.builtin.pwlu import pwlu_builtin
from keras_acts.ops.builtin.pwlu import pwlu_conv
from keras_acts.ops.builtin.pwlu import pwlu_knot_major
from keras_acts.ops.builtin.pwlu import use_float_form
from keras_acts.ops.builtin.pwlu import pwlu_hinges
from keras_acts.ops.builtin.pwlu import pwlu_tables
from keras_acts.ops.builtin.serf import erf_builtin
from keras_acts.ops.builtin.serf import serf_builtin
from keras_acts.ops.builtin.serf import serf_erf_builtin
from keras_acts.ops.builtin.serf import serf_gelu_builtin
from keras_acts.ops.builtin.serf import serf_int8_builtin


def serf(x):
    """Serf for export: :func:`serf_builtin` (float: the builtin GELU,
    :func:`serf_gelu_builtin`; int8 exports: :func:`serf_int8_builtin`).

    Example:
        >>> y = serf(tf.constant([-1.0, 2.0]))
    """
    return serf_builtin(tf.convert_to_tensor(x))


def acon_c(x, p1, p2, beta):
    """ACON-C for export (:func:`acon_c_builtin`), computed in float32 for 16-bit ``x``.

    Example:
        >>> y = acon_c(tf.constant([1.0]), 1.0, 0.0, 1.0)
    """
    x = tf.convert_to_tensor(x)
    cdt = compute_dtype(x.dtype)
    y = acon_c_builtin(*(tf.cast(t, cdt) for t in (x, p1, p2, beta)))
    return tf.cast(y, x.dtype)


def pwlu(x, left_bound, right_bound, points, left_slope, right_slope, axis=-1, active=True):
    """PWLU for export: float and full-integer int8 exports the knot-major sum of
    hinges reduced by a depthwise convolution (:func:`pwlu_knot_major`, a fixed op
    count for any N; another :data:`FLOAT_FORMS` / :data:`INT8_FORMS` entry under
    :func:`use_float_form` / :func:`use_int8_form`, e.g. the two-GATHER lookup
    :func:`pwlu_builtin` for int8); ``active`` False (phase I) gives ReLU.

    Example:
        >>> pts = tf.nn.relu(tf.linspace(-3.0, 3.0, 17))
        >>> y = pwlu(tf.constant([[0.5]]), -3.0, 3.0, pts, 0.0, 1.0)
    """
    x = tf.convert_to_tensor(x)
    cdt = compute_dtype(x.dtype)
    xc = tf.cast(x, cdt)
    params = [tf.convert_to_tensor(p) for p in (left_bound, right_bound, points, left_slope,
                                                  right_slope)]
    # The chosen form per quantization (default for both: knot-major hinges, depthwise sum).
    form = int8_form() if export_quantization() == "int8" else float_form()
    y = form(xc, *params, axis=axis)
    if active is not True:
        # Folded by the TFLite converter once `active` is a frozen constant;
        # tf.nn.relu so that a phase-I PWLU fuses into the preceding conv.
        y = tf.where(tf.convert_to_tensor(active), y, tf.nn.relu(xc))
    return tf.cast(y, x.dtype)


def npwlu(x, left_bound, widths, start_value, slopes, left_slope, right_slope, axis=-1,
          active=True):
    """Non-uniform PWLU for export: float exports the broadcast sum of hinges
    (:func:`npwlu_broadcast`, 7 ops for any N, no GATHER), full-integer int8 the
    bounded-range sum of clipped intervals (:func:`npwlu_clipped`); ``active``
    False (phase I) gives ReLU. Computed in float32 for 16-bit ``x``.

    Example:
        >>> y = npwlu(tf.constant([[-3.0, 0.5, 3.0]]), -2.0, tf.constant([4.0]), 0.0,
        ...           tf.constant([1.0]), 0.0, 1.0)
        >>> [float(v) for v in y[0]]
        [0.0, 2.5, 5.0]
    """
    x = tf.convert_to_tensor(x)
    cdt = compute_dtype(x.dtype)
    xc = tf.cast(x, cdt)
    params = [tf.cast(tf.convert_to_tensor(p), cdt)
              for p in (left_bound, widths, start_value, slopes, left_slope, right_slope)]
    form = npwlu_clipped if export_quantization() == "int8" else npwlu_broadcast
    y = form(xc, *params, axis=axis)
    if active is not True:
        # Folded by the converter once `active` is a frozen constant (phase I: ReLU).
        y = tf.where(tf.cast(tf.convert_to_tensor(active), tf.bool), y, tf.nn.relu(xc))
    return tf.cast(y, x.dtype)


def smooth_max(a, t):
    """ACON-FReLU's elementwise part for export (:func:`smooth_max_builtin`),
    computed in float32 for 16-bit inputs.

    Example:
        >>> round(float(smooth_max(tf.constant(3.0), tf.constant(0.0))), 4)
        2.8577
    """
    a, t = tf.convert_to_tensor(a), tf.convert_to_tensor(t)
    cdt = compute_dtype(a.dtype)
    return tf.cast(smooth_max_builtin(tf.cast(a, cdt), tf.cast(t, cdt)), a.dtype)


__all__ = ["funnel_max", "max_pool_3x3_s2", "npwlu", "npwlu_broadcast", "npwlu_clipped", "npwlu_tables",
           "smooth_max", "smooth_max_builtin", "FLOAT_FORMS", "INT8_FORMS", "float_form", "int8_form", "use_int8_form", "pwlu_broadcast", "use_float_form", "acon_c", "acon_c_builtin", "erf_builtin", "export_mode", "export_mode_enabled",
           "export_quantization", "pwlu", "pwlu_builtin", "pwlu_conv", "pwlu_hinges", "pwlu_knot_major", "pwlu_tables", "serf",
           "serf_builtin", "serf_erf_builtin", "serf_gelu_builtin", "serf_int8_builtin"]
