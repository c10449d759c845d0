"""The account's book: cash, positions, fills and day trades, and how a fill or a split
changes them. No prices are looked up here; the exchange passes them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from simbroker.market_data import Split
from simbroker.records import DayTrade, Fill, Order, Position, Side

QTY_EPS = 1e-9


@dataclass
class Book:
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    day_trades: list[DayTrade] = field(default_factory=list)
    # the closing orders in day_trades, so that noting one costs the same however many came
    _day_trade_orders: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._day_trade_orders = {t.order_id for t in self.day_trades}

    def add_day_trade(self, trade: DayTrade) -> None:
        self.day_trades.append(trade)
        self._day_trade_orders.add(trade.order_id)

    def apply_fill(self, order: Order, qty: float, price: float, when: datetime,
                   day: date) -> None:
        """Book `qty` shares of `order` at `price`, on session day `day`."""
        signed = qty if order.side is Side.BUY else -qty
        # Trades settle in whole cents.
        self.cash = round(self.cash - signed * price, 2)
        self.fills.append(Fill(order_id=order.id, symbol=order.symbol, side=order.side,
                               qty=qty, price=price, time=when))
        old = self.positions.get(order.symbol)
        old_qty = old.qty if old is not None else 0.0
        if old is None or old_qty == 0 or (old_qty > 0) == (signed > 0):
            self._open(order.symbol, old, signed, price, day)
            return
        closing = min(abs(signed), abs(old_qty))
        self._note_day_trade(old, order, day)
        rest = round(old_qty + math.copysign(closing, signed), 9)
        opened_qty = old.opened_qty
        if old.opened_day == day:
            opened_qty = max(0.0, opened_qty - closing)
        if abs(rest) < QTY_EPS:
            self.positions.pop(order.symbol)
        else:
            self.positions[order.symbol] = replace(old, qty=rest, opened_qty=opened_qty)
        excess = abs(signed) - closing
        # An order placed as opening can meet a position that changed since (a short sale
        # rested while a buy filled); what it has left over then opens the other side.
        if excess > QTY_EPS:
            self._open(order.symbol, self.positions.get(order.symbol),
                       math.copysign(excess, signed), price, day)

    def _open(self, symbol: str, old: Position | None, signed: float, price: float,
              day: date) -> None:
        old_qty = old.qty if old is not None else 0.0
        new_qty = round(old_qty + signed, 9)
        cost = (old.avg_entry_price * abs(old_qty) if old is not None else 0.0)
        avg = (cost + price * abs(signed)) / abs(new_qty)
        opened = abs(signed)
        if old is not None and old.opened_day == day:
            opened += old.opened_qty
        self.positions[symbol] = Position(symbol=symbol, qty=new_qty, avg_entry_price=avg,
                                          opened_day=day, opened_qty=opened)

    def _note_day_trade(self, old: Position, order: Order, day: date) -> None:
        # A day trade: closing (part of) a position on the session day it was opened
        # (FINRA Rule 4210(f)(8)(B)(i)); one closing order counts once however it fills.
        if old.opened_day != day or old.opened_qty <= QTY_EPS:
            return
        if order.id in self._day_trade_orders:
            return
        self.add_day_trade(DayTrade(day=day, symbol=order.symbol, order_id=order.id))

    def apply_split(self, split: Split, adjusted_close: float | None) -> None:
        """At the open of the ex-date: qty *= ratio, avg_entry_price /= ratio. A whole-share
        position that a reverse split would leave fractional keeps the whole shares and gets
        the fraction in cash at the split-adjusted previous close (cash in lieu)."""
        position = self.positions.get(split.symbol)
        if position is None:
            return
        qty = round(position.qty * split.ratio, 9)
        if position.qty == math.floor(position.qty) and qty != math.trunc(qty):
            whole = float(math.trunc(qty))
            self.cash = round(self.cash + (qty - whole) * (adjusted_close or 0.0), 2)
            qty = whole
        if qty == 0:
            self.positions.pop(split.symbol)
            return
        self.positions[split.symbol] = replace(
            position, qty=qty, avg_entry_price=position.avg_entry_price / split.ratio,
            opened_qty=round(position.opened_qty * split.ratio, 9))

    def day_trades_between(self, first: date, last: date) -> int:
        return sum(1 for t in self.day_trades if first <= t.day <= last)
