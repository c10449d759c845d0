"""backtester.plotdata.envelope: a long line drawn with its extremes, a short one whole."""

from __future__ import annotations

import numpy as np

from backtester.plotdata import envelope, envelope_columns


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


def by_hand(values, max_points):
    """The rule, bucket by bucket: lowest and highest (the first point of an all-NaN
    bucket), and both ends."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    size = -(-n // (max_points // 2))
    keep = {0, n - 1}
    for start in range(0, n, size):
        bucket = values[start:start + size]
        if np.isnan(bucket).all():
            keep.add(start)
        else:
            keep |= {start + int(np.nanargmin(bucket)), start + int(np.nanargmax(bucket))}
    return sorted(keep)


def test_columns_at_once_are_each_columns_envelope_by_hand():
    rng = np.random.default_rng(7)
    for rows, max_points in ((5, 10), (2_000, 200), (2_001, 200), (4_971, 2_000)):
        values = rng.normal(size=(rows, 5)).cumsum(axis=0)
        values[: rows // 3, 1] = np.nan  # a symbol that starts later
        values[:, 2] = np.nan  # one never seen
        values[rows // 2:rows // 2 + 700, 3] = np.nan  # a gap
        starts, at = envelope_columns(values, max_points)
        for c in range(values.shape[1]):
            assert at[starts[c]:starts[c + 1]].tolist() == by_hand(values[:, c], max_points)
            assert envelope(values[:, c], max_points).tolist() == by_hand(values[:, c],
                                                                          max_points)


def test_the_symbol_menu_thins_its_lines_further_only_when_long():
    from backtester.report import MIN_SYMBOL_POINTS, SYMBOL_POINTS, symbol_points

    assert symbol_points(1) == symbol_points(SYMBOL_POINTS // 2_000) == 2_000
    assert symbol_points(5_000) == SYMBOL_POINTS // 5_000 >= MIN_SYMBOL_POINTS
    assert symbol_points(10**6) == MIN_SYMBOL_POINTS
