"""Floor 3 of keras_acts: distributed-training helpers behind the example
pipelines (data pipelines, strategy creation, the custom ``strategy.run`` loop
with progress bar, checkpoint/resume, LR schedules, weight-decay exclusion,
PWLU phase handling) and the two recipes (classification, detection).

Example:
    >>> from keras_acts import training
    >>> out = training.train_classifier(data_dir="/data/imagenet", model_dir="/tmp/run",
    ...                                 backbone="resnet50", activation="meta_acon")
"""

from keras_acts.training.checkpoint import TrainingCheckpoint
from keras_acts.training.classification import train_classifier
from keras_acts.training.data import ClassificationData
from keras_acts.training.data import DataDirError
from keras_acts.training.data import check_image_folder
from keras_acts.training.data import image_folder_data
from keras_acts.training.data import tfds_data
from keras_acts.training.loop import ClassificationTask
from keras_acts.training.loop import Trainer
from keras_acts.callbacks import pwlu_layers
from keras_acts.callbacks import realign_pwlu
from keras_acts.training.loop import sync_replica_state
from keras_acts.training.models import activation_factory
from keras_acts.training.models import build_classifier
from keras_acts.training.optim import make_sgd
from keras_acts.training.optim import weight_decay_exclusions
from keras_acts.training.schedules import WarmupDecay
from keras_acts.training.strategy import create_strategy
from keras_acts.training.strategy import is_chief
from keras_acts.training.strategy import set_mixed_precision

__all__ = ["ClassificationData", "ClassificationTask", "DataDirError", "Trainer",
           "TrainingCheckpoint", "WarmupDecay", "activation_factory", "build_classifier",
           "check_image_folder", "create_strategy", "image_folder_data", "is_chief",
           "make_sgd", "pwlu_layers", "realign_pwlu", "set_mixed_precision",
           "sync_replica_state", "tfds_data", "train_classifier", "weight_decay_exclusions"]
