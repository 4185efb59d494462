"""Train an ImageNet classifier whose activations are keras_acts' (PWLU,
ACON-C, Meta-ACON, Serf) under any tf.distribute strategy.

Data: ``--dataset folder`` reads ``<data_dir>/train/<class>/*.jpg`` and
``<data_dir>/val/<class>/*.jpg``; any other value is a TFDS name read from
``--data_dir`` (``imagenet2012``: put the archives in ``--manual_dir`` and pass
``--download`` once to prepare it).

Example (8 GPUs, PWLU ResNet-50, the paper's recipe)::

    python examples/imagenet/train.py --dataset imagenet2012 --data_dir ~/tfds \
        --model_dir runs/r50_pwlu --backbone resnet50 --activation pwlu \
        --strategy mirrored --batch_size 1024 --epochs 120 --lr 0.1 \
        --warmup_epochs 5 --label_smoothing 0.1 --pwlu_phase1_epochs 5 --mixed_precision

Kill it and rerun the same command: it resumes from the latest checkpoint.
TensorBoard: ``tensorboard --logdir runs/r50_pwlu/logs``.
"""

import argparse
import sys

from keras_acts.training.classification import train_classifier
from keras_acts.training.flags import add_common_flags
from keras_acts.training.flags import run_main


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_flags(parser)
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default="folder",
                   help="'folder' (image-folder tree) or a TFDS name, e.g. imagenet2012.")
    g.add_argument("--manual_dir", default=None, help="TFDS manual_dir (imagenet2012 archives).")
    g.add_argument("--download", action="store_true", help="prepare the TFDS dataset first.")
    g.add_argument("--label_smoothing", type=float, default=0.1)
    return parser.parse_args(argv)


def main(argv=None):
    return run_main(train_classifier, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
