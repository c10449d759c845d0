"""Alpaca Market Data v2 stock endpoints: bars, latest trades/quotes/bars and snapshots.

Unknown symbols are left out of multi-symbol answers (as Alpaca does); a single-symbol request
for one is 404.
"""

from __future__ import annotations

from typing import Any

from simbroker import bars, errors, wire
from simbroker.prices import Moment
from simbroker.routing import Request, Response, Routes, ok, symbols_param

routes = Routes()


@routes.add("GET", "/v2/stocks/bars")
def multi_bars(request: Request) -> Response:
    rows, token = _bar_page(request, symbols_param(request))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row[2])
    return ok({"bars": grouped, "next_page_token": token})


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/bars")
def single_bars(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    rows, token = _bar_page(request, [symbol])
    return ok({"bars": [r[2] for r in rows], "symbol": symbol,
               "next_page_token": token})


def _bar_page(request: Request, symbols: list[str]):
    exchange = request.exchange
    at = exchange.moment()
    query = bars.parse_query(request.params, symbols, at)
    limit = min(bars.parse_limit(request.params), exchange.config.max_bars_per_page)
    return exchange.bar_store.page(query, at, limit, request.params.get("page_token"))


@routes.add("GET", "/v2/stocks/trades/latest")
def latest_trades(request: Request) -> Response:
    return ok({"trades": _each(request, _trade)})


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/trades/latest")
def latest_trade(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    return ok({"symbol": symbol, "trade": _one(request, symbol, _trade)})


@routes.add("GET", "/v2/stocks/quotes/latest")
def latest_quotes(request: Request) -> Response:
    return ok({"quotes": _each(request, _quote)})


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/quotes/latest")
def latest_quote(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    return ok({"symbol": symbol, "quote": _one(request, symbol, _quote)})


@routes.add("GET", "/v2/stocks/bars/latest")
def latest_bars(request: Request) -> Response:
    return ok({"bars": _each(request, _latest_bar)})


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/bars/latest")
def latest_bar(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    return ok({"symbol": symbol, "bar": _one(request, symbol, _latest_bar)})


@routes.add("GET", "/v2/stocks/snapshots")
def snapshots(request: Request) -> Response:
    return ok(_each(request, _snapshot))


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/snapshot")
def snapshot(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    return ok({"symbol": symbol, **_one(request, symbol, _snapshot)})


# -- per-symbol builders: each returns None when the symbol has no data yet ---------------------


def _each(request: Request, build) -> dict[str, Any]:
    exchange, at = request.exchange, request.exchange.moment()
    _check_feed(request)
    out = {}
    for symbol in symbols_param(request):
        item = build(exchange, symbol, at)
        if item is not None:
            out[symbol] = item
    return out


def _one(request: Request, symbol: str, build) -> dict[str, Any]:
    _check_feed(request)
    item = build(request.exchange, symbol, request.exchange.moment())
    if item is None:
        raise errors.not_found(f"no data found for symbol {symbol}")
    return item


def _check_feed(request: Request) -> None:
    feed = request.params.get("feed")
    if feed is not None and feed not in bars.FEEDS:
        raise errors.unprocessable(f"feed {feed!r} is invalid; use iex or sip")


def _trade(exchange, symbol: str, at: Moment) -> dict[str, Any] | None:
    trade = exchange.view.last_trade(symbol, at)
    return None if trade is None else wire.trade_json(trade, symbol)


def _quote(exchange, symbol: str, at: Moment) -> dict[str, Any] | None:
    quote = exchange.view.quote(symbol, at)
    return None if quote is None else wire.quote_json(quote, symbol)


def _latest_bar(exchange, symbol: str, at: Moment) -> dict[str, Any] | None:
    daily, _ = _daily_pair(exchange, symbol, at)
    return None if daily is None else wire.daily_bar_json(daily)


def _snapshot(exchange, symbol: str, at: Moment) -> dict[str, Any] | None:
    trade = exchange.view.last_trade(symbol, at)
    quote = exchange.view.quote(symbol, at)
    if trade is None or quote is None:
        return None
    daily, previous = _daily_pair(exchange, symbol, at)
    return {"latestTrade": wire.trade_json(trade, symbol),
            "latestQuote": wire.quote_json(quote, symbol),
            "minuteBar": wire.minute_bar_json(trade),
            "dailyBar": None if daily is None else wire.daily_bar_json(daily),
            "prevDailyBar": None if previous is None else wire.daily_bar_json(previous)}


def _daily_pair(exchange, symbol: str, at: Moment):
    """The current daily bar (today's partial once open, else the last full one) and the one
    before it."""
    view, data = exchange.view, exchange.market_data
    daily = view.partial_bar(symbol, at)
    if daily is None:
        daily = data.last_bar_before(symbol, at.day)
    previous = None if daily is None else data.last_bar_before(symbol, daily.day)
    return daily, previous
