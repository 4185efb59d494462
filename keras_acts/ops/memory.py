"""What a differentiable function keeps alive for its backward pass, on every
Keras backend.

:func:`saved_for_backward` lists the forward tensors that the gradient
computation reads: the memory a training step must hold from the forward pass
until the backward pass runs (before any compiler rematerialisation). It is how
the tests check that the custom gradients of :mod:`keras_acts.ops` keep only
the input and the (small) parameters, while plain autodiff of the same formula
keeps several input-sized intermediates. How it looks:

* TensorFlow: traces the function and its gradient in one graph and lists the
  forward tensors consumed by backward ops;
* JAX: the residuals of ``jax.vjp`` (the leaves of the returned VJP function);
* PyTorch: the tensors autograd saves (``torch.autograd.graph.saved_tensors_hooks``).

Example:
    >>> from keras import ops as K
    >>> x = K.zeros([8, 32])
    >>> saved = saved_for_backward(lambda t: t * K.sigmoid(t), x)
    >>> saved_bytes(saved) >= 2 * 8 * 32 * 4       # x and sigmoid(x)
    True
"""

import collections

import keras
import numpy as np

SavedTensor = collections.namedtuple("SavedTensor", ["name", "shape", "dtype", "bytes"])
SavedTensor.__doc__ = """A forward tensor read by the backward pass.

Fields: ``name`` (``x<i>`` for the i-th argument, ``var:<name>`` for a variable
read, else the producing op's name, with ``:k`` for output k > 0), ``shape``
(a tuple; ``None`` entries where unknown), ``dtype`` (a name such as
``"float32"``) and ``bytes`` (``None`` if the shape is not fully known).
"""


def saved_for_backward(fn, *args):
    """Forward tensors that the gradient of ``fn`` reads, largest first.

    Args:
        fn: callable mapping ``args`` to one tensor (or a structure of tensors).
        *args: tensors or arrays; every one is differentiated.

    Returns:
        A list of :class:`SavedTensor` sorted by decreasing bytes; the arguments
        are named ``x0``, ``x1``, ... in argument order (other names depend on
        the backend: op names on TensorFlow, ``residual<i>`` elsewhere).

    Example:
        >>> from keras import ops as K
        >>> from keras_acts import ops
        >>> x = K.zeros([4, 8, 8, 16])
        >>> [s.name for s in saved_for_backward(ops.serf, x)]
        ['x0']
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _saved_tensorflow(fn, *args)
    if backend == "jax":
        return _saved_jax(fn, *args)
    if backend == "torch":
        return _saved_torch(fn, *args)
    raise NotImplementedError(f"saved_for_backward does not support the {backend} backend.")


def _record(name, shape, dtype):
    shape = tuple(int(d) for d in shape)
    dtype = keras.backend.standardize_dtype(dtype)
    return SavedTensor(name, shape, dtype, int(np.prod(shape, dtype=np.int64))
                       * np.dtype(dtype if dtype != "bfloat16" else "float16").itemsize)


def _saved_jax(fn, *args):
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    arrays = [jnp.asarray(keras.ops.convert_to_numpy(a)) for a in args]
    pointers = {a.unsafe_buffer_pointer(): i for i, a in enumerate(arrays)}
    _, vjp = jax.vjp(fn, *arrays)
    saved, seen = [], set()
    for k, leaf in enumerate(jax.tree_util.tree_leaves(vjp)):
        if not hasattr(leaf, "unsafe_buffer_pointer"):
            continue
        pointer = leaf.unsafe_buffer_pointer()
        if pointer in seen:
            continue
        seen.add(pointer)
        name = f"x{pointers[pointer]}" if pointer in pointers else f"residual{k}"
        saved.append(_record(name, leaf.shape, leaf.dtype))
    return sorted(saved, key=lambda s: (-(s.bytes or 0), s.name))


def _saved_torch(fn, *args):
    import torch  # noqa: PLC0415

    leaves = [keras.ops.convert_to_tensor(a).detach().clone().requires_grad_(True)
              for a in args]
    pointers = {t.data_ptr(): i for i, t in enumerate(leaves)}
    saved, seen = [], set()

    def pack(t):
        key = (t.data_ptr(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            name = f"x{pointers[t.data_ptr()]}" if t.data_ptr() in pointers else \
                f"residual{len(saved)}"
            saved.append(_record(name, t.shape, str(t.dtype).replace("torch.", "")))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*leaves)
    return sorted(saved, key=lambda s: (-(s.bytes or 0), s.name))


def _spec(value):
    import tensorflow as tf  # noqa: PLC0415

    if isinstance(value, tf.Variable):
        return value
    value = tf.convert_to_tensor(value)
    return tf.TensorSpec(value.shape, value.dtype)


def _nbytes(shape, dtype):
    import tensorflow as tf  # noqa: PLC0415

    if shape.rank is None or any(d is None for d in shape.as_list()):
        return None
    count = 1
    for d in shape.as_list():
        count *= d
    return count * tf.as_dtype(dtype).size


def _saved_tensorflow(fn, *args):
    """TensorFlow: forward tensors that the gradient of ``fn`` reads.

    ``fn(*args)`` is traced in a ``tf.function`` under a ``tf.GradientTape``
    watching every tensor argument (and every trainable variable ``fn`` reads,
    e.g. a Keras layer's weights); then ``tape.gradient`` is taken with the
    upstream gradient passed in as a separate placeholder. Ops created before
    the gradient call form the forward pass, ops created during it the
    backward pass; the result lists each forward tensor (placeholders of the
    arguments, variable reads and intermediates) consumed by a backward op,
    i.e. the tensors kept alive between the two passes. The upstream gradient
    itself is not counted. Shapes are those of ``args`` (static), so bytes are
    exact for fully defined shapes.

    Args:
        fn: callable mapping ``args`` to one tensor (or a structure of tensors,
            whose gradients are all taken with their own upstream placeholders).
        *args: tensors, arrays or ``tf.Variable``s; tensors are watched.

    Returns:
        A list of :class:`SavedTensor` sorted by decreasing bytes. The argument
        tensors are named ``x0``, ``x1``, ... in argument order.

    """
    import tensorflow as tf  # noqa: PLC0415

    specs = [_spec(a) for a in args]
    tensor_specs = [s for s in specs if isinstance(s, tf.TensorSpec)]

    def call(tensors):
        it = iter(tensors)
        full = [next(it) if isinstance(s, tf.TensorSpec) else a for a, s in zip(args, specs)]
        return fn(*full)

    # Output structure and specs (for the upstream-gradient placeholders).
    out_specs = tf.nest.map_structure(
        lambda t: tf.TensorSpec(t.shape, t.dtype),
        tf.function(lambda *t: call(t)).get_concrete_function(*tensor_specs)
        .structured_outputs)
    flat_out_specs = tf.nest.flatten(out_specs)
    record = {}

    def traced(tensors, upstream):
        graph = tf.compat.v1.get_default_graph()
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            out = call(tensors)
        sources = list(tensors) + list(tape.watched_variables())
        n_forward = len(graph.get_operations())
        grads = tape.gradient(tf.nest.flatten(out), sources,
                              output_gradients=list(upstream),
                              unconnected_gradients="zero")
        record["graph"] = graph
        record["n_forward"] = n_forward
        record["inputs"] = [t.name for t in tensors]
        record["upstream"] = {t.name for t in upstream}
        return grads

    tf.function(traced).get_concrete_function(tensor_specs, flat_out_specs)
    ops = record["graph"].get_operations()
    forward = {op.name for op in ops[:record["n_forward"]]}
    arg_names = {name: f"x{i}" for i, name in enumerate(record["inputs"])}
    # Name variables by the handle their read op consumes.
    var_names = {}
    for op in ops[:record["n_forward"]]:
        if op.type == "ReadVariableOp":
            handle = op.inputs[0]
            var_names[op.outputs[0].name] = "var:" + handle.op.name
    saved = {}
    for op in ops[record["n_forward"]:]:
        for t in op.inputs:
            if t.op.name not in forward or t.name in record["upstream"]:
                continue
            if t.dtype == tf.resource or t.dtype == tf.variant:
                continue
            if t.name in saved:
                continue
            name = arg_names.get(t.name) or var_names.get(t.name)
            if name is None:
                name = t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}"
            shape = tuple(t.shape.as_list()) if t.shape.rank is not None else None
            saved[t.name] = SavedTensor(name, shape, t.dtype.name, _nbytes(t.shape, t.dtype))
    return sorted(saved.values(), key=lambda s: (-(s.bytes or 0), s.name))


def saved_bytes(saved):
    """Total bytes of a :func:`saved_for_backward` result (unknown sizes count 0).

    Example:
        >>> from keras import ops as K
        >>> saved_bytes(saved_for_backward(lambda t: t * t, K.zeros([10])))
        40
    """
    return sum(s.bytes or 0 for s in saved)
