"""Market Data v2 on the local exchange: bars (pagination, partial bar, adjustments), latest
trades and quotes, snapshots - through the SDK, which reads APCA_API_DATA_URL."""

from __future__ import annotations

from datetime import date

import pytest
import requests
from alpaca_trade_api.rest import APIError, TimeFrame

from simbroker import price_model, synthetic
from tests.simbroker_fixtures import (
    AAA_NOON,
    AAA_NOON_ASK,
    KEY,
    MAR1,
    MAR2,
    MAR4,
    NOON_FRACTION,
    NOON_MAR1,
    SECRET,
    make_sim,
    model_price,
    ny,
)


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def morning_range() -> tuple[float, float]:
    """AAA's highest and lowest model price from the open to noon of 03-01."""
    grid = [j / price_model.GRID for j in range(price_model.GRID + 1)
            if j / price_model.GRID < NOON_FRACTION]
    path = [model_price("AAA", MAR1, f) for f in [*grid, NOON_FRACTION]]
    return max(path), min(path)


def bars_of(sim, symbol, start="2022-02-01", end="2022-03-31", **kw):
    return [b._raw for b in sim.api.get_bars(symbol, "1Day", start, end, **kw)]


def test_todays_bar_is_the_partial_bar_so_far(sim):
    bars = bars_of(sim, "AAA")
    assert [b["t"] for b in bars] == ["2022-02-28T05:00:00Z", "2022-03-01T05:00:00Z"]
    today = bars[-1]
    # So far: it opened at 100 and ranged as the model path did until noon (the path is
    # straight between its grid points, so those and noon itself bound it).
    assert today["o"] == 100.0
    assert (today["h"], today["l"]) == pytest.approx(morning_range(), abs=1e-4)
    assert today["c"] == pytest.approx(AAA_NOON, abs=1e-4)
    assert today["v"] == int(2_000_000 * NOON_FRACTION)
    assert bars[0] == {"t": "2022-02-28T05:00:00Z", "o": 100.0, "h": 101.0, "l": 99.0,
                       "c": 100.5, "v": 1_000_000, "n": 0, "vw": 100.1667}


def test_no_bar_of_today_before_the_open_and_the_full_bar_after_the_close(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 9, 29)):
        assert [b["t"][:10] for b in bars_of(sim, "AAA")] == ["2022-02-28"]
        sim.advance_to(ny(MAR1, 16, 0))
        last = bars_of(sim, "AAA")[-1]
        assert (last["t"][:10], last["h"], last["c"], last["v"]) == (
            "2022-03-01", 104.0, 103.0, 2_000_000)


def test_future_never_leaks_whatever_the_end(sim):
    for end in ("2022-12-31", "2030-01-01T00:00:00Z"):
        assert max(b["t"] for b in bars_of(sim, ["AAA", "FLAT"], end=end)) < "2022-03-02"


def test_split_adjustment_is_relative_to_the_exchange_day(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR4, 17, 0)):
        raw = bars_of(sim, "SPL", end="2022-03-04")
        split = bars_of(sim, "SPL", end="2022-03-04", adjustment="split")
        assert [b["c"] for b in raw] == [200.0, 200.0, 200.0, 100.0, 100.0]
        assert [b["c"] for b in split] == [100.0] * 5
        assert [b["v"] for b in split][:3] == [200_000] * 3


def test_multi_symbol_pagination_delivers_every_bar(monkeypatch):
    data = synthetic.generate(50, start=date(2022, 1, 3), sessions=60, seed=7)
    last = data.last_day
    for sim in make_sim(monkeypatch, ny(last, 17, 0), data, max_bars_per_page=37):
        got = sim.api.get_bars(list(data.symbols), "1Day", "2022-01-01", last.isoformat())
        pairs = {(b._raw["S"], b._raw["t"][:10]) for b in got}
        assert len(got) == len(pairs) == 50 * 60
        for symbol in data.symbols:
            frame = data.frame(symbol)
            assert {t for s, t in pairs if s == symbol} == {
                d.date().isoformat() for d in frame.index}
        expected_pages = -(-3000 // 37)
        assert sim.server.request_counts()["GET /v2/stocks/bars"] == expected_pages


def test_limit_counts_across_symbols_and_pages_follow_symbol_then_time(sim):
    sim.advance_to(ny(MAR4, 17, 0))
    got = sim.api.get_bars(["FLAT", "AAA"], TimeFrame.Day, "2022-02-28", "2022-03-04", limit=7)
    assert [(b._raw["S"], b._raw["t"][:10]) for b in got] == [
        ("AAA", "2022-02-28"), ("AAA", "2022-03-01"), ("AAA", "2022-03-02"),
        ("AAA", "2022-03-03"), ("AAA", "2022-03-04"), ("FLAT", "2022-02-28"),
        ("FLAT", "2022-03-01")]


def test_only_daily_bars(sim):
    for timeframe in ("1Min", TimeFrame.Hour, "1Week"):
        with pytest.raises(APIError) as refused:
            sim.api.get_bars("AAA", timeframe, "2022-02-01", "2022-03-01")
        assert (refused.value.status_code, refused.value.code) == (400, 40010001)
        assert "1Day" in str(refused.value)


def test_latest_trade_before_during_and_after_the_session(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 8, 0)):
        before = sim.api.get_latest_trade("AAA")._raw
        assert (before["p"], before["t"]) == (100.5, "2022-02-28T21:00:00.000000Z")
        sim.advance_to(NOON_MAR1)
        during = sim.api.get_latest_trade("AAA")._raw
        assert during["p"] == pytest.approx(AAA_NOON, abs=1e-4)
        assert during["t"] == "2022-03-01T17:00:00.000000Z"
        sim.advance_to(ny(MAR1, 18, 0))
        after = sim.api.get_latest_trade("AAA")._raw
        assert (after["p"], after["t"]) == (103.0, "2022-03-01T21:00:00.000000Z")


def test_quotes_come_from_the_price_model_with_the_configured_spread(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, spread_bps=25.0):
        quote = sim.api.get_latest_quote("AAA")._raw
        bid, ask = price_model.quote(AAA_NOON, 25.0)
        assert (quote["bp"], quote["ap"]) == (float(bid), float(ask))
        assert quote["bp"] < AAA_NOON < quote["ap"]


def test_multi_symbol_latest_leaves_unknown_symbols_out(sim):
    trades = sim.api.get_latest_trades(["AAA", "NOPE", "FLAT"])
    quotes = sim.api.get_latest_quotes(["AAA", "NOPE"])
    assert sorted(trades) == ["AAA", "FLAT"] and sorted(quotes) == ["AAA"]
    assert trades["FLAT"].price == 20.0
    with pytest.raises(APIError) as missing:
        sim.api.get_latest_trade("NOPE")
    assert missing.value.status_code == 404


def test_snapshots(sim):
    snapshots = sim.api.get_snapshots(["AAA", "NOPE"])
    assert list(snapshots) == ["AAA"]
    snap = snapshots["AAA"]
    assert snap.daily_bar._raw["t"] == "2022-03-01T05:00:00Z"
    # The partial bar so far, not the whole day's.
    assert (snap.daily_bar._raw["h"], snap.daily_bar._raw["l"]) == pytest.approx(
        morning_range(), abs=1e-4)
    assert snap.prev_daily_bar._raw["c"] == 100.5
    assert snap.latest_trade._raw["p"] == pytest.approx(AAA_NOON, abs=1e-4)
    assert snap.latest_quote._raw["ap"] == AAA_NOON_ASK
    single = sim.api.get_snapshot("FLAT")
    assert single.latest_trade.price == 20.0


def test_latest_bars(sim):
    bars = sim.api.get_latest_bars(["AAA", "NOPE"])
    assert list(bars) == ["AAA"] and bars["AAA"]._raw["l"] == 98.0
    assert sim.api.get_latest_bar("FLAT")._raw["c"] == 20.0


def test_bars_query_validation(sim):
    for kwargs in ({"adjustment": "weird"}, {"feed": "nasdaq"}):
        with pytest.raises(APIError) as refused:
            sim.api.get_bars("AAA", "1Day", "2022-02-01", "2022-03-01", **kwargs)
        assert refused.value.status_code == 400, kwargs
    # The IEX view is another bar (feeds.py, a model): a small share of the volume.
    iex, sip = bars_of(sim, "AAA", feed="iex"), bars_of(sim, "AAA", feed="sip")
    assert [b["t"] for b in iex] == [b["t"] for b in sip]
    assert all(0 < i["v"] < 0.05 * s["v"] for i, s in zip(iex, sip, strict=True))
    for params in ({"limit": "0"}, {"limit": "10001"}, {"start": "yesterday"}, {}):
        response = requests.get(f"{sim.server.data_url}/v2/stocks/bars", timeout=5,
                                params={"timeframe": "1Day", **params} | (
                                    {"symbols": "AAA"} if params else {}),
                                headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
        assert response.status_code == 400, params
        assert response.json()["code"] == 40010001


def test_rfc3339_range_bounds_are_inclusive_on_bar_timestamps(sim):
    sim.advance_to(ny(MAR2, 17, 0))
    got = bars_of(sim, "AAA", start="2022-03-01T05:00:00Z", end="2022-03-02T04:59:59Z")
    assert [b["t"][:10] for b in got] == ["2022-03-01"]
    got = bars_of(sim, "AAA", start="2022-03-01T05:00:01Z", end="2022-03-02T05:00:00Z")
    assert [b["t"][:10] for b in got] == ["2022-03-02"]
    assert MAR2.isoformat() == "2022-03-02"
