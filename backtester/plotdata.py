"""What the report draws of long series: at most MAX_POINTS points per line, so the page's size
and the time to build it follow what is shown, not the length of the backtest.

A line of more points keeps, per bucket of consecutive points, its lowest and its highest (and
the first and last point of the line): every peak and trough, the deepest drawdown included,
stays at its exact day and value; only points between them on a bucket's way up or down are
left out, which a screen of ~1,000 pixels across could not show apart anyway. The files
(`equity.csv`, `trades.csv`) keep every day.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 2_000


def envelope(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices (increasing) of the points of `values` to draw. NaN is never a bucket's low or
    high unless the whole bucket is NaN, which then keeps one NaN: a gap stays a gap."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    size = -(-n // (max_points // 2))  # points per bucket
    padded = np.full(-(-n // size) * size, np.nan)
    padded[:n] = values
    rows = padded.reshape(-1, size)
    missing = np.isnan(rows)
    low = np.where(missing, np.inf, rows).argmin(axis=1)
    high = np.where(missing, -np.inf, rows).argmax(axis=1)
    starts = np.arange(len(rows)) * size
    keep = np.unique(np.r_[0, starts + low, starts + high, n - 1])
    return keep[keep < n]
