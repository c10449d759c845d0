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
    return envelope_rows(np.ascontiguousarray(np.asarray(values).T), max_points)


def envelope_rows(lines: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """`envelope_columns` of the transposed array: each row a line (a symbol's, contiguous,
    so that each bucket's low and high are found along memory)."""
    m, n = lines.shape
    if n <= max_points:
        return np.arange(m + 1) * n, np.tile(np.arange(n), m)
    size = -(-n // (max_points // 2))  # points per bucket
    padded = np.full((m, -(-n // size) * size), np.nan)
    padded[:, :n] = lines
    buckets = padded.reshape(m, -1, size)
    missing = np.isnan(buckets)
    low = np.where(missing, np.inf, buckets).argmin(axis=2)
    high = np.where(missing, -np.inf, buckets).argmax(axis=2)
    starts = np.arange(buckets.shape[1]) * size
    keep = np.zeros(padded.shape, dtype=bool)
    line = np.arange(m)[:, None]
    keep[line, starts + low] = True
    keep[line, starts + high] = True
    keep[:, [0, n - 1]] = True
    line, at = np.nonzero(keep[:, :n])  # by line, points increasing within each
    return np.searchsorted(line, np.arange(m + 1)), at
