"""The tables a tearsheet shows beside the equity curve (pure; numpy and pandas only).

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
import pandas as pd

ROLLING_SESSIONS = 126  # about six months of NYSE sessions
TRADING_DAYS = 252


def monthly_returns(days: Sequence[date], equity: np.ndarray,
                    start_value: float) -> pd.DataFrame:
    """Fraction gained in each calendar month: rows are years, columns 1..12 and "year"
    (the year compounded). A month without a session is NaN."""
    closes = pd.Series(np.asarray(equity, dtype=float), index=pd.to_datetime(list(days)))
    month_end = closes.groupby(closes.index.to_period("M")).last()
    previous = month_end.shift(1)
    previous.iloc[0] = start_value
    returns = month_end / previous - 1.0
    table = pd.DataFrame({"year": returns.index.year, "month": returns.index.month,
                          "r": returns.to_numpy()})
    out = table.pivot(index="year", columns="month", values="r").reindex(
        columns=range(1, 13))
    out["year"] = (1.0 + out[list(range(1, 13))]).prod(axis=1, min_count=1) - 1.0
    return out


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
    full window, or where the returns do not vary)."""
    values = np.concatenate([[start_value], np.asarray(equity, dtype=float)])
    returns = pd.Series(values[1:] / values[:-1] - 1.0)
    window = returns.rolling(sessions)
    std = window.std(ddof=1)
    sharpe = window.mean() / std.where(std > 0) * math.sqrt(TRADING_DAYS)
    return sharpe.to_numpy()
