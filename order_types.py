"""Which order the bot sends for each purpose (entry, exit, stop-loss), and what comes with it.

The settings `ENTRY_ORDER_TYPE`, `EXIT_ORDER_TYPE` and `STOP_ORDER_TYPE` each name one of:

* ``limit``            - a DAY limit at the current price (the design's order);
* ``marketable_limit`` - a DAY limit `LIMIT_OFFSET_BPS` through the quote: above the ask to
  buy, below the bid to sell. It fills at once at the quote unless the quote moves by more than
  the offset first, and never at a worse price than its limit;
* ``market``           - a DAY market order: fills at once at the quote;
* ``limit_on_close``   - a limit at the current price in the closing auction (time in force
  ``cls``); ``market_on_close`` - a market order in the closing auction.

What Alpaca allows with each (https://docs.alpaca.markets/docs/orders-at-alpaca and the
`TimeInForce` / `qty` descriptions of its Trading API spec): fractional quantities only for DAY
orders, so an on-close order is whole shares (an entry is sized in whole shares; an exit of a
fractional holding goes as the DAY order of the same kind); on-close orders are refused after
15:50 ET (10 minutes before the close), so after that cut-off the bot sends the DAY order of
the same kind instead, never the refused one.

An exit that has not filled escalates: after `EXIT_ESCALATE_AFTER_DAYS` days of unfilled exit
orders for a holding, one step up `ESCALATION` (limit -> marketable_limit -> market,
limit_on_close -> market_on_close), and one more step after as many days again.

Pure: decisions of data, settings and `now`; the live bot and the backtester call the same
functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

CLS_CUTOFF_BEFORE_CLOSE = timedelta(minutes=10)  # Alpaca: CLS orders refused after 15:50 ET
_EPS = 1e-9  # guards tick rounding against binary floating-point noise


class OrderKind(StrEnum):
    LIMIT = "limit"
    MARKETABLE_LIMIT = "marketable_limit"
    MARKET = "market"
    LIMIT_ON_CLOSE = "limit_on_close"
    MARKET_ON_CLOSE = "market_on_close"


KINDS = tuple(k.value for k in OrderKind)
ESCALATION = {
    OrderKind.LIMIT: OrderKind.MARKETABLE_LIMIT,
    OrderKind.MARKETABLE_LIMIT: OrderKind.MARKET,
    OrderKind.MARKET: OrderKind.MARKET,
    OrderKind.LIMIT_ON_CLOSE: OrderKind.MARKET_ON_CLOSE,
    OrderKind.MARKET_ON_CLOSE: OrderKind.MARKET_ON_CLOSE,
}
_DAY_EQUIVALENT = {OrderKind.LIMIT_ON_CLOSE: OrderKind.LIMIT,
                   OrderKind.MARKET_ON_CLOSE: OrderKind.MARKET}


class PartialFill(StrEnum):
    """What becomes of the rest of a partially filled order (see README, "Partial fills")."""

    KEEP_WORKING = "keep_working"  # the DAY order works on until the close
    CANCEL_REMAINDER = "cancel_remainder"  # canceled once the run stops waiting for fills
    FINISH_NEXT_DAY = "finish_next_day"  # exits only: the rest is exited the next day


@dataclass(frozen=True)
class OrderSpec:
    """One order as sent: Alpaca's `type` and `time_in_force`, and the limit (None for a
    market order). `kind` is what the bot chose, after any fall-back (`note` says why)."""

    kind: OrderKind
    type: str
    time_in_force: str
    limit_price: float | None
    note: str = ""


def is_on_close(kind: OrderKind) -> bool:
    return kind in _DAY_EQUIVALENT


def allows_fractional(kind: OrderKind) -> bool:
    """Alpaca accepts fractional quantities for DAY orders only."""
    return not is_on_close(kind)


def escalated(kind: OrderKind, unfilled_days: int, after_days: int) -> OrderKind:
    """`kind` moved one step up `ESCALATION` per `after_days` days of unfilled exits
    (`after_days` 0: never)."""
    if after_days <= 0:
        return kind
    for _ in range(unfilled_days // after_days):
        kind = ESCALATION[kind]
    return kind


def _ticks(price: np.ndarray) -> np.ndarray:
    return np.where(price >= 1.0, 100.0, 10_000.0)


def marketable_limits(is_buy, bid, ask, offset_bps: float) -> np.ndarray:
    """Limits `offset_bps` through the quote, on Alpaca's tick grid (SEC Rule 612: $0.01 at or
    above $1, $0.0001 below): a buy's above the ask (rounded up), a sell's below the bid
    (rounded down). Element-wise; a sell limit never goes below one tick."""
    is_buy = np.asarray(is_buy, dtype=bool)
    through = np.where(is_buy, np.asarray(ask, dtype=float) * (1.0 + offset_bps / 10_000.0),
                       np.asarray(bid, dtype=float) * (1.0 - offset_bps / 10_000.0))
    scale = _ticks(through)
    rounded = np.where(is_buy, np.ceil(through * scale - _EPS), np.floor(through * scale + _EPS))
    return np.round(np.maximum(rounded, 1.0) / scale, 4)


def reserve_prices(kind: OrderKind, is_buy, limit, bid, ask, offset_bps: float) -> np.ndarray:
    """The price an entry is sized and funded at: its limit for a limit order (`limit`, the
    current price on the tick grid), the marketable limit for a marketable limit, and for a
    market order the far side of the quote, which Alpaca's buying-power check uses while the
    market is open ("Far side of the NBBO", docs.alpaca.markets/docs/orders-at-alpaca)."""
    if kind in (OrderKind.LIMIT, OrderKind.LIMIT_ON_CLOSE):
        return np.asarray(limit, dtype=float)
    if kind is OrderKind.MARKETABLE_LIMIT:
        return marketable_limits(is_buy, bid, ask, offset_bps)
    return np.where(np.asarray(is_buy, dtype=bool), np.asarray(ask, dtype=float),
                    np.asarray(bid, dtype=float))


def entry_prices(kind: OrderKind, z, limit, bid, ask, offset_bps: float) -> np.ndarray | None:
    """The price entries of `kind` are sized and funded at (`reserve_prices` with longs for
    z < 0; `limit` is signal_generator.limit_prices of the current price), or None for the
    design's limit at the current price (the sizing's own default). Element-wise: the
    backtester passes every day at once."""
    if kind in (OrderKind.LIMIT, OrderKind.LIMIT_ON_CLOSE):
        return None
    return reserve_prices(kind, np.asarray(z) < 0, limit, bid, ask, offset_bps)


def cls_cutoff_passed(now: datetime, session_close: datetime) -> bool:
    return now >= session_close - CLS_CUTOFF_BEFORE_CLOSE


def build_order(kind: OrderKind, *, is_buy: bool, qty: float, limit: float, bid: float,
                ask: float, offset_bps: float, now: datetime,
                session_close: datetime) -> OrderSpec:
    """The order for `kind` now. `limit` is the limit at the current price (`limit_price`).
    An on-close kind falls back to its DAY kind after the cut-off or for a fractional qty."""
    note = ""
    if is_on_close(kind):
        if cls_cutoff_passed(now, session_close):
            note = f"{kind} refused after the 15:50 ET cut-off"
        elif qty != int(qty):
            note = f"{kind} cannot be fractional ({qty:g} shares)"
        if note:
            kind = _DAY_EQUIVALENT[kind]
            note += f"; sent as {kind}"
    tif = "cls" if is_on_close(kind) else "day"
    if kind in (OrderKind.MARKET, OrderKind.MARKET_ON_CLOSE):
        return OrderSpec(kind, "market", tif, None, note)
    price = limit
    if kind is OrderKind.MARKETABLE_LIMIT:
        price = float(marketable_limits(is_buy, bid, ask, offset_bps))
    return OrderSpec(kind, "limit", tif, price, note)
