"""Argument and input-shape checks shared by the keras_acts layers.

Every check raises ``ValueError`` naming the argument, the allowed values and
the received value, at construction or build time (never inside a running
graph). Numbers may be Python or NumPy scalars (``np.int64(8)``,
``np.float32(0.9)``); booleans are refused where a number is expected.
"""

import numbers

MIN_RANK = 2
MAX_RANK = 5


def _is_bool(value):
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def check_int(value, name, minimum):
    """Return ``value`` as a Python int if it is an integer >= ``minimum``.

    Accepts any integral number (``int``, ``np.int64``...), refuses booleans,
    floats and everything else with a ``ValueError`` naming the argument.

    Example:
        >>> check_int(16, "num_intervals", 1)
        16
    """
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {name}={value!r}.")
    return int(value)


def check_float(value, name, low=None, high=None, low_inclusive=True, high_inclusive=False):
    """Return ``value`` as a Python float if it is a real number in the given range.

    Accepts Python and NumPy ints and floats; refuses booleans, strings, NaN
    and values outside ``[low, high)`` (inclusiveness set by the flags) with a
    ``ValueError`` naming the argument and the allowed range.

    Example:
        >>> check_float(0.9, "momentum", 0.0, 1.0)
        0.9
    """
    lo = "" if low is None else ("[" if low_inclusive else "(") + f"{low}"
    hi = "" if high is None else f"{high}" + ("]" if high_inclusive else ")")
    allowed = (f"a number in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else "a number")
    ok = not _is_bool(value) and isinstance(value, numbers.Real)
    if ok:
        number = float(value)
        ok = number == number  # not NaN
        if ok and low is not None:
            ok = number >= low if low_inclusive else number > low
        if ok and high is not None:
            ok = number <= high if high_inclusive else number < high
    if not ok:
        raise ValueError(f"`{name}` must be {allowed}; received {name}={value!r}.")
    return number


def check_bool(value, name):
    """Return ``value`` if it is True or False (Python or NumPy bool).

    Example:
        >>> check_bool(True, "channelwise")
        True
    """
    if not _is_bool(value):
        raise ValueError(f"`{name}` must be True or False; received {name}={value!r}.")
    return bool(value)


def check_axis_arg(axis):
    """Constructor-time check of a channel ``axis`` argument (an integer, not 0).

    Example:
        >>> check_axis_arg(-1)
        -1
    """
    if _is_bool(axis) or not isinstance(axis, numbers.Integral) or axis == 0:
        raise ValueError(
            "`axis` must be a non-zero integer (the channel axis; 0 is the batch axis), "
            f"e.g. -1 for channels-last or 1 for channels-first; received axis={axis!r}.")
    return int(axis)


def check_input_rank(input_shape, layer_name):
    """Return the rank of ``input_shape`` if it is in [2, 5], else raise ValueError.

    Example:
        >>> check_input_rank((None, 8, 8, 3), "PWLU")
        4
    """
    rank = len(input_shape)
    if not MIN_RANK <= rank <= MAX_RANK:
        raise ValueError(
            f"{layer_name} expects inputs of rank {MIN_RANK} to {MAX_RANK} (after Dense, "
            f"Conv1D, Conv2D or Conv3D); received input_shape={tuple(input_shape)} of "
            f"rank {rank}.")
    return rank


def normalize_axis(axis, rank, layer_name):
    """Map ``axis`` to a non-negative channel axis of a rank-``rank`` input.

    Allowed values are 1..rank-1 and -(rank-1)..-1; the batch axis 0 is refused.

    Example:
        >>> normalize_axis(-1, 4, "AconC")
        3
    """
    allowed = list(range(1, rank)) + list(range(-(rank - 1), 0))
    if axis not in allowed:
        raise ValueError(
            f"{layer_name}: `axis` must be one of {sorted(allowed)} for inputs of rank "
            f"{rank}; received axis={axis}.")
    return axis % rank


def channels(input_shape, axis, layer_name):
    """Static number of channels on ``axis``; ValueError if it is unknown.

    Example:
        >>> channels((None, 8, 8, 3), 3, "PWLU")
        3
    """
    c = input_shape[axis]
    if c is None:
        raise ValueError(
            f"{layer_name} needs a known channel dimension on axis {axis}; received "
            f"input_shape={tuple(input_shape)}.")
    return int(c)


def broadcast_shape(rank, axis, size):
    """``[1] * rank`` with ``size`` at ``axis``: shape that broadcasts per channel.

    Example:
        >>> broadcast_shape(4, 3, 16)
        [1, 1, 1, 16]
    """
    shape = [1] * rank
    shape[axis] = size
    return shape
