"""The exchange's whole state as JSON: clock, config, account, positions, orders, fills, day
trades, request log and the id generator, so that a loaded exchange continues exactly as the
saved one would have (the round trip is tested to be identical)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from simbroker import activities, restrictions, state
from simbroker.book import Book
from simbroker.market_data import MarketData
from simbroker.records import DayTrade, ExchangeConfig, Fill, Order, Position
from simbroker.requestlog import RequestLog

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

STATE_FORMAT = "simbroker-state/1"


def dump(exchange: Exchange) -> dict[str, Any]:
    version, internal, gauss = exchange._rng.getstate()
    book = exchange.book
    return {
        "format": STATE_FORMAT, "market_data": exchange.market_data.name,
        "config": state.encode(exchange.config), "now": exchange.now.isoformat(),
        "account": {"id": str(exchange.account_id),
                    "created_at": exchange.created_at.isoformat(), "cash": book.cash,
                    "last_equity": exchange.last_equity,
                    "last_maintenance_margin": exchange.last_maintenance_margin,
                    "balance_asof": exchange.balance_asof.isoformat(), "seq": exchange._seq,
                    "last_stamp": exchange._last_stamp.isoformat()},
        "positions": [state.encode(p) for p in book.positions.values()],
        "orders": [state.encode(o) for o in exchange.orders.values()],
        "fills": [state.encode(f) for f in book.fills],
        "day_trades": [state.encode(t) for t in book.day_trades],
        "requests": exchange.requests.to_state(),
        "activities": [state.encode(a) for a in exchange.activities],
        "activity_seq": exchange.activity_seq,
        "restrictions": restrictions.to_state(exchange.restrictions),
        "renamed": dict(exchange.renamed), "retired": dict(exchange.retired),
        "dividends_due": [dict(d) for d in exchange.dividends_due],
        "rng": [version, list(internal), gauss],
    }


def check(data: dict[str, Any], market_data: MarketData, source: str) -> ExchangeConfig:
    """The saved config, once the file is known to be an exchange state for this data."""
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"{source}: not an exchange state (format {data.get('format')!r}, "
                         f"expected {STATE_FORMAT!r})")
    if data.get("market_data") != market_data.name:
        raise ValueError(f"{source} was saved with market data {data.get('market_data')!r} "
                         f"but {market_data.name!r} was given; load it with the same data")
    try:
        return state.decode(ExchangeConfig, data["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: damaged exchange config ({exc}); fix or delete the file") \
            from exc


def restore(exchange: Exchange, data: dict[str, Any]) -> None:
    account = data["account"]
    exchange.account_id = uuid.UUID(account["id"])
    exchange.created_at = datetime.fromisoformat(account["created_at"])
    exchange.book = Book(
        cash=float(account["cash"]),
        positions={p["symbol"]: state.decode(Position, p) for p in data["positions"]},
        fills=[state.decode(Fill, f) for f in data["fills"]],
        day_trades=[state.decode(DayTrade, t) for t in data["day_trades"]])
    exchange.orders = {o["id"]: state.decode(Order, o) for o in data["orders"]}
    exchange.index_orders()
    exchange.last_equity = float(account["last_equity"])
    exchange.last_maintenance_margin = float(account["last_maintenance_margin"])
    exchange.balance_asof = date.fromisoformat(account["balance_asof"])
    exchange._seq = int(account["seq"])
    exchange._last_stamp = datetime.fromisoformat(account["last_stamp"])
    exchange.requests = RequestLog.from_state(data["requests"])
    # Absent from states saved before activities, restrictions and renames existed.
    exchange.activities = activities.restore(data.get("activities", []))
    exchange.activity_seq = int(data.get("activity_seq", 0))
    exchange.restrictions = restrictions.from_state(data.get("restrictions"))
    exchange.renamed = dict(data.get("renamed", {}))
    exchange.retired = dict(data.get("retired", {}))
    exchange.dividends_due = [dict(d) for d in data.get("dividends_due", [])]
    version, internal, gauss = data["rng"]
    exchange._rng.setstate((version, tuple(internal), gauss))
