"""Every docstring example of the package runs (and prints what it says).

One test per module of ``keras_acts``, run with ``doctest`` in a temporary
working directory (examples may write files) with ELLIPSIS and
NORMALIZE_WHITESPACE. A module whose optional dependency is missing is skipped
naming it, and so is a docstring whose example raises ImportError (a feature
whose extra is missing, e.g. keras-hub in the light install); on a backend other
than TensorFlow, modules of the TensorFlow-only features and examples that use
TensorFlow are skipped.
"""

import doctest
import importlib
import pkgutil

import keras
import pytest

import keras_acts

# The TensorFlow-only features (tf.distribute pipelines, TFLite export, the
# main job, the command line, TFLite builtin formulations).
TENSORFLOW_ONLY = ("keras_acts.training", "keras_acts.export", "keras_acts.demo",
                   "keras_acts.cli", "keras_acts.ops.builtin")
# Modules (name prefixes) whose examples may not run yet, marked xfail without
# running: none (every module's examples run). Keep empty.
PENDING = {}

MODULES = sorted(info.name for info in pkgutil.walk_packages(keras_acts.__path__, "keras_acts.")
                 if not info.name.endswith("__main__"))
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class _MissingExtra(Exception):
    pass


class _Runner(doctest.DocTestRunner):
    """Stops a docstring at an ImportError (its extra is not installed)."""

    def report_unexpected_exception(self, out, test, example, exc_info):
        if issubclass(exc_info[0], ImportError):
            raise _MissingExtra(f"{test.name}: {exc_info[1]}")
        super().report_unexpected_exception(out, test, example, exc_info)


def _uses_tensorflow(test):
    return any("tensorflow" in ex.source or "tf." in ex.source for ex in test.examples)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    on_tensorflow = keras.backend.backend() == "tensorflow"
    if not on_tensorflow and name.startswith(TENSORFLOW_ONLY):
        pytest.skip(f"{name} is TensorFlow only")
    pending = [reason for prefix, reason in PENDING.items() if name.startswith(prefix)]
    if pending:
        pytest.xfail(pending[0])
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # a missing extra names its pip install
        pytest.skip(f"{name}: {err}")
    monkeypatch.chdir(tmp_path)
    runner = _Runner(optionflags=OPTIONS)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name)
             if t.examples and (on_tensorflow or not _uses_tensorflow(t))]
    failed, missing = [], []
    for test in tests:
        try:
            result = runner.run(test, out=failed.append)
        except _MissingExtra as err:
            missing.append(str(err))
            continue
        assert result.attempted == len(test.examples) or result.failed
    assert not failed, "".join(failed)
    if missing and len(missing) == len(tests):
        pytest.skip("; ".join(missing))
