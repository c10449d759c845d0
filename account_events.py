"""What happens to the bot's holdings outside its orders: symbol changes, splits with cash in
lieu, and positions closed by someone else, read from the broker's positions, orders and
account activities. Pure functions of records and broker data (no I/O), used by the sync step
around `position_manager.reconcile`.

* **Symbol change** (FB -> META): Alpaca keeps the asset's `asset_id` and moves the position
  to the new symbol. A holding whose symbol vanished while a position of the same asset and
  side appeared under another symbol is the same holding: it and its pending records follow
  the asset, and the bot manages and closes it under the new name.
* **Split** (position_manager.split_ratio, applied by reconcile): Alpaca multiplies the
  quantity by the ratio and divides the average entry price by it; a reverse split that would
  leave a fraction of a whole-share position pays the fraction in cash ("cash in lieu") and
  rounds the quantity down. That fraction left the holding outside the bot's orders: it is a
  round trip of its own (`cash_in_lieu_rows`, exit reason `cash_in_lieu`), priced from the
  broker's SPLIT activity that paid it (net amount over shares), blank when there is none.
* **Closed outside the bot**: the broker's FILL activities of the closing side after the entry
  give the price (quantity-weighted over every fill that closed it) and the time of the last
  one - a better source than the last closing order, which misses a close made of several
  orders and every close that was not an order of this account's history.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from broker import Activity, Order, Position
from position_manager import CLOSED_OUTSIDE, Holding, PendingOrder, split_ratio, trade_row

CASH_IN_LIEU = "cash_in_lieu"


def follow_renames(holdings: dict[str, Holding], pending: dict[str, PendingOrder],
                   positions: dict[str, Position], orders: list[Order]
                   ) -> tuple[dict[str, Holding], dict[str, PendingOrder], list[str]]:
    """Move holdings and pending records whose symbol changed to the new symbol."""
    holdings, pending, notes = dict(holdings), dict(pending), []
    by_asset = {p.asset_id: p for p in positions.values() if p.asset_id}
    asset_of = {h.symbol: h.asset_id for h in holdings.values() if h.asset_id}
    by_cid = {o.client_order_id: o for o in orders}
    for p in pending.values():
        order = by_cid.get(p.client_order_id)
        if order is not None and order.asset_id:
            asset_of.setdefault(p.symbol, order.asset_id)
    for old, asset in sorted(asset_of.items()):
        moved = by_asset.get(asset)
        if old in positions or moved is None or moved.symbol == old \
                or moved.symbol in holdings:
            continue
        new = moved.symbol
        held = holdings.pop(old, None)
        if held is not None:
            if held.is_long != moved.is_long:
                holdings[old] = held  # not the same holding: reconcile judges it
                continue
            holdings[new] = replace(held, symbol=new)
        for cid, p in list(pending.items()):
            if p.symbol == old:
                pending[cid] = replace(p, symbol=new)
        notes.append(f"{old}: symbol changed to {new} (same asset {asset}); the holding and "
                     "its records follow it")
    return holdings, pending, notes


def attach_asset_ids(holdings: dict[str, Holding],
                     positions: dict[str, Position]) -> dict[str, Holding]:
    """Holdings recorded without an asset id (older state files) take their position's."""
    out = dict(holdings)
    for symbol, held in holdings.items():
        position = positions.get(symbol)
        if not held.asset_id and position is not None and position.asset_id \
                and position.is_long == held.is_long:
            out[symbol] = replace(held, asset_id=position.asset_id)
    return out


def closed_outside(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in trades if r["exit_reason"] == CLOSED_OUTSIDE]


def price_outside_closes(trades: list[dict[str, Any]], before: dict[str, Holding],
                         fills: list[Activity]) -> tuple[list[dict[str, Any]], list[str]]:
    """`trades` with each closed-outside row priced from the FILL activities that closed it,
    where they cover its whole quantity; other rows unchanged. Keys (exit ids) unchanged, so
    a row is still recorded once."""
    out, notes = [], []
    for row in trades:
        held = before.get(row["symbol"])
        priced = None
        if row["exit_reason"] == CLOSED_OUTSIDE and held is not None \
                and held.entry_client_order_id == row["entry_client_order_id"]:
            priced = _closing_fills(held, fills)
        if priced is None:
            out.append(row)
            continue
        price, when, last_order = priced
        new = trade_row(held, qty=held.qty, exit_time=when, exit_price=price,
                        reason=CLOSED_OUTSIDE, exit_z=None,
                        exit_order_id=row["exit_order_id"] or last_order,
                        exit_client_order_id=row["exit_client_order_id"])
        out.append(new)
        notes.append(f"{held.symbol}: closed outside the bot at {price:g} (account fill "
                     "activities)")
    return out, notes


def _closing_fills(held: Holding, fills: list[Activity]
                   ) -> tuple[float, datetime, str] | None:
    """Volume-weighted price, time and order of the first closing fills after the entry that
    add up to the holding, or None when they do not cover it."""
    closing_side = "sell" if held.is_long else "buy"
    entered = datetime.fromisoformat(held.entry_time)
    wanted, paid = held.qty, 0.0
    for fill in sorted(fills, key=lambda f: f.time):
        if fill.activity_type != "FILL" or fill.symbol != held.symbol \
                or fill.side != closing_side or fill.time < entered \
                or fill.qty is None or fill.price is None:
            continue
        take = min(fill.qty, wanted)
        paid += take * fill.price
        wanted = round(wanted - take, 9)
        if wanted <= 1e-9:
            return paid / held.qty, fill.time, fill.order_id or ""
    return None


def cash_in_lieu(before: dict[str, Holding], after: dict[str, Holding]) -> list[
        tuple[Holding, float]]:
    """Holdings a reverse split cut below the split quantity (cash in lieu): each holding after
    the split, with the shares (post-split) paid in cash."""
    out = []
    for symbol, new in after.items():
        old = before.get(symbol)
        if old is None or old.entry_client_order_id != new.entry_client_order_id \
                or new.qty >= old.qty:
            continue
        ratio = split_ratio(old.qty, old.entry_price, new.qty, new.entry_price)
        paid = round(old.qty * ratio - new.qty, 9) if ratio is not None else 0.0
        if paid > 1e-9:
            out.append((new, paid))
    return out


def cash_in_lieu_rows(cuts: list[tuple[Holding, float]],
                      activities: list[Activity]) -> list[dict[str, Any]]:
    """One trade row per fraction paid in cash in lieu, priced from the SPLIT activity of its
    symbol that paid cash after the entry (the latest), or blank."""
    rows = []
    for held, shares in cuts:
        entered = datetime.fromisoformat(held.entry_time)
        paid = [a for a in activities if a.activity_type == "SPLIT" and a.symbol == held.symbol
                and a.time >= entered and a.net_amount and a.qty]
        last = max(paid, key=lambda a: a.time) if paid else None
        price = abs(last.net_amount / last.qty) if last and last.net_amount and last.qty \
            else None
        rows.append(trade_row(replace(held, qty=shares), qty=shares,
                              exit_time=last.time if last else None, exit_price=price,
                              reason=CASH_IN_LIEU, exit_z=None,
                              exit_order_id=last.id if last else "",
                              exit_client_order_id=f"lieu-{held.entry_client_order_id}"))
    return rows
