"""Parameter counts per backbone x activation, as a markdown table.

Run ``python -m keras_acts.backbones.param_table`` (about a minute or two on a
laptop CPU; nothing is downloaded). Options: ``--names resnet18 resnet50`` to
restrict the rows, ``--placement acon_resnet`` for ACON's ResNet placement,
``--papers`` for the ACON paper's ShuffleNetV2 / TFNet against the papers' tables.
"""

import argparse
import math

from keras_acts import report
from keras_acts.backbones.builders import DEFAULT_SOURCE
from keras_acts.backbones.builders import build
from keras_acts.backbones.sites import find_activation_sites
from keras_acts.backbones.swap import swap_activations
from keras_acts.layers import AconFReLU
from keras_acts.registry import names

ACTIVATIONS = names()
HEADERS = {"pwlu": "PWLU", "acon_c": "ACON-C", "meta_acon": "Meta-ACON", "serf": "Serf"}
ROWS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        "efficientnet_b0", "yolo_v8_xs", "retinanet_resnet50")


def param_counts(names=ROWS, activations=ACTIVATIONS, placement="all",
                 input_shape=(224, 224, 3)):
    """One dict per backbone: name, source, sites, original count and one count
    per activation (each on a fresh swap of the same original model).

    Example:
        >>> param_counts(["resnet18"], ["acon_c"], input_shape=(64, 64, 3))[0]["acon_c"] - 11186112
        11712
    """
    rows = []
    for name in names:
        source = DEFAULT_SOURCE[name]
        model = build(name, source=source, input_shape=input_shape)
        row = {"name": name, "source": source, "original": model.count_params(),
               "sites": len(find_activation_sites(model, placement=placement))}
        for activation in activations:
            row[activation] = swap_activations(
                model, activation, placement=placement).count_params()
        rows.append(row)
    return rows


#: The papers' parameter counts (millions, 1000 classes): ShuffleNetV2 (Ma et al.,
#: ECCV 2018, ReLU) and TFNet (the ACON paper, CVPR 2021, ACON-FReLU).
PAPER_MILLIONS = {"shufflenet_v2_0.5x": 1.4, "shufflenet_v2_1.0x": 2.3,
                  "shufflenet_v2_1.5x": 3.5, "shufflenet_v2_2.0x": 7.4,
                  "tfnet_0.5": 1.3, "tfnet_1.0": 1.9, "tfnet_1.5": None, "tfnet_2.0": None}
PAPER_ACTIVATIONS = ("acon_c", "meta_acon")


def trainable_count(model):
    """Trainable parameters: what PyTorch's ``model.parameters()`` counts (batch
    norms' moving statistics are buffers there).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
        ...                           keras.layers.BatchNormalization()])
        >>> trainable_count(model), model.count_params()
        (12, 16)
    """
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def paper_counts(names=tuple(PAPER_MILLIONS), activations=PAPER_ACTIVATIONS,
                 input_shape=(224, 224, 3), num_classes=1000):
    """One dict per ACON-paper network: name, sites, paper figure, trainable
    count with its own activation (ShuffleNetV2: ReLU, TFNet: ACON-FReLU) and
    with each of ``activations`` at every site.

    Example:
        >>> row = paper_counts(["tfnet_0.5"], ["acon_c"], (32, 32, 3), 10)[0]
        >>> row["sites"], row["acon_c"] < row["original"]
        (33, True)
    """
    rows = []
    for name in names:
        model = build(name, input_shape=input_shape, num_classes=num_classes)
        if name.startswith("tfnet"):  # its own ACON-FReLU layers (the stem's ReLU aside)
            sites = sum(isinstance(layer, AconFReLU) for layer in model.layers)
        else:
            sites = len(find_activation_sites(model))
        row = {"name": name, "sites": sites, "paper": PAPER_MILLIONS.get(name),
               "original": trainable_count(model)}
        for activation in activations:
            row[activation] = trainable_count(build(
                name, activation=activation, input_shape=input_shape, num_classes=num_classes))
        rows.append(row)
    return rows


def paper_markdown_table(rows, activations=PAPER_ACTIVATIONS):
    """Markdown table of :func:`paper_counts` rows.

    Example:
        >>> rows = [{"name": "tfnet_0.5", "sites": 33, "paper": 1.3, "original": 1344504,
        ...          "acon_c": 1300000}]
        >>> print(paper_markdown_table(rows, ["acon_c"]))
        | network | sites | paper | own activation | ACON-C |
        |---|---|---:|---:|---:|
        | tfnet_0.5 | 33 | 1.3M | 1,344,504 | 1,300,000 (-44,504) |
    """
    header = ["network", "sites", "paper", "own activation"] + [HEADERS.get(a, a)
                                                               for a in activations]
    cells = [[row["name"], str(row["sites"]),
              "-" if row["paper"] is None else f"{row['paper']}M", f"{row['original']:,}"]
             + [f"{row[a]:,} ({row[a] - row['original']:+,})" for a in activations]
             for row in rows]
    return report.markdown_table(header, cells, align="ll" + "r" * (len(header) - 2))


def markdown_table(rows, activations=ACTIVATIONS):
    """Markdown table of :func:`param_counts` rows: totals with the increase over
    the original in parentheses.

    Example:
        >>> rows = [{"name": "tiny", "source": "keras", "sites": 2, "original": 1000,
        ...          "pwlu": 1036, "serf": 1000}]
        >>> print(markdown_table(rows, ["pwlu", "serf"]))
        | backbone | source | sites | original | PWLU | Serf |
        |---|---|---|---:|---:|---:|
        | tiny | keras | 2 | 1,000 | 1,036 (+36) | 1,000 (+0) |
    """
    header = ["backbone", "source", "sites", "original"] + [HEADERS.get(a, a)
                                                           for a in activations]
    cells = [[row["name"], row["source"], str(row["sites"]), f"{row['original']:,}"]
             + [f"{row[a]:,} (+{row[a] - row['original']:,})" for a in activations]
             for row in rows]
    return report.markdown_table(header, cells, align="lll" + "r" * (len(header) - 3))


def main(argv=None):
    """Print the table (command-line entry point).

    Example (a shell; about a minute)::

        python -m keras_acts.backbones.param_table --names resnet18
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=list(ROWS), choices=sorted(DEFAULT_SOURCE))
    parser.add_argument("--placement", default="all", choices=["all", "acon_resnet"])
    parser.add_argument("--papers", action="store_true",
                        help="the ACON paper's ShuffleNetV2 / TFNet (trainable counts, 1000 "
                             "classes) against the papers' tables")
    args = parser.parse_args(argv)
    if args.papers:
        print(paper_markdown_table(paper_counts()))
        return
    print(markdown_table(param_counts(args.names, placement=args.placement)))


if __name__ == "__main__":
    main()
