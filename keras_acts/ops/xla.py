"""Compiler tricks: every place where the ops bend their formulation to what the
XLA compiler (TensorFlow's ``jit_compile`` and JAX) does well, each behind a
switch so that a newer TensorFlow / JAX / XLA can be re-checked by flipping it
and rerunning the benchmark row named in its comment.

Switches (all on by default; :func:`tricks` flips them for a block)::

    nested_kernels      run each forward / backward as one nested XLA kernel:
                        ``tf.function(jit_compile=True)`` on TensorFlow in
                        graph and eager mode, ``jax.jit`` on JAX in eager mode
                        (both inlined when the caller is compiled).
                        Row: ``python -m benchmarks.ops`` "graph fwd+bwd"
                        (PWLU 25x -> 3.6x ReLU when it was introduced); on
                        JAX it spares eager calls one dispatch per op.
    materialize_tables  compute small lookup tables into their own buffer before
                        a gather reads them. Row: "xla fwd" of pwlu_channelwise
                        (5.8x -> 1.85x ReLU).
    stacked_sums        reduce several parameter-gradient columns with one
                        stacked reduction. Row: "xla fwd+bwd" of acon_c.

The tricks change speed only, never values (tests compare both settings).

Example:
    >>> with tricks(materialize_tables=False):
    ...     assert not enabled("materialize_tables")
"""

import contextlib
import functools
import threading

import keras
from keras import ops as K

_DEFAULTS = {"nested_kernels": True, "materialize_tables": True, "stacked_sums": True}
_state = threading.local()


def enabled(name):
    """True when the trick ``name`` (one of the switches above) is on.

    Example:
        >>> enabled("stacked_sums")
        True
    """
    if name not in _DEFAULTS:
        raise ValueError(f"`name` must be one of {sorted(_DEFAULTS)}; received {name!r}.")
    return getattr(_state, "flags", _DEFAULTS)[name]


@contextlib.contextmanager
def tricks(**flags):
    """Context in which the given switches take the given values (then restored).

    Example:
        >>> with tricks(nested_kernels=False):
        ...     enabled("nested_kernels")
        False
    """
    unknown = sorted(set(flags) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown trick(s) {unknown}; allowed: {sorted(_DEFAULTS)}.")
    previous = getattr(_state, "flags", _DEFAULTS)
    _state.flags = {**previous, **{k: bool(v) for k, v in flags.items()}}
    try:
        yield
    finally:
        _state.flags = previous


_KERNELS = {}


def kernel(fn, **static):
    """``fn(*tensors, **static)`` as one nested XLA kernel on TensorFlow and JAX.

    With ``nested_kernels`` on, returns a cached ``tf.function(jit_compile=True)``
    (TensorFlow) or ``jax.jit`` (JAX) of ``fn`` (``static`` are Python values
    fixed at trace time); both are inlined when the caller is itself compiled.
    Elsewhere (PyTorch, or the switch off) returns ``fn`` with ``static`` bound.

    Example:
        >>> double = kernel(lambda t, factor: t * factor, factor=2.0)
        >>> float(double(K.ones([])))
        2.0
    """
    bound = functools.partial(fn, **static) if static else fn
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax") or not enabled("nested_kernels"):
        return bound
    key = (backend, fn, tuple(sorted(static.items())))
    if key not in _KERNELS:
        if backend == "tensorflow":
            import tensorflow as tf  # noqa: PLC0415

            _KERNELS[key] = tf.function(bound, jit_compile=True, autograph=False)
        else:
            import jax  # noqa: PLC0415

            _KERNELS[key] = jax.jit(bound)
    return _KERNELS[key]


def materialized(table, compiled):
    """``table`` itself, computed into its own buffer before XLA gathers from it.

    XLA fuses cheap producers into the operand of a gather, so a lookup table
    built from parameters (a concat of differences, say) is recomputed for
    every element that reads it. A reduction is never fused into a loop as a
    producer, so the table is returned as ``sum([table, table * 0], 0)``: equal
    to ``table`` for finite entries (``x * 0`` cannot be simplified to 0 under
    IEEE rules, so XLA keeps the reduction). Meant for small tables only; a
    no-op unless ``compiled`` (the caller runs under XLA) and the
    ``materialize_tables`` switch is on.

    Example:
        >>> materialized(K.convert_to_tensor([1.0, 2.0]), compiled=True)
        array([1., 2.], dtype=float32)
    """
    if not (compiled and enabled("materialize_tables")):
        return table
    return K.sum(K.stack([table, table * K.zeros([], table.dtype)], axis=0), axis=0)


def stacked_sums(columns, axes, compiled):
    """Partial sums of same-shaped ``columns`` over ``axes`` (keepdims), one per column.

    Under XLA (``compiled``, switch ``stacked_sums``) the columns are stacked
    and summed in one reduction: XLA:CPU compiles one stacked reduction of a
    materialised operand into a fast vectorised kernel, while a reduction
    fused with its elementwise producer, or one per column, is several times
    slower. ``max(stack, -inf)`` is the identity (NaN stays NaN); it keeps the
    stack from being the reduction's root op, which XLA:CPU lowers to a slow
    loop. Elsewhere each column is summed on its own.

    Example:
        >>> a, b = stacked_sums([K.ones([4, 3])] * 2, [0], compiled=True)
        >>> a.shape
        (1, 3)
    """
    if not axes:
        return list(columns)
    if not (compiled and enabled("stacked_sums")) or len(columns) < 2:
        return [K.sum(c, axis=axes, keepdims=True) for c in columns]
    stacked = K.stack(columns, axis=0)
    stacked = K.maximum(stacked, K.convert_to_tensor(float("-inf"), stacked.dtype))
    total = K.sum(stacked, axis=[a + 1 for a in axes], keepdims=True)
    return [total[i] for i in range(len(columns))]
