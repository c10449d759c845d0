"""The benchmark every backtest is compared with: equal-weight buy-and-hold of its universe.

Equal dollars of every symbol that has a close on the session before the first decision day,
bought at that close and held (no rebalancing, no costs); a halted symbol keeps its last
close; splits change the shares, not the value. Its value at each decision day's close, from
the same starting cash. SPY is not in the shipped data, so it is not offered as a benchmark.
"""

from __future__ import annotations

import numpy as np

from backtester.panels import Panels

NAME = "equal-weight buy-and-hold of the universe"


def buy_and_hold(panels: Panels, starting_cash: float) -> np.ndarray:
    first = max(panels.warmup - 1, 0)
    close = panels.close[first:]
    if panels.split_level is not None:
        close = close * panels.split_level[first:]
    filled = _forward_filled(close)
    held = np.isfinite(filled[0])
    if not held.any():
        return np.full(panels.n_days, starting_cash)
    growth = filled[:, held] / filled[0, held]
    value = starting_cash * growth.mean(axis=1)
    return value[len(value) - panels.n_days:]


def _forward_filled(values: np.ndarray) -> np.ndarray:
    rows = np.where(np.isfinite(values), np.arange(len(values))[:, np.newaxis], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    out = values[rows, np.arange(values.shape[1])]
    return out
