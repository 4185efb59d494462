"""Offline datasets used by the main job, the export checks and the tests."""

from keras_acts.data.fashion_mnist import DEFAULT_DIR
from keras_acts.data.fashion_mnist import DatasetUnavailable
from keras_acts.data.fashion_mnist import load_data
from keras_acts.data.fashion_mnist import load_fashion_mnist
from keras_acts.data.fashion_mnist import prepare_images

__all__ = ["DEFAULT_DIR", "DatasetUnavailable", "load_data", "load_fashion_mnist",
           "prepare_images"]
