"""Alpaca Trading API v2 endpoints: account, clock, calendar, assets, positions, orders."""

from __future__ import annotations

import re

from simbroker import calendar_api, errors, wire
from simbroker.routing import (
    Request,
    Response,
    Routes,
    choice_param,
    float_param,
    int_param,
    ok,
    time_param,
)

routes = Routes()


@routes.add("GET", "/v2/account")
def get_account(request: Request) -> Response:
    return ok(wire.account_json(request.exchange))


@routes.add("GET", "/v2/clock")
def get_clock(request: Request) -> Response:
    return ok(wire.clock_json(request.exchange))


@routes.add("GET", "/v2/calendar")
def get_calendar(request: Request) -> Response:
    try:
        start = time_param(request, "start")
        end = time_param(request, "end", end_of_day=True)
    except errors.ApiError as exc:  # the calendar's spec answers a bad parameter with 400
        raise errors.bad_request(exc.message) from None
    return ok(calendar_api.calendar_days(request.exchange.calendar, start, end,
                                         request.params.get("date_type")))


# -- assets -------------------------------------------------------------------------------------


@routes.add("GET", "/v2/assets")
def list_assets(request: Request) -> Response:
    exchange = request.exchange
    status = request.params.get("status")
    asset_class = request.params.get("asset_class") or "us_equity"
    venue = request.params.get("exchange")
    if status not in (None, "", "active") or asset_class != "us_equity":
        return ok([])  # every asset here is an active US equity
    return ok([wire.asset_json(exchange, s) for s in exchange.market_data.symbols
               if venue in (None, "", wire.listing_exchange(s))])


@routes.add("GET", "/v2/assets/(?P<symbol>[^/]+)")
def get_asset(request: Request) -> Response:
    exchange = request.exchange
    key = request.arg("symbol")
    for symbol in exchange.market_data.symbols:
        if key.upper() == symbol or key == request.exchange.asset_id_of(symbol):
            return ok(wire.asset_json(exchange, symbol))
    raise errors.not_found(f"asset not found for {key}")


# -- positions ----------------------------------------------------------------------------------


@routes.add("GET", "/v2/positions")
def list_positions(request: Request) -> Response:
    exchange, at = request.exchange, request.exchange.moment()
    positions = sorted(exchange.book.positions.values(), key=lambda p: p.symbol)
    return ok([wire.position_json(exchange, p, at) for p in positions])


@routes.add("GET", "/v2/positions/(?P<symbol>[^/]+)")
def get_position(request: Request) -> Response:
    exchange = request.exchange
    position = exchange.book.positions.get(_symbol_of(request))
    if position is None:
        raise errors.not_found(f"position does not exist: {request.arg('symbol')}")
    return ok(wire.position_json(exchange, position, exchange.moment()))


@routes.add("DELETE", "/v2/positions/(?P<symbol>[^/]+)")
def close_position(request: Request) -> Response:
    order = request.exchange.close_position(_symbol_of(request),
                                            qty=float_param(request, "qty"),
                                            percentage=float_param(request, "percentage"))
    return ok(wire.order_json(order))


@routes.add("DELETE", "/v2/positions")
def close_all_positions(request: Request) -> Response:
    exchange = request.exchange
    if request.params.get("cancel_orders", "").lower() == "true":
        exchange.cancel_all_orders()
    results = []
    for symbol in sorted(exchange.book.positions):
        try:
            order = exchange.close_position(symbol)
            results.append({"symbol": symbol, "status": 200, "body": wire.order_json(order)})
        except errors.ApiError as exc:
            results.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
    return ok(results, 207)


def _symbol_of(request: Request) -> str:
    key = request.arg("symbol")
    for symbol in request.exchange.book.positions:
        if key.upper() == symbol or key == request.exchange.asset_id_of(symbol):
            return symbol
    return key.upper()


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _order_id(request: Request) -> str:
    """The path's order id, which the spec types as a UUID: anything else is refused with
    422 and code 40010001 (see docs/alpaca-api.md), not looked up as an unknown id (404)."""
    order_id = request.arg("order_id")
    if not _UUID.fullmatch(order_id):
        raise errors.ApiError(422, errors.INVALID_PARAMETER,
                              f"order_id {order_id!r} is not a valid UUID")
    return order_id


# -- orders -------------------------------------------------------------------------------------


@routes.add("POST", "/v2/orders")
def submit_order(request: Request) -> Response:
    return ok(wire.order_json(request.exchange.submit_order(request.body)))


@routes.add("GET", "/v2/orders")
def list_orders(request: Request) -> Response:
    status = choice_param(request, "status", ("open", "closed", "all"), "open")
    # Alpaca: "Defaults to 50 and max is 500."
    limit = int_param(request, "limit", 50, 1, 500, clamp=True)
    direction = choice_param(request, "direction", ("asc", "desc"), "desc")
    side = request.params.get("side") or None
    if side not in (None, "buy", "sell"):
        raise errors.unprocessable(f"side {side!r} is invalid; use buy or sell")
    text = request.params.get("symbols", "")
    symbols = {s.strip().upper() for s in text.split(",") if s.strip()} or None
    orders = request.exchange.list_orders(
        status=status, limit=limit, after=time_param(request, "after"),
        until=time_param(request, "until"), direction=direction, symbols=symbols, side=side)
    return ok([wire.order_json(o) for o in orders])


@routes.add("DELETE", "/v2/orders")
def cancel_all_orders(request: Request) -> Response:
    canceled = request.exchange.cancel_all_orders()
    return ok([{"id": o.id, "status": 200, "body": wire.order_json(o)} for o in canceled], 207)


@routes.add("GET", "/v2/orders:by_client_order_id")
def get_order_by_client_id(request: Request) -> Response:
    client_order_id = request.params.get("client_order_id")
    if not client_order_id:
        raise errors.unprocessable("client_order_id is required")
    return ok(wire.order_json(request.exchange.get_order_by_client_id(client_order_id)))


@routes.add("GET", "/v2/orders/(?P<order_id>[^/]+)")
def get_order(request: Request) -> Response:
    return ok(wire.order_json(request.exchange.get_order(_order_id(request))))


@routes.add("DELETE", "/v2/orders/(?P<order_id>[^/]+)")
def cancel_order(request: Request) -> Response:
    request.exchange.cancel_order(_order_id(request))
    return Response(204)


@routes.add("PATCH", "/v2/orders/(?P<order_id>[^/]+)")
def replace_order(request: Request) -> Response:
    request.exchange.get_order(_order_id(request))  # 404 first, as Alpaca
    raise errors.unprocessable("replacing orders is not supported by the local exchange; "
                               "cancel the order and submit a new one")

