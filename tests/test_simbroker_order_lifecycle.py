"""The exchange's order lifecycle, as Alpaca's: pending_new in the POST answer, new and the
fill after it, seeded asynchronous rejections, and every OrderStatus through the control."""

from __future__ import annotations

import math

import pytest
import requests

from simbroker import Exchange, ExchangeConfig
from simbroker.records import Status
from tests.simbroker_fixtures import (
    KEY,
    MAR1,
    MAR2,
    NOON_MAR1,
    SECRET,
    limit_buy,
    make_sim,
    ny,
    tiny_market,
)

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, async_acceptance=True)


@pytest.fixture
def open_sim(monkeypatch):
    """Served exchanges with given settings, kept open until the test ends."""
    running = []

    def start(now=NOON_MAR1, **config):
        running.append(make_sim(monkeypatch, now, **config))
        return next(running[-1])

    yield start
    for gen in running:
        gen.close()


def test_a_marketable_order_is_pending_new_in_the_answer_and_filled_after_it(open_sim):
    sim = open_sim(async_acceptance=True)
    posted = limit_buy(sim.api, "FLAT", 5, 20.0)
    assert posted.status == "pending_new" and float(posted.filled_qty) == 0
    after = sim.api.get_order(posted.id)
    assert after.status == "filled" and float(after.filled_avg_price) == 20.0
    # The same fill, at the same time and price, as the synchronous exchange gives at once.
    sync = open_sim(async_acceptance=False)
    at_once = limit_buy(sync.api, "FLAT", 5, 20.0)
    assert (at_once.status, at_once.filled_avg_price, at_once.filled_at) == \
        ("filled", after.filled_avg_price, after.filled_at)


def test_acceptance_waits_for_the_simulated_clock(open_sim):
    sim = open_sim(async_acceptance=True, acceptance_delay_seconds=5.0)
    posted = limit_buy(sim.api, "FLAT", 5, 20.0)
    assert sim.api.get_order(posted.id).status == "pending_new"  # frozen clock
    sim.advance_to(ny(MAR1, 12, 0).replace(second=4))
    assert sim.api.get_order(posted.id).status == "pending_new"
    sim.advance_to(ny(MAR1, 12, 0).replace(second=6))
    order = sim.api.get_order(posted.id)
    assert order.status == "filled" and order._raw["filled_at"].startswith("2022-03-01T17:00:05")


def test_rejections_come_after_the_answer_at_the_configured_rate(open_sim):
    # 1,200 requests in a few seconds: no request budget (rate limits have their own tests).
    sim = open_sim(async_acceptance=True, rejection_probability=0.3, seed=4,
                   starting_cash=10_000_000.0, rate_limit=0)
    n = 400
    ids = [limit_buy(sim.api, "FLAT", 1, 19.0).id for _ in range(n)]  # resting, no fills
    statuses = [sim.api.get_order(i).status for i in ids]
    assert set(statuses) == {"new", "rejected"}
    rejected = statuses.count("rejected")
    sigma = math.sqrt(n * 0.3 * 0.7)
    assert abs(rejected - n * 0.3) < 4 * sigma, rejected
    assert all(float(sim.api.get_order(i).filled_qty) == 0 for i in ids
               if statuses[ids.index(i)] == "rejected")


def test_an_order_accepted_after_hours_can_be_rejected_at_the_open(open_sim):
    sim = open_sim(ny(MAR1, 18, 0), async_acceptance=True, rejection_probability=1.0)
    posted = limit_buy(sim.api, "FLAT", 5, 20.0)
    assert posted.status == "accepted"
    sim.advance_to(ny(MAR2, 10, 0))
    order = sim.api.get_order(posted.id)
    assert order.status == "rejected" and order.failed_at and float(order.filled_qty) == 0
    assert sim.api.list_positions() == []


def _set(sim, order_id: str, status: str) -> requests.Response:
    return requests.post(f"{sim.server.trading_url}/_sim/orders/{order_id}/status",
                         json={"status": status}, headers=HEADERS, timeout=10)


@pytest.mark.parametrize("status", ["stopped", "suspended", "pending_cancel", "done_for_day",
                                    "calculated", "held", "accepted_for_bidding",
                                    "pending_replace", "accepted", "new"])
def test_the_control_puts_an_open_order_into_any_open_status(sim, status):
    order = limit_buy(sim.api, "AAA", 1, 90.0)  # rests
    response = _set(sim, order.id, status)
    assert response.status_code == 200 and response.json()["status"] == status
    assert sim.api.get_order(order.id).status == status
    assert [o.id for o in sim.api.list_orders(status="open")] == [order.id]


@pytest.mark.parametrize("status", ["canceled", "expired", "rejected"])
def test_the_control_ends_an_order(sim, status):
    order = limit_buy(sim.api, "AAA", 1, 90.0)
    assert _set(sim, order.id, status).status_code == 200
    assert sim.api.get_order(order.id).status == status
    assert sim.api.list_orders(status="open") == []


def test_replaced_creates_the_replacement_order(sim):
    order = limit_buy(sim.api, "AAA", 2, 90.0)
    assert _set(sim, order.id, "replaced").json()["status"] == "replaced"
    old = sim.api.get_order(order.id)
    new = sim.api.get_order(old.replaced_by)
    assert new.replaces == old.id and new.client_order_id != old.client_order_id
    assert (new.symbol, new.side, new.qty, new.limit_price, new.status) == \
        ("AAA", "buy", "2", "90", "new")


def test_fills_are_not_statuses_one_sets_and_an_ended_order_stays_ended(sim):
    order = limit_buy(sim.api, "AAA", 1, 90.0)
    for status, words in [("filled", "fills come from the market"), ("sideways", "invalid")]:
        response = _set(sim, order.id, status)
        assert response.status_code == 422 and words in response.json()["message"]
    _set(sim, order.id, "canceled")
    assert "already" in _set(sim, order.id, "new").json()["message"]


def test_a_stopped_order_fills_at_its_price_and_a_suspended_one_waits():
    exchange = Exchange(tiny_market(), ExchangeConfig(spread_bps=0.0), now=NOON_MAR1)
    stopped = exchange.submit_order({"symbol": "AAA", "qty": 1, "side": "buy", "type": "limit",
                                     "limit_price": "90", "time_in_force": "gtc"})
    waiting = exchange.submit_order({"symbol": "AAA", "qty": 1, "side": "buy", "type": "limit",
                                     "limit_price": "97", "time_in_force": "gtc"})
    exchange.settle()
    exchange.set_order_status(stopped.id, "stopped")
    exchange.set_order_status(waiting.id, "suspended")
    exchange.advance_to(ny(MAR2, 15, 0))  # AAA falls through 97 on MAR2: a new order fills
    assert exchange.get_order(stopped.id).status is Status.FILLED
    assert exchange.get_order(stopped.id).filled_avg_price == 90.0
    assert exchange.get_order(waiting.id).status is Status.SUSPENDED
    exchange.set_order_status(waiting.id, "new")
    exchange.advance_to(ny(MAR2, 15, 30))
    assert exchange.get_order(waiting.id).status is Status.FILLED
