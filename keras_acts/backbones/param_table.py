"""Parameter counts per backbone x activation, as a markdown table.

Run ``python -m keras_acts.backbones.param_table`` (about a minute or two on a
laptop CPU; nothing is downloaded). Options: ``--names resnet18 resnet50`` to
restrict the rows, ``--placement acon_resnet`` for ACON's ResNet placement.
"""

import argparse

from keras_acts import report
from keras_acts.backbones.builders import DEFAULT_SOURCE
from keras_acts.backbones.builders import build
from keras_acts.backbones.sites import find_activation_sites
from keras_acts.backbones.swap import swap_activations
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
    args = parser.parse_args(argv)
    print(markdown_table(param_counts(args.names, placement=args.placement)))


if __name__ == "__main__":
    main()
