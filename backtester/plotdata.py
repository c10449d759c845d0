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
    return envelope_columns(np.asarray(values)[:, None], max_points)[1]


def envelope_columns(values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """`envelope` of each column of a 2-d array at once: (starts, rows), the rows to draw of
    column c being ``rows[starts[c]:starts[c + 1]]``."""
    n, m = values.shape
    if n <= max_points:
        return np.arange(m + 1) * n, np.tile(np.arange(n), m)
    size = -(-n // (max_points // 2))  # points per bucket
    padded = np.full((-(-n // size) * size, m), np.nan)
    padded[:n] = values
    buckets = padded.reshape(-1, size, m)
    missing = np.isnan(buckets)
    low = np.where(missing, np.inf, buckets).argmin(axis=1)
    high = np.where(missing, -np.inf, buckets).argmax(axis=1)
    starts = (np.arange(len(buckets)) * size)[:, None]
    keep = np.zeros((len(padded), m), dtype=bool)
    columns = np.broadcast_to(np.arange(m), low.shape)
    keep[starts + low, columns] = True
    keep[starts + high, columns] = True
    keep[[0, n - 1], :] = True
    column, rows = np.nonzero(keep[:n].T)  # by column, rows increasing within each
    return np.searchsorted(column, np.arange(m + 1)), rows
