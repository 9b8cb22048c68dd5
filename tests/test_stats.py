"""Small-n intervals over seeds (lottery.stats): the t interval keeps its coverage at n = 5, where a
percentile bootstrap does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lottery import stats


def _bootstrap(values, resamples: int = 400, seed: int = 1):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(resamples)]
    low, high = np.percentile(means, [2.5, 97.5])
    return float(np.mean(values)), float(low), float(high)


def test_the_t_interval_keeps_its_coverage_at_five_seeds():
    """2,000 normal samples of 5: the t interval holds the mean in >= 93% of them (95% nominal);
    the percentile bootstrap, in far fewer (its width is bounded by the five values' range)."""
    assert stats.coverage(stats.t_interval, n=5, draws=2000, seed=3) >= 0.93
    assert stats.coverage(_bootstrap, n=5, draws=500, seed=3) < 0.90


def test_the_t_interval_by_hand():
    mean, low, high = stats.t_interval([97.5, 97.7, 97.9, 97.6, 97.8])
    half = 2.7764451051977987 * np.std([97.5, 97.7, 97.9, 97.6, 97.8], ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(97.7) and (low, high) == pytest.approx((97.7 - half, 97.7 + half))
    assert math.isnan(stats.t_interval([1.0])[1]) and math.isnan(stats.t_interval([])[0])
    assert stats.t_interval([1.0, math.nan, 3.0])[0] == 2.0


def test_a_ratios_interval_is_taken_on_the_log_scale():
    geo, low, high = stats.ratio_interval([2.0, 8.0])
    assert geo == pytest.approx(4.0)
    assert low * high == pytest.approx(16.0)  # symmetric about the log of the geometric mean
    with pytest.raises(ValueError, match="positive"):
        stats.ratio_interval([1.0, -1.0])
