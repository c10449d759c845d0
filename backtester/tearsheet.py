"""The tables a tearsheet shows beside the equity curve (pure; numpy only).

Monthly returns (compounded from the closes of each month, the first month from the starting
cash), the worst drawdowns (peak, trough and recovery closes, depth and length), and a rolling
Sharpe ratio over 126 sessions (about six months; daily returns, risk-free rate 0, annualised
with the square root of 252 trading days, the convention of the statistics in stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROLLING_SESSIONS = 126  # about six months of NYSE sessions
TRADING_DAYS = 252


@dataclass(frozen=True)
class MonthlyReturns:
    """Fraction gained in each calendar month: `table[r]` is year `years[r]`, its columns the
    months 1..12 (index 0..11) and the year compounded (index 12). NaN: no session then."""

    years: tuple[int, ...]
    table: np.ndarray

    def row(self, year: int) -> np.ndarray:
        return self.table[self.years.index(year)]


def monthly_returns(days: Sequence[date], equity: np.ndarray,
                    start_value: float) -> MonthlyReturns:
    """Each month's return from the last close of the month before that has a session (the
    first month from the starting cash) to its own last close; the year compounds its months."""
    closes = np.asarray(equity, dtype=float)
    month = np.array([d.year * 12 + d.month - 1 for d in days], dtype=np.int64)
    last = np.flatnonzero(np.r_[month[1:] != month[:-1], True]) if len(month) else month
    month_end = closes[last]
    previous = np.r_[start_value, month_end[:-1]]
    returns = month_end / previous - 1.0
    years = np.unique(month[last] // 12)
    table = np.full((len(years), 13), np.nan)
    table[np.searchsorted(years, month[last] // 12), month[last] % 12] = returns
    grown = 1.0 + table[:, :12]
    # As pandas' prod(min_count=1): the months there are, multiplied in order; NaN for none.
    table[:, 12] = np.where(np.isnan(grown), 1.0, grown).prod(axis=1) - 1.0
    table[np.isnan(grown).all(axis=1), 12] = np.nan
    return MonthlyReturns(tuple(int(y) for y in years), table)


@dataclass(frozen=True)
class Drawdown:
    peak: date  # the last close at the peak before it
    trough: date
    recovery: date | None  # the first close back at the peak; None: not recovered
    depth: float  # fraction below the peak at the trough (negative)
    days: int  # calendar days from the peak to the recovery (or to the last day)


def worst_drawdowns(days: Sequence[date], equity: np.ndarray, start_value: float,
                    count: int = 5) -> list[Drawdown]:
    """The `count` deepest separate drawdowns, deepest first."""
    values = np.asarray(equity, dtype=float)
    found: list[Drawdown] = []
    peak_value, peak_day = start_value, days[0] if days else None
    trough_value, trough_day, inside = start_value, None, False
    for day, value in zip(days, values, strict=True):
        if value >= peak_value:
            if inside:
                found.append(Drawdown(peak_day, trough_day, day, trough_value / peak_value - 1,
                                      (day - peak_day).days))
                inside = False
            peak_value, peak_day = value, day
        else:
            if not inside or value < trough_value:
                trough_value, trough_day = value, day
            inside = True
    if inside:
        found.append(Drawdown(peak_day, trough_day, None, trough_value / peak_value - 1,
                              (days[-1] - peak_day).days))
    return sorted(found, key=lambda d: d.depth)[:count]


def rolling_sharpe(equity: np.ndarray, start_value: float,
                   sessions: int = ROLLING_SESSIONS) -> np.ndarray:
    """Annualised Sharpe of the last `sessions` daily returns at each close (NaN before a
    full window, or where the returns do not vary).

    Each window's mean and sample standard deviation are taken over the window itself (two
    passes), not updated as the window moves; a window of equal returns has none."""
    values = np.concatenate([[start_value], np.asarray(equity, dtype=float)])
    returns = values[1:] / values[:-1] - 1.0
    out = np.full(len(returns), np.nan)
    if len(returns) < sessions or sessions < 2:
        return out
    windows = sliding_window_view(returns, sessions)
    mean = windows.mean(axis=1)
    std = windows.std(axis=1, ddof=1)
    varies = (windows.max(axis=1) > windows.min(axis=1)) & (std > 0)
    sharpe = np.full(len(windows), np.nan)
    sharpe[varies] = mean[varies] / std[varies] * math.sqrt(TRADING_DAYS)
    out[sessions - 1:] = sharpe
    return out
