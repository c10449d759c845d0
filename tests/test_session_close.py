"""No order leaves after the session's close: checked before every POST against the run's
estimate of the broker's time and, near the close, the broker's clock (early closes too)."""

from __future__ import annotations

import threading
import time as time_module
from datetime import date, datetime, time

import pytest
import requests

import trading_bot
from market_calendar import NEW_YORK
from tests.reliability_support import check_invariants
from tests.sim_harness import Sim, flat_bars, market, price_for_z, sessions, zigzag
from tests.test_bot_e2e import DAYS, E, scenario

ORDERS = "/v2/orders"


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=NEW_YORK)


@pytest.fixture
def sim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    series, _ = scenario([])
    s = Sim(tmp_path, market(flat_bars("AAA", series["AAA"])), DAYS[E - 1], spread_bps=0.0)
    s.env["TICKERS"] = "AAA"
    yield s
    s.close()


def posts(sim: Sim) -> list[dict]:
    return [r for r in sim.server.requests() if r["method"] == "POST" and r["path"] == ORDERS]


def test_a_run_started_seconds_before_the_close_sends_nothing(sim):
    sim.exchange.advance_to(at(DAYS[E], 15, 59, 45))
    assert sim.run() == 0
    (entry,) = sim.last_summary()["entries"]
    assert entry["status"].startswith("refused: the session closes at 16:00:00")
    assert posts(sim) == [] and sim.store.load_pending() == {}


def test_a_run_that_straddles_the_close_sends_nothing_after_it(sim):
    sim.exchange.advance_to(at(DAYS[E], 15, 59, 25))  # 35 s before the close: time enough
    # ...but the snapshots answer takes 6 s: by then the close is under 30 s away. The
    # exchange's clock stands still; the run's own estimate of the time moves on.
    response = requests.post(f"{sim.server.trading_url}/_sim/faults", json={
        "method": "GET", "path": "/v2/stocks/snapshots", "delay_seconds": 6},
        headers={"APCA-API-KEY-ID": sim.exchange.config.key_id,
                 "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}, timeout=10)
    assert response.status_code == 200
    assert sim.run() == 0
    assert posts(sim) == [] and "refused: the session closes" in \
        sim.last_summary()["entries"][0]["status"]
    assert any(r["path"] == "/v2/clock" for r in sim.server.requests()[2:])  # asked again


def test_an_early_close_counts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    days = sessions(date(2022, 9, 1), 70)
    closes = zigzag(days)
    black_friday = date(2022, 11, 25)  # NYSE closes at 13:00
    past = [closes[d] for d in days if d < black_friday][-29:]
    closes[black_friday] = price_for_z(past, -2.0)
    sim = Sim(tmp_path, market(flat_bars("AAA", closes)), date(2022, 11, 23), spread_bps=0.0)
    sim.env["TICKERS"] = "AAA"
    try:
        sim.exchange.advance_to(at(black_friday, 12, 59, 45))
        assert sim.run() == 0
        assert sim.last_summary()["entries"][0]["status"].startswith(
            "refused: the session closes at 13:00:00")
        assert posts(sim) == []
    finally:
        sim.close()


def test_the_same_day_guard_knows_an_exit_filled_at_the_open():
    today = date(2022, 3, 4)
    row = {"symbol": "AAA", "exit_client_order_id": "mr-20220303-AAA-exit",
           "exit_time": "2022-03-04T14:30:00+00:00"}  # yesterday's exit, filled at 09:30
    assert trading_bot.exited_today([row], today) == {"AAA"}
    assert trading_bot.exited_today([{**row, "exit_time": "2022-03-03T20:00:00+00:00"}],
                                    today) == set()
    assert trading_bot.exited_today([{**row, "exit_time": ""}], today) == set()


def test_an_exit_that_reached_the_broker_after_the_close_and_filled_at_the_open_is_not_re_entered(
        tmp_path, monkeypatch):
    # AAA: entered on day E, back to its mean on E + 1, and down at z=-2 again on E + 2.
    monkeypatch.chdir(tmp_path)
    series, _ = scenario(["z=0.5", "z=-2.0", "z=-2.0"])
    sim = Sim(tmp_path, market(flat_bars("AAA", series["AAA"])), DAYS[E - 1], spread_bps=0.0)
    sim.env.update(TICKERS="AAA", EXIT_ORDER_TYPE="market")
    headers = {"APCA-API-KEY-ID": sim.exchange.config.key_id,
               "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}
    try:
        assert sim.run(DAYS[E]) == 0 and "AAA" in sim.store.load_holdings()
        # Day E + 1, 15:59:20: 40 s before the close the exit may leave; its POST is slow on
        # the way (3 s), and the close passes meanwhile: the broker takes the DAY order for
        # the next session, which fills it at the open.
        sim.exchange.advance_to(at(DAYS[E + 1], 15, 59, 20))
        response = requests.post(f"{sim.server.trading_url}/_sim/faults", json={
            "method": "POST", "path": ORDERS, "delay_seconds": 3}, headers=headers, timeout=10)
        assert response.status_code == 200
        def after_the_close_once_the_post_is_held() -> None:
            deadline = time_module.monotonic() + 60
            while sim.server.faults.armed() and time_module.monotonic() < deadline:
                time_module.sleep(0.01)  # the POST has arrived when its fault is taken
            requests.post(f"{sim.server.trading_url}/_sim/clock", headers=headers, timeout=10,
                          json={"to": at(DAYS[E + 1], 16, 0, 5).isoformat()})

        mover = threading.Thread(target=after_the_close_once_the_post_is_held)
        mover.start()
        assert sim.run() == 0
        mover.join()
        (exit_order,) = sim.last_summary()["exits"]
        assert exit_order["status"] == "accepted"  # queued for the next session
        assert sim.trades() == []
        # Day E + 2 at noon: the exit filled at 09:30; AAA's z is -2 again, but the same
        # day's guard knows the symbol was closed today.
        assert sim.run(DAYS[E + 2]) == 0
        (trade,) = sim.trades()
        assert trade["exit_client_order_id"] == exit_order["client_order_id"]
        assert datetime.fromisoformat(trade["exit_time"]).astimezone(NEW_YORK) == \
            at(DAYS[E + 2], 9, 30)
        assert sim.last_summary()["entries"] == []
        assert len(posts(sim)) == 2  # the entry and the exit; no re-entry
        assert sim.store.load_holdings() == {} and sim.store.load_pending() == {}
        assert check_invariants(sim.exchange, sim.log_dir) == []
        assert sim.run(DAYS[E + 3]) == 0  # the next day may enter again
        assert len(sim.last_summary()["entries"]) == 1
    finally:
        sim.close()
