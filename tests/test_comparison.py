"""keras_acts.comparison (summaries and tables of the main job), the run
recorder callback and small_cnn's options."""

import keras
import numpy as np
import pytest

from keras_acts.callbacks import RunRecorder
from keras_acts.comparison import runs_table
from keras_acts.comparison import summarize
from keras_acts.comparison import summary_table
from keras_acts.models import small_cnn


def _record(name, seed, accuracy, gap_after=0.001, seconds=(9.0, 3.0)):
    return {"activation": name, "seed": seed, "test_accuracy": accuracy, "gap_after": gap_after,
            "gap_before": 0.02, "trainable_parameters": 7, "epoch_seconds": list(seconds),
            "accuracy_before_recalibration": accuracy - 0.01,
            "batch_statistics_accuracy": accuracy + gap_after, "run_seconds": 30.0,
            "load_average": [1.0, 3.0]}


def test_summary_pairs_seeds_with_relu():
    records = [_record("relu", s, a) for s, a in ((0, 0.90), (1, 0.91), (2, 0.89))]
    # serf has seeds 2, 0 (in that order) and a missing seed 1: pairs by seed.
    records += [_record("serf", 2, 0.905, gap_after=0.004), _record("serf", 0, 0.915)]
    rows = summarize(records, ["relu", "serf"])
    relu, serf = rows
    assert relu["delta_vs_relu"] is None and relu["time_ratio_vs_relu"] == 1.0
    assert serf["delta_vs_relu"]["n"] == 2
    assert serf["delta_vs_relu"]["mean"] == pytest.approx(((0.915 - 0.90) + (0.905 - 0.89)) / 2)
    assert serf["accuracy_std"] == pytest.approx(np.std([0.905, 0.915], ddof=1))
    assert serf["max_gap_after"] == 0.004 and serf["seconds_per_epoch"] == 3.0
    table = summary_table(rows).splitlines()
    assert table[2].startswith("| relu | 90.00 ± 1.00 (n=3) | n/a | n/a | 2.00 → 0.10 |")
    assert table[3].startswith("| serf | 91.00 ± 0.71 (n=2) | +1.50 [+1.50, +1.50] | better")


def test_runs_table_rows():
    lines = runs_table([_record("pwlu", 1, 0.9)]).splitlines()
    assert lines[2] == "| pwlu | 1 | 89.00 | 90.00 | 90.10 | 0.10 | 30 | 2.0 |"


def test_recorder_recovers_per_step_values():
    recorder = RunRecorder(num_samples=10, batch_size=4)  # batches of 4, 4, 2
    recorder.on_epoch_begin(0)
    for b, running in enumerate([(1.0, 0.25), (1.5, 0.5), (1.8, 0.6)]):
        recorder.on_train_batch_end(b, {"loss": running[0], "accuracy": running[1]})
    recorder.on_test_begin()
    recorder.on_epoch_end(0)
    np.testing.assert_allclose(recorder.per_step["loss"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(recorder.per_step["accuracy"], [0.25, 0.75, 1.0])
    assert len(recorder.epoch_seconds) == 1


def test_small_cnn_options():
    # The default model is unchanged (the README's parameter counts).
    default = small_cnn("relu")
    assert sum(int(np.prod(w.shape)) for w in default.trainable_weights) == 65834
    assert default.get_layer("pool") is not None
    flat = small_cnn("relu", width=24, convs_per_block=1, head="flatten")
    names = [layer.name for layer in flat.layers]
    assert "flatten" in names and "pool" not in names and "block1_conv2" not in names
    assert flat.get_layer("logits").kernel.shape == (7 * 7 * 48, 10)
    assert flat.output_shape == (None, 10)
    with pytest.raises(ValueError, match="`head` must be one of \\('gap', 'flatten'\\); "
                                         "received 'dense'"):
        small_cnn(head="dense")
    with pytest.raises(ValueError, match="`convs_per_block` must be an integer >= 1; "
                                         "received 0"):
        small_cnn(convs_per_block=0)
    assert isinstance(flat.get_layer("block2_bn1"), keras.layers.BatchNormalization)
