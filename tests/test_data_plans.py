"""Data plans and feeds, both sides: what the exchange's free and unlimited plans serve on each
endpoint (over HTTP, the unmodified SDK), the IEX view's statistical properties (a model), and
the bot's feed settings end to end."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import requests
from alpaca_trade_api.rest import APIError

from config import load_config
from errors import ConfigError
from market_calendar import NEW_YORK
from signal_generator import zscore
from simbroker import feeds, market_data
from tests.simbroker_fixtures import KEY, NOON_MAR1, SECRET, make_sim
from tests.test_bot_e2e import DAYS, E, scenario

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture
def free(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, plan="free")


@pytest.fixture
def unlimited(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, plan="unlimited")


def get(sim, path: str, **params: str) -> requests.Response:
    return requests.get(f"{sim.server.data_url}{path}", params=params, headers=HEADERS,
                        timeout=10)


LATEST = ["/v2/stocks/trades/latest", "/v2/stocks/quotes/latest", "/v2/stocks/bars/latest",
          "/v2/stocks/snapshots", "/v2/stocks/AAA/snapshot", "/v2/stocks/AAA/trades/latest"]


@pytest.mark.parametrize("path", LATEST)
def test_free_plan_refuses_sip_on_latest_and_snapshot_endpoints(free, path):
    refused = get(free, path, symbols="AAA", feed="sip")
    assert refused.status_code == 403
    assert refused.json()["message"] == "subscription does not permit querying recent SIP data"
    for feed in ({}, {"feed": "iex"}, {"feed": "delayed_sip"}):  # no feed: iex on a free plan
        assert get(free, path, symbols="AAA", **feed).status_code == 200, feed


@pytest.mark.parametrize("path", LATEST)
def test_unlimited_plan_serves_sip_everywhere(unlimited, path):
    assert get(unlimited, path, symbols="AAA", feed="sip").status_code == 200


def test_free_plan_sip_bars_must_end_15_minutes_ago(free):
    def bars(end: str | None) -> requests.Response:
        params = {"symbols": "AAA", "timeframe": "1Day", "start": "2022-02-28", "feed": "sip"}
        return get(free, "/v2/stocks/bars", **params, **({"end": end} if end else {}))

    now = free.exchange.now
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    recent = bars((now - timedelta(minutes=14)).strftime(stamp))
    assert recent.status_code == 403 and "recent SIP data" in recent.json()["message"]
    assert bars((now - timedelta(minutes=16)).strftime(stamp)).status_code == 200
    assert bars("2022-02-28").status_code == 200
    assert bars(None).status_code == 200  # the default end is 15 minutes ago
    with pytest.raises(APIError) as refused:  # the SDK sees the same
        free.api.get_bars("AAA", "1Day", "2022-02-28", "2022-03-01", feed="sip")
    assert refused.value.status_code == 403


@pytest.mark.parametrize("path, feed, status", [
    ("/v2/stocks/bars", "delayed_sip", 400), ("/v2/stocks/bars", "overnight", 400),
    ("/v2/stocks/bars", "boats", 200), ("/v2/stocks/bars", "nasdaq", 400),
    ("/v2/stocks/snapshots", "delayed_sip", 200), ("/v2/stocks/snapshots", "overnight", 200),
    ("/v2/stocks/trades/latest", "nasdaq", 400)])
def test_feeds_are_validated_per_endpoint_as_the_spec_enums_say(unlimited, path, feed, status):
    answer = get(unlimited, path, symbols="AAA", timeframe="1Day", start="2022-02-28", feed=feed)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["code"] == 40010001 and "feed" in answer.json()["message"]


def test_delayed_sip_is_sip_of_15_minutes_ago(free, unlimited):
    now = free.exchange.now
    delayed = get(free, "/v2/stocks/AAA/trades/latest", feed="delayed_sip").json()["trade"]
    earlier = free.exchange.view.last_trade("AAA", free.exchange.view.moment(
        now - timedelta(minutes=15)))
    assert delayed["p"] == round(earlier.price, 4)
    assert get(unlimited, "/v2/stocks/AAA/trades/latest", feed="sip").json()["trade"]["p"] \
        != delayed["p"]  # AAA moves between 11:45 and noon


# -- the IEX view (a model: its properties, not data) --------------------------------------


@pytest.fixture(scope="module")
def shipped():
    data = market_data.load("us-stocks")
    frames = data.bars(list(data.symbols), data.first_day, data.last_day, adjustment="raw",
                       as_of=data.last_day)
    return {s: ([d.date() for d in f.index], f.to_numpy(dtype=float)) for s, f in
            frames.items() if not f.empty}


def test_iex_view_is_a_small_share_of_the_volume_with_closes_within_cents(shipped):
    shares, close_diffs = [], []
    for symbol, (days, values) in shipped.items():
        iex_days, iex = feeds.iex_bars(symbol, days, values)
        sip = values[[days.index(d) for d in iex_days]]
        known = np.isfinite(sip[:, 4]) & (sip[:, 4] >= 10_000)  # volume NaN: unknown
        shares.append(iex[known, 4] / sip[known, 4])
        close_diffs.append(iex[:, 3] - sip[:, 3])
        assert np.all(iex[:, 1] >= iex[:, [0, 3]].max(axis=1))
        assert np.all(iex[:, 2] <= iex[:, [0, 3]].min(axis=1))
    share, diff = np.concatenate(shares), np.concatenate(close_diffs)
    assert share.size > 10_000
    assert share.min() >= 0.0199 and share.max() <= 0.04  # whole shares: floor
    assert abs(share.mean() - 0.03) < 0.001  # uniform on [2 %, 4 %]
    assert np.abs(diff).max() <= 0.025  # 2 cents, and the cent rounding of the close
    assert abs(diff.mean()) < 0.001 and 0.005 < diff.std() < 0.02  # centred, not constant


def test_iex_view_drops_sessions_of_thin_names_only_and_is_deterministic():
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(4000)]
    thin = np.tile([10.0, 10.5, 9.5, 10.2, 50_000.0], (len(days), 1))
    liquid = thin.copy()
    liquid[:, 4] = 5_000_000
    kept_thin, _ = feeds.iex_bars("THIN", days, thin)
    kept_liquid, _ = feeds.iex_bars("THIN", days, liquid)
    assert kept_liquid == days
    missing = 1 - len(kept_thin) / len(days)
    # Binomial(4000, 0.1): standard deviation 0.0047; 4 of them either side.
    assert abs(missing - feeds.THIN_MISSING_SHARE) < 0.019
    again, values = feeds.iex_bars("THIN", days, thin)
    assert again == kept_thin and np.array_equal(values, feeds.iex_bars("THIN", days, thin)[1])
    assert feeds.iex_bars("OTHER", days, thin)[0] != kept_thin  # per symbol, not one pattern


def test_iex_bars_over_http_differ_from_sip(unlimited):
    sip = get(unlimited, "/v2/stocks/AAA/bars", timeframe="1Day", start="2022-02-28",
              end="2022-02-28", feed="sip").json()["bars"][0]
    iex = get(unlimited, "/v2/stocks/AAA/bars", timeframe="1Day", start="2022-02-28",
              end="2022-02-28", feed="iex").json()["bars"][0]
    assert iex["t"] == sip["t"] and 0.02 * sip["v"] <= iex["v"] <= 0.04 * sip["v"]
    assert abs(iex["c"] - sip["c"]) <= 0.025


# -- the bot's settings ---------------------------------------------------------------------


@pytest.mark.parametrize("env, match", [
    ({"DATA_FEED": "iex"}, "DATA_FEED is no longer read.*BARS_FEED.*PRICE_FEED"),
    ({"BARS_FEED": "delayed_sip"}, "BARS_FEED='delayed_sip' is not a feed of daily history"),
    ({"PRICE_FEED": "delayed_sip"}, "PRICE_FEED=delayed_sip.*MAX_PRICE_AGE_SECONDS"),
    ({"PRICE_FEED": "otc"}, "PRICE_FEED='otc' is unknown")])
def test_feed_settings_that_cannot_work_are_refused_with_the_fix(env, match):
    with pytest.raises(ConfigError, match=match):
        load_config(env)


def test_delayed_sip_prices_with_enough_slack_are_accepted():
    config = load_config({"PRICE_FEED": "delayed_sip", "MAX_PRICE_AGE_SECONDS": "1800"})
    assert (config.bars_feed, config.price_feed) == ("sip", "delayed_sip")


def test_free_plan_default_settings_trade_on_z_scores_from_sip_bars(sim_factory):  # noqa: F811
    series, _ = scenario([], entry_z=-2.0)
    sim = sim_factory(series, plan="free")
    assert sim.run(DAYS[E]) == 0
    summary = sim.last_summary()
    price = summary["prices"]["AAA"]
    sip_closes = [series["AAA"][d] for d in DAYS[E - 29:E]]
    assert summary["z_scores"]["AAA"] == pytest.approx(zscore(sip_closes, price), abs=1e-4)
    _, iex = feeds.iex_bars("AAA", DAYS[E - 29:E], np.array(
        [[c, c, c, c, 1_000_000] for c in sip_closes]))
    assert abs(zscore(list(iex[:, 3]), price) - summary["z_scores"]["AAA"]) > 1e-3
    assert len(summary["entries"]) == 1


def test_sip_prices_on_a_free_plan_fall_back_to_iex_with_one_warning(sim_factory):  # noqa: F811
    series, _ = scenario([], entry_z=-2.0)
    sim = sim_factory(series, plan="free")
    assert sim.run(DAYS[E], PRICE_FEED="sip") == 0
    summary = sim.last_summary()
    assert summary["outcome"] == "done" and len(summary["entries"]) == 1
    (run_dir,) = (sim.log_dir / "runs").iterdir()
    log_text = (run_dir / "bot.log").read_text()
    assert log_text.count("using IEX prices for this run") == 1
    assert "PRICE_FEED=iex" in log_text


def test_the_bots_bars_request_ends_at_the_last_bar_not_the_end_of_its_day(free):
    import broker
    import config

    bot = broker.Broker(config.Credentials(KEY, SECRET), base_url=free.server.trading_url,
                        data_url=free.server.data_url)
    # Noon on 03-01: the bars up to 03-01 itself end at 03-01 00:00 New York, 12 hours ago,
    # so the free plan serves them as SIP (a bare end date would mean 23:59 today: 403).
    bars = bot.daily_bars(["AAA"], date(2022, 2, 28), date(2022, 3, 1))
    assert [b.day for b in bars["AAA"]] == [date(2022, 2, 28), date(2022, 3, 1)]
    assert bars["AAA"][0].volume == 1_000_000  # the SIP bar, not the IEX one
    assert broker.bar_instant(date(2022, 3, 1)) == "2022-03-01T05:00:00Z"
    assert NOON_MAR1.astimezone(NEW_YORK).hour == 12
