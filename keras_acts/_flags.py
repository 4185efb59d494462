"""The one flag style of every keras_acts command line: dashed flags
(``--batch-size``), the underscore spelling (``--batch_size``) accepted as a
hidden alias. Used by the training pipelines, the main job and ``keras-acts``.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_flag(parser, "--batch-size", type=int, default=8)
    >>> parser.parse_args(["--batch_size", "4"]).batch_size
    4
"""

import argparse


def add_flag(parser, flag, **kwargs):
    """Add ``flag`` (dashed) to ``parser`` (or an argument group), and its
    underscore spelling as an alias hidden from ``--help``; both set the same
    destination. Positional names (no leading ``--``) are added as they are.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_flag(parser, "--int8-io", action="store_true")
        >>> parser.parse_args(["--int8_io"]).int8_io
        True
    """
    if not flag.startswith("--") or "-" not in flag[2:]:
        parser.add_argument(flag, **kwargs)
        return
    dest = kwargs.pop("dest", flag[2:].replace("-", "_"))
    parser.add_argument(flag, dest=dest, **kwargs)
    kwargs.pop("help", None)
    kwargs.pop("metavar", None)
    parser.add_argument("--" + flag[2:].replace("-", "_"), dest=dest, help=argparse.SUPPRESS,
                        **kwargs)
