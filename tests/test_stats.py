"""keras_acts.stats: t quantiles against published table values, the paired
interval against a hand computation, and verdicts read from the interval only."""

import math

import numpy as np
import pytest

from keras_acts.stats import paired_difference
from keras_acts.stats import t_cdf
from keras_acts.stats import t_quantile

# Two-sided 95 % critical values of Student's t (any statistics table).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 19: 2.093, 29: 2.045,
        120: 1.980}


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_the_table(df):
    assert t_quantile(0.975, df) == pytest.approx(T975[df], abs=6e-4)
    assert t_quantile(0.025, df) == pytest.approx(-T975[df], abs=6e-4)


def test_t_cdf_closed_forms():
    # df = 1 is Cauchy: 1/2 + atan(t)/pi; df = 2: 1/2 + t / (2 sqrt(2 + t^2)).
    for t in (-3.0, -0.5, 0.0, 0.7, 10.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    assert t_quantile(0.995, 1e6) == pytest.approx(2.5758, abs=1e-3)   # normal limit


def test_paired_difference_interval():
    values, baseline = [0.905, 0.912, 0.899, 0.910], [0.900, 0.905, 0.901, 0.902]
    d = np.subtract(values, baseline)
    half = 3.182446 * d.std(ddof=1) / 2.0   # t(0.975, 3) to 7 digits
    result = paired_difference(values, baseline)
    assert result["n"] == 4 and result["mean"] == pytest.approx(d.mean())
    assert result["low"] == pytest.approx(d.mean() - half, abs=1e-6)
    assert result["high"] == pytest.approx(d.mean() + half, abs=1e-6)
    assert result["verdict"] == "within noise" and result["low"] < 0 < result["high"]


def test_verdicts_come_from_the_interval():
    assert paired_difference([0.92, 0.93, 0.91], [0.90, 0.90, 0.89])["verdict"] == "better"
    assert paired_difference([0.88, 0.87, 0.86], [0.90, 0.90, 0.89])["verdict"] == "worse"
    # A large mean difference with one discordant seed is not a claim.
    assert paired_difference([0.95, 0.95, 0.88], [0.90, 0.90, 0.90])["verdict"] == \
        "within noise"
    one = paired_difference([0.95], [0.90])
    assert one["low"] is None and one["verdict"] == "within noise"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([0.9, 0.8], [0.9])
    with pytest.raises(ValueError, match="`confidence` must be in \\(0, 1\\); received 95"):
        paired_difference([0.9], [0.9], confidence=95)
    with pytest.raises(ValueError, match="`df` must be a number > 0; received 0"):
        t_quantile(0.9, 0)
    with pytest.raises(ValueError, match="`p` must be in"):
        t_quantile(1.0, 3)
