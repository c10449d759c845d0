"""What a run's summary adds for the people reading it: the equity of the previous run, the
trades it recorded, and the positions it leaves with their age and unrealised P&L.

Pure except `previous_equity`, which reads earlier runs' summary.json files. Unrealised P&L
is valued at the run's own prices (the price each decision used), in US dollars.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from logger import run_dirs
from position_manager import Holding, trade_key

_PREVIOUS_RUNS_READ = 30  # a run without equity (market closed, failed early) is skipped


def previous_equity(log_dir: Path, this_run: Path) -> float | None:
    """The equity the latest earlier run saw (runs/<ts>/summary.json), or None."""
    for summary in earlier_summaries(log_dir, this_run):
        equity = summary.get("equity_usd")
        if isinstance(equity, int | float):
            return float(equity)
    return None


def earlier_summaries(log_dir: Path, this_run: Path | None = None,
                      limit: int = _PREVIOUS_RUNS_READ) -> Iterator[dict[str, Any]]:
    """The latest runs' summaries, newest first, leaving out `this_run` and unreadable ones
    (the report names those; here a figure only loses its comparison)."""
    read = 0
    for run_dir in reversed(run_dirs(log_dir, this_run)):
        if read == limit:
            return
        try:
            text = (run_dir / "summary.json").read_text(encoding="utf-8")
        except FileNotFoundError:  # a run killed before it wrote one: not a run read
            continue
        except OSError:
            read += 1
            continue
        read += 1
        try:
            summary = json.loads(text)
        except ValueError:
            continue
        if isinstance(summary, dict):
            yield summary


def trade_digest(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """trades.csv rows as the summary carries them: numbers as numbers."""
    out = []
    for r in rows:
        out.append({"symbol": r.get("symbol"), "side": r.get("side"),
                    "qty": _number(r.get("qty")), "pnl_usd": _number(r.get("pnl_usd")),
                    "exit_reason": r.get("exit_reason"),
                    "holding_days": _number(r.get("holding_days")),
                    # Gross and net of the costs booked when the summary was written (a sale's
                    # fees are posted at the close: the next run books them, in trades.csv).
                    "gross_pnl_usd": _number(r.get("gross_pnl_usd", r.get("pnl_usd"))),
                    "fees_usd": _number(r.get("fees_usd")),
                    "net_pnl_usd": _number(r.get("net_pnl_usd")),
                    "key": trade_key(r) if "exit_client_order_id" in r else ""})
    return out


def positions_now(holdings: Mapping[str, Holding], prices: Mapping[str, float], today: date,
                  max_holding_days: int) -> list[dict[str, Any]]:
    """Every position the bot holds after the run: age in calendar days (as the holding limit
    counts them), overdue when the limit has passed and it is still held, and unrealised P&L
    at `prices` (None without a price)."""
    out = []
    for symbol, h in sorted(holdings.items()):
        age = (today - h.entry_day).days
        price = prices.get(symbol)
        pnl = None
        if price is not None:
            pnl = round((price - h.entry_price) * h.qty * (1 if h.is_long else -1), 2)
        out.append({"symbol": symbol, "side": h.side, "qty": h.qty,
                    "entry_price": h.entry_price, "price": price, "age_days": age,
                    "overdue": age >= max_holding_days, "max_holding_days": max_holding_days,
                    "unrealised_pnl_usd": pnl})
    return out


def _number(value: Any) -> float | int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and "." not in str(value) else number
