"""Time in force on the local exchange: when an order may be sent, when it may trade, and what
becomes of what is left. The rules are Alpaca's, each cited where it is applied; the sources are
the `TimeInForce` schema of Alpaca's Trading API spec (June 2026) and
https://docs.alpaca.markets/docs/orders-at-alpaca ("Time in Force").

* ``day`` and ``gtc`` trade continuously (``matching.first_fill``); a DAY order expires at the
  close, a GTC order rests until filled or canceled.
* ``ioc`` and ``fok`` trade once, at the moment they go live (at submission during the session,
  at the open when queued outside it): an IOC order takes what it can and the rest is canceled;
  a FOK order fills whole or not at all (canceled).
* ``opg`` and ``cls`` trade in the opening and closing auctions only, which this exchange
  crosses at the bar's open and close (its one price for each): a market order (MOO / MOC)
  fills there, a limit order (LOO / LOC) fills there if that price is at or better than its
  limit; whatever has not filled is canceled right after the auction.

Submission cut-offs (Alpaca: "OPG orders submitted after 9:28am but before 7:00pm ET will be
rejected", "CLS orders submitted after 3:50pm but before 7:00pm ET will be rejected"; after
7:00 pm they are queued for the next session's auction). 15:50 is ten minutes before a regular
close; on an early-close day the exchange keeps the same ten minutes before its close (a model:
Alpaca publishes the regular times only).

How much an auction or an immediate order takes is `matching.fill_qty`'s draw (the exchange's
partial-fill model) - for FOK, a draw short of the whole order means it is canceled unfilled.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np

from market_calendar import NEW_YORK, MarketCalendar
from simbroker import errors, price_model
from simbroker.market_data import DailyBar
from simbroker.records import Order, OrderType, Side, TimeInForce

OPG_CUTOFF = time(9, 28)
CLS_CUTOFF_BEFORE_CLOSE = timedelta(minutes=10)  # 15:50 on a regular session
QUEUE_FOR_NEXT_SESSION = time(19, 0)

AUCTION = frozenset({TimeInForce.OPG, TimeInForce.CLS})
IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})


def check_submission(time_in_force: TimeInForce, now: datetime,
                     calendar: MarketCalendar) -> None:
    """Raise the 422 Alpaca answers to an on-open or on-close order sent after its cut-off."""
    if time_in_force not in AUCTION:
        return
    local = now.astimezone(NEW_YORK)
    session = calendar.session(local.date())
    if session is None:
        return  # not a trading day: queued for the next session's auction
    queued = datetime.combine(local.date(), QUEUE_FOR_NEXT_SESSION, tzinfo=NEW_YORK)
    if time_in_force is TimeInForce.OPG:
        cutoff = datetime.combine(local.date(), OPG_CUTOFF, tzinfo=NEW_YORK)
        what = "opg (on-open) orders are accepted until 09:28 ET"
    else:
        cutoff = session.close - CLS_CUTOFF_BEFORE_CLOSE
        what = (f"cls (on-close) orders are accepted until "
                f"{cutoff.astimezone(NEW_YORK):%H:%M} ET (10 minutes before the close)")
    if cutoff <= now < queued:
        raise errors.unprocessable(
            f"{what}; it is {local:%H:%M} ET. Send it after 19:00 ET for the next session's "
            "auction, or use time_in_force day")


def trades_continuously(order: Order) -> bool:
    """Whether the order can fill during the continuous session (not an auction-only order;
    IOC and FOK orders end at the moment they go live, see `Exchange`)."""
    return order.time_in_force not in AUCTION


def auction_price(order: Order, bar: DailyBar | None) -> float | None:
    """The price at which an on-open or on-close order crosses in its auction, or None when
    it does not (no trading in the symbol that day, or the auction price is worse than its
    limit)."""
    if bar is None:
        return None
    price = bar.open if order.time_in_force is TimeInForce.OPG else bar.close
    limit = np.nan if order.type is OrderType.MARKET else order.limit_price
    return price if bool(auction_crosses(order.side is Side.BUY, limit, price)) else None


def auction_crosses(is_buy, limit, price) -> np.ndarray:
    """Whether orders cross at auction `price`: a market order (limit NaN) always, a limit
    order when the price is at or better than its limit. Element-wise (the backtester's
    orders of a day at once); a NaN price (no trading that day) never crosses."""
    is_buy, limit, price = (np.asarray(x, dtype=float) for x in (is_buy, limit, price))
    with np.errstate(invalid="ignore"):
        within = np.where(is_buy > 0, price <= limit + 1e-9, price >= limit - 1e-9)
    return ~np.isnan(price) & (np.isnan(limit) | within)


def market_prices(path_price, is_buy, spread_bps: float) -> np.ndarray:
    """What a market order fills at, live at a moment whose model price is `path_price`: the
    quote's ask for a buy, its bid for a sell (price_model.quote). Element-wise."""
    bid, ask = price_model.quote(path_price, spread_bps)
    return np.where(np.asarray(is_buy, dtype=bool), ask, bid)
