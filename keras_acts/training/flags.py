"""Command lines generated from a recipe's options dataclass
(:mod:`options`): one flag per field, dashed (``--batch-size``) with the
underscore spelling (``--batch_size``) accepted as a hidden alias; type,
default, choices and help come from the field. Parsing returns one options
object.

Example:
    >>> from keras_acts.training.options import ClassificationOptions
    >>> opts = parse_options(ClassificationOptions,
    ...                      ["--data-dir", "/data", "--model_dir", "/tmp/run", "--jit-compile"])
    >>> opts.data_dir, opts.model_dir, opts.jit_compile, opts.lr
    ('/data', '/tmp/run', True, 0.1)
"""

import argparse
import dataclasses
import sys
import typing

from keras_acts._flags import add_flag
from keras_acts.training.options import GROUPS


def flag_name(name):
    """The dashed flag of option ``name``.

    Example:
        >>> flag_name("batch_size")
        '--batch-size'
    """
    return "--" + name.replace("_", "-")


def _value_type(field):
    """``int`` / ``float`` / ``str`` / ``bool`` of a field (``Optional[X]`` -> ``X``)."""
    kind = field.type
    if typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind not in (int, float, str, bool):
        raise TypeError(f"option {field.name!r}: unsupported flag type {kind!r}")
    return kind


def build_parser(options_cls, description=None):
    """An ``argparse.ArgumentParser`` with one flag per field of
    ``options_cls``, grouped by the fields' ``group`` metadata. Every flag's
    argparse default is ``SUPPRESS``: the options class holds the defaults
    (shown in ``--help``), so only the flags given reach :func:`parse_options`.

    Example:
        >>> from keras_acts.training.options import DetectionOptions
        >>> parser = build_parser(DetectionOptions)
        >>> sorted(vars(parser.parse_args(["--max-boxes", "8"])).items())
        [('max_boxes', 8)]
    """
    parser = argparse.ArgumentParser(description=description)
    groups = {}
    fields = dataclasses.fields(options_cls)
    for name in GROUPS + tuple(f.metadata["group"] for f in fields):
        if name not in groups and any(f.metadata["group"] == name for f in fields):
            groups[name] = parser.add_argument_group(name)
    for f in fields:
        group = groups[f.metadata["group"]]
        kind = _value_type(f)
        required = f.default is dataclasses.MISSING
        help_text = f.metadata["help"] or ""
        if required:
            help_text += " (required)"
        elif kind is not bool:
            help_text += f" (default: {f.default})"
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS}
        if kind is bool:
            if f.default:
                raise TypeError(f"option {f.name!r}: a boolean flag must default to False")
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = kind
            if f.metadata["choices"] is not None:
                kwargs["choices"] = f.metadata["choices"]
            kwargs["metavar"] = f.name.upper() if f.metadata["choices"] is None else None
        add_flag(group, flag_name(f.name), help=help_text, **kwargs)
    return parser


def parse_options(options_cls, argv=None, description=None):
    """Parse ``argv`` (default ``sys.argv[1:]``) into an ``options_cls``
    object; a missing required flag or an invalid value exits with argparse's
    usage error (status 2) naming the flag.

    Example:
        >>> from keras_acts.training.options import DetectionOptions
        >>> parse_options(DetectionOptions, ["--data-dir", "d", "--model-dir", "m"]).lr
        0.01
    """
    parser = build_parser(options_cls, description)
    values = vars(parser.parse_args(argv))
    missing = [flag_name(f.name) for f in dataclasses.fields(options_cls)
               if f.default is dataclasses.MISSING and f.name not in values]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    try:
        return options_cls(**values)
    except ValueError as err:
        parser.error(str(err))
    return None  # not reached: parser.error exits


def run_main(train_fn, options):
    """The body of an example script's ``main``: ``train_fn(options)``; a
    :class:`pipeline.DataDirError` is printed to stderr (exit status 2),
    success prints the final step and weights path (exit status 0).

    Example:
        >>> def train(options):
        ...     return {"final_step": 3, "weights_path": "/tmp/w.h5"}
        >>> from keras_acts.training.options import DetectionOptions
        >>> run_main(train, DetectionOptions(data_dir="d", model_dir="m"))
        done: step 3, final weights in /tmp/w.h5
        0
    """
    from keras_acts.training.data import DataDirError

    try:
        out = train_fn(options)
    except DataDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if options.verbose:
        print(f"done: step {out['final_step']}, final weights in {out['weights_path']}")
    return 0
