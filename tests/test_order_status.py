"""Every order status that can change what the bot holds, end to end over HTTP.

The bot's entry rests at noon and fills on the way down in the afternoon. Between its run
and a same-day rerun the exchange's control puts the order into a status; the rerun must keep
the record of any order that may still fill (README, "Order statuses"), so that its later
fill becomes a holding with the bot's own entry record (its z), managed to its exit.
"""

from __future__ import annotations

import math

import pytest
import requests

from tests.sim_harness import Sim, flat_bars, market
from tests.test_bot_e2e import DAYS, E, scenario

MAY_STILL_FILL = ["stopped", "suspended", "pending_cancel", "done_for_day", "calculated",
                  "held", "accepted_for_bidding", "pending_replace", "replaced"]


@pytest.fixture
def make(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []

    def build(**exchange) -> Sim:
        series, entry = scenario(["z=-1.0"] * 8, entry_z=-2.5)
        frame = flat_bars("AAA", series["AAA"])
        day = frame["date"] == DAYS[E].isoformat()
        frame.loc[day, ["open", "high", "low", "close"]] = [entry + 0.5, entry + 1, entry - 3,
                                                           entry - 2]
        # Later days rise through the afternoon: a noon sell limit rests, then fills.
        later = frame["date"] > DAYS[E].isoformat()
        close = frame.loc[later, "close"]
        frame.loc[later, "high"], frame.loc[later, "low"] = close + 1, close - 0.5
        frame.loc[later, "close"] = close + 0.01
        sim = Sim(tmp_path, market(frame), DAYS[E - 1], spread_bps=2.0, **exchange)
        sim.env["TICKERS"] = "AAA"
        made.append(sim)
        return sim

    yield build
    for sim in made:
        sim.close()


def set_status(sim: Sim, order_id: str, status: str) -> dict:
    response = requests.post(
        f"{sim.server.trading_url}/_sim/orders/{order_id}/status", json={"status": status},
        headers={"APCA-API-KEY-ID": sim.exchange.config.key_id,
                 "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("status", MAY_STILL_FILL)
def test_an_order_that_may_still_fill_keeps_its_record_and_its_fill_is_managed(make, status):
    sim = make()
    assert sim.run(DAYS[E]) == 0
    (record,) = sim.store.load_pending().values()
    assert record.intent == "entry" and sim.store.load_holdings() == {}
    order = set_status(sim, record.order_id, status)
    assert sim.run(DAYS[E]) == 0  # a rerun sees the status
    assert list(sim.store.load_pending()) == [record.client_order_id]
    posts = [r for r in sim.server.requests() if r["method"] == "POST"
             and r["path"] == "/v2/orders"]
    assert len(posts) == 1  # nothing sent again
    live = order["replaced_by"] or order["id"]
    if status not in ("stopped", "replaced"):
        set_status(sim, live, "new")  # e.g. trading resumes
    for i in range(E + 1, E + 8):
        assert sim.run(DAYS[i]) == 0
        assert not any("left alone" in n for n in sim.last_summary()["notes"])
    (trade,) = sim.trades()
    assert trade["entry_client_order_id"] == record.client_order_id
    assert trade["entry_order_id"] == live
    assert math.isclose(float(trade["entry_z"]), record.z, abs_tol=1e-4)
    assert trade["exit_reason"] in ("mean_reversion", "stop_loss", "max_holding_period")
    assert sim.store.load_holdings() == {} and sim.store.load_pending() == {}


def test_an_order_rejected_after_its_pending_new_answer_leaves_no_record(make):
    sim = make(rejection_probability=1.0)
    assert sim.run(DAYS[E]) == 0
    (entry,) = sim.last_summary()["entries"]
    assert entry["status"] == "pending_new"  # the POST answer
    assert sim.store.load_pending() == {} and sim.store.load_holdings() == {}
    assert any("rejected" in n for n in sim.last_summary()["notes"]) or \
        sim.exchange.get_order_by_client_id(entry["client_order_id"]).status == "rejected"
    assert sim.exchange.book.positions == {}
