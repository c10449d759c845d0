"""Reading a new-order request: the checks that need the request alone, not the account.

Malformed input (not a JSON object, a required field missing, a wrong type) is 400 / 40010000;
a well-formed request Alpaca would not accept is 422 / 42210000. The account-dependent checks
(position, shorting, buying power, day trades) are the exchange's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simbroker import errors, price_model
from simbroker.records import Intent, OrderType, Side, TimeInForce

MAX_CLIENT_ORDER_ID = 128  # Alpaca: client_order_id "<= 128 characters"
QTY_DECIMALS = 9  # Alpaca: qty and notional "can take up to 9 decimal points"
_UNSUPPORTED_TYPES = ("stop", "stop_limit", "trailing_stop")


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: float | None
    notional: float | None
    limit_price: float | None
    client_order_id: str | None
    position_intent: Intent | None = None  # None: the exchange infers it from the position

    @property
    def is_fractional(self) -> bool:
        return self.qty is None or self.qty != math.floor(self.qty)


def parse_order_request(body: Any) -> OrderRequest:
    """A validated OrderRequest from a POST /v2/orders body, or the ApiError Alpaca would send."""
    if not isinstance(body, dict):
        raise errors.malformed("request body must be a JSON object with symbol, qty or "
                               "notional, side, type and time_in_force")
    symbol = _required_text(body, "symbol").upper()
    side = _enum(body, "side", Side, ())
    order_type = _enum(body, "type", OrderType, _UNSUPPORTED_TYPES)
    tif = _enum(body, "time_in_force", TimeInForce, ())
    qty = _number(body, "qty")
    notional = _number(body, "notional")
    limit = _number(body, "limit_price")
    client_id = _optional_text(body, "client_order_id")
    intent = _enum(body, "position_intent", Intent, ()) if body.get("position_intent") \
        else None
    _check_unsupported(body)
    request = OrderRequest(symbol=symbol, side=side, type=order_type, time_in_force=tif,
                           qty=qty, notional=notional, limit_price=limit,
                           client_order_id=client_id, position_intent=intent)
    _check_amount(request)
    _check_limit(request)
    if client_id is not None and not 0 < len(client_id) <= MAX_CLIENT_ORDER_ID:
        raise errors.unprocessable(f"client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} "
                                   f"characters; it has {len(client_id)}")
    return request


def _check_amount(request: OrderRequest) -> None:
    qty, notional = request.qty, request.notional
    if qty is None and notional is None:
        raise errors.malformed("qty or notional is required: give the number of shares as qty "
                               "(or a dollar amount as notional)")
    if qty is not None and notional is not None:
        raise errors.unprocessable("qty and notional are mutually exclusive; give only one")
    amount, name = (qty, "qty") if qty is not None else (notional, "notional")
    assert amount is not None
    if amount <= 0:
        raise errors.unprocessable(f"{name} must be > 0; got {amount:g}")
    if round(amount, QTY_DECIMALS) != amount:
        raise errors.unprocessable(f"{name} {amount!r} has more than {QTY_DECIMALS} decimal "
                                   f"places; round it to {QTY_DECIMALS}")
    if notional is not None and (request.type is not OrderType.MARKET
                                 or request.time_in_force is not TimeInForce.DAY):
        raise errors.unprocessable("notional orders must be market orders with "
                                   "time_in_force day; give qty for other orders")
    # Alpaca: fractional quantities are accepted for DAY orders only ("fractional shares trading
    # is currently supported only for day orders", docs.alpaca.markets/docs/brokerapi-trading).
    if request.is_fractional and request.time_in_force is not TimeInForce.DAY:
        raise errors.unprocessable(f"fractional orders must be DAY orders; qty {qty:g} needs "
                                   "time_in_force day, or a whole number of shares")


def _check_limit(request: OrderRequest) -> None:
    limit = request.limit_price
    if request.type is OrderType.MARKET:
        if limit is not None:
            raise errors.unprocessable("limit_price is only for limit orders; drop it or use "
                                       "type limit")
        return
    if limit is None:
        raise errors.unprocessable("limit_price is required for limit orders")
    if limit <= 0:
        raise errors.unprocessable(f"limit_price must be > 0; got {limit:g}")
    # SEC Rule 612 (sub-penny rule): ticks are $0.01 at or above $1.00 and $0.0001 below.
    tick = float(price_model.tick_size(limit))
    steps = limit / tick
    if abs(steps - round(steps)) > 1e-6:
        raise errors.unprocessable(
            f"invalid limit_price {limit!r}. sub-penny increment does not fulfill minimum "
            f"pricing criteria: use a multiple of {tick:g} (e.g. {round(steps) * tick:.4f})")


def _check_unsupported(body: dict) -> None:
    if body.get("extended_hours") not in (None, False):
        raise errors.unprocessable("extended_hours orders are not supported by the local "
                                   "exchange, which trades regular hours only; omit it")
    if body.get("order_class") not in (None, "", "simple"):
        raise errors.unprocessable(f"order_class {body.get('order_class')!r} is not supported "
                                   "by the local exchange; omit it for a simple order")
    for name in ("stop_price", "trail_price", "trail_percent", "take_profit", "stop_loss"):
        if body.get(name) is not None:
            raise errors.unprocessable(f"{name} is not supported by the local exchange, which "
                                       "has market and limit orders only; omit it")


def _required_text(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise errors.malformed(f"{name} is required")
    if not isinstance(value, str):
        raise errors.malformed(f"{name} must be a string; got {type(value).__name__}")
    return value


def _optional_text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.malformed(f"{name} must be a string; got {type(value).__name__}")
    return value


def _enum(body: dict, name: str, enum: type, unsupported: tuple[str, ...]):
    value = _required_text(body, name)
    try:
        return enum(value)
    except ValueError:
        pass
    allowed = " or ".join(e.value for e in enum)
    if value in unsupported:
        raise errors.unprocessable(f"{name} {value!r} is not supported by the local exchange; "
                                   f"use {allowed}")
    raise errors.unprocessable(f"{name} {value!r} is invalid; use {allowed}")


def _number(body: dict, name: str) -> float | None:
    """A decimal given as a JSON number or a numeric string (the SDK sends either)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise errors.malformed(f"{name} must be a number or a numeric string; got "
                               f"{type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise errors.malformed(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise errors.malformed(f"{name} must be a finite number; got {value!r}")
    return number
