"""Train a keras-cv YOLOv8 or RetinaNet detector whose backbone activations
are keras_acts' (PWLU, ACON-C, Meta-ACON, Serf) under any tf.distribute
strategy, with COCO-style mAP evaluation.

Data: a prepared TFDS detection dataset under ``--data_dir`` (``voc/2007``,
``voc/2012``, ``coco/2017``, or any dataset with ``image`` and
``objects/{bbox,label}``); ``--download`` prepares it first.

Example::

    python examples/detection/train.py --dataset voc/2007 --data_dir ~/tfds \
        --model_dir runs/yolo_serf --detector yolov8 --backbone yolo_v8_s \
        --activation serf --strategy mirrored --batch_size 64 --epochs 50

Kill it and rerun the same command: it resumes from the latest checkpoint.
"""

import argparse
import sys

from keras_acts.training.detection import DETECTORS
from keras_acts.training.detection import train_detector
from keras_acts.training.flags import add_common_flags
from keras_acts.training.flags import run_main


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_flags(parser, default_backbone="tiny_pyramid", default_lr=0.01,
                     default_epochs=50, default_batch=16, default_image_size=512,
                     default_weight_decay=5e-4)
    parser.set_defaults(source="keras_cv", warmup_epochs=1.0, pwlu_phase1_epochs=1.0)
    g = parser.add_argument_group("detection")
    g.add_argument("--detector", choices=DETECTORS, default="yolov8")
    g.add_argument("--dataset", default="voc/2007", help="TFDS detection dataset name.")
    g.add_argument("--train_split", default="train")
    g.add_argument("--eval_split", default="validation")
    g.add_argument("--max_boxes", type=int, default=32, help="boxes kept per image (padding).")
    g.add_argument("--download", action="store_true", help="prepare the TFDS dataset first.")
    return parser.parse_args(argv)


def main(argv=None):
    return run_main(train_detector, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
