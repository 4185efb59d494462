"""Offline datasets used by the main job, the export checks and the tests."""

from keras_acts.data.fashion_mnist import DEFAULT_DIR
from keras_acts.data.fashion_mnist import load_fashion_mnist

__all__ = ["DEFAULT_DIR", "load_fashion_mnist"]
