"""The account's balances as Alpaca reports them, from the Reg T arithmetic of `margin`.

`margin` (shared with the backtester) holds the rules and their sources; this module only
marks positions to market, adds up what open orders hold, and keeps Alpaca's sign convention
(short_market_value is negative on the wire).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simbroker import margin
from simbroker.records import Intent, Order, Position, Side

PDT_MINIMUM_EQUITY = 25_000.0  # FINRA Rule 4210(f)(8)(B)(iv), in force until 2026-06-04


@dataclass(frozen=True)
class Balances:
    cash: float
    long_market_value: float
    short_market_value: float  # <= 0, as Alpaca reports it
    reserved_by_orders: float
    reserved_by_buys: float

    @property
    def _short(self) -> float:
        return -self.short_market_value

    @property
    def equity(self) -> float:
        return margin.equity(self.cash, self.long_market_value, self._short)

    @property
    def initial_margin(self) -> float:
        return margin.initial_margin(self.long_market_value, self._short)

    @property
    def maintenance_margin(self) -> float:
        return margin.maintenance_margin(self.long_market_value, self._short)

    @property
    def is_margin(self) -> bool:
        return margin.shorting_enabled(self.equity)

    @property
    def multiplier(self) -> int:
        return margin.multiplier(self.equity)

    @property
    def regt_buying_power(self) -> float:
        return margin.buying_power(self.cash, self.long_market_value, self._short,
                                   self.reserved_by_orders)

    @property
    def non_marginable_buying_power(self) -> float:
        return margin.non_marginable_buying_power(self.cash, self.reserved_by_buys)


def balances(cash: float, positions: Iterable[Position], prices: Mapping[str, float],
             open_orders: Iterable[Order]) -> Balances:
    """The account's balances with positions marked at `prices` (symbol -> latest price)."""
    long_value = short_value = 0.0
    for position in positions:
        value = position.qty * prices[position.symbol]
        if value >= 0:
            long_value += value
        else:
            short_value += value
    reserved = reserved_buys = 0.0
    for order in open_orders:
        held = order.reserved_usd()
        reserved += held
        if order.side is Side.BUY:
            reserved_buys += held
    return Balances(cash=cash, long_market_value=long_value, short_market_value=short_value,
                    reserved_by_orders=reserved, reserved_by_buys=reserved_buys)


def reserve_price(side: Side, intent: Intent, limit: float | None, ask: float) -> float:
    """What one share of an order holds against buying power: a buy its limit (a market buy
    the ask), a short sale the greater of its limit and 3% above the ask, a closing sell
    nothing (see margin.order_reservation)."""
    is_buy = side is Side.BUY
    return margin.order_reservation(
        is_buy=is_buy, opens_short=intent is Intent.SELL_TO_OPEN, qty=1.0,
        limit=limit if limit is not None else (ask if is_buy else 0.0), ask=ask)
