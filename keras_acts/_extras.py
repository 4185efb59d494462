"""Optional dependencies: one place that knows which extra of ``keras-acts``
installs which package, and the one function that imports an optional package
or says what to install.

The core (``keras_acts`` layers, ops, registry, callbacks, ``models``) needs
only ``keras`` and ``numpy`` plus a Keras backend. Features above it import
their optional packages through :func:`require`, so a missing one raises an
``ImportError`` naming the ``pip install "keras-acts[<extra>]"`` to run:

==========================  ===================  ==========================
package (import name)       extra                used by
==========================  ===================  ==========================
``tensorflow``              ``tensorflow``       TF backend; training, export
``jax``                     ``jax``              JAX backend
``torch``                   ``torch``            PyTorch backend
``keras_hub``               ``backbones``        ``backbones`` (ResNet, EfficientNet, RetinaNet)
``keras_cv``                ``detection``        ``backbones`` (YOLOv8), detection pipeline
``pycocotools``             ``detection``        detection mAP
``tensorflow_datasets``     ``train``            training pipelines (TFDS input)
``ai_edge_litert``          ``export``           TFLite runtime (parity, benchmarks)
``matplotlib``              ``plot``             ``keras_acts.plot``, the demo's figures
==========================  ===================  ==========================

Example:
    >>> from keras_acts._extras import require
    >>> np = require("numpy")                         # installed: the module
    >>> try:
    ...     require("no_such_package", extra="plot")
    ... except ImportError as err:
    ...     print(err)
    keras_acts needs 'no_such_package', which is not installed: pip install "keras-acts[plot]"
"""

import importlib

#: Import name -> the extra of keras-acts that installs it.
EXTRAS = {
    "tensorflow": "tensorflow",
    "jax": "jax",
    "torch": "torch",
    "keras_hub": "backbones",
    "keras_cv": "detection",
    "pycocotools": "detection",
    "tensorflow_datasets": "train",
    "ai_edge_litert": "export",
    "matplotlib": "plot",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the feature,
    the package and the ``pip install "keras-acts[<extra>]"`` to run.

    Example:
        >>> try:
        ...     require("not_a_real_package_xyz", extra="plot")
        ... except MissingExtraError as err:
        ...     err.name, err.extra
        ('not_a_real_package_xyz', 'plot')
    """

    def __init__(self, message, name=None, extra=None):
        super().__init__(message, name=name)
        self.extra = extra


def install_hint(extra):
    """The command that installs ``extra``: ``pip install "keras-acts[<extra>]"``.

    Example:
        >>> install_hint("plot")
        'pip install "keras-acts[plot]"'
    """
    return f'pip install "keras-acts[{extra}]"'


def require(name, extra=None, feature=None):
    """Import and return module ``name`` (e.g. ``"keras_hub"`` or
    ``"tensorflow.lite"``). When its top-level package is not installed,
    raise :class:`MissingExtraError` (an ``ImportError``) naming the package, the feature that needs it and
    the install command for ``extra`` (default: :data:`EXTRAS` of the
    top-level package). An installed package that fails to import for another
    reason re-raises that error unchanged.

    Args:
        name: module to import.
        extra: the keras-acts extra that installs it.
        feature: what needs it, for the message (default ``"keras_acts"``).

    Example:
        >>> require("numpy").__name__
        'numpy'
        >>> try:
        ...     require("not_a_real_package_xyz", extra="plot", feature="keras_acts.plot")
        ... except ImportError as err:
        ...     print(err)
        keras_acts.plot needs 'not_a_real_package_xyz', which is not installed: pip install "keras-acts[plot]"
    """
    top = name.split(".")[0]
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing = getattr(err, "name", None)
        if missing is None or missing.split(".")[0] != top:
            raise  # installed, but something it imports is broken: show that error
        extra = extra or EXTRAS.get(top)
        hint = install_hint(extra) if extra else f"pip install {top}"
        raise MissingExtraError(f"{feature or 'keras_acts'} needs {top!r}, which is not "
                                f"installed: {hint}", name=top, extra=extra) from err
