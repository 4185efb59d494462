import os

# Helpers (tests/kb.py, tests/reference.py, ...) are found through pytest's
# `pythonpath` setting in pyproject.toml.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    import jax  # noqa: E402

    jax.config.update("jax_enable_x64", True)   # float64 references on JAX too

# The op and layer tests run on every backend; the rest is TensorFlow's
# (tf.distribute pipelines, TFLite export, keras-cv backbones).
if keras.backend.backend() != "tensorflow":
    collect_ignore = ["training", "examples", "export", "benchmarks"]


# Tiny datasets in real formats (image folder, locally built TFDS) for the
# pipeline tests in tests/training and tests/examples; built on first use.
@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    from keras_acts.training.synthetic import write_image_folder

    return write_image_folder(str(tmp_path_factory.mktemp("folder")), num_classes=3,
                              per_class=8, val_per_class=3)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    from keras_acts.training.synthetic import build_tfds_classification

    d = str(tmp_path_factory.mktemp("tfds"))
    build_tfds_classification(d, name="tiny_images", num_classes=3, train=16, validation=6)
    return d


@pytest.fixture(scope="session")
def tfds_detection_dir(tmp_path_factory):
    from keras_acts.training.synthetic import build_tfds_detection

    d = str(tmp_path_factory.mktemp("tfds_det"))
    build_tfds_detection(d, name="tiny_voc", num_classes=3, train=16, validation=6, size=64)
    return d
