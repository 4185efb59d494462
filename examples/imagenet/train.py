"""Train an ImageNet classifier whose activations are keras_acts' (PWLU,
ACON-C, Meta-ACON, Serf) under any tf.distribute strategy.

Data: ``--dataset folder`` reads ``<data_dir>/train/<class>/*.jpg`` and
``<data_dir>/val/<class>/*.jpg``; any other value is a TFDS name read from
``--data-dir`` (``imagenet2012``: put the archives in ``--manual-dir`` and pass
``--download`` once to prepare it).

Example (8 GPUs, PWLU ResNet-50, the paper's recipe)::

    python examples/imagenet/train.py --dataset imagenet2012 --data-dir ~/tfds \
        --model-dir runs/r50_pwlu --backbone resnet50 --activation pwlu \
        --strategy mirrored --batch-size 1024 --epochs 120 --lr 0.1 \
        --warmup-epochs 5 --label-smoothing 0.1 --pwlu-phase1-epochs 5 --mixed-precision

Kill it and rerun the same command: it resumes from the latest checkpoint.
TensorBoard: ``tensorboard --logdir runs/r50_pwlu/logs``.
"""

import sys

from keras_acts.training.classification import train_classifier
from keras_acts.training.flags import parse_options
from keras_acts.training.flags import run_main
from keras_acts.training.options import ClassificationOptions


def parse_args(argv=None):
    """Parse the command line into a :class:`ClassificationOptions` (see ``--help``)."""
    return parse_options(ClassificationOptions, argv, description=__doc__.split("\n\n")[0])


def main(argv=None):
    return run_main(train_classifier, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
