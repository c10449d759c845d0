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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from errors import OrderRejectedError, TemporaryBrokerError
from order_ids import ORDER_ID_PREFIX, client_order_id
from position_manager import Holding, PendingOrder, StateStore

if TYPE_CHECKING:  # annotations only: the SDK behind broker loads when a broker is used
    from broker import Broker, Order

PROGRESS_SECONDS = 10.0  # how often a wait for fills says how it goes

log = logging.getLogger("bot.orders")
# Alpaca's answer to a reused client_order_id (HTTP 422; the message as quoted in
# https://github.com/alpacahq/alpaca-py/issues/260).
DUPLICATE_ID = "client_order_id must be unique"
__all__ = ["OrderManager", "client_order_id"]


@dataclass(frozen=True)
class PastExits:
    """A holding's exit orders that ended (filled in part or not at all) since its entry: one
    per trading day, as each day's exit has its own client_order_id."""

    unfilled_days: int
    partly_filled: bool  # the latest of them filled part of the holding


def past_exits(holdings: dict[str, Holding], orders: list[Order]) -> dict[str, PastExits]:
    """What escalation and the exit partial-fill policy read, from the broker's own order
    history (`orders`: every order since the oldest record, as the run's sync fetches it)."""
    out: dict[str, PastExits] = {}
    for symbol, held in holdings.items():
        entered = datetime.fromisoformat(held.entry_time)
        ended = sorted((o for o in orders
                        if o.symbol == symbol and not o.is_open and _is_exit_id(o, symbol)
                        and o.submitted_at is not None and o.submitted_at >= entered),
                       key=lambda o: o.submitted_at)
        if ended:
            out[symbol] = PastExits(unfilled_days=len(ended),
                                    partly_filled=ended[-1].filled_qty > 0)
    return out


def _is_exit_id(order: Order, symbol: str) -> bool:
    cid = order.client_order_id
    return cid.startswith(f"{ORDER_ID_PREFIX}-") and cid.endswith(f"-{symbol}-exit")


def describe(p: PendingOrder) -> str:
    """e.g. "limit 61.5 day", "market cls"."""
    price = f" {p.limit_price:g}" if p.order_type == "limit" else ""
    return f"{p.order_type}{price} {p.time_in_force}"


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
                 sleep: Callable[[float], None] = time.sleep,
                 too_late: Callable[[], str | None] | None = None) -> None:
        self.broker = broker
        self.too_late = too_late or (lambda: None)  # see session_guard.SessionGuard
        self.store = store
        self.pending = pending
        self.snapshot_dir = snapshot_dir
        self.retries = retries
        self.dry_run = dry_run
        self.backoff = backoff_seconds
        self.sleep = sleep
        self.placed: list[Order] = []
        # Orders this run decided on and found at the broker already, by client_order_id: an
        # earlier run of the day placed them. Not sent again, and never announced as sent.
        self.found_placed: dict[str, Order] = {}

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
            found = self.broker.order_by_client_id(cid, intent.symbol)
            if found is not None:
                return self._found(intent, found)
            log.info("dry run: would place %s %s %g %s %s (%s)", intent.order_side,
                     intent.symbol, intent.qty, cid, describe(intent), intent.intent)
            return None
        self.pending[cid] = intent
        self._save()  # write-ahead: the record exists before the order can
        found = self.broker.order_by_client_id(cid, intent.symbol)
        if found is not None:
            return self._found(intent, found)
        order = self._submit(intent)
        self.pending[cid] = replace(intent, order_id=order.id)
        self._save()
        self.placed.append(order)
        log.info("order %s: %s %s %g %s -> %s", cid, intent.order_side, intent.symbol,
                 intent.qty, describe(intent), order.status)
        return order

    def _found(self, intent: PendingOrder, order: Order) -> Order:
        """The order is at the broker already: an earlier run of the day placed it (its
        record ended with it, or was lost). It is not sent again. Still working, it is
        adopted: its record describes the order the broker has, and this run tracks its
        fills. Ended, this day's sync has already counted its fills (or it had none): it is
        not applied a second time."""
        cid = intent.client_order_id
        self.found_placed[cid] = order
        log.info("order %s: already at the broker, placed by an earlier run today (%s %s %g, "
                 "%s); not sent again", cid, order.side, order.symbol, order.qty, order.status)
        if self.dry_run:
            return order
        if order.is_open or order.status == "replaced":  # a replacement carries it on
            self.pending[cid] = replace(intent, order_id=order.id, qty=order.qty,
                                        limit_price=order.limit_price or 0.0,
                                        order_type=order.type,
                                        time_in_force=order.time_in_force)
            self.placed.append(order)
        else:
            del self.pending[cid]
        self._save()
        return order

    def _submit(self, p: PendingOrder) -> Order:
        cid = p.client_order_id
        for attempt in range(self.retries + 1):
            late = self.too_late()
            if late:
                # Checked before each send: the order is not at the broker (just looked up).
                del self.pending[cid]
                self._save()
                raise OrderRejectedError(late)
            try:
                return self.broker.submit_order(
                    symbol=p.symbol, side=p.order_side, qty=p.qty, order_type=p.order_type,
                    time_in_force=p.time_in_force,
                    limit_price=p.limit_price if p.order_type == "limit" else None,
                    client_order_id=cid, position_intent=position_intent(p))
            except TemporaryBrokerError as exc:
                # The order may have been accepted and only the answer lost: look before
                # sending again.
                found = self.broker.order_by_client_id(cid, p.symbol)
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
                if DUPLICATE_ID in str(exc):
                    return self._adopt_duplicate(p, exc)
                del self.pending[cid]
                self._save()
                raise
        raise AssertionError("unreachable")

    def _adopt_duplicate(self, p: PendingOrder, exc: OrderRejectedError) -> Order:
        """A 422 "client_order_id must be unique" proves that the order exists (an earlier
        send was accepted and its answer lost): it is never refused. The order found by its
        id is adopted; while the look-up does not find it yet, the record stays pending,
        marked as known to exist, and the order counts as unconfirmed (the next run asks
        again)."""
        cid = p.client_order_id
        found = self.broker.order_by_client_id(cid, p.symbol)
        if found is not None:
            log.warning("%s: %s; the broker has the order, adopted", cid, exc)
            return found
        self.pending[cid] = replace(p, broker_evidence="POST answered 422 client_order_id "
                                                       "must be unique")
        self._save()
        raise TemporaryBrokerError(f"{cid}: the broker says the order exists (422 "
                                   "client_order_id must be unique) but does not find it yet; "
                                   "its record stays pending")

    def wait_for_fills(self, since: datetime, *, wait_seconds: float, poll_seconds: float,
                       monotonic: Callable[[], float] = time.monotonic) -> list[Order]:
        """Poll this run's orders until all have ended or `wait_seconds` ran out. One request
        per poll, whatever the number of orders; none when every POST answer is final
        already. With no time to wait (0), still one read: Alpaca answers a POST
        `pending_new` or `accepted`, and even a marketable order's fill (or its rejection)
        comes after the answer. Returns the latest state of (at least) this run's orders."""
        if all(not o.is_open for o in self.placed):
            return list(self.placed)  # the POST answers already tell the final state
        ids = {o.id for o in self.placed}
        give_up = monotonic() + max(0.0, wait_seconds)
        said = -PROGRESS_SECONDS
        while True:
            orders = self.broker.orders_since(since - timedelta(minutes=1))
            mine = [o for o in orders if o.id in ids]
            if all(not o.is_open for o in mine) or monotonic() >= give_up:
                return orders
            if monotonic() - said >= PROGRESS_SECONDS:  # a line now and then, not every poll
                said = monotonic()
                log.info("waiting for fills: %d of %d orders open, %.0f s left of "
                         "FILL_WAIT_SECONDS", sum(1 for o in mine if o.is_open), len(ids),
                         max(0.0, give_up - said))
            # Never past the run's deadline either; the next poll then ends the run.
            self.sleep(self.broker.within_deadline(
                min(poll_seconds, max(0.0, give_up - monotonic()))))

    def cancel_remainders(self, orders: list[Order], intents: set[str]) -> int:
        """Cancel what is left of this run's partially filled orders of the given intents
        ("entry", "exit"); returns how many."""
        ids = {o.id for o in self.placed}
        count = 0
        for order in orders:
            p = self.pending.get(order.client_order_id)
            if order.id in ids and order.status == "partially_filled" and p is not None \
                    and p.intent in intents:
                try:
                    self.broker.cancel(order.id)
                    count += 1
                except OrderRejectedError as exc:  # it filled or ended meanwhile
                    log.info("cancel of %s's remainder refused: %s", order.symbol, exc)
        return count
