"""Reconciliation that doubts one answer: over HTTP, with the exchange's fault controls.

Each test arms faults through `POST /_sim/faults` (a given JSON body, a status, after the
order was committed) and runs the real bot; nothing may be orphaned, lost or doubled: the
invariants of the Reliability section hold after every run, and each position the bot opened
is closed by the bot.
"""

from __future__ import annotations

import requests

from simbroker import wire
from tests.reliability_support import check_invariants
from tests.test_bot_e2e import DAYS, E, scenario

POSITIONS = "/v2/positions"
ORDERS = "/v2/orders"
LOOKUP = "/v2/orders:by_client_order_id"


def arm(sim, **fault) -> None:
    """Arm one fault through the exchange's control endpoint."""
    response = requests.post(f"{sim.server.trading_url}/_sim/faults", json=fault,
                             headers=_headers(sim), timeout=10)
    assert response.status_code == 200, response.text


def _headers(sim) -> dict[str, str]:
    return {"APCA-API-KEY-ID": sim.exchange.config.key_id,
            "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}


def posts(sim) -> list[dict]:
    return [r for r in sim.server.requests() if r["method"] == "POST" and r["path"] == ORDERS]


def sound(sim) -> None:
    assert check_invariants(sim.exchange, sim.log_dir) == []


def held_then_reverts(sim_factory, days_held: int = 1):
    """AAA entered long on day E, back to its mean on day E + days_held."""
    series, _ = scenario(["z=-1.0"] * (days_held - 1) + ["z=0.5"] + ["z=0.0"] * 3)
    return sim_factory(series)


def test_one_empty_positions_answer_orphans_nothing(sim_factory):
    sim = held_then_reverts(sim_factory)
    assert sim.run(DAYS[E]) == 0
    arm(sim, method="GET", path=POSITIONS, status=200, body=[])
    assert sim.run(DAYS[E + 1]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion" and trade["pnl_usd"] != ""
    assert sim.store.load_holdings() == {}
    assert any("a second read shows them" in n for n in sim.last_summary()["notes"])
    sound(sim)


def test_two_empty_positions_answers_keep_the_record_until_the_broker_shows_it(sim_factory):
    sim = held_then_reverts(sim_factory)
    assert sim.run(DAYS[E]) == 0
    arm(sim, method="GET", path=POSITIONS, status=200, body=[], count=2)
    assert sim.run(DAYS[E + 1]) == 0
    assert sim.trades() == [] and "AAA" in sim.store.load_holdings()
    summary = sim.last_summary()
    assert summary["exits"] == [] and "AAA" in summary["unmanaged"]
    assert sim.broker_position("AAA")["qty"] == sim.store.load_holdings()["AAA"].qty
    assert sim.run(DAYS[E + 2]) == 0  # the broker answers right again: the bot exits
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion" and sim.store.load_holdings() == {}
    sound(sim)


def test_a_long_position_with_a_negative_qty_is_a_bad_answer(sim_factory):
    sim = held_then_reverts(sim_factory)
    assert sim.run(DAYS[E]) == 0
    sim.exchange.advance_to(sim.exchange.now.replace(hour=17))  # still the session (UTC)
    (position,) = [wire.position_json(sim.exchange, p, sim.exchange.moment())
                   for p in sim.exchange.book.positions.values()]
    arm(sim, method="GET", path=POSITIONS, status=200,
        body=[{**position, "qty": "-" + position["qty"]}])
    assert sim.run(DAYS[E + 1]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"
    sound(sim)


def test_lost_records_are_re_adopted_from_the_bots_own_entry(sim_factory):
    sim = held_then_reverts(sim_factory, days_held=2)
    assert sim.run(DAYS[E]) == 0
    held = sim.store.load_holdings()["AAA"]
    sim.store.positions_path.unlink()
    assert sim.run(DAYS[E + 1]) == 0
    adopted = sim.store.load_holdings()["AAA"]
    assert (adopted.side, adopted.qty, adopted.entry_price, adopted.entry_time) == \
        (held.side, held.qty, held.entry_price, held.entry_time)
    assert not any("left alone" in n for n in sim.last_summary()["notes"])
    assert sim.run(DAYS[E + 2]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion" and trade["entry_z"] == ""
    assert trade["entry_client_order_id"] == held.entry_client_order_id
    sound(sim)


def test_duplicate_id_answer_keeps_the_record_and_adopts_the_order(sim_factory):
    series, _ = scenario(["z=0.5"])
    sim = sim_factory(series)
    # The entry POST is committed but answered 504; the look-ups answer 404; the re-send is
    # refused 422 "client_order_id must be unique"; the look-up after it answers 404 again.
    arm(sim, method="POST", path=ORDERS, status=504, after_commit=True)
    arm(sim, method="GET", path=LOOKUP, status=404, count=3)
    assert sim.run(DAYS[E]) == 1  # unconfirmed: the run says so
    (record,) = sim.store.load_pending().values()
    assert "must be unique" in record.broker_evidence
    assert len([o for o in sim.exchange.orders.values()]) == 1
    assert sim.run(DAYS[E + 1]) == 0  # the order is found, its fill adopted, then exited
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"
    assert sim.store.load_holdings() == {} and sim.store.load_pending() == {}
    sound(sim)


def test_a_look_up_answering_another_order_is_not_believed(sim_factory):
    series, _ = scenario(["z=0.5"], symbol="AAA")
    other, _ = scenario([], entry_z=0.0, symbol="BBB")
    sim = sim_factory({**series, **other})
    assert sim.run(DAYS[E]) == 0
    (entry,) = sim.exchange.orders.values()
    stranger = wire.order_json(entry)
    stranger.update(client_order_id="someone-else", symbol="BBB")
    arm(sim, method="GET", path=LOOKUP, status=200, body=stranger, count=2)
    assert sim.run(DAYS[E + 1]) == 1  # every answer wrong: the exit is unconfirmed, exit 1
    assert posts(sim)[1:] == [] and sim.trades() == []
    assert sim.run(DAYS[E + 1]) == 0  # a rerun places the exit
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"
    sound(sim)


def test_an_exit_missing_from_the_history_is_written_when_it_shows(sim_factory):
    sim = held_then_reverts(sim_factory)
    assert sim.run(DAYS[E]) == 0
    # The exit is placed and fills, but its answer is lost and the look-ups miss it.
    arm(sim, method="POST", path=ORDERS, status=504, after_commit=True)
    arm(sim, method="GET", path=LOOKUP, status=404, count=3)
    assert sim.run(DAYS[E + 1]) == 1
    assert "AAA" not in sim.exchange.book.positions and sim.trades() == []
    # Next run: the open-orders and history reads lack it, and so does its look-up.
    arm(sim, method="GET", path=ORDERS, status=200, body=[], count=2)
    arm(sim, method="GET", path=LOOKUP, status=404)
    assert sim.run(DAYS[E + 2]) == 0
    assert sim.trades() == [] and "AAA" in sim.store.load_holdings()
    summary = sim.last_summary()
    assert summary["exits"] == [] and "AAA" in summary["unmanaged"]
    assert len(posts(sim)) == 3  # entry, exit, its re-send (refused 422): no other order
    # One history read lacks it again: the look-up finds it, and the trade is written.
    arm(sim, method="GET", path=ORDERS, status=200, body=[], count=2)
    assert sim.run(DAYS[E + 3]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion" and trade["exit_price"] != ""
    assert trade["exit_client_order_id"] == f"mr-{DAYS[E + 1]:%Y%m%d}-AAA-exit"
    assert sim.store.load_holdings() == {} and sim.store.load_pending() == {}
    assert any("found by client_order_id" in n for n in sim.last_summary()["notes"])
    sound(sim)
