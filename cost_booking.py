"""The run's step that books the account's costs to the bot's trades (trade_costs.py has the
rules): one read of the FEE, INT and DIV activities with the FILLs that place each day's
sales, then trades.csv's cost columns for every row whose costs may still be posted, and the
run summary's costs.

The exchange posts a day's fees at its close, after the noon run, and Alpaca may post them
the next morning: a long sold today has its SEC and FINRA fees booked by the next run. So
each run books again every row whose exit is at most COST_BOOKING_DAYS old; the figures of a
row only ever move towards what the account paid.

A dividend is paid weeks after its ex-date, to whoever held the shares over it. So each run
reads the cash dividends of the symbols its trades and holdings held over a close (one read of
GET /v1/corporate-actions, none when there is no such trade), and a row owed a dividend is
booked again until PAY_GRACE_DAYS after the pay date (trade_costs.py); a dividend owed and
not paid by then is named in the run's notes. If that read fails, the rows of symbols with a
dividend activity keep what they had (the next run books them) and the run says so.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from alert_messages import COST_NAMES
from broker import Broker, CorporateAction
from errors import BrokerError
from market_calendar import NEW_YORK
from position_manager import COST_BOOKING_DAYS, StateStore, trade_key, with_costs
from run_digest import earlier_summaries
from trade_costs import (
    COST_ACTIVITY_TYPES,
    KINDS,
    MAX_PAY_LAG_DAYS,
    PAY_GRACE_DAYS,
    Owner,
    book,
    holding_key,
    kind_of,
    match_dividends,
    never_paid,
    owed_dividends,
    owners_to_book,
    pay_day,
    usd,
)

FIRST_RUN_LOOKBACK = timedelta(days=COST_BOOKING_DAYS)  # a first run reports costs this old
log = logging.getLogger("bot")


def book_run_costs(broker: Broker, store: StateStore, run_dir: Path, summary: Any,
                   now: datetime, dry_run: bool) -> None:
    """Book the costs (dry run: report them only). A failed read fails the run like any
    other (BrokerError) after its orders and records are saved; the rows keep the costs
    booked so far and the next run books the rest."""
    since_run = _previous_run(store.log_dir, run_dir) or now - FIRST_RUN_LOOKBACK
    rows, holdings = store.load_trades(), store.load_holdings()
    today = now.astimezone(NEW_YORK).date()
    since_day = since_run.astimezone(NEW_YORK).date()
    actions = _cash_dividends(broker, owners_to_book(rows, holdings.values(), today,
                                                     COST_BOOKING_DAYS, trade_key,
                                                     lambda owner: True), today, summary)

    def waiting(owner: Owner) -> bool:  # owed a dividend whose wait ended after the last run
        return any((pay_day(c) - since_day).days + PAY_GRACE_DAYS >= 0
                   for c in owed_dividends(owner, actions or []))

    owners = owners_to_book(rows, holdings.values(), today, COST_BOOKING_DAYS, trade_key,
                            waiting if actions else None)
    starts = [datetime.combine(o.entry_day, time.min, tzinfo=NEW_YORK) for o in owners]
    start = min([*starts, since_run]) - timedelta(days=1)
    activities = broker.activities(["FILL", *COST_ACTIVITY_TYPES], start)
    # Without the corporate actions no dividend is booked: the next run books them.
    held_back = [] if actions is not None else [
        a for a in activities if a.activity_type != "FILL" and kind_of(a) == "dividend"]
    if held_back:
        ids = {a.id for a in held_back}
        activities = [a for a in activities if a.id not in ids]
    ex_dates = match_dividends(activities, actions or [])
    booking = book(owners, activities, ex_dates)
    # This run's figures: the cost activities posted since the previous run.
    fills = [a for a in activities if a.activity_type == "FILL"]
    recent = book(owners, fills + [a for a in activities
                                   if a.activity_type != "FILL" and a.time > since_run],
                  ex_dates)
    if recent.unmatched_dividends:
        _note(summary, f"{recent.unmatched_dividends} dividend(s) matched to no corporate "
                       "action: booked to the latest trade of the symbol entered by its date")
    for text in never_paid(owners, actions or [], ex_dates, activities, since_day, today):
        _note(summary, f"dividend owed and never paid: {text}")
    unbooked: Counter[str] = Counter(recent.unbooked)
    unbooked["dividend"] += sum(-round(a.net_amount * 100) for a in held_back
                                if a.time > since_run and a.net_amount is not None)
    posted = Counter(unbooked)
    for booked in recent.owners.values():
        posted.update(booked.cents)
    summary.costs_since = since_run.isoformat()
    summary.costs_usd = usd(posted)
    summary.costs_not_booked_usd = usd(unbooked)
    summary.open_costs_usd = {
        h.symbol: booking.owners[key].fees_usd
        for h in holdings.values()
        if (key := holding_key(h.symbol, h.entry_client_order_id)) in booking.owners
        and booking.owners[key].cents}
    fees = {o.key: sum(booking.owners[o.key].cents.values()) for o in owners
            if not o.key.startswith("held/")}
    if held_back:  # the rows a dividend held back may belong to keep what they had
        paid = {a.symbol for a in held_back}
        fees = {o.key: fees[o.key] for o in owners if o.key in fees and o.symbol not in paid}
    if dry_run:  # what the booking would write, for the summary only
        rows = [with_costs(r, fees[trade_key(r)]) if trade_key(r) in fees else r for r in rows]
    else:
        rows = store.book_costs(fees)
    _update_digest(summary, rows)


def _note(summary: Any, text: str) -> None:
    log.warning(text)
    summary.notes.append(text)


def _cash_dividends(broker: Broker, candidates: list[Owner], today: date,
                    summary: Any) -> list[CorporateAction] | None:
    """The cash dividends of the symbols `candidates` held over a close (one read; none
    without such a candidate: an empty list); None if the read failed."""
    held = [o for o in candidates if o.exit_day is None or o.entry_day < o.exit_day]
    if not held:
        return []
    start = min(o.entry_day for o in held)
    try:
        actions = broker.corporate_actions({o.symbol for o in held}, start,
                                           today + timedelta(days=MAX_PAY_LAG_DAYS))
    except BrokerError as exc:
        _note(summary, f"corporate actions not read ({exc}): the dividends of this run are "
                       "booked by the next one")
        return None
    return [c for c in actions if c.kind == "cash_dividend"]


def _previous_run(log_dir: Path, run_dir: Path) -> datetime | None:
    for earlier in earlier_summaries(log_dir, run_dir):
        try:
            return datetime.fromisoformat(str(earlier.get("now") or ""))
        except ValueError:
            continue
    return None


def _update_digest(summary: Any, rows: list[dict[str, str]]) -> None:
    """The run's recorded trades in its summary, with their costs as booked now."""
    by_key = {trade_key(r): r for r in rows}
    for trade in summary.trades:
        row = by_key.get(trade.get("key", ""))
        if row is not None:
            for name in ("fees_usd", "gross_pnl_usd", "net_pnl_usd"):
                trade[name] = float(row[name]) if row[name] != "" else None


@dataclass(frozen=True)
class Reconciled:
    """Realised P&L of a span of runs against the account's equity change over it, in
    dollars: equity change = net realised + unrealised - open positions' costs - other costs
    + remainder (the cash of each fill is rounded to the cent, a trade's P&L once)."""

    trades: int
    gross: float
    fees: float
    posted: float  # every cost the account posted over the span
    posted_by_kind: dict[str, float]
    equity_change: float
    unrealised: float
    open_costs: float
    other_costs: float

    @property
    def net(self) -> float:
        return round(self.gross - self.fees, 2)

    @property
    def remainder(self) -> float:
        return round(self.equity_change - self.net - self.unrealised + self.open_costs
                     + self.other_costs, 2) + 0.0

    def text(self) -> str:
        def signed(v: float) -> str:
            return f"{'-' if v < 0 else '+'}${abs(v):,.2f}"
        kinds = ", ".join(f"{COST_NAMES.get(k, k)} ${v:,.2f}"
                          for k, v in self.posted_by_kind.items())
        return (f"{self.trades} trades: realised P&L gross {signed(self.gross)}, their costs "
                f"${self.fees:,.2f}, net {signed(self.net)}; account costs "
                f"${self.posted:,.2f}" + (f" ({kinds})" if kinds else "")
                + f"; equity change {signed(self.equity_change)} = net realised "
                f"{signed(self.net)} + open positions' unrealised {signed(self.unrealised)} - "
                f"their costs so far ${self.open_costs:,.2f} - costs tied to no trade "
                f"${self.other_costs:,.2f} + remainder {signed(self.remainder)} (cash is "
                "rounded to the cent at each fill)")


def reconcile_span(rows: list[dict[str, str]], costs_paid: list[tuple[str, float]],
                   equity_change: float, unrealised: float,
                   open_costs: float) -> Reconciled:
    """`rows`: the span's trades as booked; `costs_paid`: (kind, dollars paid) of every cost
    activity the account posted over the span."""
    by_kind: Counter[str] = Counter()
    gross = fees = 0.0
    for row in rows:
        gross += float(row["gross_pnl_usd"] or 0.0)
        fees += float(row["fees_usd"] or 0.0)
    posted = sum(v for _, v in costs_paid)
    for kind, value in costs_paid:
        by_kind[kind] += value
    return Reconciled(trades=len(rows), gross=round(gross, 2), fees=round(fees, 2),
                      posted=round(posted, 2),
                      posted_by_kind={k: round(by_kind[k], 2) for k in KINDS if by_kind[k]},
                      equity_change=round(equity_change, 2), unrealised=round(unrealised, 2),
                      open_costs=round(open_costs, 2),
                      other_costs=round(posted - fees - open_costs, 2) + 0.0)  # never -0


def simulated_span(exchange: Any, log_dir: Path, runs: list[dict[str, Any]]) -> Reconciled | None:
    """The runs `runs` (oldest first) of a simulation reconciled with its exchange as it is
    now: from the first run's reading of the account to the exchange's last moment."""
    equities = [r["equity_usd"] for r in runs if isinstance(r.get("equity_usd"), int | float)]
    try:
        start = datetime.fromisoformat(str(runs[0].get("now")))
    except (IndexError, ValueError):
        return None
    if not equities:
        return None
    rows = [r for r in StateStore(log_dir).load_trades()
            if r["exit_time"] and datetime.fromisoformat(r["exit_time"]) > start]
    costs = [(kind_of(a), -a.net_amount) for a in exchange.activities
             if a.created_at > start and (a.activity_type in ("FEE", "INT")
                                         or a.activity_type.startswith("DIV"))]
    prices = exchange.prices()
    unrealised = sum(p.qty * (prices[s] - p.avg_entry_price)
                     for s, p in exchange.book.positions.items())
    open_costs = sum((runs[-1].get("open_costs_usd") or {}).values())
    return reconcile_span(rows, costs, exchange.balances().equity - equities[0], unrealised,
                          open_costs)
