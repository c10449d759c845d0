"""Placing orders so that none is ever sent twice, and tracking their fills.

Every order carries a deterministic client_order_id made of the trading day, the symbol and
the intent. Alpaca refuses a reused client_order_id, and the bot looks the id up before every
POST, so a rerun on the same day, a crash between POST and bookkeeping, or a lost response can
never produce a second order. The intent is written to pending_orders.json *before* the POST.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from broker import Broker, Order
from errors import OrderRejectedError, TemporaryBrokerError
from position_manager import PendingOrder, StateStore

log = logging.getLogger("bot.orders")
ORDER_ID_PREFIX = "mr"


def client_order_id(day: date, symbol: str, intent: str) -> str:
    """e.g. mr-20240301-AAPL-long: one per trading day, symbol and intent (long, short,
    exit)."""
    return f"{ORDER_ID_PREFIX}-{day:%Y%m%d}-{symbol}-{intent}"


def position_intent(p: PendingOrder) -> str:
    """Alpaca's position_intent of the order: an entry opens (buy_to_open, sell_to_open), an
    exit closes (sell_to_close, buy_to_close). Sent with every order, so that an exit whose
    position vanished outside the bot is refused instead of opening the other side."""
    return f"{p.order_side}_to_{'open' if p.intent == 'entry' else 'close'}"


class OrderManager:
    """Sends the run's orders with write-ahead records and safe re-sends."""

    def __init__(self, broker: Broker, store: StateStore, pending: dict[str, PendingOrder], *,
                 snapshot_dir: Path | None, retries: int, dry_run: bool = False,
                 backoff_seconds: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.broker = broker
        self.store = store
        self.pending = pending
        self.snapshot_dir = snapshot_dir
        self.retries = retries
        self.dry_run = dry_run
        self.backoff = backoff_seconds
        self.sleep = sleep
        self.placed: list[Order] = []

    def _save(self) -> None:
        if self.dry_run:
            return
        also = [self.snapshot_dir / "pending_orders.json"] if self.snapshot_dir else []
        self.store.save_pending(self.pending, *also)

    def place(self, intent: PendingOrder) -> Order | None:
        """Place one order (or find it already placed). Raises OrderRejectedError when the
        broker refuses it; None in a dry run."""
        cid = intent.client_order_id
        if self.dry_run:
            log.info("dry run: would place %s %s %g %s @ %g (%s)", intent.order_side,
                     intent.symbol, intent.qty, cid, intent.limit_price, intent.intent)
            return None
        self.pending[cid] = intent
        self._save()  # write-ahead: the record exists before the order can
        order = self.broker.order_by_client_id(cid) or self._submit(intent)
        self.pending[cid] = replace(intent, order_id=order.id)
        self._save()
        self.placed.append(order)
        log.info("order %s: %s %s %g @ %g -> %s", cid, intent.order_side, intent.symbol,
                 intent.qty, intent.limit_price, order.status)
        return order

    def _submit(self, p: PendingOrder) -> Order:
        cid = p.client_order_id
        for attempt in range(self.retries + 1):
            try:
                return self.broker.submit_limit(symbol=p.symbol, side=p.order_side, qty=p.qty,
                                                limit_price=p.limit_price, client_order_id=cid,
                                                position_intent=position_intent(p))
            except TemporaryBrokerError as exc:
                # The order may have been accepted and only the answer lost: look before
                # sending again.
                found = self.broker.order_by_client_id(cid)
                if found is not None:
                    log.warning("%s: %s, but the broker has the order; not re-sent", cid, exc)
                    return found
                if attempt == self.retries:
                    raise  # the record stays pending: the next run asks the broker again
                log.warning("%s: %s; not at the broker, re-sending", cid, exc)
                # Never past the run's deadline: with many retries the backoff doubles to
                # minutes, and the run must end on time (the record stays pending).
                self.sleep(self.broker.within_deadline(self.backoff * 2 ** attempt))
            except OrderRejectedError as exc:
                found = self.broker.order_by_client_id(cid) if "client_order_id" in str(exc) \
                    else None
                if found is not None:
                    return found
                del self.pending[cid]
                self._save()
                raise
        raise AssertionError("unreachable")

    def wait_for_fills(self, since: datetime, *, wait_seconds: float, poll_seconds: float,
                       monotonic: Callable[[], float] = time.monotonic) -> list[Order]:
        """Poll this run's orders until all have ended or `wait_seconds` ran out. One request
        per poll, whatever the number of orders; none when every order has ended already or
        there is no time to wait. Returns the latest state of (at least) this run's orders."""
        if all(not o.is_open for o in self.placed) or wait_seconds <= 0:
            # The POST answers already tell the final state (or we may not wait): no request.
            return list(self.placed)
        ids = {o.id for o in self.placed}
        give_up = monotonic() + wait_seconds
        while True:
            orders = self.broker.orders_since(since - timedelta(minutes=1))
            mine = [o for o in orders if o.id in ids]
            if all(not o.is_open for o in mine) or monotonic() >= give_up:
                return orders
            # Never past the run's deadline either; the next poll then ends the run.
            self.sleep(self.broker.within_deadline(
                min(poll_seconds, max(0.0, give_up - monotonic()))))

    def cancel_remainders(self, orders: list[Order]) -> int:
        """Cancel what is left of this run's partially filled orders; returns how many."""
        ids = {o.id for o in self.placed}
        count = 0
        for order in orders:
            if order.id in ids and order.status == "partially_filled":
                try:
                    self.broker.cancel(order.id)
                    count += 1
                except OrderRejectedError as exc:  # it filled or ended meanwhile
                    log.info("cancel of %s's remainder refused: %s", order.symbol, exc)
        return count
