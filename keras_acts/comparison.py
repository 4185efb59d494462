"""Comparing activations over seeds: per-activation summaries of run records
(mean ± std, paired difference to ReLU with its t-interval and verdict,
inference gaps, time) and their markdown tables (``keras_acts.report``).

A run record is a dict with at least ``activation``, ``seed``,
``test_accuracy``, ``gap_before``, ``gap_after`` (inference vs
batch-statistics accuracy before/after BN recalibration),
``trainable_parameters`` and ``epoch_seconds`` (the main job writes them).
"""

import numpy as np

from keras_acts.report import markdown_table
from keras_acts.stats import paired_difference


def seconds_per_epoch(records):
    """Median training seconds per epoch, each run's first epoch (tracing) left out
    when it has more than one.

    Example:
        >>> seconds_per_epoch([{"epoch_seconds": [9.0, 5.0]}, {"epoch_seconds": [8.0, 6.0]}])
        5.5
    """
    return float(np.median([t for r in records for t in (
        r["epoch_seconds"][1:] if len(r["epoch_seconds"]) > 1 else r["epoch_seconds"])]))


def summarize(records, activations):
    """Per-activation summary dicts: accuracy mean/std over seeds, the paired
    difference to ReLU (``keras_acts.stats.paired_difference``, seeds both have),
    the largest inference vs batch-statistics gap before and after recalibration,
    parameters and training time.

    Example:
        >>> runs = [{"activation": a, "seed": s, "test_accuracy": acc, "gap_after": 0.001,
        ...          "gap_before": 0.01, "trainable_parameters": 9, "epoch_seconds": [2.0]}
        ...         for a, s, acc in (("relu", 0, .90), ("relu", 1, .91), ("serf", 0, .92),
        ...                           ("serf", 1, .925))]
        >>> row = summarize(runs, ["relu", "serf"])[1]
        >>> round(row["delta_vs_relu"]["mean"], 4), row["delta_vs_relu"]["verdict"]
        (0.0175, 'within noise')
    """
    by_name = {name: {r["seed"]: r for r in records if r["activation"] == name}
               for name in activations}
    relu = by_name.get("relu", {})
    rows = []
    for name in activations:
        runs = list(by_name[name].values())
        acc = np.asarray([r["test_accuracy"] for r in runs])
        seeds = sorted(set(by_name[name]) & set(relu))
        delta = (paired_difference([by_name[name][s]["test_accuracy"] for s in seeds],
                                   [relu[s]["test_accuracy"] for s in seeds])
                 if seeds and name != "relu" else None)
        rows.append({
            "activation": name, "seeds": [r["seed"] for r in runs], "accuracies": acc.tolist(),
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else None,
            "delta_vs_relu": delta,
            "max_gap_before": max(r["gap_before"] for r in runs),
            "max_gap_after": max(r["gap_after"] for r in runs),
            "trainable_parameters": runs[0]["trainable_parameters"],
            "seconds_per_epoch": seconds_per_epoch(runs),
        })
    base = next((row for row in rows if row["activation"] == "relu"), None)
    for row in rows:
        row["time_ratio_vs_relu"] = (row["seconds_per_epoch"] / base["seconds_per_epoch"]
                                     if base else None)
    return rows


def _pp(value, sign=True):
    return "n/a" if value is None else f"{100 * value:{'+' if sign else ''}.2f}"


def summary_table(rows):
    """The per-activation table (accuracy in %, differences in percentage points).

    Example:
        >>> print(summary_table([{"activation": "serf", "accuracy_mean": 0.9, "seeds": [0],
        ...     "accuracy_std": None, "delta_vs_relu": None, "max_gap_before": 0.01,
        ...     "max_gap_after": 0.001, "trainable_parameters": 7, "seconds_per_epoch": 3.0,
        ...     "time_ratio_vs_relu": None}]).splitlines()[2])
        | serf | 90.00 ± n/a (n=1) | n/a | n/a | 1.00 → 0.10 | 7 | 3.0 | n/a |
    """
    header = ["activation", "test accuracy % (mean ± std)", "Δ vs ReLU, pp (95 % CI)",
              "verdict", "max inference gap, pp (before → after recalibration)",
              "trainable params", "train s/epoch", "time ratio to ReLU"]
    body = []
    for row in rows:
        d = row["delta_vs_relu"]
        if d is None:
            delta, verdict = "n/a", "n/a"
        else:
            interval = ("" if d["low"] is None
                        else f" [{_pp(d['low'])}, {_pp(d['high'])}]")
            delta, verdict = f"{_pp(d['mean'])}{interval}", d["verdict"]
        ratio = row["time_ratio_vs_relu"]
        body.append([row["activation"], f"{_pp(row['accuracy_mean'], False)} ± "
                     f"{_pp(row['accuracy_std'], False)} (n={len(row['seeds'])})", delta,
                     verdict, f"{_pp(row['max_gap_before'], False)} → "
                     f"{_pp(row['max_gap_after'], False)}", f"{row['trainable_parameters']:,}",
                     f"{row['seconds_per_epoch']:.1f}",
                     "n/a" if ratio is None else f"{ratio:.2f}x"])
    return markdown_table(header, body)


def runs_table(records):
    """One row per run: accuracies before/after recalibration, batch statistics, time.

    Example:
        >>> print(runs_table([{"activation": "relu", "seed": 0, "test_accuracy": 0.9,
        ...     "accuracy_before_recalibration": 0.89, "batch_statistics_accuracy": 0.901,
        ...     "gap_after": 0.001, "run_seconds": 60.0, "load_average": [1.0, 2.0]}]
        ...     ).splitlines()[2])
        | relu | 0 | 89.00 | 90.00 | 90.10 | 0.10 | 60 | 1.5 |
    """
    header = ["activation", "seed", "inference before %", "inference after %",
              "batch statistics %", "gap after (pp)", "run s", "load avg"]
    return markdown_table(header, [[
        r["activation"], r["seed"], _pp(r["accuracy_before_recalibration"], False),
        _pp(r["test_accuracy"], False), _pp(r["batch_statistics_accuracy"], False),
        _pp(r["gap_after"], False), f"{r['run_seconds']:.0f}",
        f"{np.mean(r['load_average']):.1f}"] for r in records])
