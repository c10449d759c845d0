"""Performance statistics of a backtest, as pure functions of arrays.

Conventions (the usual ones, e.g. backtesting.py's `_stats`): returns are simple daily returns
of the close-to-close equity, the first one measured from the starting cash; a year has 252
sessions (annualised volatility and Sharpe scale by sqrt(252), CAGR compounds per 252
sessions); Sharpe is of the returns in excess of a stated yearly risk-free rate (compounded
per session; 0 unless set); drawdowns are relative to the running peak,
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


def sharpe(returns: np.ndarray, risk_free_rate: float = 0.0) -> float:
    """Annualised Sharpe ratio of daily returns over a yearly risk-free rate."""
    if len(returns) < 2:
        return math.nan
    excess = np.asarray(returns) - ((1.0 + risk_free_rate) ** (1.0 / SESSIONS_PER_YEAR) - 1.0)
    deviation = np.std(excess, ddof=1)
    if not deviation > 0:
        return math.nan
    return float(np.mean(excess) / deviation * math.sqrt(SESSIONS_PER_YEAR))


def drawdown_recovered(equity: np.ndarray, start_value: float) -> bool:
    """Whether equity got back to the peak before its deepest drawdown by the last day."""
    values = np.asarray(equity, dtype=float)
    if not len(values):
        return True
    peak = running_peak(values, start_value)
    trough = int(np.argmin(values / peak - 1.0))
    return bool(values[trough] >= peak[trough] or (values[trough:] >= peak[trough]).any())


def capital_in_use(equity: np.ndarray, long_value: np.ndarray,
                   short_value: np.ndarray) -> dict[str, float]:
    """Gross exposure (long market value plus the absolute short market value) as a share of
    equity at each close: its average and its peak."""
    gross = np.asarray(long_value, dtype=float) + np.abs(np.asarray(short_value, dtype=float))
    share = gross / np.asarray(equity, dtype=float)
    if not len(share):
        return {"avg_gross_exposure": math.nan, "peak_gross_exposure": math.nan}
    return {"avg_gross_exposure": float(np.mean(share)),
            "peak_gross_exposure": float(np.max(share))}


def benchmark_stats(returns: np.ndarray, benchmark_equity: np.ndarray, start_value: float,
                    name: str) -> dict[str, object]:
    """The benchmark's return and the strategy's excess return over it, beta and correlation
    of daily returns."""
    bench = daily_returns(benchmark_equity, start_value)
    out: dict[str, object] = {"benchmark": name,
                              "benchmark_total_return": total_return(benchmark_equity,
                                                                     start_value),
                              "benchmark_cagr": cagr(benchmark_equity, start_value)}
    strategy_total = float(np.prod(1.0 + np.asarray(returns)) - 1.0) if len(returns) else 0.0
    out["excess_total_return"] = strategy_total - float(out["benchmark_total_return"])
    if len(bench) > 1 and np.std(bench) > 0 and np.std(returns) > 0:
        cov = np.cov(returns, bench, ddof=1)
        out["beta"] = float(cov[0, 1] / cov[1, 1])
        out["correlation"] = float(np.corrcoef(returns, bench)[0, 1])
    else:
        out["beta"] = out["correlation"] = math.nan
    return out


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
              exit_codes: np.ndarray, risk_free_rate: float = 0.0) -> dict[str, object]:
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
        "sharpe": sharpe(returns, risk_free_rate),
        "risk_free_rate": risk_free_rate,
        "max_drawdown": max_dd,
        "max_drawdown_duration_days": duration,
        "max_drawdown_recovered": drawdown_recovered(equity, start_value),
        "exposure": exposure(positions),
    }
    out.update(trade_stats(pnl_usd, holding_days, exit_codes))
    return out
