"""One self-contained HTML dashboard of what the bot recorded.

    python report.py [--log-dir DIR] [--out FILE]   (python report.py --help for more)

Reads `trades.csv`, `positions.json`, `pending_orders.json` and every `runs/*/summary.json`
under the log directory (default `logs`) and writes `<log-dir>/report.html` (or FILE): realised
P&L over time, equity per run, open positions with their age, current z and unrealised P&L,
pending orders, statistics per symbol and per exit reason, and the recent runs. plotly.js is
embedded, so the file opens without a network. The report only reads; it never changes state.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from errors import BotError, StateFileError
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
    for run_dir in sorted(p for p in (log_dir / "runs").glob("*") if p.is_dir()):
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
        trades.append(Trade(row["symbol"], row["exit_reason"] or "unknown", when, pnl))
    return trades


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

def build_report(records: Records, *, source: str) -> str:
    """The whole HTML page."""
    if records.empty:
        body = (f"<p class='empty'>Nothing recorded yet in {_e(source)}: no trades, positions, "
                "orders or runs. Run <code>python trading_bot.py</code> (or "
                "<code>--sim</code>) first.</p>")
        return _page(body)
    trades = parse_trades(records.trades, f"{source}/trades.csv")
    snapshot = market_snapshot(records.runs)
    positions = open_positions(records.holdings, snapshot)
    by_symbol = group_stats(trades, lambda t: t.symbol)
    by_reason = group_stats(trades, lambda t: t.exit_reason)
    plots = _Plots()
    sections = [
        _headline(records, trades, positions, total_stat(by_symbol)),
        _section("Realised P&L over time", plots.line(
            "plot-realised-pnl", cumulative_pnl(trades), "cumulative realised P&L (USD)"),
            _note_unpriced(trades)),
        _section("Equity per run", plots.line("plot-equity", equity_points(records.runs),
                                              "equity (USD)")),
        _section(f"Open positions ({len(positions)})", _positions_table(positions, snapshot)),
        _section(f"Pending orders ({len(records.pending)})", _pending_table(records.pending)),
        _section("By symbol", plots.bars("plot-by-symbol", by_symbol),
                 _stats_table(by_symbol, "symbol")),
        _section("By exit reason", plots.bars("plot-by-reason", by_reason),
                 _stats_table(by_reason, "exit reason")),
        _section("Recent runs", _runs_table(records)),
    ]
    return _page("\n".join(sections))


class _Plots:
    """plotly figures as HTML; the first one carries plotly.js, inline (no network)."""

    def __init__(self) -> None:
        self._js_included = False

    def _html(self, figure: Any, div_id: str) -> str:
        figure.update_layout(template="plotly_white", height=320,
                             margin={"l": 60, "r": 20, "t": 20, "b": 40})
        out = figure.to_html(full_html=False, include_plotlyjs=not self._js_included,
                             div_id=div_id, config={"displaylogo": False, "responsive": True})
        self._js_included = True
        return out

    def line(self, div_id: str, points: Sequence[tuple[datetime, float]], label: str) -> str:
        if not points:
            return "<p class='empty'>Nothing to plot yet.</p>"
        import plotly.graph_objects as go  # imported here: ~0.5 s the bot never pays

        x = [t.astimezone(NEW_YORK).replace(tzinfo=None) for t, _ in points]
        figure = go.Figure(go.Scatter(x=x, y=[v for _, v in points], mode="lines+markers",
                                      line={"shape": "hv"}, name=label))
        figure.update_yaxes(title_text=label)
        return self._html(figure, div_id)

    def bars(self, div_id: str, stats: Sequence[Stat]) -> str:
        if not stats:
            return "<p class='empty'>No closed trades yet.</p>"
        import plotly.graph_objects as go

        ordered = sorted(stats, key=lambda s: s.total_pnl_usd, reverse=True)
        figure = go.Figure(go.Bar(
            x=[s.name for s in ordered], y=[s.total_pnl_usd for s in ordered],
            marker_color=["#2e7d32" if s.total_pnl_usd >= 0 else "#c62828" for s in ordered]))
        figure.update_yaxes(title_text="total realised P&L (USD)")
        return self._html(figure, div_id)


def _headline(records: Records, trades: Sequence[Trade], positions: Sequence[OpenPosition],
              total: Stat) -> str:
    latest = records.runs[-1].summary if records.runs else {}
    equity = next((r.summary["equity_usd"] for r in reversed(records.runs)
                   if r.summary.get("equity_usd") is not None), None)
    unrealised = [p.unrealised_pnl_usd for p in positions if p.unrealised_pnl_usd is not None]
    failed = sum(1 for r in records.runs if r.summary.get("outcome") == "failed")
    cards = [
        ("Realised P&L", _usd(total.total_pnl_usd)),
        ("Closed trades", f"{len(trades)}"),
        ("Win rate", _pct(total.win_rate) if total.count else "-"),
        ("Open positions", f"{len(positions)}"),
        ("Unrealised P&L", _usd(sum(unrealised)) if unrealised else "-"),
        ("Latest equity", "-" if equity is None else f"${equity:,.2f}"),
        ("Runs", f"{len(records.runs)} ({failed} failed)"),
    ]
    as_of = _when(latest.get("now") or latest.get("started_at"))
    items = "".join(f"<div class='card'><div class='label'>{_e(k)}</div>"
                    f"<div class='value'>{_e(v)}</div></div>" for k, v in cards)
    return f"<p class='asof'>Latest run: {_e(as_of)}</p><div class='cards'>{items}</div>"


def _positions_table(positions: Sequence[OpenPosition], snapshot: RunRecord | None) -> str:
    as_of = _when(snapshot.summary.get("now")) if snapshot else "no priced run yet"
    rows = [[p.symbol, p.side, f"{p.qty:g}", _when(p.entry_time.isoformat()),
             f"{p.entry_price:,.2f}", _opt(p.entry_z, "{:.2f}"), _opt(p.age_days, "{}"),
             _opt(p.z, "{:.2f}"), _opt(p.price, "{:,.2f}"), _opt(p.unrealised_pnl_usd, _usd)]
            for p in positions]
    return (f"<p class='note'>Age, z and prices as of {_e(as_of)}.</p>"
            + _table(["symbol", "side", "qty", "entry", "entry price", "entry z", "age (days)",
                      "z now", "price now", "unrealised P&L"], rows))


def _pending_table(pending: Mapping[str, PendingOrder]) -> str:
    rows = [[p.symbol, p.intent, p.order_side, f"{p.qty:g}", f"{p.limit_price:,.2f}",
             f"{p.z:.2f}", p.exit_reason or "", p.trading_day, p.order_id or "not acknowledged",
             p.client_order_id]
            for p in sorted(pending.values(), key=lambda p: (p.created_at, p.symbol))]
    return _table(["symbol", "intent", "side", "qty", "limit", "z", "exit reason", "day",
                   "broker order id", "client order id"], rows)


def _stats_table(stats: Sequence[Stat], what: str) -> str:
    rows = [[s.name, f"{s.count}", f"{s.wins}", _pct(s.win_rate), _usd(s.total_pnl_usd),
             _usd(s.average_pnl_usd)] for s in [*stats, total_stat(stats)]] if stats else []
    return _table([what, "trades", "wins", "win rate", "total P&L", "average P&L"], rows)


def _runs_table(records: Records) -> str:
    recent = list(reversed(records.runs))[:RECENT_RUNS]
    rows = []
    for r in recent:
        s = r.summary
        errors = s.get("errors") or []
        rows.append([r.name, s.get("outcome", "?"), _opt(s.get("equity_usd"), "${:,.2f}"),
                     f"{s.get('symbols_evaluated', 0)}", f"{len(s.get('exits') or [])}",
                     f"{len(s.get('entries') or [])}", f"{len(s.get('fills') or [])}",
                     f"{s.get('trades_recorded', 0)}", f"{s.get('requests', 0)}",
                     "; ".join(errors)[:200]])
    note = f"<p class='note'>Newest first; {len(recent)} of {len(records.runs)} runs.</p>"
    if records.runs_without_summary:
        note += (f"<p class='note'>{len(records.runs_without_summary)} run(s) left no "
                 f"summary (stopped before the end): "
                 f"{_e(', '.join(records.runs_without_summary[-5:]))}</p>")
    return note + _table(["run (New York)", "outcome", "equity", "evaluated", "exits",
                          "entries", "fills", "trades", "requests", "errors"], rows)


def _note_unpriced(trades: Sequence[Trade]) -> str:
    unpriced = sum(1 for t in trades if t.pnl_usd is None)
    if not unpriced:
        return ""
    return (f"<p class='note'>{unpriced} trade(s) closed outside the bot at an unknown price "
            "are not in the P&L or the statistics.</p>")


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{''.join(parts)}</section>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "<p class='empty'>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trading bot report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 0.8em; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 8em; }}
.label {{ font-size: 0.8em; color: #666; }} .value {{ font-size: 1.3em; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #eee; padding: 0.3em 0.6em; text-align: left; }}
.note, .asof, .empty {{ color: #555; }}
</style></head>
<body><h1>Trading bot report</h1>
{body}
</body></html>
"""


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
    failed = sum(1 for r in records.runs if r.summary.get("outcome") == "failed")
    return (f"report written to {out}: {len(records.runs)} runs ({failed} failed), "
            f"{len(trades)} trades, realised P&L {'-' if pnl < 0 else '+'}${abs(pnl):,.2f}, "
            f"{len(records.holdings)} open positions; open it in a browser: "
            f"{out.resolve().as_uri()}")


if __name__ == "__main__":
    sys.exit(main())
