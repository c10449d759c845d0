"""Corporate actions on the account: symbol changes and stock splits.

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

**Open orders.** Alpaca's OrderStatus says an order can be "updated due to a market event such
as corporate action" (status `replaced`, trading-api spec, June 2026) but documents no rule for
how; the exchange takes the safe reading it already applies to splits and cancels every open
order in the symbol (status `canceled`), so no order ever fills under a quantity or a price
that the action changed. A client must place its orders again under the new terms.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simbroker import errors
from simbroker.activities import record_activity
from simbroker.market_data import Split
from simbroker.records import Status

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


__all__ = ["rename", "apply_split", "check_not_retired", "rename_from_json"]
