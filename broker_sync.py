"""What the broker says about the bot's records, read so that one wrong answer changes nothing.

Reconciliation (position_manager.reconcile) is pure; this module does the reads it needs and
doubts each one that would remove a record:

* a held position missing from `GET /v2/positions` is read a second time; a position counts
  as gone only when both reads lack it (and reconcile then also wants the fill that closed it
  in the order history);
* a pending record missing from the order history is looked up by its client_order_id;
* when the broker holds a position the records do not explain, the history is read far
  enough back (`ADOPT_LOOKBACK_DAYS`) to find the bot's own filled entry that opened it.

`rebuild_records` uses the same pieces to rebuild the records from the broker alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from broker import Broker, Order, Position
from market_calendar import NEW_YORK
from order_ids import parse_client_order_id
from position_manager import (
    Holding,
    PendingOrder,
    adopt_position,
    oldest_record_time,
)

log = logging.getLogger("bot.sync")

# How far back the order history is read to explain a position without a record. The bot
# holds a position MAX_HOLDING_DAYS (5 calendar days) unless it cannot price it; 90 days cover
# that many times over, at one or two history pages for a bot placing a few orders a day.
ADOPT_LOOKBACK_DAYS = 90
# The exit reason of a rebuilt exit order: the broker does not know why the bot sent it.
UNKNOWN_REASON = "unknown"


@dataclass(frozen=True)
class BrokerView:
    """The broker's answers a reconciliation needs."""

    positions: dict[str, Position]
    open_orders: list[Order]
    history: list[Order]  # since the oldest record (or the look-back), plus looked-up orders
    history_since: datetime | None  # where the history read started (None: not read)
    notes: list[str] = field(default_factory=list)


def read_positions(broker: Broker, holdings: dict[str, Holding]) -> tuple[dict[str, Position],
                                                                           list[str]]:
    """The broker's positions. When a held position is absent (or on the other side), read
    them once more: a position either read shows is there (the second read's figures win)."""
    first = broker.positions()
    absent = sorted(s for s, h in holdings.items()
                    if s not in first or first[s].is_long != h.is_long)
    if not absent:
        return first, []
    second = broker.positions()
    merged = {**first, **second}
    notes = []
    back = [s for s in absent if s in merged and merged[s].is_long == holdings[s].is_long]
    if back:
        notes.append(f"positions answer lacked {', '.join(back)}; a second read shows them")
    return merged, notes


def read_broker(broker: Broker, holdings: dict[str, Holding],
                pending: dict[str, PendingOrder], now: datetime) -> BrokerView:
    """Positions (doubted), open orders and the order history the records need."""
    positions, notes = read_positions(broker, holdings)
    open_orders = broker.open_orders()
    since = oldest_record_time(holdings, pending)
    working = {p.symbol for p in pending.values()}
    unexplained = set(positions) - set(holdings) - working
    if unexplained:
        lookback = now - timedelta(days=ADOPT_LOOKBACK_DAYS)
        since = min(since, lookback) if since else lookback
    history = broker.orders_since(since - timedelta(minutes=1)) if since else []
    seen = {o.client_order_id for o in history}
    for cid, p in sorted(pending.items()):
        if cid in seen:
            continue
        found = broker.order_by_client_id(cid, symbol=p.symbol)
        if found is not None:
            notes.append(f"{p.symbol}: order {cid} missing from the order history; found by "
                         "client_order_id")
            history.append(found)
    return BrokerView(positions, open_orders, history, since, notes)


@dataclass(frozen=True)
class Rebuilt:
    holdings: dict[str, Holding]
    pending: dict[str, PendingOrder]
    recovered: list[str]  # one line per record rebuilt
    unexplained: list[str]  # one line per position or order that could not be


def rebuild_records(broker: Broker, now: datetime,
                    lookback_days: int = ADOPT_LOOKBACK_DAYS) -> Rebuilt:
    """The bot's holdings and pending records from the broker alone: each position the bot's
    own filled entry explains (`adopt_position`), each open order of its own (by its
    client_order_id). What is lost: the z of each entry and of each pending order (None),
    and the reason of a pending exit."""
    since = now - timedelta(days=lookback_days)
    positions = broker.positions()
    open_orders = broker.open_orders()
    history = broker.orders_since(since)
    holdings: dict[str, Holding] = {}
    pending: dict[str, PendingOrder] = {}
    recovered: list[str] = []
    unexplained: list[str] = []
    for symbol, position in sorted(positions.items()):
        side = "long" if position.is_long else "short"
        held = adopt_position(position, history)
        if held is None:
            unexplained.append(
                f"{symbol}: {side} {position.qty:g} shares: no filled entry of the bot's in the "
                f"order history since {since.astimezone(NEW_YORK):%Y-%m-%d} explains it (opened "
                "by hand or by another program, or earlier than the history read); not managed")
            continue
        holdings[symbol] = held
        recovered.append(f"{symbol}: {side} {held.qty:g} shares @ {held.entry_price:g}, entered "
                         f"{held.entry_time} by {held.entry_client_order_id}")
    replaced = {o.replaced_by: o for o in history if o.status == "replaced" and o.replaced_by}
    for order in open_orders:
        record = pending_record(replacing_own(order, replaced))
        if record is None:
            unexplained.append(f"{order.symbol}: open order {order.client_order_id} is not "
                               "one of the bot's; left alone")
            continue
        pending[record.client_order_id] = record
        recovered.append(f"{order.symbol}: pending {record.intent} order "
                         f"{record.client_order_id} ({order.status})")
        if record.intent == "entry" and order.filled_qty > 0:
            # A partly filled entry: its fills so far are a holding (the record's own).
            holdings.setdefault(order.symbol, Holding(
                symbol=order.symbol, side=record.position_side, qty=order.filled_qty,
                entry_time=_when(order).isoformat(),
                entry_price=order.filled_avg_price or record.limit_price, entry_z=None,
                entry_order_id=order.id, entry_client_order_id=record.client_order_id))
    return Rebuilt(holdings, pending, recovered, unexplained)


def replacing_own(order: Order, replaced: dict[str, Order]) -> Order:
    """An open order that replaced one of the bot's (Alpaca gives a replacement its own
    client_order_id) under the bot's id, that of the first order of its chain: the record
    the daily run follows to the replacement (position_manager.follow_replacements)."""
    first, seen = order, {order.id}
    while first.id in replaced and replaced[first.id].id not in seen:
        first = replaced[first.id]
        seen.add(first.id)
    if first is order:
        return order
    return replace(order, client_order_id=first.client_order_id)


def pending_record(order: Order) -> PendingOrder | None:
    """The pending record of one of the bot's own open orders; None for any other order."""
    own = parse_client_order_id(order.client_order_id)
    market = order.type == "market"
    if own is None or own.symbol != order.symbol or order.time_in_force not in ("day", "cls") \
            or (order.limit_price is None and not market):
        return None
    if own.is_entry:
        position_side = own.intent
    else:
        position_side = "long" if order.side == "sell" else "short"
    return PendingOrder(
        client_order_id=order.client_order_id, symbol=order.symbol,
        intent="entry" if own.is_entry else "exit", position_side=position_side,
        order_side=order.side, qty=order.qty,
        limit_price=0.0 if market else order.limit_price or 0.0, z=None,
        trading_day=own.day.isoformat(), created_at=_when(order).isoformat(),
        exit_reason="" if own.is_entry else UNKNOWN_REASON, order_id=order.id,
        order_type="market" if market else "limit", time_in_force=order.time_in_force)


def _when(order: Order) -> datetime:
    when = order.filled_at or order.submitted_at or order.updated_at
    assert when is not None, order.id
    return when
