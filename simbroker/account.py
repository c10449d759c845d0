"""Margin-account arithmetic: equity, Reg T margins, buying power and what open orders hold.

Alpaca's rules (https://docs.alpaca.markets/docs/margin-and-short-selling):

* equity = cash + long_market_value + short_market_value; short market value is negative and
  the proceeds of a short sale are in cash.
* initial margin is 50% of gross position value (Regulation T, 12 CFR 220.12); maintenance
  margin is 25% of long and 30% of short market value.
* an account with at least $2,000 of equity is a Reg T margin account: multiplier 2 and
  shorting enabled; below $2,000 it has multiplier 1 and cannot short (FINRA Rule 4210(b)).
* buying_power = regt_buying_power = (equity - initial_margin) * multiplier, less what open
  orders hold; non_marginable_buying_power = cash less what open buy orders hold.
* a buy holds qty * limit (a market buy: qty * ask); a short sale holds qty * the greater of
  its limit and 3% above the ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simbroker.records import Intent, Order, Position, Side

INITIAL_MARGIN = 0.50
MAINTENANCE_LONG = 0.25
MAINTENANCE_SHORT = 0.30
MARGIN_MINIMUM_EQUITY = 2_000.0
SHORT_RESERVE_MARKUP = 1.03
PDT_MINIMUM_EQUITY = 25_000.0  # FINRA Rule 4210(f)(8)(B)(iv), in force until 2026-06-04


@dataclass(frozen=True)
class Balances:
    cash: float
    long_market_value: float
    short_market_value: float  # <= 0
    reserved_by_orders: float
    reserved_by_buys: float

    @property
    def equity(self) -> float:
        return self.cash + self.long_market_value + self.short_market_value

    @property
    def gross_position_value(self) -> float:
        return self.long_market_value - self.short_market_value

    @property
    def initial_margin(self) -> float:
        return INITIAL_MARGIN * self.gross_position_value

    @property
    def maintenance_margin(self) -> float:
        return (MAINTENANCE_LONG * self.long_market_value
                - MAINTENANCE_SHORT * self.short_market_value)

    @property
    def is_margin(self) -> bool:
        return self.equity >= MARGIN_MINIMUM_EQUITY

    @property
    def multiplier(self) -> int:
        return 2 if self.is_margin else 1

    @property
    def regt_buying_power(self) -> float:
        room = (self.equity - self.initial_margin) * self.multiplier
        return max(0.0, room - self.reserved_by_orders)

    @property
    def non_marginable_buying_power(self) -> float:
        return max(0.0, self.cash - self.reserved_by_buys)


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
    """The price per share an order holds against buying power (see the module docstring)."""
    if side is Side.BUY:
        return limit if limit is not None else ask
    if intent is Intent.SELL_TO_OPEN:
        # Alpaca holds the greater of the limit and 3% above the ask for a short sale.
        return max(limit or 0.0, SHORT_RESERVE_MARKUP * ask)
    return 0.0  # selling shares held frees buying power, it never needs any
