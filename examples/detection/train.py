"""Train a keras-cv YOLOv8 or RetinaNet detector whose backbone activations
are keras_acts' (PWLU, ACON-C, Meta-ACON, Serf) under any tf.distribute
strategy, with COCO-style mAP evaluation.

Data: a prepared TFDS detection dataset under ``--data-dir`` (``voc/2007``,
``voc/2012``, ``coco/2017``, or any dataset with ``image`` and
``objects/{bbox,label}``); ``--download`` prepares it first.

Example::

    python examples/detection/train.py --dataset voc/2007 --data-dir ~/tfds \
        --model-dir runs/yolo_serf --detector yolov8 --backbone yolo_v8_s \
        --activation serf --strategy mirrored --batch-size 64 --epochs 50

Kill it and rerun the same command: it resumes from the latest checkpoint.
"""

import sys

from keras_acts.training.detection import train_detector
from keras_acts.training.flags import parse_options
from keras_acts.training.flags import run_main
from keras_acts.training.options import DetectionOptions


def parse_args(argv=None):
    """Parse the command line into a :class:`DetectionOptions` (see ``--help``)."""
    return parse_options(DetectionOptions, argv, description=__doc__.split("\n\n")[0])


def main(argv=None):
    return run_main(train_detector, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
