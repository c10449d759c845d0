"""backtester.plotdata.envelope: a long line drawn with its extremes, a short one whole."""

from __future__ import annotations

import numpy as np

from backtester.plotdata import envelope


def test_a_short_line_is_drawn_whole():
    assert envelope(np.arange(5.0), max_points=10).tolist() == [0, 1, 2, 3, 4]


def test_buckets_keep_their_low_and_high_and_the_ends():
    values = np.array([5.0, 1.0, 3.0, 9.0, 4.0, 2.0, 8.0, 7.0, 6.0, 0.5, 3.0])
    # 11 points, at most 4: buckets of 6 points -> [0..5] and [6..10]
    assert envelope(values, max_points=4).tolist() == [0, 1, 3, 6, 9, 10]


def test_the_extremes_of_a_long_walk_survive():
    walk = np.cumsum(np.random.default_rng(5).standard_normal(100_000))
    keep = envelope(walk, max_points=2_000)
    assert len(keep) <= 2_002 and np.all(np.diff(keep) > 0)
    assert walk.argmin() in keep and walk.argmax() in keep
    drawdown = walk - np.maximum.accumulate(walk)
    assert drawdown.argmin() in envelope(drawdown)  # the deepest drawdown is drawn


def test_gaps_stay_gaps_and_nan_is_no_extreme():
    values = np.r_[np.full(6, np.nan), 1.0, np.nan, 3.0, 2.0, np.nan, 0.0]
    keep = envelope(values, max_points=4)  # buckets [0..5] all NaN, [6..11]
    assert keep.tolist() == [0, 8, 11]
    assert np.isnan(values[0])
