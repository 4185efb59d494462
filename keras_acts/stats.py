"""Small statistics for comparing runs over seeds: Student's t quantiles and the
paired difference with its confidence interval (NumPy only, no SciPy).

Example:
    >>> d = paired_difference([0.92, 0.93, 0.91], [0.90, 0.90, 0.89])
    >>> round(d["mean"], 4), d["verdict"]
    (0.0233, 'better')
"""

import math

import numpy as np

VERDICTS = ("better", "within noise", "worse")


def _betacf(a, b, x):
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a, b, x):
    """Regularized incomplete beta I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """Student's t cumulative distribution: P(T <= t) with ``df`` degrees of freedom,
    ``1 - I_{df / (df + t^2)}(df / 2, 1 / 2) / 2`` for t >= 0.

    Example:
        >>> round(t_cdf(2.776445, 4), 6)
        0.975
    """
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The ``p`` quantile of Student's t with ``df`` >= 1 degrees of freedom
    (bisection on :func:`t_cdf`, to 1e-10).

    Example:
        >>> round(t_quantile(0.975, 2), 3), round(t_quantile(0.975, 9), 3)
        (4.303, 2.262)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"`p` must be in (0, 1); received {p!r}.")
    if isinstance(df, bool) or not isinstance(df, (int, float, np.integer, np.floating)) \
            or not df > 0:
        raise ValueError(f"`df` must be a number > 0; received {df!r}.")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    while high - low > 1e-10 * max(1.0, high):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return 0.5 * (low + high)


def paired_difference(values, baseline, confidence=0.95):
    """Mean of ``values[i] - baseline[i]`` (the same seeds) with its t interval.

    With n pairs, d_i = values_i - baseline_i, mean m, sample std s (ddof 1)::

        m -/+ t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)

    The verdict reads the interval only: ``better`` when it lies above 0,
    ``worse`` when below, ``within noise`` when it holds 0; with one pair
    there is no interval (``low``/``high`` None, verdict ``within noise``
    and ``n`` says why).

    Example:
        >>> d = paired_difference([0.80, 0.82], [0.81, 0.80])
        >>> d["n"], d["verdict"]
        (2, 'within noise')
    """
    values = np.asarray(values, np.float64)
    baseline = np.asarray(baseline, np.float64)
    if values.shape != baseline.shape or values.ndim != 1 or values.size == 0:
        raise ValueError("`values` and `baseline` must be 1-D and of the same length >= 1; "
                         f"received shapes {values.shape} and {baseline.shape}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1); received {confidence!r}.")
    d = values - baseline
    n = d.size
    result = {"n": int(n), "mean": float(d.mean()), "confidence": confidence,
              "low": None, "high": None, "std": None, "verdict": "within noise"}
    if n > 1:
        std = float(d.std(ddof=1))
        half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
        result.update(std=std, low=result["mean"] - half, high=result["mean"] + half)
        if result["low"] > 0:
            result["verdict"] = "better"
        elif result["high"] < 0:
            result["verdict"] = "worse"
    return result
