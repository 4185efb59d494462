"""Image byte checks for the input pipelines: a cheap structural check of an
encoded image file (no decoding), a warning naming a file that fails it, and
the guard that gives such a file weight 0 instead of stopping the run.

Example:
    >>> ok, reason = image_file_check(tf.constant(b"GIF8"))
    >>> bool(ok), reason.numpy()
    (False, b'truncated GIF file (no GIF end marker in its last 16384 bytes)')
"""

import sys

import tensorflow as tf

#: How far from the end of a file :func:`image_file_check` looks for the
#: format's end marker (JPEG, PNG). Data appended after the marker is
#: allowed up to this length; a valid file with more trailing data is skipped.
TAIL_BYTES = 16384

_JPEG, _PNG, _GIF, _BMP, _WEBP = "JPEG", "PNG", "GIF", "BMP", "WebP"


def _bytes_at(raw, start, count):
    """Little-endian unsigned integer of ``raw[start:start + count]`` (int64)."""
    value = tf.zeros([], tf.int64)
    for i in reversed(range(count)):
        value = value * 256 + tf.cast(raw[start + i], tf.int64)
    return value


def _contains(raw, pattern):
    """Whether the uint8 vector ``raw`` contains the byte string ``pattern``."""
    count = tf.maximum(tf.size(raw) - len(pattern) + 1, 0)
    hit = tf.ones([count], tf.bool)
    for i, byte in enumerate(pattern):
        hit = tf.logical_and(hit, tf.equal(raw[i:i + count], byte))
    return tf.reduce_any(hit)


def image_file_check(encoded):
    """Cheap structural check of one encoded image file (graph ops on its
    first 30 and last :data:`TAIL_BYTES` bytes; no decoding). Returns
    ``(ok, reason)``: a scalar bool and, when not ok, a string saying why.

    A file is ok when it starts with a JPEG, PNG, GIF, BMP or WebP signature
    (what ``tf.io.decode_image`` recognises, whatever the file's extension)
    and is complete: JPEG ends with its end-of-image marker ``FF D9``, PNG with
    its ``IEND`` chunk (each within the last :data:`TAIL_BYTES`), GIF with its
    trailer byte ``3B`` (TensorFlow also decodes a GIF that lacks only the
    trailer; this check skips it), WebP holds the length its RIFF header
    declares, and BMP has exactly the size its header implies (as
    TensorFlow's decoder requires).
    This catches empty files, text or HTML saved under an image name and
    truncated copies; a file that passes can still hold a corrupt header
    (:meth:`ClassificationData.find_unreadable` names those).

    Example:
        >>> ok, reason = image_file_check(tf.constant(b"hello"))
        >>> bool(ok), reason.numpy()
        (False, b'not a JPEG, PNG, GIF, BMP or WebP file')
        >>> image = tf.zeros([4, 4, 3], tf.uint8)
        >>> bool(image_file_check(tf.io.encode_png(image))[0])
        True
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    n = tf.strings.length(encoded)
    head = tf.io.decode_raw(tf.strings.substr(tf.strings.join(
        [tf.strings.substr(encoded, 0, 30), b"\0" * 30]), 0, 30), tf.uint8)
    tail = tf.io.decode_raw(tf.strings.substr(encoded, tf.maximum(n - TAIL_BYTES, 0),
                                              TAIL_BYTES), tf.uint8)

    def starts(sig):
        return tf.reduce_all(tf.equal(head[:len(sig)], list(sig)))

    n64 = tf.cast(n, tf.int64)
    width, height, bpp = _bytes_at(head, 18, 4), _bytes_at(head, 22, 4), _bytes_at(head, 28, 2)
    height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)  # signed: top-down rows
    bmp_size = _bytes_at(head, 10, 4) + (bpp * width + 31) // 32 * 4 * height
    formats = [
        (_JPEG, starts(b"\xff\xd8\xff"), _contains(tail, b"\xff\xd9")),
        (_PNG, starts(b"\x89PNG\r\n\x1a\n"), _contains(tail, b"IEND\xaeB`\x82")),
        (_GIF, starts(b"GIF8"), tf.reduce_all(tf.equal(tail[-1:], 0x3B))),
        (_WEBP, tf.logical_and(starts(b"RIFF"), tf.reduce_all(tf.equal(head[8:12], list(b"WEBP")))),
         n64 >= _bytes_at(head, 4, 4) + 8),
        (_BMP, starts(b"BM"), tf.equal(n64, bmp_size)),
    ]
    known = tf.reduce_any(tf.stack([sig for _, sig, _ in formats]))
    reason = tf.constant("")
    ok = tf.constant(False)
    for name, sig, complete in reversed(formats):
        ok = tf.where(sig, complete, ok)
        reason = tf.where(sig, f"truncated {name} file (" + (
            f"size differs from the {name} header's" if name in (_BMP, _WEBP) else
            f"no {name} end marker in its last {TAIL_BYTES} bytes") + ")", reason)
    reason = tf.where(known, reason, "not a JPEG, PNG, GIF, BMP or WebP file")
    reason = tf.where(tf.equal(n, 0), "empty file", reason)
    return tf.logical_and(ok, tf.greater(n, 0)), reason


def readable_image(name, encoded):
    """:func:`image_file_check` of ``encoded``; when it fails, prints
    ``warning: skipping unreadable image <name>: <reason>`` on stderr (from
    inside the input pipeline, so every time the file comes up). Returns the
    scalar bool.

    Example:
        >>> bool(readable_image("a.jpg", tf.constant(b"")))   # prints the warning
        False
    """
    ok, reason = image_file_check(encoded)

    def warn():
        tf.print("warning: skipping unreadable image", name, "-", reason, output_stream=sys.stderr)
        return tf.constant(False)

    return tf.cond(ok, lambda: tf.constant(True), warn)


def guarded(name, encoded, preprocess, shape):
    """``(preprocess(encoded), 1.0)`` when :func:`readable_image` accepts the
    file, else ``(zeros(shape), 0.0)`` after its warning: the weight keeps the
    skipped example out of the loss, metrics and counts while batches keep
    their size.

    Example:
        >>> image, weight = guarded("a.jpg", tf.constant(b"text"), decode, [8, 8, 3])
        >>> float(weight)
        0.0
    """
    ok = readable_image(name, encoded)
    image = tf.cond(ok, lambda: preprocess(encoded), lambda: tf.zeros(shape, tf.float32))
    return image, tf.cast(ok, tf.float32)


def decode(encoded):
    """``tf.io.decode_image`` of one encoded image as ``[H, W, 3]`` uint8
    (first frame of an animation).

    Example:
        >>> decode(tf.io.encode_png(tf.zeros([2, 3, 3], tf.uint8))).shape
        TensorShape([2, 3, 3])
    """
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image
