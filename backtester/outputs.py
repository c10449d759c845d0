"""A finished backtest as records and files: trades.csv in the bot's own format (the same
`position_manager.trade_row`), equity.csv, stats.json. Files are written atomically."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtester.engine import Result
from backtester.stats import drawdown, summarise
from order_manager import client_order_id
from position_manager import TRADE_COLUMNS, Holding, trade_row
from signal_generator import EXIT_CODES
from state_files import atomic_write_text, write_csv_rows


def order_id(number: int) -> str:
    """The backtest's stand-in for the broker's order id."""
    return f"bt-{number:07d}"


def trade_rows(result: Result) -> list[dict[str, Any]]:
    """One trades.csv row per round trip, built by the bot's `trade_row`."""
    t, rows = result.trades, []
    for i in range(len(t)):
        symbol, side = result.symbols[t.symbol[i]], "long" if t.is_long[i] else "short"
        entry_day = result.sessions[t.entry_session[i]].day
        exit_day = result.sessions[t.exit_session[i]].day
        held = Holding(
            symbol=symbol, side=side, qty=float(t.qty[i]),
            entry_time=result.fill_time(int(t.entry_session[i]), int(t.entry_k[i]),
                                        float(t.entry_fraction[i])).isoformat(),
            entry_price=float(t.entry_price[i]), entry_z=float(t.entry_z[i]),
            entry_order_id=order_id(int(t.entry_order[i])),
            entry_client_order_id=client_order_id(entry_day, symbol, side))
        rows.append(trade_row(
            held, qty=float(t.qty[i]),
            exit_time=result.fill_time(int(t.exit_session[i]), int(t.exit_k[i]),
                                       float(t.exit_fraction[i])),
            exit_price=float(t.exit_price[i]), reason=str(EXIT_CODES[int(t.exit_reason[i])]),
            exit_z=float(t.exit_z[i]), exit_order_id=order_id(int(t.exit_order[i])),
            exit_client_order_id=client_order_id(exit_day, symbol, "exit")))
    return rows


def holding_days(result: Result) -> np.ndarray:
    t = result.trades
    return result.clock.ordinal[t.exit_session] - result.clock.ordinal[t.entry_session]


def equity_frame(result: Result) -> pd.DataFrame:
    return pd.DataFrame({
        "date": [d.isoformat() for d in result.days],
        "equity": np.round(result.equity, 2), "cash": np.round(result.cash, 2),
        "long_value": np.round(result.long_value, 2),
        "short_value": np.round(result.short_value, 2),
        "drawdown": np.round(drawdown(result.equity, result.settings.starting_cash), 6),
    })


def period_stats(result: Result, first: date | None = None,
                 last: date | None = None) -> dict[str, object]:
    """Statistics of the decision days first..last (inclusive); trades count in the period
    of their exit. The period starts from the equity of the close before it."""
    days = np.array(result.days, dtype="datetime64[D]")
    lo = 0 if first is None else int(np.searchsorted(days, np.datetime64(first, "D")))
    hi = len(days) if last is None else int(np.searchsorted(days, np.datetime64(last, "D"),
                                                            side="right"))
    start_value = result.settings.starting_cash if lo == 0 else float(result.equity[lo - 1])
    t = result.trades
    mine = (t.exit_session >= lo) & (t.exit_session < hi)
    return summarise(equity=result.equity[lo:hi], start_value=start_value,
                     days=result.days[lo:hi], positions=result.positions[lo:hi],
                     pnl_usd=t.pnl_usd[mine], holding_days=holding_days(result)[mine],
                     exit_codes=t.exit_reason[mine])


def json_ready(value: Any) -> Any:
    """NaN and infinities become null (JSON has no NaN); numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(result: Result, out_dir: Path, stats: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_rows(out_dir / "trades.csv", TRADE_COLUMNS, trade_rows(result))
    atomic_write_text(out_dir / "equity.csv", equity_frame(result).to_csv(index=False))
    write_stats(out_dir / "stats.json", stats)


def write_stats(path: Path, stats: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(json_ready(stats), indent=2, allow_nan=False) + "\n")
