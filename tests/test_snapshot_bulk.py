"""A snapshot of many symbols works their prices out in one evaluation of the price model:
it must answer exactly what each symbol's own snapshot answers, at every time of day."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
import requests

from market_calendar import NEW_YORK
from simbroker import market_data
from tests.simbroker_fixtures import KEY, SECRET, make_sim

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
DAY = date(2022, 6, 1)  # the shipped data: bars with a range and closes-only bars


@pytest.fixture(scope="module")
def shipped():
    return market_data.load("us-stocks")


@pytest.mark.parametrize("clock", [time(9, 0), time(9, 30), time(9, 31), time(12, 0),
                                   time(15, 59, 30), time(16, 0), time(18, 0)])
def test_many_symbols_at_once_answer_what_each_answers_alone(shipped, monkeypatch, clock):
    now = datetime.combine(DAY, clock, NEW_YORK)
    running = make_sim(monkeypatch, now, shipped, spread_bps=4.0)
    sim = next(running)
    try:
        symbols = [*shipped.symbols, "NOSUCH"]
        url = sim.server.data_url + "/v2/stocks"
        # Each alone first: the exchange then keeps the many-symbol answer's prices for that
        # moment, and later questions at that moment (an order's quote, a snapshot) read them.
        alone = {symbol: requests.get(f"{url}/{symbol}/snapshot", headers=HEADERS,
                                      timeout=10).json() for symbol in shipped.symbols}
        together = requests.get(url + "/snapshots", params={"symbols": ",".join(symbols)},
                                headers=HEADERS, timeout=10).json()
        assert set(together) == set(shipped.symbols)
        for symbol in shipped.symbols:
            assert {k: v for k, v in alone[symbol].items() if k != "symbol"} == \
                together[symbol], symbol
            again = requests.get(f"{url}/{symbol}/snapshot", headers=HEADERS, timeout=10)
            assert again.json() == alone[symbol]
        if time(9, 30) < clock < time(16, 0):  # today's path, not yesterday's close
            assert any(s["latestTrade"]["p"] != s["prevDailyBar"]["c"]
                       for s in together.values())
    finally:
        running.close()


@pytest.mark.parametrize("clock", [time(9, 30), time(10, 17, 3), time(12, 0), time(15, 59),
                                   time(16, 0)])
def test_primed_prices_and_ranges_are_the_same_bits_as_one_by_one(shipped, clock):
    from market_calendar import nyse
    from simbroker.prices import MarketView

    view = MarketView(shipped, nyse(date(2015, 1, 1), date(2025, 12, 31)), spread_bps=4.0)
    at = view.moment(datetime.combine(DAY, clock, NEW_YORK))
    alone = {s: (view.last_trade(s, at), view.partial_bar(s, at)) for s in shipped.symbols}
    view.prime(shipped.symbols, at)
    assert len(view._primed) == len(shipped.symbols)
    for symbol in shipped.symbols:
        trade, bar = view.last_trade(symbol, at), view.partial_bar(symbol, at)
        assert (trade.price, bar.low, bar.high, bar.close) == (
            alone[symbol][0].price, alone[symbol][1].low, alone[symbol][1].high,
            alone[symbol][1].close), symbol
        assert all(type(v) is float for v in (trade.price, bar.low, bar.high, bar.close))
