"""One self-contained HTML dashboard of what the bot recorded.

    python report.py [--log-dir DIR] [--out FILE]   (python report.py --help for more)

Reads `trades.csv`, `positions.json`, `pending_orders.json` and every `runs/*/summary.json`
under the log directory (default `logs`, or the latest `--sim` run's) and writes
`<log-dir>/report.html` (or FILE): a status line (last run, failures, kill switch, positions
past their limit), P&L and return, the latest run's orders, equity and realised P&L per run on
one date axis, open positions, every closed trade (sortable), pending orders, statistics per
symbol and per exit reason, and the recent runs with their notes and errors in full. The
charts are inline SVG (charts.py) and the page has no external reference, so the one file opens
without a network. The report only reads; it never changes state.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import charts
from alert_messages import COST_NAMES, pct
from errors import BotError, StateFileError
from logger import run_dirs
from market_calendar import NEW_YORK
from position_manager import Holding, PendingOrder, StateStore
from state_files import atomic_write_text, read_json
from version import VERSION

RECENT_RUNS = 30
__version__ = VERSION


@dataclass(frozen=True)
class RunRecord:
    name: str  # the run directory's name, YYYY-MM-DD_HH-MM-SS (New York)
    summary: dict[str, Any]


@dataclass(frozen=True)
class Records:
    """Everything the bot recorded in one log directory; runs oldest first."""

    trades: list[dict[str, str]]
    holdings: dict[str, Holding]
    pending: dict[str, PendingOrder]
    runs: list[RunRecord]
    runs_without_summary: list[str]

    @property
    def empty(self) -> bool:
        return not (self.trades or self.holdings or self.pending or self.runs)


@dataclass(frozen=True)
class Trade:
    symbol: str
    exit_reason: str
    exit_time: datetime | None
    pnl_usd: float | None  # None: closed outside the bot at an unknown price
    side: str = ""
    qty: float | None = None
    entry_price: float | None = None
    exit_price: float | None = None
    holding_days: int | None = None
    # The account's costs booked to it (trade_costs.py): None where not known (a row of a
    # file from before the cost columns).
    fees_usd: float | None = None

    @property
    def net_pnl_usd(self) -> float | None:
        if self.pnl_usd is None or self.fees_usd is None:
            return None
        return round(self.pnl_usd - self.fees_usd, 2)


@dataclass(frozen=True)
class Stat:
    name: str
    count: int
    wins: int
    total_pnl_usd: float

    @property
    def win_rate(self) -> float:
        return self.wins / self.count if self.count else 0.0

    @property
    def average_pnl_usd(self) -> float:
        return self.total_pnl_usd / self.count if self.count else 0.0


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    side: str
    qty: float
    entry_time: datetime
    entry_price: float
    entry_z: float | None
    age_days: int | None
    z: float | None
    price: float | None

    @property
    def unrealised_pnl_usd(self) -> float | None:
        if self.price is None:
            return None
        per_share = self.price - self.entry_price
        return (per_share if self.side == "long" else -per_share) * self.qty


# -- reading ------------------------------------------------------------------------------

def load_records(log_dir: Path) -> Records:
    """Read the log directory with the bot's own strict readers: a damaged file stops the
    report with its name."""
    if not log_dir.is_dir():
        raise StateFileError(f"{log_dir}: no such directory; pass the bot's log directory "
                             "with --log-dir DIR: logs for paper or live runs, sim/logs after "
                             "--sim, <sim-dir>/logs after --sim --sim-dir <sim-dir> "
                             "(make demo: sim/demo/logs)")
    store = StateStore(log_dir)
    runs, missing = [], []
    for run_dir in run_dirs(log_dir):
        path = run_dir / "summary.json"
        summary = read_json(path, default=None)
        if summary is None:
            missing.append(run_dir.name)  # killed before it could write its summary
        elif not isinstance(summary, dict):
            raise StateFileError(f"{path}: not a run summary (a JSON object); move that run "
                                 "directory away to build the report without it")
        else:
            runs.append(RunRecord(run_dir.name, summary))
    return Records(trades=store.load_trades(), holdings=store.load_holdings(),
                   pending=store.load_pending(), runs=runs, runs_without_summary=missing)


def parse_trades(rows: Sequence[Mapping[str, str]], source: str = "trades.csv") -> list[Trade]:
    trades = []
    for line, row in enumerate(rows, start=2):
        try:
            pnl = float(row["pnl_usd"]) if row["pnl_usd"] else None
            when = _time(row["exit_time"]) if row["exit_time"] else None
        except ValueError:
            raise StateFileError(f"{source}: line {line} has pnl_usd {row['pnl_usd']!r} or "
                                 f"exit_time {row['exit_time']!r} that cannot be read; fix "
                                 "that line") from None
        trades.append(Trade(row["symbol"], row["exit_reason"] or "unknown", when, pnl,
                            side=row.get("side", ""), qty=_maybe(row.get("qty")),
                            entry_price=_maybe(row.get("entry_price")),
                            exit_price=_maybe(row.get("exit_price")),
                            holding_days=_maybe_int(row.get("holding_days")),
                            fees_usd=_maybe(row.get("fees_usd"))))
    return trades


def _maybe(text: str | None) -> float | None:
    """A number the table only shows: missing or unreadable is shown as '-'."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _maybe_int(text: str | None) -> int | None:
    number = _maybe(text)
    return int(number) if number is not None and number.is_integer() else None


# -- the numbers (pure) -------------------------------------------------------------------

def cumulative_pnl(trades: Iterable[Trade]) -> list[tuple[datetime, float]]:
    """Realised P&L summed in exit order; trades without a price or time are left out."""
    known = sorted((t.exit_time, t.pnl_usd) for t in trades
                   if t.pnl_usd is not None and t.exit_time is not None)
    points, total = [], 0.0
    for when, pnl in known:
        total += pnl
        points.append((when, round(total, 2)))
    return points


def group_stats(trades: Iterable[Trade], key: Callable[[Trade], str]) -> list[Stat]:
    """Count, wins and P&L per group, over the trades with a known P&L; sorted by name."""
    groups: dict[str, list[float]] = {}
    for t in trades:
        if t.pnl_usd is not None:
            groups.setdefault(key(t), []).append(t.pnl_usd)
    return [Stat(name, len(p), sum(1 for v in p if v > 0), round(sum(p), 2))
            for name, p in sorted(groups.items())]


def total_stat(stats: Iterable[Stat]) -> Stat:
    stats = list(stats)
    return Stat("all", sum(s.count for s in stats), sum(s.wins for s in stats),
                round(sum(s.total_pnl_usd for s in stats), 2))


def market_snapshot(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The latest run that priced the universe (a closed-market run prices nothing)."""
    priced = [r for r in runs if r.summary.get("prices")]
    return priced[-1] if priced else None


def open_positions(holdings: Mapping[str, Holding],
                   snapshot: RunRecord | None) -> list[OpenPosition]:
    """Holdings with their age in calendar days, z and price as of the snapshot run."""
    summary = snapshot.summary if snapshot else {}
    as_of = _time(summary["now"]).astimezone(NEW_YORK).date() if summary.get("now") else None
    z_scores, prices = summary.get("z_scores") or {}, summary.get("prices") or {}
    return [OpenPosition(symbol=h.symbol, side=h.side, qty=h.qty,
                         entry_time=_time(h.entry_time), entry_price=h.entry_price,
                         entry_z=h.entry_z,
                         age_days=(as_of - h.entry_day).days if as_of else None,
                         z=z_scores.get(h.symbol), price=prices.get(h.symbol))
            for h in sorted(holdings.values(), key=lambda h: h.symbol)]


def equity_points(runs: Iterable[RunRecord]) -> list[tuple[datetime, float]]:
    return [(_time(r.summary.get("now") or r.summary["started_at"]), float(r.summary["equity_usd"]))
            for r in runs if r.summary.get("equity_usd") is not None]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- HTML ---------------------------------------------------------------------------------

def build_report(records: Records, *, source: str, now: datetime | None = None) -> str:
    """The whole HTML page. `now` (the machine's, tz-aware) is when it was generated."""
    now = now or datetime.now(UTC)
    generated = f"Generated {_when(now.isoformat())} from {_e(source)}."
    if records.empty:
        body = (f"<p class='empty'>Nothing recorded yet in {_e(source)}: no trades, positions, "
                "orders or runs. Run <code>python trading_bot.py</code> (or "
                "<code>--sim</code>) first.</p>")
        return _page(body, generated)
    trades = parse_trades(records.trades, f"{source}/trades.csv")
    snapshot = market_snapshot(records.runs)
    positions = open_positions(records.holdings, snapshot)
    by_symbol = group_stats(trades, lambda t: t.symbol)
    by_reason = group_stats(trades, lambda t: t.exit_reason)
    axis = run_axis(records.runs)
    sections = [
        status_line(records, positions, now),
        _headline(records, trades, positions, total_stat(by_symbol)),
        _section("Latest run", _latest_run(records)),
        _section("Equity per run", charts.line_chart(
            "chart-equity", equity_points(records.runs), axis, "equity (USD)", dollars=True)),
        _section("Realised P&L per run", charts.line_chart(
            "chart-realised-pnl", realised_per_run(trades, records.runs), axis,
            "cumulative realised P&L (USD)", dollars=True), _note_unpriced(trades)),
        _section(f"Open positions ({len(positions)})", _positions_table(positions, snapshot)),
        _section(f"Closed trades ({len(trades)})", _trades_table(trades)),
        _section(f"Pending orders ({len(records.pending)})", _pending_table(records.pending)),
        _section("By symbol", charts.bar_chart("chart-by-symbol", _bars(by_symbol)),
                 _stats_table(by_symbol, "symbol")),
        _section("By exit reason", charts.bar_chart("chart-by-reason", _bars(by_reason)),
                 _stats_table(by_reason, "exit reason")),
        _section("Recent runs", _runs_table(records)),
    ]
    return _page("\n".join(sections), generated)


def run_axis(runs: Sequence[RunRecord]) -> tuple[datetime, datetime] | None:
    """The one date range every time chart shares: the first run to the last."""
    times = [_run_time(r) for r in runs]
    return (min(times), max(times)) if times else None


def realised_per_run(trades: Sequence[Trade],
                     runs: Sequence[RunRecord]) -> list[tuple[datetime, float]]:
    """Cumulative realised P&L as each run saw it: one point per run (two trades closed in
    one run make one step, not a spike), counting the trades that exited by the run's time."""
    known = sorted((t.exit_time, t.pnl_usd) for t in trades
                   if t.pnl_usd is not None and t.exit_time is not None)
    points, total, i = [], 0.0, 0
    for run in sorted(runs, key=_run_time):
        when = _run_time(run)
        while i < len(known) and known[i][0] <= when + _SAME_RUN:
            total += known[i][1]
            i += 1
        points.append((when, round(total, 2)))
    return points


_SAME_RUN = timedelta(hours=12)  # a trade recorded by a run exits before that run's next day


def _run_time(run: RunRecord) -> datetime:
    return _time(run.summary.get("now") or run.summary["started_at"])


def status_line(records: Records, positions: Sequence[OpenPosition], now: datetime) -> str:
    """Health at a glance: last run and outcome, how long ago, failures in the last runs,
    kill switch, positions past their holding limit; coloured by the worst of them."""
    latest = records.runs[-1]
    outcome = latest.summary.get("outcome", "unknown")
    recent = records.runs[-STATUS_RUNS:]
    failed = sum(1 for r in recent if r.summary.get("outcome") == "failed")
    # Against the time the run recorded (the broker's clock), not the file's: a log
    # directory copied or restored from a backup has new file times. A simulated run's
    # clock is the simulation's, which says nothing about how long ago it ran.
    simulated = latest.summary.get("account") == "simulated"
    ago = timedelta(0) if simulated else now - _run_time(latest)
    limit = latest.summary.get("max_holding_days") or next(
        (p.get("max_holding_days") for p in latest.summary.get("positions") or []), None)
    overdue = [p.symbol for p in positions
               if p.age_days is not None and limit is not None and p.age_days >= limit]
    kill = bool(latest.summary.get("kill_switch"))
    parts = [(f"Last run {_e(_when(latest.summary.get('now') or latest.summary.get('started_at')))}"
              f": <b>{_e(outcome)}</b>", "bad" if outcome == "failed" else "ok"),
             ("simulated clock" if simulated else f"{_e(_ago(ago))}",
              "warn" if ago > STALE_AFTER else "ok"),
             (f"{failed} of the last {len(recent)} runs failed",
              "bad" if recent and failed * 2 >= len(recent) else "warn" if failed else "ok"),
             ("kill switch ON" if kill else "kill switch off", "warn" if kill else "ok"),
             (f"{len(overdue)} position(s) at or past the {limit}-day holding limit"
              + (f": {_e(', '.join(overdue))}" if overdue else "")
              if limit is not None else "holding limit unknown",
              "warn" if overdue else "ok")]
    level = "bad" if any(s == "bad" for _, s in parts) else \
        "warn" if any(s == "warn" for _, s in parts) else "ok"
    items = " · ".join(f"<span class='{s}'>{t}</span>" for t, s in parts)
    return f"<div id='status' class='status {level}' role='status'>{items}</div>"


STATUS_RUNS = 10  # failures counted over the last runs
STALE_AFTER = timedelta(days=3)  # a daily bot silent this long needs a look (a long weekend)


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _bars(stats: Sequence[Stat]) -> list[tuple[str, float]]:
    return [(s.name, s.total_pnl_usd) for s in sorted(stats, key=lambda s: s.total_pnl_usd,
                                                      reverse=True)]


def _headline(records: Records, trades: Sequence[Trade], positions: Sequence[OpenPosition],
              total: Stat) -> str:
    equities = [(r, float(r.summary["equity_usd"])) for r in records.runs
                if isinstance(r.summary.get("equity_usd"), int | float)]
    start = None
    if equities:
        first = equities[0][0].summary.get("equity_before_usd")
        start = float(first) if isinstance(first, int | float) else equities[0][1]
    equity = equities[-1][1] if equities else None
    unrealised = [p.unrealised_pnl_usd for p in positions if p.unrealised_pnl_usd is not None]

    def share(value: float) -> str:  # of the starting equity
        return f"\n{pct(100 * value / start)} of ${start:,.0f}" if start else ""

    cards = [("Realised P&L, gross", _usd(total.total_pnl_usd) + share(total.total_pnl_usd),
              _sign(total.total_pnl_usd))]
    cards += _cost_cards(records, trades)
    if unrealised:
        cards.append(("Unrealised P&L", _usd(sum(unrealised)) + share(sum(unrealised)),
                      _sign(sum(unrealised))))
    if equity is not None and start:
        cards.append(("Return", f"{pct(100 * (equity / start - 1))}\nequity ${equity:,.2f}",
                      _sign(equity - start)))
    cards += [("Closed trades", f"{len(trades)}", ""),
              ("Win rate", _pct(total.win_rate) if total.count else "-", ""),
              ("Open positions", f"{len(positions)}", ""),
              ("Runs", f"{len(records.runs)}", "")]
    items = "".join(f"<div class='card'><div class='label'>{_e(k)}</div>"
                    f"<div class='value {c}'>{_card_value(v)}</div></div>" for k, v, c in cards)
    return f"<div class='cards'>{items}</div>"


def _cost_cards(records: Records, trades: Sequence[Trade]) -> list[tuple[str, str, str]]:
    """Realised P&L net of the costs booked to the trades, and the account's costs by kind
    as the runs saw them posted (each run's costs since the one before)."""
    known = [t for t in trades if t.net_pnl_usd is not None]
    cards = []
    if known:
        net = round(sum(t.net_pnl_usd for t in known), 2)  # type: ignore[misc]
        fees = round(sum(t.fees_usd for t in known), 2)  # type: ignore[misc]
        unknown = len([t for t in trades if t.pnl_usd is not None]) - len(known)
        sub = f"costs ${fees:,.2f} on {len(known)} trades" + (
            f"; {unknown} older without costs" if unknown else "")
        cards.append(("Realised P&L, net of costs", f"{_usd(net)}\n{sub}", _sign(net)))
    kinds: dict[str, float] = {}
    for run in records.runs:
        for kind, value in (run.summary.get("costs_usd") or {}).items():
            if isinstance(value, int | float):
                kinds[kind] = kinds.get(kind, 0.0) + value
    if kinds:
        by_kind = ", ".join(f"{COST_NAMES.get(k, k)} ${v:,.2f}" for k, v in kinds.items())
        cards.append(("Account costs", f"${sum(kinds.values()):,.2f}\n{by_kind}", ""))
    return cards


def _card_value(text: str) -> str:
    value, _, sub = text.partition("\n")
    return _e(value) + (f"<div class='sub'>{_e(sub)}</div>" if sub else "")


def _latest_run(records: Records) -> str:
    """What the latest run did: its orders and fills, its notes and errors in full."""
    s = records.runs[-1].summary
    rows = [["exit", e.get("symbol", "?"), e.get("side", "?"), _num(e.get("qty")),
             _num(e.get("limit_price")), e.get("exit_reason", ""), e.get("status", "?")]
            for e in s.get("exits") or []]
    rows += [["entry", e.get("symbol", "?"), e.get("side", "?"), _num(e.get("qty")),
              _num(e.get("limit_price")), "", e.get("status", "?")]
             for e in s.get("entries") or []]
    rows += [["fill", f.get("symbol", "?"), f.get("side", "?"), _num(f.get("filled_qty")),
              _num(f.get("filled_avg_price")), "", f.get("status", "?")]
             for f in s.get("fills") or []]
    # Decided on, but placed by an earlier run of the day: found at the broker, not sent.
    found = s.get("found_placed") or []
    rows += [[f"{e.get('intent', 'order')} found, not sent", e.get("symbol", "?"),
              e.get("side", "?"), _num(e.get("qty")), _num(e.get("limit_price")),
              e.get("exit_reason", ""), f"{e.get('status', '?')} (placed earlier)"]
             for e in found]
    head = (f"<p class='note'>{_e(records.runs[-1].name)}: {_e(s.get('outcome', '?'))}; "
            f"{len(s.get('exits') or [])} exits, {len(s.get('entries') or [])} entries sent"
            + (f" ({len(found)} more found at the broker, placed by an earlier run, not "
               "sent again)" if found else "")
            + f", {len(s.get('fills') or [])} fills, {s.get('trades_recorded', 0)} trades "
            "recorded.</p>")
    table = _table(["action", "symbol", "side", "qty", "limit / price", "reason", "status"],
                   rows, wide=(4, 5)) if rows else "<p class='empty'>No order.</p>"
    return head + table + _notes(s)


def _notes(s: Mapping[str, Any]) -> str:
    notes = [*(["kill switch ON: the STOP file exists; exits only"] if s.get("kill_switch")
               else []), *[str(n) for n in s.get("notes") or []]]
    errors = [str(e) for e in s.get("errors") or []]
    out = ""
    if notes:
        out += "<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
    if errors:
        out += "".join(f"<details class='error'><summary>{_e(_short(e))}</summary>"
                       f"<pre>{_e(e)}</pre></details>" for e in errors)
    return out


def _short(text: str, limit: int = 90) -> str:
    """The start of a long text, cut at a word, for a line that expands to the whole."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _positions_table(positions: Sequence[OpenPosition], snapshot: RunRecord | None) -> str:
    as_of = _when(snapshot.summary.get("now")) if snapshot else "no priced run yet"
    rows = [[p.symbol, p.side, f"{p.qty:g}", _when(p.entry_time.isoformat()),
             f"{p.entry_price:,.2f}", _opt(p.entry_z, "{:.2f}"), _opt(p.age_days, "{}"),
             _opt(p.z, "{:.2f}"), _opt(p.price, "{:,.2f}"), _opt(p.unrealised_pnl_usd, _usd)]
            for p in positions]
    return (f"<p class='note'>Age, z and prices as of {_e(as_of)}.</p>"
            + _table(["symbol", "side", "qty", "entry", "entry price", "entry z", "age (days)",
                      "z now", "price now", "unrealised P&L"], rows, wide=(2, 3, 5, 7)))


def _trades_table(trades: Sequence[Trade]) -> str:
    """Every closed trade, newest first; a click on a heading sorts by it."""
    rows = []
    for t in sorted(trades, key=lambda t: t.exit_time or datetime.min.replace(tzinfo=UTC),
                    reverse=True):
        rows.append([_opt(t.exit_time and t.exit_time.isoformat(), _when_day), t.symbol,
                     t.side, _num(t.qty), _opt(t.entry_price, "{:,.2f}"),
                     _opt(t.exit_price, "{:,.2f}"), _opt(t.pnl_usd, _usd),
                     _opt(t.fees_usd, "{:,.2f}"), _opt(t.net_pnl_usd, _usd), t.exit_reason,
                     _opt(t.holding_days, "{}")])
    return _table(["exit", "symbol", "side", "qty", "entry price", "exit price", "gross P&L",
                   "costs", "net P&L", "reason", "days held"], rows, sortable=True,
                  table_id="trades", wide=(2, 3, 4, 5))


def _pending_table(pending: Mapping[str, PendingOrder]) -> str:
    rows = [[p.symbol, p.intent, p.order_side, f"{p.qty:g}",
             "market" if p.order_type == "market" else f"{p.limit_price:,.2f}",
             f"{p.z:.2f}", p.exit_reason or "", p.trading_day, p.order_id or "not acknowledged",
             p.client_order_id]
            for p in sorted(pending.values(), key=lambda p: (p.created_at, p.symbol))]
    return _table(["symbol", "intent", "side", "qty", "limit", "z", "exit reason", "day",
                   "broker order id", "client order id"], rows, wide=(2, 5, 7, 8, 9))


def _stats_table(stats: Sequence[Stat], what: str) -> str:
    rows = [[s.name, f"{s.count}", f"{s.wins}", _pct(s.win_rate), _usd(s.total_pnl_usd),
             _usd(s.average_pnl_usd)] for s in [*stats, total_stat(stats)]] if stats else []
    return _table([what, "trades", "wins", "win rate", "total P&L", "average P&L"], rows)


def _runs_table(records: Records) -> str:
    recent = list(reversed(records.runs))[:RECENT_RUNS]
    rows = []
    for r in recent:
        s = r.summary
        rows.append([r.name, s.get("outcome", "?"), _opt(s.get("equity_usd"), "${:,.2f}"),
                     f"{s.get('symbols_evaluated', 0)}", f"{len(s.get('exits') or [])}",
                     f"{len(s.get('entries') or [])}", f"{len(s.get('fills') or [])}",
                     f"{s.get('trades_recorded', 0)}", f"{s.get('requests', 0)}",
                     Raw(_notes(s))])
    note = f"<p class='note'>Newest first; {len(recent)} of {len(records.runs)} runs.</p>"
    if records.runs_without_summary:
        note += (f"<p class='note'>{len(records.runs_without_summary)} run(s) left no "
                 f"summary (stopped before the end): "
                 f"{_e(', '.join(records.runs_without_summary[-5:]))}</p>")
    return note + _table(["run (New York)", "outcome", "equity", "evaluated", "exits",
                          "entries", "fills", "trades", "requests", "notes and errors"], rows,
                         wide=(3, 8))


def _note_unpriced(trades: Sequence[Trade]) -> str:
    unpriced = sum(1 for t in trades if t.pnl_usd is None)
    if not unpriced:
        return ""
    return (f"<p class='note'>{unpriced} trade(s) closed outside the bot at an unknown price "
            "are not in the P&L or the statistics.</p>")


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{''.join(parts)}</section>"


class Raw(str):
    """A table cell that is HTML already (escaped where it was built)."""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, sortable: bool = False,
           table_id: str = "", wide: Sequence[int] = ()) -> str:
    """A table; the columns in `wide` are left out on a phone-wide screen."""
    if not rows:
        return "<p class='empty'>None.</p>"

    def cls(i: int, cell: str = "") -> str:
        names = (["wide"] if i in wide else []) + (["num"] if _NUMERIC.match(cell) else []) \
            + (["day"] if _DAY.match(cell) else [])
        return f" class='{' '.join(names)}'" if names else ""

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(
        f"<td{cls(i, c)}>{c if isinstance(c, Raw) else _e(c)}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows)
    attrs = (f" id='{table_id}'" if table_id else "") + (" class='sortable'" if sortable else "")
    return f"<div class='scroll'><table{attrs}><thead><tr>{head}</tr></thead>" \
        f"<tbody>{body}</tbody></table></div>"


_NUMERIC = re.compile(r"^[+-]?\$?[\d,]+(\.\d+)?%?$")
_DAY = re.compile(r"^\d{4}-\d\d-\d\d")

# Sorting the closed trades: a click on a heading sorts by that column (numbers as numbers),
# a second click reverses. Inline, so the page stays one offline file.
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.tabIndex = 0;
  th.title = 'sort';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var down = th.getAttribute('aria-sort') !== 'descending';
    th.closest('tr').querySelectorAll('th').forEach(function (h) {
      h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
    var key = function (row) {
      var text = row.cells[col].textContent.trim();
      var n = parseFloat(text.replace(/[$,+%]/g, ''));
      return isNaN(n) || !/^[+-]?[$]?[0-9]/.test(text) ? text : n;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                      : (typeof x === 'number' ? -1 : 1);
      return down ? -c : c;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _page(body: str, generated: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trading bot report</title>
<style>
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, sans-serif; margin: 1em auto; max-width: 1100px; color: #222;
       padding: 0 0.8em; overflow-wrap: break-word; }}
h1 {{ margin-bottom: 0.1em; font-size: 1.6em; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; font-size: 1.2em; }}
.generated {{ color: #666; font-size: 0.85em; margin-top: 0; }}
.status {{ border-radius: 6px; padding: 0.6em 0.9em; margin: 0.8em 0; line-height: 1.5; }}
.status.ok {{ background: #e8f5e9; border: 1px solid #66bb6a; }}
.status.warn {{ background: #fff8e1; border: 1px solid #ffb300; }}
.status.bad {{ background: #ffebee; border: 1px solid #e53935; }}
.status span.warn {{ color: #8a5a00; font-weight: 600; }}
.status span.bad {{ color: #b71c1c; font-weight: 600; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 0.6em; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.8em; min-width: 8em;
        flex: 1 1 8em; }}
.label {{ font-size: 0.8em; color: #666; }} .value {{ font-size: 1.15em; font-weight: 600; }}
.pos {{ color: #1b5e20; }} .neg {{ color: #b71c1c; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #eee; padding: 0.3em 0.5em; text-align: left;
         vertical-align: top; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.day {{ white-space: nowrap; }}
table.sortable th {{ cursor: pointer; text-decoration: underline dotted; }}
th[aria-sort=ascending]::after {{ content: " ▲"; }}
th[aria-sort=descending]::after {{ content: " ▼"; }}
.note, .empty {{ color: #555; }}
ul.notes {{ margin: 0.3em 0; padding-left: 1.2em; }}
details.error summary {{ color: #b71c1c; cursor: pointer; }}
details.error pre {{ white-space: pre-wrap; font-size: 0.85em; background: #fafafa;
                    padding: 0.4em; margin: 0.2em 0; }}
svg.chart {{ width: 100%; max-width: 640px; height: auto; display: block; }}
svg.chart text {{ font-size: 13px; fill: #555; }}
.sub {{ font-size: 0.75em; font-weight: normal; color: #555; }}
@media (max-width: 600px) {{
  .wide {{ display: none; }}
  table {{ font-size: 0.8em; }}
  body {{ padding: 0 0.4em; }}
}}
</style></head>
<body><h1>Trading bot report</h1>
<p class='generated'>{generated}</p>
{body}
<script>{_SORT_JS}</script>
</body></html>
"""


def _sign(value: float) -> str:
    return "pos" if value > 0 else "neg" if value < 0 else ""


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value or "")


def _when_day(text: str) -> str:
    return f"{_time(text).astimezone(NEW_YORK):%Y-%m-%d}"


def _e(value: object) -> str:
    return html.escape(str(value))


def _usd(value: float) -> str:
    return f"{'-' if value < 0 else '+' if value > 0 else ''}${abs(value):,.2f}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _opt(value: Any, fmt: str | Callable[[Any], str]) -> str:
    if value is None:
        return "-"
    return fmt(value) if callable(fmt) else fmt.format(value)


def _when(text: str | None) -> str:
    if not text:
        return "-"
    return f"{_time(text).astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z}"


# -- command line -------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_dir = Path(args.log_dir) if args.log_dir else find_log_dir(Path.cwd())
    if args.log_dir is None and log_dir != Path("logs"):
        print(f"no runs in logs/; reading the latest --sim run's logs in {log_dir}")
    out = Path(args.out) if args.out else log_dir / "report.html"
    try:
        records = load_records(log_dir)
        page = build_report(records, source=str(log_dir))
    except BotError as exc:
        print(f"report not written: {exc}", file=sys.stderr)
        return exc.exit_code
    atomic_write_text(out, page)
    print(report_line(records, out))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""exit codes: 0 written, 1 a log directory or file that cannot be read
(the message names it and the fix), 2 a bad option

examples:
  python report.py                          # logs/, or the latest --sim run's logs
  python report.py --log-dir sim/demo/logs  # after make demo
  python report.py --out /tmp/bot.html""")
    parser.add_argument("--log-dir", default=None, metavar="DIR",
                        help="the bot's log directory (default: logs, or when logs has no "
                             "runs, the newest of sim/logs and sim/*/logs)")
    parser.add_argument("--out", metavar="FILE",
                        help="HTML file to write (default <log-dir>/report.html)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def find_log_dir(root: Path) -> Path:
    """logs, when it has runs; otherwise the --sim log directory whose latest run is the
    newest (sim/logs for a plain --sim, sim/<dir>/logs for --sim-dir sim/<dir>)."""
    default = Path("logs")
    if any((root / default / "runs").glob("*")):
        return default
    candidates = [p.relative_to(root) for p in [root / "sim" / "logs",
                                                *sorted((root / "sim").glob("*/logs"))]
                  if any((p / "runs").glob("*"))]
    if not candidates:
        return default
    return max(candidates, key=lambda p: max(r.stat().st_mtime
                                             for r in (root / p / "runs").iterdir()))


def report_line(records: Records, out: Path) -> str:
    """What the report holds, in one line, and how to open it."""
    trades = parse_trades(records.trades)
    known = [t.pnl_usd for t in trades if t.pnl_usd is not None]
    pnl = sum(known)
    nets = [t.net_pnl_usd for t in trades if t.net_pnl_usd is not None]
    net = ""
    if nets:
        value = sum(nets)
        net = (f", net of costs {'-' if value < 0 else '+'}${abs(value):,.2f}"
               + (f" ({len(known) - len(nets)} older trades without costs)"
                  if len(nets) < len(known) else ""))
    failed = sum(1 for r in records.runs if r.summary.get("outcome") == "failed")
    return (f"report written to {out}: {len(records.runs)} runs ({failed} failed), "
            f"{len(trades)} trades, realised P&L gross {'-' if pnl < 0 else '+'}"
            f"${abs(pnl):,.2f}{net}, "
            f"{len(records.holdings)} open positions; open it in a browser: "
            f"{out.resolve().as_uri()}")


if __name__ == "__main__":
    sys.exit(main())
