"""Performance statistics of a backtest, as pure functions of arrays.

Conventions (the usual ones, e.g. backtesting.py's `_stats`): returns are simple daily returns
of the close-to-close equity, the first one measured from the starting cash; a year has 252
sessions (annualised volatility and Sharpe scale by sqrt(252), CAGR compounds per 252
sessions); Sharpe uses a zero risk-free rate; drawdowns are relative to the running peak,
the starting cash included. Undefined values (a Sharpe without volatility, a win rate
without trades) are NaN, written as null in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np

from signal_generator import EXIT_CODES

SESSIONS_PER_YEAR = 252


def daily_returns(equity: np.ndarray, start_value: float) -> np.ndarray:
    values = np.concatenate([[start_value], np.asarray(equity, dtype=float)])
    return values[1:] / values[:-1] - 1.0


def total_return(equity: np.ndarray, start_value: float) -> float:
    return float(equity[-1] / start_value - 1.0) if len(equity) else 0.0


def cagr(equity: np.ndarray, start_value: float) -> float:
    """Compound annual growth over len(equity) sessions of 1/252 year each."""
    if not len(equity):
        return math.nan
    growth = equity[-1] / start_value
    return float(growth ** (SESSIONS_PER_YEAR / len(equity)) - 1.0) if growth > 0 else -1.0


def annual_volatility(returns: np.ndarray) -> float:
    if len(returns) < 2:
        return math.nan
    return float(np.std(returns, ddof=1) * math.sqrt(SESSIONS_PER_YEAR))


def sharpe(returns: np.ndarray) -> float:
    if len(returns) < 2:
        return math.nan
    deviation = np.std(returns, ddof=1)
    if not deviation > 0:
        return math.nan
    return float(np.mean(returns) / deviation * math.sqrt(SESSIONS_PER_YEAR))


def running_peak(equity: np.ndarray, start_value: float) -> np.ndarray:
    values = np.concatenate([[start_value], np.asarray(equity, dtype=float)])
    return np.maximum.accumulate(values)[1:]


def drawdown(equity: np.ndarray, start_value: float) -> np.ndarray:
    """Fraction below the running peak at each close (0 at a new high, negative below)."""
    return np.asarray(equity, dtype=float) / running_peak(equity, start_value) - 1.0


def max_drawdown_duration(equity: np.ndarray, start_value: float,
                          days: Sequence[date]) -> tuple[float, int]:
    """The deepest drawdown and its duration in calendar days: from the last close at the
    peak before it (the first day when the peak is the starting cash) to the first close back
    at that peak, or to the last day if equity never got back."""
    values = np.asarray(equity, dtype=float)
    peak = running_peak(values, start_value)
    dd = values / peak - 1.0
    if not len(dd) or dd.min() >= 0:
        return 0.0, 0
    trough = int(np.argmin(dd))
    at_high = np.flatnonzero(values[:trough] >= peak[trough])
    peak_day = days[at_high[-1]] if len(at_high) else days[0]
    recovered = np.flatnonzero(values[trough:] >= peak[trough])
    end_day = days[trough + recovered[0]] if len(recovered) else days[-1]
    return float(dd[trough]), (end_day - peak_day).days


def trade_stats(pnl_usd: np.ndarray, holding_days: np.ndarray,
                exit_codes: np.ndarray) -> dict[str, object]:
    count = len(pnl_usd)
    reasons = {str(reason): int(np.sum(exit_codes == code))
               for code, reason in EXIT_CODES.items()}
    return {
        "trades": count,
        "win_rate": float(np.mean(pnl_usd > 0)) if count else math.nan,
        "avg_holding_days": float(np.mean(holding_days)) if count else math.nan,
        "median_holding_days": float(np.median(holding_days)) if count else math.nan,
        "total_pnl_usd": round(float(np.sum(pnl_usd)), 2),
        "avg_pnl_usd": float(np.mean(pnl_usd)) if count else math.nan,
        "exit_reasons": reasons,
    }


def exposure(positions: np.ndarray) -> float:
    """Fraction of days that ended with at least one open position."""
    return float(np.mean(np.asarray(positions) > 0)) if len(positions) else math.nan


def summarise(*, equity: np.ndarray, start_value: float, days: Sequence[date],
              positions: np.ndarray, pnl_usd: np.ndarray, holding_days: np.ndarray,
              exit_codes: np.ndarray) -> dict[str, object]:
    """Every statistic of one period, as a JSON-ready dict (key order is the report's)."""
    returns = daily_returns(equity, start_value)
    max_dd, duration = max_drawdown_duration(equity, start_value, days)
    out: dict[str, object] = {
        "start": days[0].isoformat() if len(days) else None,
        "end": days[-1].isoformat() if len(days) else None,
        "sessions": len(days),
        "starting_equity_usd": round(start_value, 2),
        "final_equity_usd": round(float(equity[-1]), 2) if len(equity) else round(start_value, 2),
        "total_return": total_return(equity, start_value),
        "cagr": cagr(equity, start_value),
        "annual_volatility": annual_volatility(returns),
        "sharpe": sharpe(returns),
        "max_drawdown": max_dd,
        "max_drawdown_duration_days": duration,
        "exposure": exposure(positions),
    }
    out.update(trade_stats(pnl_usd, holding_days, exit_codes))
    return out
