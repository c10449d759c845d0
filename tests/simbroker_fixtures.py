"""Shared fixtures of the simbroker tests: a tiny hand-made market, a served exchange and the
real alpaca-trade-api SDK pointed at it.

The market (raw daily bars, 2022-02-28 .. 2022-03-10; sessions 09:30-16:00 New York =
14:30-21:00 UTC, 6.5 hours, before the DST change of 2022-03-13):

    AAA  03-01  o 100  h 104  l 98   c 103   up bar
         03-02  o 103  h 103.5 l 95  c 96    down bar
    SPL  splits 2-for-1 on 03-03 (raw prices halve)
    FLAT 20.00 all day, every day
    PENNY below $1 (ticks of $0.0001)
    HALT has no bar on 03-02

Intraday prices come from the model path of each (symbol, session) (simbroker/price_model.py):
tests take them from `model_price` rather than working them out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

import alpaca_trade_api
import pandas as pd
import pytest

from market_calendar import NEW_YORK, UTC, new_york_noon
from simbroker import Exchange, ExchangeConfig, SimServer, price_model, serve
from simbroker.market_data import MarketData, Split, from_frame

KEY, SECRET = "SIMKEY", "SIMSECRET"
DAYS = [date(2022, 2, 28), date(2022, 3, 1), date(2022, 3, 2), date(2022, 3, 3),
        date(2022, 3, 4), date(2022, 3, 7), date(2022, 3, 8), date(2022, 3, 9),
        date(2022, 3, 10)]
MAR1, MAR2, MAR3, MAR4, MAR7 = DAYS[1], DAYS[2], DAYS[3], DAYS[4], DAYS[5]

_AAA = {  # day: (open, high, low, close, volume)
    DAYS[0]: (100.0, 101.0, 99.0, 100.5, 1_000_000),
    MAR1: (100.0, 104.0, 98.0, 103.0, 2_000_000),
    MAR2: (103.0, 103.5, 95.0, 96.0, 3_000_000),
    MAR3: (96.0, 97.0, 94.0, 95.0, 1_000_000),
    MAR4: (95.0, 96.0, 94.0, 95.5, 1_000_000),
    MAR7: (95.5, 99.0, 95.0, 98.0, 1_000_000),
    DAYS[6]: (98.0, 99.0, 97.0, 98.5, 1_000_000),
    DAYS[7]: (98.5, 100.0, 98.0, 99.0, 1_000_000),
    DAYS[8]: (99.0, 100.0, 98.0, 99.5, 1_000_000),
}


def ny(day: date, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time as a UTC datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).astimezone(UTC)


def _rows(symbol: str, bars: dict[date, tuple]) -> list[dict]:
    return [{"symbol": symbol, "date": d.isoformat(), "open": o, "high": h, "low": lo,
             "close": c, "volume": v} for d, (o, h, lo, c, v) in bars.items()]


def tiny_market() -> MarketData:
    rows = _rows("AAA", _AAA)
    rows += _rows("FLAT", {d: (20.0, 20.0, 20.0, 20.0, 500_000) for d in DAYS})
    rows += _rows("PENNY", {d: (0.5, 0.52, 0.48, 0.51, 9_000_000) for d in DAYS})
    rows += _rows("HALT", {d: (50.0, 51.0, 49.0, 50.5, 100_000) for d in DAYS if d != MAR2})
    spl = {d: (200.0, 202.0, 198.0, 200.0, 100_000) for d in DAYS[:3]}
    spl.update({d: (100.0, 101.0, 99.0, 100.0, 200_000) for d in DAYS[3:]})
    rows += _rows("SPL", spl)
    return from_frame(pd.DataFrame(rows), [Split("SPL", MAR3, 2.0)], name="tiny")


@dataclass
class Sim:
    exchange: Exchange
    server: SimServer
    api: alpaca_trade_api.REST

    def advance_to(self, when: datetime) -> None:
        self.server.advance_to(when)

    def account(self) -> dict:
        return self.api.get_account()._raw


def make_sim(monkeypatch: pytest.MonkeyPatch, now: datetime, data: MarketData | None = None,
             **config: object) -> Iterator[Sim]:
    config.setdefault("spread_bps", 0.0)
    # These tests read the consolidated (SIP) data of every moment, today's included, which
    # needs the unlimited plan; the free plan is tested in test_data_plans.py.
    config.setdefault("plan", "unlimited")
    # These fixtures test matching and the account rules on the POST answer itself; the
    # asynchronous lifecycle (pending_new, then new and fills after the answer) has its own
    # tests (test_simbroker_order_lifecycle.py).
    config.setdefault("async_acceptance", False)
    exchange = Exchange(data or tiny_market(), ExchangeConfig(**config), now=now)
    with serve(exchange) as server:
        monkeypatch.setenv("APCA_API_DATA_URL", server.data_url)
        monkeypatch.setenv("APCA_RETRY_MAX", "0")  # faults must reach the test, not a retry
        yield Sim(exchange, server, sdk(server))


def sdk(server: SimServer) -> alpaca_trade_api.REST:
    return alpaca_trade_api.REST(KEY, SECRET, base_url=server.trading_url)


def limit_buy(api: alpaca_trade_api.REST, symbol: str, qty: float, limit: float, **kw):
    return api.submit_order(symbol, qty=qty, side="buy", type="limit",
                            time_in_force=kw.pop("time_in_force", "day"), limit_price=limit,
                            **kw)


NOON_MAR1 = new_york_noon(MAR1)
NOON_FRACTION = 2.5 / 6.5  # noon in a regular session


def model_price(symbol: str, day: date, fraction: float) -> float:
    """The tiny market's price of `symbol` on the model path (simbroker/price_model.py) at
    `fraction` of session `day`: what the exchange must report."""
    bar = tiny_market().bar(symbol, day)
    assert bar is not None
    return float(price_model.price_at(bar.open, bar.high, bar.low, bar.close, fraction,
                                      key=price_model.path_key(symbol, day),
                                      scale=bar.path_scale))


def model_quote(price: float, spread_bps: float = 0.0) -> tuple[float, float]:
    bid, ask = price_model.quote(price, spread_bps)
    return float(bid), float(ask)


AAA_NOON = model_price("AAA", MAR1, NOON_FRACTION)  # AAA's path price at noon of 03-01
AAA_NOON_BID, AAA_NOON_ASK = model_quote(AAA_NOON)  # with the fixtures' zero spread
# A buy limit at or above AAA's ask at noon of 03-01, so marketable then; and below the bar's
# high, so that what it holds stays in the tiny account's budgets.
AAA_MARKETABLE = 101.00
assert AAA_NOON_ASK <= AAA_MARKETABLE < 104.0
