"""End-to-end: the real bot, over HTTP and the real SDK, against the local exchange."""

from __future__ import annotations

from datetime import date

import pytest

from market_calendar import new_york_noon
from simbroker import market_data
from tests.sim_harness import Sim, flat_bars, market, price_for_z, sessions, zigzag

START = date(2022, 1, 3)
DAYS = sessions(START, 60)
E = 41  # index of the entry day: 41 sessions of history before it


def scenario(after_entry: list[float | str], entry_z: float = -2.0, level: float = 100.0,
             symbol: str = "AAA") -> tuple[dict, float]:
    """Zigzag history, then the entry day's price at `entry_z`, then one price per day: a
    number, or 'z=<value>' for the price that gives that z against the days before it."""
    closes = zigzag(DAYS[:E], level, level * 1.01)
    past = list(closes.values())
    entry = price_for_z(past[-29:], entry_z)
    closes[DAYS[E]] = entry
    for i, spec in enumerate(after_entry, start=E + 1):
        past = list(closes.values())
        price = price_for_z(past[-29:], float(spec[2:])) if isinstance(spec, str) else spec
        closes[DAYS[i]] = price
    return {symbol: closes}, entry


def test_entry_fill_then_reversion_exit(sim_factory):
    series, entry = scenario(["z=0.5"])
    sim = sim_factory(series)
    assert sim.run(DAYS[E]) == 0
    held = sim.store.load_holdings()["AAA"]
    assert held.side == "long" and held.entry_price == entry
    assert held.qty == pytest.approx(100 / entry, abs=1e-8)
    assert sim.run(DAYS[E + 1]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"
    exit_price = float(trade["exit_price"])
    assert float(trade["pnl_usd"]) == pytest.approx((exit_price - entry) * held.qty, abs=0.006)
    assert sim.store.load_holdings() == {} and sim.store.load_pending() == {}


def test_fills_after_the_run_are_reported_by_the_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    series, entry = scenario([-1.0], entry_z=-2.5)
    frame = flat_bars("AAA", series["AAA"])
    # The entry day falls through the afternoon (open, high, low, close): the noon buy rests,
    # then fills at its limit on the way down, after the run has stopped waiting.
    day = frame["date"] == DAYS[E].isoformat()
    frame.loc[day, ["open", "high", "low", "close"]] = [entry + 0.5, entry + 1, entry - 3,
                                                       entry - 2]
    frame.loc[frame["date"] == DAYS[E + 1].isoformat(), ["open", "high", "low", "close"]] = \
        entry - 2
    sim = Sim(tmp_path, market(frame), DAYS[E - 1], spread_bps=2.0)
    sim.env["TICKERS"] = "AAA"
    try:
        sim.run(DAYS[E])
        assert sim.last_summary()["fills"] == [] and len(sim.last_summary()["entries"]) == 1
        sim.run(DAYS[E + 1])
        fills = sim.last_summary()["fills"]
        # The late entry fill first; then this run's stop-loss (z is below -3 now), a market
        # order by default, which fills at once.
        assert [(f["symbol"], f["side"], f["status"]) for f in fills] == \
            [("AAA", "buy", "filled"), ("AAA", "sell", "filled")]
        (trade,) = sim.trades()
        assert float(trade["entry_price"]) == fills[0]["filled_avg_price"]
    finally:
        sim.close()


def test_stop_loss_exit(sim_factory):
    series, _ = scenario(["z=-3.5"])
    sim = sim_factory(series)
    sim.run(DAYS[E])
    sim.run(DAYS[E + 1])
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "stop_loss" and float(trade["pnl_usd"]) < 0


def test_max_holding_period_exit(sim_factory):
    series, _ = scenario(["z=-1.0"] * 6)
    sim = sim_factory(series)
    for i in range(E, E + 7):
        assert sim.run(DAYS[i]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "max_holding_period"
    assert int(trade["holding_days"]) >= 5
    entry_day = date.fromisoformat(trade["entry_time"][:10])
    exit_day = date.fromisoformat(trade["exit_time"][:10])
    assert (exit_day - entry_day).days == int(trade["holding_days"])


def test_short_entry_needs_whole_shares(sim_factory):
    series, _ = scenario([], entry_z=2.0, level=20.0)
    series.update({"BIG": scenario([], entry_z=2.0, level=300.0)[0]["AAA"]})
    sim = sim_factory(series)
    sim.run(DAYS[E])
    held = sim.store.load_holdings()
    assert held["AAA"].side == "short" and held["AAA"].qty == float(int(100 / 20.5))
    assert "BIG" not in held
    assert "whole shares" in sim.last_summary()["skipped"]["BIG"]


def test_unfilled_entry_expires_and_is_forgotten(sim_factory):
    series, _ = scenario(["z=-1.0"])
    sim = sim_factory(series, spread_bps=50.0)  # the ask never comes down to the limit
    sim.run(DAYS[E])
    assert len(sim.store.load_pending()) == 1 and sim.store.load_holdings() == {}
    sim.run(DAYS[E + 1])
    assert sim.store.load_holdings() == {} and sim.trades() == []
    assert any("expired" in n for n in sim.last_summary()["notes"])


def test_rerun_same_day_places_nothing_twice(sim_factory):
    series, _ = scenario(["z=0.5"])
    sim = sim_factory(series)
    sim.run(DAYS[E])
    sim.run(DAYS[E])
    sim.run(DAYS[E + 1])
    sim.run(DAYS[E + 1])
    posts = [r for r in sim.server.requests() if r["method"] == "POST"
             and r["path"] == "/v2/orders"]
    assert len(posts) == 2  # one entry, one exit
    assert len(sim.trades()) == 1


def test_partial_fill_is_a_position_of_the_filled_quantity(sim_factory):
    series, entry = scenario(["z=-1.0"])
    sim = sim_factory(series, partial_fill_probability=1.0, seed=7)
    sim.run(DAYS[E])
    held = sim.store.load_holdings()["AAA"]
    assert 0 < held.qty < 100 / entry - 1e-6
    assert len(sim.store.load_pending()) == 1  # the rest is still working
    sim.run(DAYS[E + 1])  # the rest filled in part during the afternoon, then expired
    assert sim.store.load_pending() == {}
    after = sim.store.load_holdings()["AAA"]
    assert after.qty == sim.broker_position("AAA")["qty"] and after.qty >= held.qty
    assert after.entry_time == held.entry_time  # the holding period starts at the first fill


def test_position_closed_outside_the_bot_is_recorded(sim_factory):
    import requests

    series, _ = scenario(["z=-1.0", "z=-1.0"])
    sim = sim_factory(series)
    sim.run(DAYS[E])
    sim.exchange.advance_to(new_york_noon(DAYS[E + 1]))
    headers = {"APCA-API-KEY-ID": sim.exchange.config.key_id,
               "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}
    response = requests.delete(f"{sim.server.trading_url}/v2/positions/AAA", headers=headers,
                               timeout=10)
    assert response.status_code == 200
    sim.run(DAYS[E + 1])
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "closed_outside_bot" and trade["exit_price"] != ""
    assert sim.store.load_holdings() == {}


def test_holiday_and_early_close(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    days = sessions(date(2022, 9, 1), 70)  # through Thanksgiving week
    closes = zigzag(days)
    black_friday = date(2022, 11, 25)  # NYSE closes at 13:00
    past = [closes[d] for d in days if d < black_friday][-29:]
    closes[black_friday] = price_for_z(past, -2.0)
    sim = Sim(tmp_path, market(flat_bars("AAA", closes)), date(2022, 11, 23), spread_bps=50.0)
    sim.env["TICKERS"] = "AAA"
    try:
        assert sim.run(date(2022, 11, 24)) == 0  # Thanksgiving
        assert sim.last_summary()["outcome"] == "market_closed"
        assert sim.run(black_friday) == 0
        assert sim.last_summary()["outcome"] == "done"
        assert len(sim.last_summary()["entries"]) == 1
        sim.run(date(2022, 11, 28))
        notes = sim.last_summary()["notes"]
        assert any("expired" in n for n in notes)  # expired at the 13:00 close
    finally:
        sim.close()


def test_missing_and_halted_symbols_are_skipped(sim_factory):
    series, _ = scenario([])
    halted = zigzag(DAYS[:E + 1])
    del halted[DAYS[E - 3]]
    series["HLT"] = halted
    sim = sim_factory(series)
    sim.env["TICKERS"] = "AAA,HLT,ZZZZ"
    assert sim.run(DAYS[E]) == 0
    skipped = sim.last_summary()["skipped"]
    assert "not tradable" in skipped["ZZZZ"]
    assert "no daily bar" in skipped["HLT"]
    assert "AAA" in sim.store.load_holdings()


def test_split_does_not_look_like_a_crash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = market_data.load("splits")
    sim = Sim(tmp_path, data, date(2005, 2, 25), spread_bps=2.0)
    sim.env["TICKERS"] = "AAPL"
    try:
        assert sim.run(date(2005, 2, 28)) == 0  # AAPL's 2-for-1 ex-date
        z = sim.last_summary()["z_scores"]["AAPL"]
        assert z is not None and z > -1.5
        assert sim.last_summary()["entries"] == []
        raw = data.frame("AAPL").loc["2005-01-14":"2005-02-25", "close"].tolist()[-29:]
        from signal_generator import zscore
        raw_z = zscore(raw, sim.last_summary()["prices"]["AAPL"])
        assert raw_z < -3  # what raw bars would have said
    finally:
        sim.close()
