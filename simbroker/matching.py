"""When and at what price an open order fills, and how much of it (partial fills).

Orders fill against the model quote of `price_model` only (never against each other):

* a market order fills at once at the quote (the ask for a buy, the bid for a sell) at the
  first moment it is live in a session in which its symbol trades;
* a limit order fills through `price_model.limit_fill`: at the quote if marketable when it
  goes live, else exactly at its limit at the first moment the quote touches it.

With `partial_fill_probability` p, a fill may instead take a seeded 30-70% of what is left
(whole shares for a whole-share order, 1e-9 shares for a fractional one); the rest rests and
may fill again `partial_fill_delay_seconds` later. The draw depends only on the seed, the
client_order_id and the number of earlier fills of the order, so a rerun fills identically.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from market_calendar import Session
from simbroker import execution, price_model
from simbroker.market_data import DailyBar
from simbroker.records import Order, OrderType, Side

PARTIAL_LOW, PARTIAL_HIGH = 0.30, 0.70


@dataclass(frozen=True)
class Candidate:
    """The first fill of an order in a window: when, at what price."""

    when: datetime
    price: float
    seq: int
    order_id: str

    def key(self) -> tuple[datetime, int]:
        return (self.when, self.seq)


def first_fill(order: Order, bar: DailyBar | None, session: Session, start: datetime,
               end: datetime, spread_bps: float) -> Candidate | None:
    """The order's first fill in [start, end] of `session`, or None."""
    if bar is None or not execution.trades_continuously(order):
        return None  # no trading in the symbol today (halted, not listed), or auction-only
    live = max(start, order.live_from or order.submitted_at)
    if live > end or live >= session.close:
        return None
    f0, f1 = session.fraction(live), session.fraction(end)
    is_buy = order.side is Side.BUY
    key = price_model.path_key(order.symbol, bar.day)
    if order.type is OrderType.MARKET:
        price = price_model.price_at(bar.open, bar.high, bar.low, bar.close, f0, key=key,
                                     scale=bar.path_scale)
        return Candidate(when=live, price=float(execution.market_prices(price, is_buy,
                                                                        spread_bps)),
                         seq=order.seq, order_id=order.id)
    filled, price, fraction = price_model.limit_fill(
        bar.open, bar.high, bar.low, bar.close, is_buy=is_buy, limit=order.limit_price,
        start=f0, end=f1, spread_bps=spread_bps, key=key, scale=bar.path_scale)
    if not bool(filled):
        return None
    when = max(live, session.open + (session.close - session.open) * float(fraction))
    return Candidate(when=min(when, end), price=float(price), seq=order.seq, order_id=order.id)


def fill_qty(order: Order, price: float, *, seed: int, probability: float) -> float:
    """How many shares this fill takes: all that is left, or a seeded part of it."""
    if order.qty is None:  # a notional order is sized at its (single) fill, to 1e-9 shares
        return round((order.notional or 0.0) / price, 9)
    remaining = order.remaining_qty
    if probability <= 0.0:
        return remaining
    happens, share = _draws(seed, order.client_order_id, order.fill_count)
    if happens >= probability:
        return remaining
    part = remaining * (PARTIAL_LOW + (PARTIAL_HIGH - PARTIAL_LOW) * share)
    if order.is_fractional:
        part = round(part, 9)
        return part if 0 < part < remaining else remaining
    whole = float(math.floor(part + 0.5))
    return whole if 1 <= whole < remaining else remaining


def _draws(seed: int, client_order_id: str, fill_index: int) -> tuple[float, float]:
    digest = hashlib.sha256(f"{seed}|{client_order_id}|{fill_index}".encode()).digest()
    scale = float(2 ** 64)
    return (int.from_bytes(digest[:8], "big") / scale,
            int.from_bytes(digest[8:16], "big") / scale)
