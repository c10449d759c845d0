"""The calendar and the error answers as Alpaca gives them (over HTTP, the unmodified SDK),
and the bot following the broker's calendar where the local one disagrees."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
import requests
from alpaca_trade_api.rest import APIError

import trading_bot
from market_calendar import MarketCalendar, new_york_noon, nyse
from simbroker import Exchange, ExchangeConfig, serve
from tests.sim_harness import flat_bars, market
from tests.simbroker_fixtures import KEY, NOON_MAR1, SECRET, make_sim
from tests.test_bot_e2e import DAYS, E, scenario

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def calendar(sim, **params: str) -> requests.Response:
    return requests.get(f"{sim.server.trading_url}/v2/calendar", params=params,
                        headers=HEADERS, timeout=30)


def test_calendar_without_parameters_is_every_day_from_1970_to_2029(sim):
    answer = calendar(sim)
    assert answer.status_code == 200
    days = answer.json()
    assert (days[0]["date"], days[-1]["date"]) == ("1970-01-02", "2029-12-31")
    assert len(days) > 15_000 and all(len(d["settlement_date"]) == 10 for d in days)
    assert {"1985-07-01", "2024-05-31"} <= {d["date"] for d in days}


def test_calendar_ranges_are_clipped_to_what_alpaca_serves(sim):
    late = calendar(sim, start="2029-12-20", end="2035-06-01").json()
    assert late[-1]["date"] == "2029-12-31"
    early = sim.api.get_calendar("1965-01-01", "1970-01-09")
    assert [str(d.date.date()) for d in early][:2] == ["1970-01-02", "1970-01-05"]


def test_early_close_ends_the_extended_session_at_17(sim):
    (friday,) = calendar(sim, start="2023-11-24", end="2023-11-24").json()
    assert (friday["open"], friday["close"]) == ("09:30", "13:00")
    assert (friday["session_open"], friday["session_close"]) == ("0400", "1700")
    (normal,) = calendar(sim, start="2023-11-27", end="2023-11-27").json()
    assert (normal["close"], normal["session_close"]) == ("16:00", "2000")


def test_date_type_settlement_selects_by_settlement_date(sim):
    # Friday 2024-05-31 settles T+1 on Monday 2024-06-03; T+2 before 2024-05-28.
    (trading,) = calendar(sim, start="2024-05-31", end="2024-05-31").json()
    assert trading["settlement_date"] == "2024-06-03"
    (settling,) = calendar(sim, start="2024-06-03", end="2024-06-03",
                           date_type="SETTLEMENT").json()
    assert settling["date"] == "2024-05-31"
    (older,) = calendar(sim, start="2020-03-04", end="2020-03-04", date_type="SETTLEMENT").json()
    assert older["date"] == "2020-03-02"
    bad = calendar(sim, date_type="BOTH")
    assert bad.status_code == 400 and bad.json()["code"] == 40010001


def test_market_data_without_keys_is_403_and_trading_401(sim):
    data = requests.get(f"{sim.server.data_url}/v2/stocks/snapshots?symbols=AAA", timeout=10)
    trading = requests.get(f"{sim.server.trading_url}/v2/account", timeout=10)
    assert (data.status_code, trading.status_code) == (403, 401)


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_a_malformed_order_id_is_422_40010001_and_an_unknown_one_404(sim, method):
    malformed = requests.request(method, f"{sim.server.trading_url}/v2/orders/not-a-uuid",
                                 headers=HEADERS, timeout=10, json={})
    assert (malformed.status_code, malformed.json()["code"]) == (422, 40010001)
    unknown = requests.request(method, f"{sim.server.trading_url}/v2/orders/"
                               "2f0d6a3e-9c1b-4a53-8f1e-0a1b2c3d4e5f", headers=HEADERS,
                               timeout=10, json={})
    assert unknown.status_code == 404
    with pytest.raises(APIError) as sdk:
        sim.api.get_order("not-a-uuid")
    assert sdk.value.status_code == 422


# -- the bot and the broker's calendar --------------------------------------------------------

CLOSED = DAYS[E - 3]  # an unscheduled closure inside the z-score window


@contextlib.contextmanager
def closure_exchange(tmp_path, monkeypatch):
    """An exchange whose calendar lacks CLOSED (as after an unscheduled closure) and whose
    data has no bar on it; the bot's local calendar still has the session."""
    monkeypatch.chdir(tmp_path)
    series, _ = scenario([], entry_z=-2.0)
    frame = flat_bars("AAA", series["AAA"])
    frame = frame[frame["date"] != CLOSED.isoformat()]
    local = nyse()
    broker_calendar = MarketCalendar([s for s in local.sessions_between(date(1990, 1, 1),
                                                                         date(2035, 12, 31))
                                      if s.day != CLOSED])
    exchange = Exchange(market(frame), ExchangeConfig(spread_bps=0.0),
                        now=new_york_noon(DAYS[E]), calendar=broker_calendar)
    with serve(exchange, port=0) as server:
        yield {"APCA_API_BASE_URL": server.trading_url, "APCA_API_DATA_URL": server.data_url,
               "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, "TICKERS": "AAA",
               "FILL_WAIT_SECONDS": "0"}


def test_an_unscheduled_closure_is_taken_from_the_broker_not_a_missing_bar(tmp_path,
                                                                           monkeypatch):
    with closure_exchange(tmp_path, monkeypatch) as env:
        assert trading_bot.main(["--log-dir", str(tmp_path / "logs")], environ=env) == 0
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    text = (run_dir / "bot.log").read_text()
    assert text.count("differs from the local NYSE calendar") == 1
    assert f"{CLOSED}: closed at the broker" in text
    assert "no daily bar" not in text and "AAA: enter long" in text


def test_calendar_differences_name_each_day_and_the_merge_keeps_the_rest():
    import broker_calendar
    from market_calendar import Session

    local = nyse()
    days = local.sessions_between(date(2023, 11, 20), date(2023, 11, 28))
    friday = next(s for s in days if s.day == date(2023, 11, 24))  # early close, 13:00
    full_day = Session(day=friday.day, open=friday.open, close=days[0].close.replace(
        day=24))
    served = [s for s in days if s.day != date(2023, 11, 27)]
    served = [full_day if s.day == friday.day else s for s in served]
    found = broker_calendar.differences(days, served)
    assert found == ["2023-11-24: the broker's hours are 14:30-21:00 UTC, the local "
                     "calendar's 14:30-18:00 UTC",
                     "2023-11-27: closed at the broker, a session in the local calendar"]
    merged = broker_calendar.merged(local, served, days[0].day, days[-1].day)
    assert merged.session(date(2023, 11, 27)) is None
    assert merged.session(date(2023, 11, 24)).close == full_day.close
    assert merged.session(date(2023, 11, 29)) == local.session(date(2023, 11, 29))
    assert merged.session(date(2023, 11, 17)) == local.session(date(2023, 11, 17))
    assert broker_calendar.merged(local, days, days[0].day, days[-1].day) is local
