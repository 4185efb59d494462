"""Floor 3 of keras_acts: distributed-training helpers behind the example
pipelines (data pipelines, strategy creation, the custom ``strategy.run`` loop
with progress bar, checkpoint/resume, LR schedules, weight-decay exclusion,
PWLU phase handling) and the two recipes (classification, detection).

Example:
    >>> from keras_acts import training
    >>> from keras_acts.training.synthetic import write_image_folder
    >>> opts = training.ClassificationOptions(
    ...     data_dir=write_image_folder("images", num_classes=2, per_class=4, val_per_class=2),
    ...     model_dir="run", backbone="tiny_cnn", activation="meta_acon", image_size=16,
    ...     batch_size=4, epochs=1, verbose=0)
    >>> out = training.train_classifier(opts)
    >>> out["final_step"], len(training.pwlu_layers(out["model"]))
    (2, 0)
"""

from keras_acts._extras import require

require("tensorflow", extra="train", feature="keras_acts.training (tf.distribute pipelines)")

from keras_acts.training.checkpoint import TrainingCheckpoint  # noqa: E402
from keras_acts.training.classification import train_classifier  # noqa: E402
from keras_acts.training.data import ClassificationData  # noqa: E402
from keras_acts.training.pipeline import DataDirError  # noqa: E402
from keras_acts.training.data import check_image_folder  # noqa: E402
from keras_acts.training.data import image_folder_data  # noqa: E402
from keras_acts.training.data import tfds_data  # noqa: E402
from keras_acts.training.classification import ClassificationTask  # noqa: E402
from keras_acts.training.loop import Trainer  # noqa: E402
from keras_acts.callbacks import pwlu_layers  # noqa: E402
from keras_acts.callbacks import realign_pwlu  # noqa: E402
from keras_acts.training.strategy import sync_replica_state  # noqa: E402
from keras_acts.training.models import make_activation  # noqa: E402
from keras_acts.training.models import build_classifier  # noqa: E402
from keras_acts.training.optim import make_sgd  # noqa: E402
from keras_acts.training.options import ClassificationOptions  # noqa: E402
from keras_acts.training.options import DetectionOptions  # noqa: E402
from keras_acts.training.optim import weight_decay_exclusions  # noqa: E402
from keras_acts.training.schedules import WarmupDecay  # noqa: E402
from keras_acts.training.strategy import create_strategy  # noqa: E402
from keras_acts.training.strategy import is_chief  # noqa: E402
from keras_acts.training.strategy import set_mixed_precision  # noqa: E402

__all__ = ["ClassificationData", "ClassificationOptions", "ClassificationTask", "DataDirError",
           "DetectionOptions", "Trainer",
           "TrainingCheckpoint", "WarmupDecay", "build_classifier", "make_activation",
           "check_image_folder", "create_strategy", "image_folder_data", "is_chief",
           "make_sgd", "pwlu_layers", "realign_pwlu", "set_mixed_precision",
           "sync_replica_state", "tfds_data", "train_classifier", "weight_decay_exclusions"]
