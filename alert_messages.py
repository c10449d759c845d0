"""What the alerts say: one run's summary (a RunSummary as a dict) turned into messages.

Pure functions, no I/O. Every message names its account (paper, live or the local exchange),
the trading day and the run's log, so that it can be read alone on a phone. A message is a
title, a context line and sections of lines; `Alert.text` is its plain text (email, and the
fallback a chat service shows in notifications), and alerts.py renders the same parts in
Slack's and Discord's own formatting.

Money is in US dollars, signed (+$1.20, -$3.40); percentages are of the equity the previous
run saw. Times are New York's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from market_calendar import NEW_YORK
from signal_generator import ExitReason

FAILED, PLACED, FILLED, STOP_LOSS, SUMMARY = "failed", "placed", "filled", "stop_loss", "summary"
EVENTS: tuple[str, ...] = (FAILED, PLACED, FILLED, STOP_LOSS, SUMMARY)
INFO, WARNING, ERROR = "info", "warning", "error"
NOT_TRADABLE = "not tradable at the broker"  # the reason trading_bot gives those tickers
NEXT = "the next run reconciles with the broker; the run's bot.log has the details"
MAX_LINES = 25  # lines per section; a run never places more than a few dozen orders

Section = tuple[str, tuple[str, ...]]  # (heading, lines); an empty heading: lines only


@dataclass(frozen=True)
class Alert:
    kind: str  # one of EVENTS
    title: str  # one line, the email's subject
    context: str = ""  # account, trading day, log
    sections: tuple[Section, ...] = ()
    severity: str = INFO

    @property
    def subject(self) -> str:
        return self.title

    @property
    def text(self) -> str:
        """The plain text: title, context, then each section under its heading."""
        parts = [self.title] + ([self.context] if self.context else [])
        for heading, lines in self.sections:
            body = "\n".join(f"  {line}" for line in lines)
            parts.append(f"{heading}:\n{body}" if heading else "\n".join(lines))
        return "\n".join(parts)

    def redacted(self, clean: Any) -> Alert:
        """The same alert with `clean(text)` applied to every text in it."""
        return replace(self, title=clean(self.title), context=clean(self.context),
                       sections=tuple((clean(h), tuple(clean(line) for line in lines))
                                      for h, lines in self.sections))


# -- the messages -------------------------------------------------------------------------

def failure_alert(reason: str, summary: Mapping[str, Any] | None = None) -> Alert:
    """Why a run failed, and what it had done by then: its orders and fills, the trades it
    recorded and the positions it leaves."""
    if summary is None:  # nothing known of the run but its reason
        return Alert(FAILED, "Run FAILED", "", (("Why", (reason or "no reason recorded",)),
                                                ("Next", (NEXT,))), ERROR)
    s = summary
    exits, entries, fills = _list(s, "exits"), _list(s, "entries"), _list(s, "fills")
    did = [f"{_count(len(exits), 'exit')} and {_count(len(entries), 'entry', 'entries')} "
           f"sent; {_count(len(fills), 'fill')}", *found_lines(s)]
    unconfirmed = [e.get("symbol", "?") for e in exits + entries
                   if str(e.get("status", "")).startswith("unconfirmed")]
    if unconfirmed:
        did.append(f"not confirmed by the broker (pending, the next run asks): "
                   f"{', '.join(unconfirmed)}")
    trades = _list(s, "trades")
    if trades:
        did.append(f"{_count(len(trades), 'trade')} recorded: {_usd(_pnl(trades))} realised "
                   f"gross, {_usd(_net(trades))} net of the costs booked so far")
    sections: list[Section] = [("Why", (reason or "no reason recorded",)),
                               ("What the run did", tuple(did))]
    sections += _positions_sections(s)
    sections.append(("Next", (NEXT,)))
    return Alert(FAILED, _title("Run FAILED", s), _context(s), tuple(sections), ERROR)


def run_alerts(summary: Mapping[str, Any], events: Iterable[str] = EVENTS) -> list[Alert]:
    """The messages for one run, one per event kind that has something to say, in EVENTS
    order, keeping only `events`. A failed run sends them too: what it placed and filled."""
    wanted = set(events)
    exits, entries, fills = (_list(summary, "exits"), _list(summary, "entries"),
                             _list(summary, "fills"))
    stops = [e for e in exits if e.get("exit_reason") == ExitReason.STOP_LOSS]
    context = _context(summary)
    alerts = []
    if summary.get("outcome") == "failed":
        reason = summary.get("failure") or "; ".join(summary.get("errors") or [])
        alerts.append(failure_alert(reason, summary))
    if exits or entries:
        verb = "a dry run would place" if summary.get("dry_run") else "placed"
        alerts.append(_listing(PLACED, _title(f"Orders {verb}", summary), context,
                               [_order_line("EXIT", e) for e in exits]
                               + [_order_line("ENTRY", e) for e in entries]))
    if fills:
        trades = _list(summary, "trades")
        alerts.append(_listing(FILLED, _title("Orders filled", summary), context,
                               [_fill_line(f, trades) for f in fills]))
    if stops:
        alerts.append(_listing(STOP_LOSS, _title("STOP-LOSS exits", summary), context,
                               [_order_line("STOP-LOSS", e) for e in stops], WARNING))
    alerts.append(summary_alert(summary))
    return [a for a in alerts if a.kind in wanted]


def summary_alert(summary: Mapping[str, Any]) -> Alert:
    s = summary
    outcome = s.get("outcome") or "unknown"
    if outcome == "market_closed":
        return Alert(SUMMARY, _title("Daily summary", s) + ": market closed, nothing to do",
                     _context(s))
    exits, entries, fills = _list(s, "exits"), _list(s, "entries"), _list(s, "fills")
    trades = _list(s, "trades")
    skipped = dict(s.get("skipped") or {})
    untradable = sum(1 for why in skipped.values() if why == NOT_TRADABLE)
    sections: list[Section] = [
        ("Account", (equity_line(s),)),
        ("P&L", tuple(pnl_lines(s))),
        ("Run", (f"{_count(len(exits), 'exit')} and {_count(len(entries), 'entry', 'entries')}"
                 f" sent; {_count(len(fills), 'fill')}; "
                 f"{_count(s.get('trades_recorded', len(trades)), 'trade')} recorded",
                 f"{s.get('symbols_evaluated', 0)} symbols evaluated; "
                 f"{len(skipped) - untradable} skipped; {_count(untradable, 'ticker')} not "
                 "tradable at the broker")),
    ]
    found = _list(s, "found_placed")
    if found:
        sections.append((f"Found at the broker, placed by an earlier run today, not sent again "
                         f"({len(found)})", _cap([_found_line(e) for e in found])))
    if trades:
        sections.append((f"Trades recorded ({len(trades)})",
                         _cap([trade_line(t) for t in trades])))
    sections += _positions_sections(s)
    notes = notes_lines(s)
    if notes:
        sections.append(("Notes", _cap(notes)))
    unmanaged = dict(s.get("unmanaged") or {})
    if unmanaged:
        sections.append((f"Held but not managed today ({len(unmanaged)})",
                         _cap([f"{sym}: {why}" for sym, why in sorted(unmanaged.items())])))
    errors = list(s.get("errors") or [])
    if errors:
        sections.append((f"Errors ({len(errors)})", _cap(errors)))
    severity = ERROR if outcome == "failed" else WARNING if (
        errors or s.get("kill_switch") or _overdue(s)) else INFO
    title = f"{_title('Daily summary', s)}: {outcome}, {_usd_or_unknown(s.get('equity_usd'))}"
    change = equity_change(s)
    if change is not None:
        title += f" ({_usd(change[0])}, {pct(change[1])})"
    return Alert(SUMMARY, title, _context(s), tuple(sections), severity)


# -- the lines ----------------------------------------------------------------------------

def equity_change(s: Mapping[str, Any]) -> tuple[float, float] | None:
    """(dollars, percent) since the previous run's equity, or None when either is unknown."""
    now, before = s.get("equity_usd"), s.get("equity_before_usd")
    if not isinstance(now, int | float) or not isinstance(before, int | float) or before <= 0:
        return None
    return now - before, 100.0 * (now - before) / before


def equity_line(s: Mapping[str, Any]) -> str:
    text = f"equity {_usd_or_unknown(s.get('equity_usd'))}"
    change = equity_change(s)
    if change is None:
        return text + " (no earlier run to compare with)"
    return (f"{text}: {_usd(change[0])} ({pct(change[1])}) since the last run "
            f"({_usd_or_unknown(s.get('equity_before_usd'))})")


def pnl_lines(s: Mapping[str, Any]) -> list[str]:
    trades, positions = _list(s, "trades"), _list(s, "positions")
    lines = [f"realised gross: {_usd(_pnl(trades))} on {_count(len(trades), 'trade')} "
             "recorded this run"]
    if trades:
        lines.append(f"realised net of costs: {_usd(_net(trades))} (costs booked so far "
                     f"{_paid(_fees(trades))}; a sale's SEC and FINRA fees are booked the run "
                     "after it)")
    lines += costs_lines(s)
    priced = [p for p in positions if isinstance(p.get("unrealised_pnl_usd"), int | float)]
    if positions:
        unrealised = sum(p["unrealised_pnl_usd"] for p in priced)
        unpriced = len(positions) - len(priced)
        lines.append(f"unrealised: {_usd(unrealised)} on {_count(len(priced), 'open position')}"
                     " at this run's prices"
                     + (f" ({unpriced} without a price today)" if unpriced else ""))
    else:
        lines.append("unrealised: none (no open position)")
    return lines


def costs_lines(s: Mapping[str, Any]) -> list[str]:
    """The account's costs posted since the previous run, by kind, and those not tied to a
    trade or a position (cost_booking.py)."""
    costs = s.get("costs_usd")
    if not isinstance(costs, Mapping):
        return []  # a summary from before costs were booked, or a run that stopped early
    if not costs:
        return ["account costs since the last run: none"]
    lines = [f"account costs since the last run: {_paid(sum(costs.values()))} "
             f"({_kinds(costs)})"]
    loose = s.get("costs_not_booked_usd") or {}
    if loose:
        lines.append(f"not tied to a trade or position: {_kinds(loose)}")
    return lines


COST_NAMES = {"borrow": "borrow", "sec": "SEC", "taf": "FINRA TAF", "dividend": "dividends",
              "interest": "interest", "other": "other"}


def _kinds(costs: Mapping[str, Any]) -> str:
    """Dollars paid by kind (received shown negative)."""
    return ", ".join(f"{COST_NAMES.get(k, k)} {_paid(v)}" for k, v in costs.items())


def _paid(value: float) -> str:
    """A cost in dollars: unsigned when paid, negative when received."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def trade_line(t: Mapping[str, Any]) -> str:
    days = t.get("holding_days")
    held = f", held {_count(int(days), 'day')}" if str(days or "").isdigit() else ""
    fees = t.get("fees_usd")
    net = (f", costs {_paid(fees)}, net {_usd(_net([t]))}" if isinstance(fees, int | float)
           else ", costs not booked yet")
    return (f"{t.get('symbol', '?')} {t.get('side', '?')} {_num(t.get('qty'))} shares: "
            f"gross {_usd(_float(t.get('pnl_usd')))}{net} "
            f"({t.get('exit_reason') or 'exit'}{held})")


def position_line(p: Mapping[str, Any]) -> str:
    pnl = p.get("unrealised_pnl_usd")
    now = p.get("price")
    priced = (f", now {now:,.2f}: {_usd(pnl)}" if isinstance(now, int | float)
              and isinstance(pnl, int | float) else ", no price today")
    age = p.get("age_days")
    age_text = f"day {age}" if isinstance(age, int) else "age unknown"
    if p.get("overdue"):
        age_text += f" OVERDUE (limit {p.get('max_holding_days', '?')} days)"
    return (f"{p.get('symbol', '?')} {p.get('side', '?')} {_num(p.get('qty'))} @ "
            f"{_num(p.get('entry_price'))}, {age_text}{priced}")


def notes_lines(s: Mapping[str, Any]) -> list[str]:
    lines = []
    if s.get("dry_run"):
        lines.append("dry run: orders computed and logged, none sent; no state file written")
    if s.get("kill_switch"):
        lines.append("KILL SWITCH ON: the STOP file exists; exits only, no new entries")
    lines += [str(n) for n in s.get("notes") or []
              if not (s.get("kill_switch") and "kill switch" in str(n))]
    return lines


def _positions_sections(s: Mapping[str, Any]) -> list[Section]:
    positions = _list(s, "positions")
    if "positions" not in s:
        return []
    if not positions:
        return [("Positions now", ("none",))]
    overdue = sum(1 for p in positions if p.get("overdue"))
    heading = f"Positions now ({len(positions)}" + (f", {overdue} overdue)" if overdue else ")")
    return [(heading, _cap([position_line(p) for p in positions]))]


def _overdue(s: Mapping[str, Any]) -> bool:
    return any(p.get("overdue") for p in _list(s, "positions"))


def _listing(kind: str, title: str, context: str, lines: Sequence[str],
             severity: str = INFO) -> Alert:
    return Alert(kind, f"{title}: {len(lines)}", context, (("", _cap(lines)),), severity)


def _title(what: str, s: Mapping[str, Any]) -> str:
    prefix = "DRY RUN: " if s.get("dry_run") else ""
    day = trading_day(s)
    account = s.get("account") or ""
    where = f" ({account})" if account else ""
    return f"{prefix}{what} {day}{where}".replace("  ", " ").rstrip()


def _context(s: Mapping[str, Any]) -> str:
    parts = []
    if s.get("account"):
        parts.append(f"{s['account']} account")
    day, at = trading_day(s), _time(s)
    if day:
        parts.append(f"trading day {day}" + (f", run at {at}" if at else ""))
    if s.get("log_path"):
        parts.append(f"log {s['log_path']}")
    return " · ".join(parts)


def trading_day(s: Mapping[str, Any]) -> str:
    moment = _moment(s)
    return f"{moment:%Y-%m-%d}" if moment else ""


def _time(s: Mapping[str, Any]) -> str:
    moment = _moment(s)
    return f"{moment:%H:%M %Z}" if moment else ""


def _moment(s: Mapping[str, Any]) -> datetime | None:
    raw = s.get("now") or s.get("started_at") or ""
    try:
        return datetime.fromisoformat(raw).astimezone(NEW_YORK)
    except (TypeError, ValueError):
        return None


def _order_line(label: str, e: Mapping[str, Any]) -> str:
    reason = f" ({e['exit_reason']})" if e.get("exit_reason") else ""
    z = e.get("z")
    z_text = f", z={z:.2f}" if isinstance(z, int | float) else ""
    kind = "market" if e.get("order_type") == "market" else f"limit {_num(e.get('limit_price'))}"
    if e.get("time_in_force") == "cls":
        kind += " on close"
    return (f"{label} {e.get('side', '?')} {_num(e.get('qty'))} {e.get('symbol', '?')} "
            f"{kind}{z_text}{reason}: {e.get('status', '?')}")


def found_lines(s: Mapping[str, Any]) -> list[str]:
    """The orders a run found at the broker instead of sending them, in one line (or none)."""
    found = _list(s, "found_placed")
    if not found:
        return []
    return [f"{_count(len(found), 'order')} found at the broker, placed by an earlier run "
            f"today, not sent again: {', '.join(_found_line(e) for e in found)}"]


def _found_line(e: Mapping[str, Any]) -> str:
    label = "EXIT" if e.get("intent") == "exit" else "ENTRY"
    return _order_line(label, e)


def _fill_line(f: Mapping[str, Any], trades: Sequence[Mapping[str, Any]]) -> str:
    line = (f"{f.get('side', '?')} {_num(f.get('filled_qty'))} {f.get('symbol', '?')} @ "
            f"{_num(f.get('filled_avg_price'))}: {f.get('status', '?')}")
    closed = [t for t in trades if t.get("symbol") == f.get("symbol")]
    if closed:  # an exit fill: the trade it closed
        line += (f"; trade P&L gross {_usd(_pnl(closed))} "
                 f"({closed[-1].get('exit_reason') or 'exit'})")
    return line


def _list(s: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return list(s.get(key) or [])  # a malformed entry raises where it is read (run_finished)


def _pnl(rows: Iterable[Mapping[str, Any]]) -> float:
    """Realised P&L before costs."""
    return sum(_float(r.get("pnl_usd")) for r in rows)


def _fees(rows: Iterable[Mapping[str, Any]]) -> float:
    """The costs booked to the rows so far (none where not booked)."""
    return sum(_float(r.get("fees_usd")) for r in rows)


def _net(rows: Iterable[Mapping[str, Any]]) -> float:
    """Realised P&L after the costs booked so far, to the cent."""
    rows = list(rows)
    return round(_pnl(rows) - _fees(rows), 2)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def pct(value: float) -> str:
    """A signed percentage: two decimals, or three significant digits below 0.01%."""
    if value != 0 and abs(value) < 0.01:
        return f"{value:+.2g}%"
    return f"{value:+.2f}%"


def _usd(value: float) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def _usd_or_unknown(value: Any) -> str:
    return f"${value:,.2f}" if isinstance(value, int | float) else "equity unknown"


def _count(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _cap(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_LINES:
        return tuple(lines)
    return (*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more")


def run_line(s: Mapping[str, Any]) -> str:
    """The run in one terminal line: day, outcome, equity and change, orders, trades, P&L."""
    prefix = "DRY RUN " if s.get("dry_run") else ""
    day = trading_day(s) or "?"
    outcome = s.get("outcome") or "unknown"
    if outcome == "market_closed":
        return f"{prefix}run {day}: market closed, nothing to do"
    head = f"{prefix}run {day} " + (f"FAILED ({s.get('failure') or 'see the log'})"
                                    if outcome == "failed" else outcome)
    equity = _usd_or_unknown(s.get("equity_usd"))
    change = equity_change(s)
    if change is not None:
        equity += f" ({_usd(change[0])}, {pct(change[1])})"
    trades = _list(s, "trades")
    found = len(_list(s, "found_placed"))
    return (f"{head}: equity {equity}; {_count(len(_list(s, 'exits')), 'exit')}, "
            f"{_count(len(_list(s, 'entries')), 'entry', 'entries')}"
            + (f" sent ({found} more found placed earlier, not sent)" if found else "") + ", "
            f"{_count(len(_list(s, 'fills')), 'fill')}; {_count(len(trades), 'trade')}"
            + (f" gross {_usd(_pnl(trades))} net {_usd(_net(trades))}" if trades else "")
            + (f"; account costs {_paid(sum(s['costs_usd'].values()))}"
               if s.get("costs_usd") else "")
            + (f"; {len(_list(s, 'positions'))} open" if "positions" in s else ""))
