"""A finished backtest as records and files: trades.csv in the bot's own format (the same
`position_manager.trade_row`), equity.csv, stats.json. Files are written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from backtester.benchmark import NAME as BENCHMARK
from backtester.engine import Result
from backtester.execution import order_stats
from backtester.stats import (
    benchmark_stats,
    capital_in_use,
    daily_returns,
    drawdown,
    summarise,
)
from order_ids import ORDER_ID_PREFIX, client_order_id
from position_manager import TRADE_COLUMNS, Holding, trade_row
from signal_generator import EXIT_CODES
from state_files import atomic_write_text

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def trade_columns(result: Result) -> dict[str, list[str]]:
    """trades.csv as columns of text, column by column over all round trips at once: the same
    text as `trade_rows` (tested equal), in time proportional to the trades, not to Python
    calls per field."""
    t, sessions = result.trades, result.sessions
    symbols = np.array(result.symbols, dtype=object)[t.symbol]
    sides = np.where(t.is_long, "long", "short").astype(object)
    day_text = np.array([f"{s.day:%Y%m%d}" for s in sessions], dtype=object)
    # As trade_row: entry - exit for a short, never -(exit - entry), which prints "-0.00".
    pnl = np.where(t.is_long, t.exit_price - t.entry_price, t.entry_price - t.exit_price) * t.qty
    reasons = {code: str(reason) for code, reason in EXIT_CODES.items()}
    columns = {
        "symbol": symbols.tolist(), "side": sides.tolist(), "qty": _g(t.qty),
        "entry_time": fill_times(result, t.entry_session, t.entry_k, t.entry_fraction),
        "entry_price": _g(t.entry_price),
        "exit_time": fill_times(result, t.exit_session, t.exit_k, t.exit_fraction),
        "exit_price": _g(t.exit_price), "pnl_usd": [f"{v:.2f}" for v in pnl.tolist()],
        "exit_reason": [reasons[c] for c in t.exit_reason.tolist()],
        "holding_days": [str(d) for d in holding_days(result).tolist()],
        "entry_z": _z(t.entry_z), "exit_z": _z(t.exit_z),
        "entry_order_id": [f"bt-{n:07d}" for n in t.entry_order.tolist()],  # order_id
        "exit_order_id": [f"bt-{n:07d}" for n in t.exit_order.tolist()],
        "entry_client_order_id": (f"{ORDER_ID_PREFIX}-" + day_text[t.entry_session] + "-"
                                  + symbols + "-" + sides).tolist(),
        "exit_client_order_id": (f"{ORDER_ID_PREFIX}-" + day_text[t.exit_session] + "-"
                                 + symbols + "-exit").tolist(),
    }
    return {name: columns[name] for name in TRADE_COLUMNS}


COST_COLUMNS = ("fees_usd", "gross_pnl_usd", "net_pnl_usd")


def cost_columns(result: Result, pnl_text: list[str] | None = None) -> dict[str, list[str]]:
    """The backtest's own columns of trades.csv, after the bot's: each round trip's account
    costs (borrow fees while short, SEC and FINRA fees on its sale; backtester/costs.py), its
    P&L before them (`gross_pnl_usd`, the same as `pnl_usd`: `pnl_text` when given, the
    pnl_usd column of `trade_columns`) and after them (`net_pnl_usd`)."""
    t = result.trades
    gross = np.where(t.is_long, t.exit_price - t.entry_price, t.entry_price - t.exit_price) * t.qty
    fees = (result.costs.trade_fees if result.costs is not None
            else np.zeros(len(result.trades)))
    net = np.round(gross, 2) - fees
    return {"fees_usd": _each_distinct(fees, ".2f"),
            "gross_pnl_usd": pnl_text if pnl_text is not None
            else [f"{v:.2f}" for v in gross.tolist()],
            "net_pnl_usd": [f"{v:.2f}" for v in net.tolist()]}


def fill_times(result: Result, session: np.ndarray, k: np.ndarray,
               fraction: np.ndarray) -> list[str]:
    """`Result.fill_time(...).isoformat()` for many fills at once, to the microsecond."""
    opens = np.array([_microseconds(s.open) for s in result.sessions], dtype=np.int64)
    closes = np.array([_microseconds(s.close) for s in result.sessions], dtype=np.int64)
    start, end = opens[session], closes[session]
    live = start + result.clock.noon_us[session] + k.astype(np.int64)
    # Session open + (close - open) * fraction, rounded half to even as timedelta * float
    # does; the float product is exact enough except within a hair of a half, redone exactly.
    product = (end - start) * fraction
    offset = np.rint(product).astype(np.int64)
    for i in np.flatnonzero(np.abs(product - np.floor(product) - 0.5) < 1e-3):
        offset[i] = _microseconds_of(timedelta(microseconds=int(end[i] - start[i]))
                                     * float(fraction[i]))
    touch = np.minimum(np.maximum(live, start + offset), end)
    marketable = fraction == result.clock.fraction(session)
    stamps = np.where(marketable, live, touch).astype("datetime64[us]")
    text = np.datetime_as_string(stamps, unit="us").tolist()
    # datetime.isoformat() leaves out a zero microsecond part.
    return [(s[:-7] if s.endswith(".000000") else s) + "+00:00" for s in text]


def _microseconds(when: datetime) -> int:
    return _microseconds_of(when - _EPOCH)


def _microseconds_of(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def _g(values: np.ndarray) -> list[str]:
    return _each_distinct(values, "g")


def _each_distinct(values: np.ndarray, spec: str) -> list[str]:
    """format(v, spec) of each value, formatting each distinct value once: prices, quantities
    and fees repeat (3,201 distinct among 125,373 entry prices at 2.5 M bars). Distinct by
    their bits, so that -0.0 keeps its sign."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    distinct, at = np.unique(bits, return_inverse=True)
    text = np.array([format(v, spec) for v in distinct.view(np.float64).tolist()], dtype=object)
    return text[at.reshape(-1)].tolist()


def _z(values: np.ndarray) -> list[str]:
    return ["" if v != v else f"{v:.4f}" for v in values.tolist()]  # as position_manager


def write_columns(path: Path, columns: Mapping[str, Sequence[str]]) -> None:
    """A CSV file from columns of text (header: the keys, in order), written atomically:
    the csv module's text, joined directly when no field needs quoting (the usual case:
    numbers, dates, tickers), which is that text without the module's per-field checks."""
    atomic_write_text(path, csv_text(columns))


def csv_text(columns: Mapping[str, Sequence[str]]) -> str:
    lines = [",".join(columns), *map(",".join, zip(*columns.values(), strict=True))]
    text = "\n".join(lines) + "\n"
    # Joined as they are, unless some field holds what the csv module would quote it for (a
    # delimiter, a quote or a line break, seen as more commas or lines than fields make; or
    # a row of one empty field, which two or more columns never are): one look at the text,
    # not one per column.
    if (len(columns) < 2 or text.count(",") != (len(columns) - 1) * len(lines)
            or text.count("\n") != len(lines) or '"' in text or "\r" in text):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        return buffer.getvalue()
    return text


def equity_columns(result: Result) -> dict[str, list[str]]:
    """equity.csv as columns of text: each float as numpy prints it (the shortest text that
    reads back as the same float, as pandas' to_csv writes it), NaN as an empty field."""
    return {
        "date": np.datetime_as_string(np.array(result.days, dtype="datetime64[D]")).tolist(),
        "equity": _float_text(np.round(result.equity, 2)),
        "cash": _float_text(np.round(result.cash, 2)),
        "long_value": _float_text(np.round(result.long_value, 2)),
        "short_value": _float_text(np.round(result.short_value, 2)),
        "drawdown": _float_text(np.round(drawdown(result.equity,
                                                  result.settings.starting_cash), 6)),
    }


def _float_text(values: np.ndarray) -> list[str]:
    values = np.asarray(values, dtype=np.float64)
    text = values.astype(str)
    text[np.isnan(values)] = ""
    return text.tolist()


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
    out = summarise(equity=result.equity[lo:hi], start_value=start_value,
                    days=result.days[lo:hi], positions=result.positions[lo:hi],
                    pnl_usd=t.pnl_usd[mine], holding_days=holding_days(result)[mine],
                    exit_codes=t.exit_reason[mine],
                    risk_free_rate=result.settings.risk_free_rate)
    out |= capital_in_use(result.equity[lo:hi], result.long_value[lo:hi],
                          result.short_value[lo:hi])
    if result.benchmark is not None:
        bench_start = result.settings.starting_cash if lo == 0 else float(
            result.benchmark[lo - 1])
        out |= benchmark_stats(daily_returns(result.equity[lo:hi], start_value),
                               result.benchmark[lo:hi], bench_start, BENCHMARK)
    out |= market_stats(result, lo, hi, start_value)
    out["days_held_past_limit"] = _past_limit(holding_days(result)[mine],
                                              result.config.max_holding_days)
    out["orders"] = order_stats(result.orders, lo, hi)
    return out | cost_stats(result, lo, hi, mine)


def market_stats(result: Result, lo: int, hi: int, start_value: float) -> dict[str, object]:
    """The market benchmark's figures (backtester/benchmark.py), each key prefixed `market_`;
    `market_benchmark` says which, or why there is none."""
    spec = result.settings.benchmark
    if result.market is None:
        name = getattr(spec, "name", spec)
        return {"market_benchmark": "none" if not spec else
                f"none: {name} does not cover the backtest's days"}
    start = result.settings.starting_cash if lo == 0 else float(result.market[lo - 1])
    found = benchmark_stats(daily_returns(result.equity[lo:hi], start_value),
                            result.market[lo:hi], start, str(result.market_name))
    return {"market_" + k: v for k, v in found.items()}


def cost_stats(result: Result, lo: int, hi: int, mine: np.ndarray) -> dict[str, object]:
    """The period's account costs. Equity figures above are net of them; `total_pnl_usd` of
    the trades is before them (gross) and `total_net_pnl_usd` after."""
    c = result.costs
    if c is None:
        return {"equity_net_of_costs": False}
    return {"equity_net_of_costs": True,
            "costs_usd": round(float(c.per_day[lo:hi].sum()), 2),
            "borrow_fees_usd": round(float(c.borrow[lo:hi].sum()), 2),
            "sec_fees_usd": round(float(c.sec[lo:hi].sum()), 2),
            "taf_fees_usd": round(float(c.taf[lo:hi].sum()), 2),
            "cash_interest_usd": round(float(c.interest[lo:hi].sum()), 2),
            # Credited (negative: charged on shorts); costs_usd is net of them.
            "dividends_usd": round(float(c.dividends[lo:hi].sum()), 2)
            if c.dividends is not None else 0.0,
            "total_net_pnl_usd": round(float(result.trades.pnl_usd[mine].sum()
                                             - c.trade_fees[mine].sum()), 2),
            "final_equity_before_costs_usd": round(float(c.gross_equity[hi - 1]), 2)
            if hi > lo else None}


def _past_limit(days: np.ndarray, limit: int) -> dict[str, float]:
    """How far round trips ran over MAX_HOLDING_DAYS (calendar days): the mean over all trades
    and the largest."""
    over = np.maximum(np.asarray(days, dtype=float) - limit, 0.0)
    return {"mean": float(over.mean()) if len(over) else math.nan,
            "max": float(over.max()) if len(over) else math.nan}


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
    write_texts(out_dir, result_texts(result))
    write_stats(out_dir / "stats.json", stats)


def result_texts(result: Result) -> dict[str, str]:
    """trades.csv and equity.csv as text, by file name (built once, written by write_texts)."""
    columns = trade_columns(result)
    return {"trades.csv": csv_text(columns | cost_columns(result, columns["pnl_usd"])),
            "equity.csv": csv_text(equity_columns(result))}


def write_texts(out_dir: Path, texts: Mapping[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        atomic_write_text(out_dir / name, text)


def write_stats(path: Path, stats: dict[str, Any]) -> None:
    atomic_write_text(path, stats_text(stats))


def stats_text(stats: Mapping[str, Any]) -> str:
    """stats.json's text."""
    return json.dumps(json_ready(stats), indent=2, allow_nan=False) + "\n"
