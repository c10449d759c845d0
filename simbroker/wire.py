"""The exchange's records in Alpaca's JSON shapes (Trading API v2 and Market Data v2).

Trading responses carry money and quantities as decimal strings and timestamps as RFC 3339 UTC
with `Z`; the clock speaks New York time with its offset; market data carries numbers as JSON
numbers. Field names, enums and nullability follow Alpaca's OpenAPI specs (June 2026).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from market_calendar import NEW_YORK, UTC
from simbroker.bars import bars_json
from simbroker.market_data import DailyBar
from simbroker.prices import Moment, Quote, Trade
from simbroker.records import Order, Position, Side

if TYPE_CHECKING:
    from simbroker.exchange import Exchange

_NASDAQ = frozenset({"AAPL", "AMZN", "GOOG", "GOOGL", "META", "FB", "NFLX", "NVDA", "AMD",
                     "MSFT", "PEP", "INTC", "CSCO", "ADBE", "COST", "TSLA", "QCOM"})


def decimal(value: float | None, places: int = 4) -> str | None:
    """A decimal string without exponent or trailing zeros, as Alpaca writes numbers."""
    if value is None:
        return None
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def timestamp(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def listing_exchange(symbol: str) -> str:
    """Where the asset lists: real listings for well-known NASDAQ names, NYSE otherwise
    (cosmetic: the exchange does not route by venue)."""
    return "NASDAQ" if symbol in _NASDAQ else "NYSE"


# -- trading API --------------------------------------------------------------------------------


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "client_order_id": order.client_order_id,
        "created_at": timestamp(order.created_at), "updated_at": timestamp(order.updated_at),
        "submitted_at": timestamp(order.submitted_at), "filled_at": timestamp(order.filled_at),
        "expired_at": timestamp(order.expired_at), "canceled_at": timestamp(order.canceled_at),
        "failed_at": timestamp(order.failed_at), "replaced_at": timestamp(order.replaced_at),
        "replaced_by": order.replaced_by, "replaces": order.replaces,
        "asset_id": order.asset_id, "symbol": order.symbol, "asset_class": "us_equity",
        "notional": decimal(order.notional, 9), "qty": decimal(order.qty, 9),
        "filled_qty": decimal(order.filled_qty, 9),
        "filled_avg_price": decimal(order.filled_avg_price, 6),
        "order_class": "", "order_type": order.type.value, "type": order.type.value,
        "side": order.side.value, "position_intent": order.intent.value,
        "time_in_force": order.time_in_force.value, "limit_price": decimal(order.limit_price),
        "stop_price": None, "status": order.status.value, "extended_hours": False,
        "legs": None, "trail_percent": None, "trail_price": None, "hwm": None,
    }


def account_json(exchange: Exchange) -> dict[str, Any]:
    b = exchange.balances()
    body: dict[str, Any] = {
        "id": str(exchange.account_id), "account_number": "SIM" + exchange.account_id.hex[:9],
        "status": exchange.restrictions.status, "crypto_status": "INACTIVE", "currency": "USD",
        "cash": decimal(b.cash), "portfolio_value": decimal(b.equity),
        "equity": decimal(b.equity), "last_equity": decimal(exchange.last_equity),
        "long_market_value": decimal(b.long_market_value),
        "short_market_value": decimal(b.short_market_value),
        "initial_margin": decimal(b.initial_margin),
        "maintenance_margin": decimal(b.maintenance_margin),
        "last_maintenance_margin": decimal(exchange.last_maintenance_margin),
        "multiplier": str(b.multiplier), "buying_power": decimal(b.regt_buying_power),
        "regt_buying_power": decimal(b.regt_buying_power),
        "non_marginable_buying_power": decimal(b.non_marginable_buying_power),
        "options_buying_power": "0", "options_approved_level": 0, "options_trading_level": 0,
        "sma": "0", "accrued_fees": "0", "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0", "pending_transfer_in": "0", "pending_transfer_out": "0",
        "balance_asof": exchange.balance_asof.isoformat(),
        **exchange.restrictions.flags_json(b.is_margin),
        "created_at": timestamp(exchange.created_at),
    }
    if exchange.config.legacy_pdt:
        # Alpaca dropped these three fields on 2026-07-06, after FINRA retired the pattern
        # day trader rule (2026-06-04); legacy mode reports them as Alpaca did before.
        pdt = exchange.is_pattern_day_trader()
        dtbp = 4 * max(0.0, exchange.last_equity - exchange.last_maintenance_margin)
        body["daytrade_count"] = exchange.daytrade_count()
        body["pattern_day_trader"] = pdt
        body["daytrading_buying_power"] = decimal(dtbp if pdt else 0.0)
    return body


def position_json(exchange: Exchange, position: Position, at: Moment) -> dict[str, Any]:
    symbol, qty = position.symbol, position.qty
    trade = exchange.view.last_trade(symbol, at)
    price = trade.price if trade is not None else position.avg_entry_price
    lastday = exchange.view.previous_close(symbol, at) or price
    value, cost = qty * price, qty * position.avg_entry_price
    intraday = (price - lastday) * qty
    held = exchange.held_for_orders(symbol, _closing_side(position))
    return {
        "asset_id": exchange.asset_id_of(symbol), "symbol": symbol,
        "exchange": listing_exchange(symbol),
        "asset_class": "us_equity", "asset_marginable": True,
        "avg_entry_price": decimal(position.avg_entry_price, 6), "qty": decimal(qty, 9),
        "qty_available": decimal(math.copysign(max(0.0, abs(qty) - held), qty), 9),
        "side": "long" if qty > 0 else "short", "market_value": decimal(value),
        "cost_basis": decimal(cost), "unrealized_pl": decimal(value - cost),
        "unrealized_plpc": decimal(_ratio(value - cost, abs(cost)), 6),
        "unrealized_intraday_pl": decimal(intraday),
        "unrealized_intraday_plpc": decimal(_ratio(intraday, abs(lastday * qty)), 6),
        "current_price": decimal(price), "lastday_price": decimal(lastday),
        "change_today": decimal(_ratio(price - lastday, lastday), 6),
    }


def asset_json(exchange: Exchange, symbol: str) -> dict[str, Any]:
    """An asset as Alpaca sends it now: `borrow_status` and the margin requirement strings
    (percent). `easy_to_borrow` and `maintenance_margin_requirement` are deprecated (spec
    x-deprecation, sunset 2026-09-22) and optional since 2026-07-16: only `legacy_assets`
    still sends them, as an older account does."""
    config = exchange.config
    easy = config.has_flag("easy_to_borrow", symbol)
    body: dict[str, Any] = {
        "id": exchange.asset_id_of(symbol), "class": "us_equity",
        "exchange": listing_exchange(symbol),
        "symbol": symbol, "name": f"{symbol} (simulated)", "status": "active",
        "tradable": True, "marginable": True,
        "margin_requirement_long": "25", "margin_requirement_short": "30",
        "shortable": config.has_flag("shortable", symbol),
        "borrow_status": "easy_to_borrow" if easy else "hard_to_borrow",
        "fractionable": config.has_flag("fractionable", symbol), "attributes": [],
        "cusip": None,
    }
    if config.legacy_assets:
        body["easy_to_borrow"] = easy
        body["maintenance_margin_requirement"] = 25
    return body


def clock_json(exchange: Exchange) -> dict[str, Any]:
    now = exchange.now
    session = exchange.calendar.current_or_next_open(now)
    next_open = session.open if now < session.open else \
        exchange.calendar.next_session(session.day).open
    return {"timestamp": _new_york(now), "is_open": exchange.calendar.is_open(now),
            "next_open": _new_york(next_open), "next_close": _new_york(session.close)}


# -- market data --------------------------------------------------------------------------------


def trade_json(trade: Trade, symbol: str) -> dict[str, Any]:
    return {"t": timestamp(trade.time), "x": "V", "p": round(trade.price, 4), "s": 100,
            "c": ["@"], "i": int(trade.time.timestamp() * 1000), "z": _tape(symbol)}


def quote_json(quote: Quote, symbol: str) -> dict[str, Any]:
    return {"t": timestamp(quote.time), "ax": "V", "ap": quote.ask, "as": 100, "bx": "V",
            "bp": quote.bid, "bs": 100, "c": ["R"], "z": _tape(symbol)}


def daily_bar_json(bar: DailyBar) -> dict[str, Any]:
    values = np.array([[bar.open, bar.high, bar.low, bar.close, bar.volume]])
    return bars_json([bar.day], values)[0]


def minute_bar_json(trade: Trade) -> dict[str, Any]:
    """A flat one-trade bar at the latest trade (the data has no intraday bars)."""
    start = trade.time.replace(second=0, microsecond=0)
    if start == trade.time:
        start -= timedelta(minutes=1)
    p = round(trade.price, 4)
    return {"t": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": p, "h": p, "l": p, "c": p,
            "v": 100, "n": 1, "vw": p}


def _tape(symbol: str) -> str:
    return "C" if listing_exchange(symbol) == "NASDAQ" else "A"


def _new_york(when: datetime) -> str:
    return when.astimezone(NEW_YORK).isoformat()


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _closing_side(position: Position) -> Side:
    return Side.SELL if position.qty > 0 else Side.BUY
