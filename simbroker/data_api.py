"""Alpaca Market Data v2 stock endpoints: bars, latest trades/quotes/bars and snapshots.

Unknown symbols are left out of multi-symbol answers (as Alpaca does); a single-symbol request
for one is 404. Feeds and the plan follow `feeds`; every parameter error is 400 with code
40010001, as the Market Data spec answers it (the Trading API's are 422).

The IEX view applies to bars (see feeds.py); a latest trade or quote is the same on every feed
that has data (a model: the exchange has one price path, and IEX trades on it).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from simbroker import bars, errors, feeds, wire
from simbroker.prices import Moment, Quote, Trade
from simbroker.routing import Request, Response, Route, Routes, ok, symbols_param

STALE_SESSIONS = 3  # how far back a "days old" latest trade is (snapshot_stale)

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
    query = bars.parse_query(request.params, symbols, at, plan=exchange.config.plan)
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
    return ok(_each(request, _snapshot, prime=True))


@routes.add("GET", "/v2/stocks/(?P<symbol>[^/]+)/snapshot")
def snapshot(request: Request) -> Response:
    symbol = request.arg("symbol").upper()
    return ok({"symbol": symbol, **_one(request, symbol, _snapshot)})


# -- per-symbol builders: each returns None when the symbol has no data yet ---------------------


def _each(request: Request, build, *, prime: bool = False) -> dict[str, Any]:
    exchange = request.exchange
    feed = feeds.latest_feed(request.params, exchange.config.plan)
    symbols = symbols_param(request)
    if feed in feeds.NO_DATA_FEEDS:
        return {}
    at = _feed_moment(exchange, feed)
    if prime:  # the symbols' prices and ranges so far in one go, not one by one
        exchange.view.prime(symbols, at)
    out = {}
    for symbol in symbols:
        item = build(exchange, symbol, at)
        if item is not None:
            out[symbol] = item
    return out


def _one(request: Request, symbol: str, build) -> dict[str, Any]:
    exchange = request.exchange
    feed = feeds.latest_feed(request.params, exchange.config.plan)
    item = None
    if feed not in feeds.NO_DATA_FEEDS:
        item = build(exchange, symbol, _feed_moment(exchange, feed))
    if item is None:
        raise errors.not_found(f"no data found for symbol {symbol}")
    return item


def _feed_moment(exchange, feed: str) -> Moment:
    """The moment a feed shows: now, or 15 minutes ago for delayed_sip."""
    if feed == "delayed_sip":
        return exchange.view.moment(exchange.now - feeds.SIP_DELAY)
    return exchange.moment()


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
    config = exchange.config
    if symbol in config.snapshot_null and exchange.view.knows(symbol):
        return {"latestTrade": None, "latestQuote": None, "minuteBar": None,
                "dailyBar": None, "prevDailyBar": None}
    trade = exchange.view.last_trade(symbol, at)
    quote = exchange.view.quote(symbol, at)
    if trade is None or quote is None:
        return None
    if symbol in config.snapshot_stale:
        trade = _stale_trade(exchange, symbol, at) or trade
        quote = Quote(bid=quote.bid, ask=quote.ask, time=trade.time)
    if symbol in config.snapshot_no_quote:
        quote = Quote(bid=0.0, ask=0.0, time=quote.time)
    daily, previous = _daily_pair(exchange, symbol, at)
    return {"latestTrade": wire.trade_json(trade, symbol),
            "latestQuote": wire.quote_json(quote, symbol),
            "minuteBar": wire.minute_bar_json(trade),
            "dailyBar": None if daily is None else wire.daily_bar_json(daily),
            "prevDailyBar": None if previous is None else wire.daily_bar_json(previous)}


def _stale_trade(exchange, symbol: str, at: Moment) -> Trade | None:
    """The last trade as of the close STALE_SESSIONS sessions back: a name that has not
    traded for days (a halt, a thin listing)."""
    sessions = exchange.calendar.sessions_before(at.day, STALE_SESSIONS)
    if not sessions:
        return None
    close = sessions[0].close
    return exchange.view.last_trade(symbol, exchange.view.moment(close - timedelta(seconds=1)))


def _daily_pair(exchange, symbol: str, at: Moment):
    """The current daily bar (today's partial once open, else the last full one) and the one
    before it."""
    view, data = exchange.view, exchange.market_data
    daily = view.partial_bar(symbol, at)
    if daily is None:
        daily = data.last_bar_before(symbol, at.day)
    previous = None if daily is None else data.last_bar_before(symbol, daily.day)
    return daily, previous


def parameter_errors_as_400(handler):
    """The Market Data API answers a bad parameter with 400 (its spec), not 422."""
    @functools.wraps(handler)
    def handle(request: Request) -> Response:
        try:
            return handler(request)
        except errors.ApiError as exc:
            if exc.status == 422:
                raise errors.bad_request(exc.message) from None
            raise
    return handle


routes.table[:] = [Route(r.method, r.pattern, parameter_errors_as_400(r.handler))
                   for r in routes.table]
