"""Dynamic universe: the ranking on hand-made bars, batching, the day's cache and its fallback."""

import json
import logging
import math
import time
from contextlib import contextmanager
from datetime import date

import pandas as pd
import pytest

import broker
import config
from broker import Asset, Bar
from errors import TemporaryBrokerError
from market_calendar import new_york_noon, nyse
from simbroker import Exchange, ExchangeConfig, market_data, serve
from universe import (
    BATCH_SIZE,
    LOOKBACK_SESSIONS,
    batches,
    candidates,
    median_dollar_volume,
    rank_by_dollar_volume,
    select_universe,
)

TODAY = date(2022, 3, 1)
D1, D2, D3 = date(2022, 2, 24), date(2022, 2, 25), date(2022, 2, 28)


def bar(day, close, volume):
    return Bar(day=day, open=close, high=close, low=close, close=close, volume=volume)


def asset(symbol, tradable=True):
    return Asset(symbol=symbol, tradable=tradable, fractionable=True, shortable=True,
                 easy_to_borrow=True)


# -- pure ---------------------------------------------------------------------------------

def test_median_dollar_volume_by_hand():
    bars = [bar(D1, 10.0, 100), bar(D2, 20.0, 100), bar(D3, 5.0, 1000)]
    # close x volume: 1000, 2000, 5000 -> median 2000
    assert median_dollar_volume(bars) == 2000.0
    # A session without a bar traded nothing: 1000, 2000, 0 -> 1000
    assert median_dollar_volume(bars[:2], [D1, D2, D3]) == 1000.0
    # A NaN volume is unknown, not zero: left out -> median of 1000 and 5000
    assert median_dollar_volume([bars[0], bar(D2, 20.0, math.nan), bars[2]]) == 3000.0
    assert math.isnan(median_dollar_volume([]))
    assert math.isnan(median_dollar_volume([bar(D1, 10.0, math.nan)]))
    assert math.isnan(median_dollar_volume(bars, [date(2022, 3, 1)]))  # no bar in the window


def test_median_uses_only_the_last_20_bars():
    old = [bar(date(2021, 1, d), 1000.0, 1000) for d in range(1, 29)]  # huge, but too old
    recent = [bar(date(2022, 1, d), 1.0, 10) for d in range(1, 21)]
    assert median_dollar_volume(old[:5] + recent) == 10.0
    assert LOOKBACK_SESSIONS == 20


def test_rank_highest_first_ties_by_symbol_unknown_last():
    bars = {
        "LOW": [bar(D1, 1.0, 10)],
        "TOP": [bar(D1, 100.0, 1000)],
        "TIEB": [bar(D1, 10.0, 100)],
        "TIEA": [bar(D1, 20.0, 50)],
        "NAN": [bar(D1, 10.0, math.nan)],
        "NONE": [],
    }
    assert rank_by_dollar_volume(bars, 10) == ["TOP", "TIEA", "TIEB", "LOW", "NAN", "NONE"]
    assert rank_by_dollar_volume(bars, 2) == ["TOP", "TIEA"]
    assert rank_by_dollar_volume({}, 5) == []


def test_candidates_are_tradable_common_stocks():
    assets = {s: asset(s) for s in ("AAPL", "BRK.B", "ABC.WS", "XYZ.U", "XYZ.W", "GOOGL",
                                    "TOOLONG", "ABC1")}
    assets["HALT"] = asset("HALT", tradable=False)
    assert candidates(assets) == ["AAPL", "BRK.B", "GOOGL"]


def test_batches():
    symbols = [f"S{i}" for i in range(450)]
    parts = batches(symbols)
    assert [len(p) for p in parts] == [BATCH_SIZE, BATCH_SIZE, 50]
    assert sum(parts, []) == symbols


# -- selection with a bar source ----------------------------------------------------------

class Bars:
    """A bar source answering from a dict and counting its calls (like Broker.requests_made)."""

    def __init__(self, volume_by_symbol, fail=False):
        self.volume = volume_by_symbol
        self.calls: list[tuple[list[str], date, date]] = []
        self.fail = fail

    def daily_bars(self, symbols, start, end):
        symbols = list(symbols)
        self.calls.append((symbols, start, end))
        if self.fail:
            raise TemporaryBrokerError("GET /v2/stocks/bars: HTTP 503")
        days = [s.day for s in nyse().sessions_between(start, end)]
        return {s: [bar(d, 10.0, self.volume[s]) for d in days]
                for s in symbols if s in self.volume}


@pytest.fixture
def logs(caplog):
    bot = logging.getLogger("bot")
    propagate, bot.propagate = bot.propagate, True
    caplog.set_level(logging.INFO, logger="bot")
    yield caplog
    bot.propagate = propagate


def letters(i: int) -> str:
    """A distinct 3-letter symbol per number, in the same order: 0 -> AAA, 1 -> AAB."""
    return "".join(chr(65 + i // 26 ** k % 26) for k in (2, 1, 0))


def test_select_batches_ranks_caches_and_reads_the_cache(tmp_path, logs):
    symbols = [letters(i) for i in range(450)]
    source = Bars({s: i for i, s in enumerate(symbols)})
    assets = {s: asset(s) for s in symbols}
    chosen = select_universe(source, assets, today=TODAY, calendar=nyse(), n=5,
                             cache_dir=tmp_path)
    assert chosen == [letters(i) for i in (449, 448, 447, 446, 445)]
    assert [len(c[0]) for c in source.calls] == [200, 200, 50]
    window = nyse().sessions_before(TODAY, 20)
    assert {(c[1], c[2]) for c in source.calls} == {(window[0].day, window[-1].day)}
    cache = json.loads((tmp_path / "2022-03-01.json").read_text())
    assert cache["symbols"] == chosen and cache["size"] == 5 and cache["candidates"] == 450
    assert cache["median_dollar_volume_usd"][letters(449)] == 4490.0
    assert "universe: top 5 of 450 tradable stocks" in logs.text
    assert ", ".join(chosen) in logs.text

    again = select_universe(source, assets, today=TODAY, calendar=nyse(), n=5,
                            cache_dir=tmp_path)
    assert again == chosen and len(source.calls) == 3  # no request the second time
    assert "chosen earlier today" in logs.text
    # A different size invalidates the day's cache.
    assert len(select_universe(source, assets, today=TODAY, calendar=nyse(), n=7,
                               cache_dir=tmp_path)) == 7
    assert len(source.calls) == 6


def test_damaged_cache_is_rebuilt(tmp_path, logs):
    (tmp_path / "2022-03-01.json").write_text("{not json")
    source = Bars({"AAA": 1, "BBB": 2})
    assets = {s: asset(s) for s in ("AAA", "BBB")}
    assert select_universe(source, assets, today=TODAY, calendar=nyse(), n=1,
                           cache_dir=tmp_path) == ["BBB"]
    assert "universe cache ignored, it will be rebuilt" in logs.text
    assert json.loads((tmp_path / "2022-03-01.json").read_text())["symbols"] == ["BBB"]


def test_failed_fetch_falls_back_to_the_latest_earlier_choice(tmp_path, logs):
    assets = {s: asset(s) for s in ("AAA", "BBB")}
    select_universe(Bars({"AAA": 1, "BBB": 2}), assets, today=date(2022, 2, 25),
                    calendar=nyse(), n=1, cache_dir=tmp_path)
    failing = Bars({}, fail=True)
    assert select_universe(failing, assets, today=TODAY, calendar=nyse(), n=1,
                           cache_dir=tmp_path) == ["BBB"]
    assert "using the choice of 2022-02-25" in logs.text
    assert not (tmp_path / "2022-03-01.json").exists()  # a fallback is not today's choice
    with pytest.raises(TemporaryBrokerError):
        select_universe(failing, assets, today=TODAY, calendar=nyse(), n=1,
                        cache_dir=tmp_path / "empty")


# -- against the local exchange -----------------------------------------------------------

@contextmanager
def exchange_broker(market, day):
    """The bot's Broker talking HTTP to a local exchange at noon New York time on `day`."""
    ex = Exchange(market, ExchangeConfig(), now=new_york_noon(day))
    with serve(ex, port=0) as server:
        yield broker.Broker(config.Credentials(ex.config.key_id, ex.config.secret_key),
                            base_url=server.trading_url, data_url=server.data_url), server


BARS = "GET /v2/stocks/bars"


def bar_requests(server, expected: int) -> int:
    """The exchange's count of bars requests. It logs a request just after answering it, so
    the last one may land a moment after the client has its answer: wait for `expected` (the
    wait ends as soon as it is there; its limit only stops a test that would fail anyway)."""
    deadline = time.monotonic() + 30.0
    while server.request_counts().get(BARS, 0) < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    return server.request_counts().get(BARS, 0)


def test_shipped_symbols_golden_with_one_request_then_the_cache(tmp_path):
    with exchange_broker(market_data.load("us-stocks"), TODAY) as (bot_broker, server):
        assets = bot_broker.assets()
        made = bot_broker.requests_made
        chosen = select_universe(bot_broker, assets, today=TODAY, calendar=nyse(), n=10,
                                 cache_dir=tmp_path / "universe")
        # Six shipped symbols carry volume (by median dollar volume, 2022-01-31..02-28); the
        # others have none on the wire and follow in symbol order.
        assert chosen == ["AAPL", "NVDA", "AMZN", "META", "GOOG", "NFLX",
                          "AMD", "BAC", "BBY", "CVX"]
        assert bot_broker.requests_made - made == 1
        assert bar_requests(server, 1) == 1

        made = bot_broker.requests_made
        again = select_universe(bot_broker, assets, today=TODAY, calendar=nyse(), n=10,
                                cache_dir=tmp_path / "universe")
        assert again == chosen
        assert bot_broker.requests_made == made  # the day's cache: no request at all
        assert server.request_counts()[BARS] == 1


def test_a_wide_market_is_fetched_in_batches(tmp_path):
    sessions = [s.day for s in nyse().sessions_between(date(2022, 1, 3), TODAY)]
    symbols = [letters(i) for i in range(450)]
    rows = [{"symbol": s, "date": d.isoformat(), "open": 10.0, "high": 10.0, "low": 10.0,
             "close": 10.0, "volume": 1000 + i}
            for i, s in enumerate(symbols) for d in sessions]
    market = market_data.from_frame(pd.DataFrame(rows), name="wide")
    with exchange_broker(market, TODAY) as (bot_broker, server):
        assets = bot_broker.assets()
        made = bot_broker.requests_made
        chosen = select_universe(bot_broker, assets, today=TODAY, calendar=nyse(), n=3,
                                 cache_dir=tmp_path)
        assert chosen == [letters(449), letters(448), letters(447)]
        # Three reads (200 + 200 + 50 symbols); the broker follows Alpaca's 1,000-bar pages:
        # 4,000 + 4,000 + 1,000 bars over 20 sessions.
        assert bot_broker.requests_made - made == 3
        assert bar_requests(server, 4 + 4 + 1) == 4 + 4 + 1
