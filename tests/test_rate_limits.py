"""Rate limits, both sides: the exchange's per-key budget with Alpaca's headers and 429, and the
bot pacing itself from those headers (over HTTP, the unmodified SDK)."""

from __future__ import annotations

import itertools
import json
import string
import uuid
from datetime import date

import pytest
import requests
from alpaca_trade_api.rest import APIError

import trading_bot
from market_calendar import new_york_noon, nyse
from simbroker import Exchange, ExchangeConfig, serve
from simbroker.ratelimit import RateLimiter
from simbroker.synthetic import generate
from tests.simbroker_fixtures import KEY, NOON_MAR1, SECRET, make_sim

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim(monkeypatch):
    for made in make_sim(monkeypatch, NOON_MAR1, rate_limit=3, rate_window_seconds=60):
        made.server.limiter = RateLimiter(clock=FakeClock(1_700_000_010.5))
        yield made


def get(sim, path: str) -> requests.Response:
    return requests.get(f"{sim.server.trading_url}{path}", headers=HEADERS, timeout=10,
                        params={"symbols": "AAA"})


def test_every_answer_carries_the_budget_and_a_spent_budget_is_429(sim):
    unknown_order = f"/v2/orders/{uuid.UUID(int=1)}"
    answers = [get(sim, p) for p in ("/v2/account", unknown_order, "/v2/clock")]
    assert [a.status_code for a in answers] == [200, 404, 200]  # errors count and say so too
    assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert {a.headers["X-Ratelimit-Limit"] for a in answers} == {"3"}
    # Windows are aligned on the epoch: this one ends on the next whole minute.
    assert {a.headers["X-Ratelimit-Reset"] for a in answers} == {"1700000040"}
    refused = get(sim, "/v2/account")
    assert refused.status_code == 429
    assert refused.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert refused.headers["X-Ratelimit-Remaining"] == "0"
    with pytest.raises(APIError) as sdk:
        sim.api.get_clock()
    assert sdk.value.status_code == 429
    assert get(sim, "/v2/stocks/snapshots").status_code == 200  # market data counts apart
    sim.server.limiter._clock.now = 1_700_000_040.0  # the next window
    assert get(sim, "/v2/account").headers["X-Ratelimit-Remaining"] == "2"


def test_the_control_endpoints_and_an_unlimited_exchange_send_no_budget(sim, monkeypatch):
    control = requests.get(f"{sim.server.trading_url}/_sim/requests", headers=HEADERS,
                           timeout=10)
    assert "X-Ratelimit-Limit" not in control.headers
    for unlimited in make_sim(monkeypatch, NOON_MAR1, rate_limit=0):
        assert "X-Ratelimit-Limit" not in get(unlimited, "/v2/account").headers


# -- the bot: a 2,000-candidate dynamic universe under the budget ------------------------

DAY = date(2024, 3, 1)


def letter_symbols(count: int) -> list[str]:
    """AAAA, AAAB, ...: names the dynamic universe takes for common stock."""
    names = ("".join(p) for p in itertools.product(string.ascii_uppercase, repeat=4))
    return list(itertools.islice(names, count))


@pytest.fixture(scope="module")
def wide_market():
    first = nyse().sessions_before(DAY, 40)[0].day
    return generate(letter_symbols(2000), start=first, sessions=41, seed=5)


def dynamic_run(tmp_path, market, monkeypatch, env_extra=None, **config):
    monkeypatch.chdir(tmp_path)
    exchange = Exchange(market, ExchangeConfig(spread_bps=0.0, **config),
                        now=new_york_noon(DAY))
    with serve(exchange, port=0) as server:
        env = {"APCA_API_BASE_URL": server.trading_url, "APCA_API_DATA_URL": server.data_url,
               "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, "UNIVERSE": "dynamic",
               "UNIVERSE_SIZE": "50", "FILL_WAIT_SECONDS": "0", "REQUEST_RETRIES": "0",
               **(env_extra or {})}
        code = trading_bot.main(["--log-dir", str(tmp_path / "logs")], environ=env)
        return code, server.requests(), tmp_path / "logs"


def test_dynamic_universe_of_2000_candidates_paces_itself_under_a_spent_budget(
        tmp_path, wide_market, monkeypatch):
    # 10 requests per 2 s window: the ~45 market-data requests of the run need several
    # windows, as 200 a minute would for a run of ~900; the bot retries nothing
    # (REQUEST_RETRIES=0), so one 429 would fail it.
    code, log, logs = dynamic_run(tmp_path, wide_market, monkeypatch, rate_limit=10,
                                  rate_window_seconds=2.0)
    assert code == 0
    assert [r for r in log if r["status"] == 429] == []
    assert len(log) > 40
    (cache,) = (logs / "universe").iterdir()
    assert json.loads(cache.read_text())["candidates"] == 2000
    (run_dir,) = (logs / "runs").iterdir()
    # How many waits depends on the machine's speed (a slow one lets windows pass); at
    # least one, as 10 requests take far less than 2 s here.
    assert (run_dir / "bot.log").read_text().count("waiting") >= 1


def test_dynamic_universe_of_2000_candidates_fits_alpacas_200_a_minute(
        tmp_path, wide_market, monkeypatch):
    code, log, logs = dynamic_run(tmp_path, wide_market, monkeypatch)
    assert code == 0 and len(log) < 200 and all(r["status"] != 429 for r in log)
    (run_dir,) = (logs / "runs").iterdir()
    assert "waiting" not in (run_dir / "bot.log").read_text()


def test_a_reset_after_the_deadline_stops_the_run_instead_of_waiting(
        tmp_path, wide_market, monkeypatch):
    # A day-long window: its reset is hours away, the deadline 30 s.
    code, log, logs = dynamic_run(tmp_path, wide_market, monkeypatch,
                                  {"RUN_DEADLINE_SECONDS": "30"}, rate_limit=10,
                                  rate_window_seconds=86_400.0)
    assert code == 1 and all(r["status"] != 429 for r in log)
    (run_dir,) = (logs / "runs").iterdir()
    (error,) = json.loads((run_dir / "summary.json").read_text())["errors"]
    assert error.startswith("DeadlineError") and "RUN_DEADLINE_SECONDS" in error
