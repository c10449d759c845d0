"""The run's step that books the account's costs to the bot's trades (trade_costs.py has the
rules): one read of the FEE, INT and DIV activities with the FILLs that place each day's
sales, then trades.csv's cost columns for every row whose costs may still be posted, and the
run summary's costs.

The exchange posts a day's fees at its close, after the noon run, and Alpaca may post them
the next morning: a long sold today has its SEC and FINRA fees booked by the next run. So
each run books again every row whose exit is at most COST_BOOKING_DAYS old; the figures of a
row only ever move towards what the account paid.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from broker import Broker
from errors import BrokerError
from market_calendar import NEW_YORK
from position_manager import COST_BOOKING_DAYS, StateStore, trade_key
from run_digest import earlier_summaries
from trade_costs import COST_ACTIVITY_TYPES, book, holding_key, owners_to_book, usd

log = logging.getLogger("bot.costs")
FIRST_RUN_LOOKBACK = timedelta(days=COST_BOOKING_DAYS)  # a first run reports costs this old


def book_run_costs(broker: Broker, store: StateStore, run_dir: Path, summary: Any,
                   now: datetime, dry_run: bool) -> None:
    """Book the costs (dry run: report them only). A failed read leaves the rows as they are
    (the next run books them) and says so."""
    since_run = _previous_run(store.log_dir, run_dir) or now - FIRST_RUN_LOOKBACK
    rows, holdings = store.load_trades(), store.load_holdings()
    today = now.astimezone(NEW_YORK).date()
    owners = owners_to_book(rows, holdings.values(), today, COST_BOOKING_DAYS, trade_key)
    starts = [datetime.combine(o.entry_day, time.min, tzinfo=NEW_YORK) for o in owners]
    start = min([*starts, since_run]) - timedelta(days=1)
    try:
        activities = broker.activities(["FILL", *COST_ACTIVITY_TYPES], start)
    except BrokerError as exc:
        log.warning("costs not booked this run (account activities not read: %s); the next "
                    "run books them", exc)
        summary.notes.append(f"costs not booked: {exc}")
        return
    booking = book(owners, activities)
    # This run's figures: the cost activities posted since the previous run.
    fills = [a for a in activities if a.activity_type == "FILL"]
    recent = book(owners, fills + [a for a in activities
                                   if a.activity_type != "FILL" and a.time > since_run])
    posted: Counter[str] = Counter(recent.unbooked)
    for booked in recent.owners.values():
        posted.update(booked.cents)
    summary.costs_since = since_run.isoformat()
    summary.costs_usd = usd(posted)
    summary.costs_not_booked_usd = usd(recent.unbooked)
    summary.open_costs_usd = {
        h.symbol: booking.owners[key].fees_usd
        for h in holdings.values()
        if (key := holding_key(h.symbol, h.entry_client_order_id)) in booking.owners
        and booking.owners[key].cents}
    fees = {o.key: sum(booking.owners[o.key].cents.values()) for o in owners
            if not o.key.startswith("held/")}
    if not dry_run:
        rows = store.book_costs(fees)
    _update_digest(summary, rows)


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
