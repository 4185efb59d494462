"""Command-line flags shared by the example pipelines (one definition for the
classification and detection scripts).

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_common_flags(parser)
    >>> args = parser.parse_args(["--strategy", "mirrored"])
"""

from keras_acts.training.schedules import DECAYS
from keras_acts.training.strategy import STRATEGIES


def add_common_flags(parser, default_backbone="resnet50", default_lr=0.1, default_epochs=90,
                     default_batch=256, default_image_size=224, default_weight_decay=1e-4):
    """Add the distribution, model, recipe and bookkeeping flags to an
    ``argparse.ArgumentParser``. Returns the parser.

    Example:
        >>> add_common_flags(argparse.ArgumentParser(), default_backbone="resnet18")
    """
    g = parser.add_argument_group("distribution")
    g.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy (multiworker reads TF_CONFIG; tpu uses --tpu).")
    g.add_argument("--tpu", default=None, help="TPU name or grpc:// address (strategy tpu).")
    g.add_argument("--jit_compile", action="store_true", help="XLA-compile the train step.")
    g.add_argument("--mixed_precision", action="store_true",
                   help="mixed_float16 (mixed_bfloat16 on TPU) with loss scaling.")
    g = parser.add_argument_group("model")
    g.add_argument("--backbone", default=default_backbone,
                   help="keras_acts.backbones name (classification: resnet18, resnet50, "
                        "mobilenet_v3_small, efficientnet_b0, ...; detection: yolo_v8_xs ... "
                        "yolo_v8_xl, resnet18 / resnet50 with --source keras_cv) or "
                        "tiny_cnn / tiny_pyramid (smoke tests).")
    g.add_argument("--source", default="keras_hub", choices=("keras_hub", "keras_cv", "keras"),
                   help="library the backbone comes from.")
    g.add_argument("--activation", default="pwlu",
                   help="pwlu | acon_c | meta_acon | serf (or a Keras name, e.g. relu).")
    g.add_argument("--image_size", type=int, default=default_image_size)
    g = parser.add_argument_group("recipe")
    g.add_argument("--epochs", type=int, default=default_epochs)
    g.add_argument("--batch_size", type=int, default=default_batch,
                   help="global batch size (all replicas and workers).")
    g.add_argument("--steps_per_epoch", type=int, default=None,
                   help="default: one pass over the training split.")
    g.add_argument("--eval_steps", type=int, default=None,
                   help="default: the whole evaluation split; 0 disables evaluation.")
    g.add_argument("--lr", type=float, default=default_lr,
                   help="learning rate per 256 images (scaled linearly with --batch_size).")
    g.add_argument("--lr_schedule", choices=DECAYS, default="cosine")
    g.add_argument("--warmup_epochs", type=float, default=5.0)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--nesterov", action="store_true")
    g.add_argument("--weight_decay", type=float, default=default_weight_decay,
                   help="decoupled weight decay; never applied to BN or keras_acts "
                        "activation parameters.")
    g.add_argument("--pwlu_phase1_epochs", type=float, default=5.0,
                   help="PWLU phase I length in epochs (paper: 5); 0 skips phase I.")
    g = parser.add_argument_group("bookkeeping")
    g.add_argument("--data_dir", required=True, help="dataset location (see --dataset).")
    g.add_argument("--model_dir", required=True,
                   help="checkpoints, TensorBoard logs and final weights; rerunning the "
                        "same command resumes from its latest checkpoint.")
    g.add_argument("--checkpoint_every", type=int, default=1000,
                   help="also checkpoint every N steps (always at epoch ends).")
    g.add_argument("--keep_checkpoints", type=int, default=3)
    g.add_argument("--log_every", type=int, default=50, help="TensorBoard period in steps.")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--verbose", type=int, default=1, choices=(0, 1))
    g.add_argument("--throttle_s", type=float, default=0.0,
                   help="debugging: sleep this long after every step.")
    return parser


def run_main(train_fn, args):
    """The body of an example script's ``main``: ``train_fn(**vars(args))``;
    a :class:`data.DataDirError` is printed to stderr (exit status 2), success
    prints the final step and weights path (exit status 0).

    Example:
        >>> sys.exit(run_main(train_classifier, parse_args()))
    """
    import sys

    from keras_acts.training.data import DataDirError

    try:
        out = train_fn(**vars(args))
    except DataDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.verbose:
        print(f"done: step {out['final_step']}, final weights in {out['weights_path']}")
    return 0
