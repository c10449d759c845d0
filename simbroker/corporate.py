"""Corporate actions on the account: symbol changes, stock splits and cash dividends.

A **symbol change** (FB -> META) keeps the asset: its `asset_id` moves to the new symbol, the
position moves with it (same quantity, same average entry price), and the old symbol can no
longer be traded. Alpaca books it as two NC (name change, sub-type SNC) activities, "the qty
will be negative to remove the old symbol and positive when adding the new one"
(docs.alpaca.markets/us/docs/voluntary-corporate-actions, "Why is there a field 'qty' that is
!= 0 in change name response body?"). It is applied between sessions, as Alpaca applies
corporate actions before the open, through `POST /_sim/corporate_actions`.

A **split** comes from the market data (a `Split` event, applied at the open of its ex-date):
qty times the ratio, average price divided by it; a whole-share position that a reverse split
would leave fractional keeps the whole shares and is paid the fraction in cash at the
split-adjusted previous close (cash in lieu, see `Book.apply_split`). The exchange posts a SPLIT
activity (sub-type FSPLIT or RSPLIT) for the change in shares and, when cash in lieu was paid,
a second SPLIT activity with the fraction as a negative qty and the cash as its net amount
(Alpaca's docs do not say which activity carries cash in lieu; this is the exchange's choice).

A **cash dividend** comes from the market data (a `Dividend` event; simbroker/dividends.py):
at the open of its ex-date (the first session on or after it) every position held at the
previous close is owed ``qty * amount`` (a long) or owes it (a short: the lender of the
shares is owed the dividend), rounded to the cent. It is paid, as one DIV activity that moves
the cash, sub-type CDIV ("Cash Dividend", trading-api spec June 2026, schema
`ActivitySubType`), with the shares in `qty` (negative for a short) and the amount in
`per_share_amount` ("For dividend activities, the average amount paid per share", schema
`NonTradeActivities`), at the open of the first session on or after its pay date: Alpaca
credits dividends "after the pay date, as we receive the cash from DTC" and "the actual
credit transactions may be after the pay date" (docs.alpaca.markets, Broker API "Daily
Processes and Reconciliations", Mandatory Corporate Actions, Dividends), and its corporate
action announcements show "cash balance changes that will take effect on an announcement's
payable date" (docs.alpaca.markets/reference/corporate-actions-ca-announcements). A position
closed between the two dates is paid all the same; until the pay date the amount owed is in
neither cash nor equity (Alpaca documents no receivable in the account; this exchange shows
none). A dividend without a pay date (the shipped data has none) is paid at the ex-date's
open: the exchange's choice, a few weeks early. What is owed is kept in the exchange's state
(`dividends_due`). How Alpaca books a short's charge is not documented; a negative DIV is this
exchange's choice.

**Open orders.** Alpaca: "Non-marketable GTC limit orders are subject to price adjustments to
offset corporate actions affecting the issue. We do not currently support Do Not Reduce (DNR)
orders" (trading-api spec, June 2026, schema `TimeInForce`, gtc). So at a split an open GTC
limit order with nothing filled keeps working, adjusted: quantity times the ratio rounded down
to whole shares (GTC orders are whole shares), limit price divided by the ratio on the tick
grid (a buy rounded down, a sell up: never a price the order did not ask for); it keeps its id
and status (Alpaca's `replaced` status "updated due to a market event such as corporate
action" suggests Alpaca may show the update as a replacement; how is not documented). Any
other open order in the symbol (DAY and other time in force, partly filled, or one the
rounding leaves without a share) is canceled. A symbol change cancels every open order in the
old symbol: Alpaca documents no adjustment for it, and an order must not trade a symbol that
no longer exists.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from simbroker import errors
from simbroker.activities import record_activity
from simbroker.dividends import Dividend
from simbroker.market_data import Split
from simbroker.price_model import ceil_tick, floor_tick
from simbroker.records import OrderType, Side, Status, TimeInForce

if TYPE_CHECKING:
    from simbroker.exchange import Exchange


def rename(exchange: Exchange, old: str, new: str) -> list[Any]:
    """Apply a symbol change now; returns the activities it posted."""
    old, new = old.upper(), new.upper()
    if exchange.calendar.is_open(exchange.now):
        raise errors.unprocessable("apply corporate actions between sessions (Alpaca applies "
                                   "them before the open); the market is open now")
    if old == new or old in exchange.retired or not exchange.view.knows(old):
        raise errors.unprocessable(f"symbol {old!r} is not a tradable asset of this exchange")
    if not exchange.view.knows(new):
        raise errors.unprocessable(f"the new symbol {new!r} has no market data; give it the "
                                   "asset's bars (its whole history, as Alpaca's data API "
                                   "serves a renamed symbol) in the exchange's data")
    if new in exchange.book.positions:
        raise errors.unprocessable(f"the account already holds {new}; a symbol change needs "
                                   "a new symbol nobody trades yet")
    stamp = exchange.now
    for order in exchange._open_orders(old):
        exchange._finish(order, Status.CANCELED, stamp)
    exchange.renamed[new] = exchange.asset_id_of(old)
    exchange.retired[old] = new
    position = exchange.book.positions.pop(old, None)
    if position is None:
        return []
    exchange.book.positions[new] = replace(position, symbol=new)
    group = f"NC-{old}-{new}-{stamp:%Y%m%d}"
    return [record_activity(exchange, "NC", net_amount=0.0, symbol=symbol, qty=qty,
                            sub_type="SNC", description=f"symbol change {old} -> {new}",
                            group_id=group, book_cash=False)
            for symbol, qty in ((old, -position.qty), (new, position.qty))]


def apply_split(exchange: Exchange, split: Split, adjusted_close: float | None) -> None:
    """A split at the open of its ex-date: the book's change, and its activities."""
    before = exchange.book.positions.get(split.symbol)
    cash_before = exchange.book.cash
    exchange.book.apply_split(split, adjusted_close)
    if before is None:
        return
    after = exchange.book.positions.get(split.symbol)
    qty_after = after.qty if after is not None else 0.0
    sub_type = "RSPLIT" if split.ratio < 1 else "FSPLIT"
    ratio = f"{split.ratio:g}-for-1"
    record_activity(exchange, "SPLIT", net_amount=0.0, symbol=split.symbol,
                    qty=round(qty_after - before.qty, 9), sub_type=sub_type,
                    description=f"split {ratio}: {before.qty:g} shares are now {qty_after:g}",
                    book_cash=False)
    paid = round(exchange.book.cash - cash_before, 2)
    if paid:
        fraction = round(before.qty * split.ratio - qty_after, 9)
        price = paid / fraction if fraction else None
        record_activity(exchange, "SPLIT", net_amount=paid, symbol=split.symbol,
                        qty=-fraction, per_share_amount=price, sub_type=sub_type,
                        description=f"cash in lieu of {fraction:g} shares (split {ratio})",
                        book_cash=False)


def pay_dividends(exchange: Exchange, dividends: list[Dividend], today: date) -> None:
    """At the open of session `today`: each dividend going ex today is owed on (or by) the
    position held at the previous close; it is paid now when it has no pay date or its pay
    date is today or past, else kept (`exchange.dividends_due`) until the open of the first
    session on or after its pay date, which also pays every earlier one now due (see the
    module docstring)."""
    for dividend in dividends:
        position = exchange.book.positions.get(dividend.symbol)
        if position is None or position.qty == 0:
            continue
        due = {"symbol": dividend.symbol, "qty": position.qty, "amount": dividend.amount,
               "ex_date": dividend.ex_date.isoformat(),
               "pay_date": dividend.pay_date.isoformat() if dividend.pay_date else None}
        exchange.dividends_due.append(due)
    waiting = []
    for due in exchange.dividends_due:
        if due["pay_date"] is None or date.fromisoformat(due["pay_date"]) <= today:
            _post_dividend(exchange, due)
        else:
            waiting.append(due)
    exchange.dividends_due = waiting


def _post_dividend(exchange: Exchange, due: dict[str, Any]) -> None:
    """One DIV activity that moves the cash: `qty x amount` to the cent."""
    qty, amount = float(due["qty"]), float(due["amount"])
    side = "long" if qty > 0 else "short"
    record_activity(exchange, "DIV", net_amount=round(qty * amount, 2), symbol=due["symbol"],
                    qty=qty, per_share_amount=amount, sub_type="CDIV",
                    description=f"cash dividend ${amount:g} a share, ex {due['ex_date']}, on "
                                f"{abs(qty):g} shares {side}"
                                + (f", payable {due['pay_date']}" if due["pay_date"] else ""))


def adjust_open_orders(exchange: Exchange, split: Split, when: datetime) -> None:
    """The split's effect on the symbol's open orders (see the module docstring)."""
    for order in exchange._open_orders(split.symbol):
        qty = math.floor(order.qty * split.ratio + 1e-9) if order.qty is not None else 0
        if order.time_in_force is TimeInForce.GTC and order.type is OrderType.LIMIT \
                and order.filled_qty == 0 and order.limit_price is not None and qty >= 1:
            limit = order.limit_price / split.ratio
            limit = float(floor_tick(limit) if order.side is Side.BUY else ceil_tick(limit))
            exchange._update(replace(order, qty=float(qty), limit_price=limit,
                                     reserve_price=order.reserve_price / split.ratio,
                                     updated_at=when))
        else:
            exchange._finish(order, Status.CANCELED, when)


def check_not_retired(exchange: Exchange, symbol: str) -> None:
    new = exchange.retired.get(symbol)
    if new is not None:
        raise errors.unprocessable(f"could not find asset {symbol!r}: it was renamed {new}; "
                                   f"trade {new}")


def rename_from_json(exchange: Exchange, body: Any) -> list[Any]:
    """POST /_sim/corporate_actions: {"type": "name_change", "symbol": old, "new_symbol": new}."""
    if not isinstance(body, dict):
        raise errors.malformed('give {"type": "name_change", "symbol": "FB", '
                               '"new_symbol": "META"}')
    kind = body.get("type")
    if kind != "name_change":
        raise errors.unprocessable(f"type {kind!r} is not supported: name_change is (splits "
                                   "come from the market data's split events)")
    old, new = body.get("symbol"), body.get("new_symbol")
    if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
        raise errors.malformed("symbol and new_symbol are required strings")
    return rename(exchange, old, new)


__all__ = ["rename", "apply_split", "pay_dividends", "check_not_retired", "rename_from_json"]
