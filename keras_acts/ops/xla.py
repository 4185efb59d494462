"""Compiler tricks: every place where the ops bend their formulation to what the
XLA compiler (TensorFlow's ``jit_compile`` and JAX) does well, each behind a
switch so that a newer TensorFlow / JAX / XLA can be re-checked by flipping it
and rerunning the benchmark row named in its comment.

Switches (all on by default; :func:`tricks` flips them for a block)::

    nested_kernels      run each forward / backward as one nested XLA kernel:
                        ``tf.function(jit_compile=True)`` on TensorFlow in
                        graph and eager mode, ``jax.jit`` on JAX in eager mode
                        (both inlined when the caller is compiled).
                        Row: ``python -m benchmarks.ops`` "graph fwd+bwd" of
                        every activation (the README's ops table has the
                        figures); on JAX it spares eager calls one dispatch
                        per op.
    materialize_tables  compute small lookup tables into their own buffer before
                        a gather reads them. Row: "xla fwd" of pwlu_channelwise
                        (and ``tests/ops/test_pwlu_op.py`` checks the HLO).
    stacked_sums        reduce several parameter-gradient columns with one
                        stacked reduction. Row: "xla fwd+bwd" of acon_c.
    plain_gather        read lookup tables with the backend's own gather and
                        no bounds handling (the callers clamp their indices):
                        ``tf.gather``, JAX's ``promise_in_bounds``, PyTorch
                        indexing, instead of ``keras.ops.take``'s negative-index
                        fix-up and clipping. Rows: "xla fwd" / "xla fwd+bwd"
                        of pwlu_channelwise and pwlu_layerwise (the only
                        gathers); in since the ops were written once for every
                        backend, not yet A/B-measured on its own.
    chunked_sums        compute per-channel sums of many columns chunk by chunk
                        in a loop (:func:`chunked_sums`), each column summed on
                        its own while the chunk is in cache, instead of writing
                        every column over the whole tensor first. Row: "xla
                        fwd+bwd" of npwlu.

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

_DEFAULTS = {"nested_kernels": True, "materialize_tables": True, "stacked_sums": True,
             "plain_gather": True, "chunked_sums": True}
# Elements per chunk of :func:`chunked_sums` (a chunk of x and dy, 64 KiB in
# float32, and its columns stay in the caches; 8192-16384 were fastest).
CHUNK_ELEMENTS = 16384
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


_KERNELS = {}   # the nested-kernel cache: (backend, fn, static args[, input shapes]) -> compiled fn


def _shape_key(tensors):
    """The static shapes and dtypes of ``tensors`` (None for an unknown dimension)."""
    return tuple((tuple(t.shape) if getattr(t, "shape", None) is not None else None,
                  str(getattr(t, "dtype", type(t)))) for t in tensors)


# Switch "nested_kernels"; row: benchmarks.ops "graph fwd+bwd".
def kernel(fn, **static):
    """``fn(*tensors, **static)`` as one nested XLA kernel on TensorFlow and JAX.

    With ``nested_kernels`` on, returns a cached ``tf.function(jit_compile=True)``
    (TensorFlow) or ``jax.jit`` (JAX) of ``fn`` (``static`` are Python values
    fixed at trace time); both are inlined when the caller is itself compiled.
    Elsewhere (PyTorch, or the switch off) returns ``fn`` with ``static`` bound.

    On TensorFlow there is one ``tf.function`` per pattern of *static* input
    shapes (unknown dimensions included): the kernels read static shapes (which
    axes a parameter was broadcast along), and a ``tf.function`` reuses a trace
    whose signature is a supertype of the call's, so a trace for a per-sample
    ``(None, 1, 1, C)`` β would otherwise serve a ``(1, 1, 1, C)`` parameter and
    keep the batch axis in its gradient. (``jax.jit`` traces every concrete shape.)

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
    if backend == "jax":
        if key not in _KERNELS:
            import jax  # noqa: PLC0415

            _KERNELS[key] = jax.jit(bound)
        return _KERNELS[key]

    def call(*tensors):
        shaped = key + (_shape_key(tensors),)
        if shaped not in _KERNELS:
            import tensorflow as tf  # noqa: PLC0415

            _KERNELS[shaped] = tf.function(bound, jit_compile=True, autograph=False)
        return _KERNELS[shaped](*tensors)

    return call


# Switch "materialize_tables"; row: benchmarks.ops "xla fwd" of pwlu_channelwise.
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
        >>> K.convert_to_numpy(materialized(K.convert_to_tensor([1.0, 2.0], "float32"),
        ...                                 compiled=True))
        array([1., 2.], dtype=float32)
    """
    if not (compiled and enabled("materialize_tables")):
        return table
    return K.sum(K.stack([table, table * K.zeros([], table.dtype)], axis=0), axis=0)


# Switch "stacked_sums"; row: benchmarks.ops "xla fwd+bwd" of acon_c.
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
        >>> tuple(a.shape)
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


# Switch "plain_gather"; rows: benchmarks.ops "xla fwd", "xla fwd+bwd" of pwlu_*.
def gather(table, indices):
    """``table[indices]`` for a 1-D table and in-range integer indices.

    With ``plain_gather`` on, the backend's plain gather, without the
    negative-index fix-up or bounds handling of ``keras.ops.take`` (the callers
    clamp their indices first); off, ``keras.ops.take``. Same values either way.

    Example:
        >>> K.convert_to_numpy(gather(K.convert_to_tensor([1.0, 2.0, 3.0], "float32"),
        ...                           K.convert_to_tensor([2, 0])))
        array([3., 1.], dtype=float32)
    """
    backend = keras.backend.backend()
    if not enabled("plain_gather"):
        return K.take(table, indices)
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return tf.gather(table, indices)
    if backend == "jax":
        return table.at[indices].get(mode="promise_in_bounds")
    if backend == "torch":
        return table[indices.long()]
    return K.take(table, indices)


# Switch "chunked_sums"; row: benchmarks.ops "xla fwd+bwd" of npwlu.
def chunked_sums(fn, tensors, rows, compiled):
    """``fn(*tensors)`` for an ``fn`` that sums over the leading axis, chunk by chunk.

    ``fn(*parts)`` returns a list of tensors that add up over a split of the
    leading axis: ``fn(concat(a, b)) == fn(a) + fn(b)`` (sums of per-element
    columns). Under XLA (``compiled``, switch ``chunked_sums``) with a static
    leading axis longer than ``rows``, it is evaluated as a loop over chunks of
    ``rows`` (plus one tail chunk), so that the chunk and the columns computed
    from it stay in the caches: on XLA:CPU, k columns written over a whole
    tensor and summed by one stacked reduction cost about 2k passes over
    memory, and k reductions fused with their producers compile to slow loops
    over a large tensor, while per-column sums of a small chunk do not.
    Elsewhere ``fn(*tensors)``. Same values up to the order of summation.

    Example:
        >>> parts = chunked_sums(lambda t: [K.sum(t, axis=0)], [K.ones([10, 3])], rows=4,
        ...                      compiled=True)
        >>> K.convert_to_numpy(parts[0])
        array([10., 10., 10.], dtype=float32)
    """
    lead = tensors[0].shape[0]
    if not (compiled and enabled("chunked_sums")) or lead is None or rows >= lead:
        return list(fn(*tensors))
    count, tail = divmod(lead, rows)

    def chunk(start, size):
        return [K.slice(t, [start] + [0] * (len(t.shape) - 1), [size] + list(t.shape[1:]))
                for t in tensors]

    def body(i, acc):
        return [a + s for a, s in zip(acc, fn(*chunk(i * rows, rows)))]

    total = list(fn(*chunk(0, rows)))
    if count > 1:
        total = list(K.fori_loop(1, count, body, total))
    if tail:
        total = [a + s for a, s in zip(total, fn(*chunk(count * rows, tail)))]
    return total
