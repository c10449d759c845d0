"""Order lifecycle on the local exchange, through the real SDK over HTTP.

Prices come from the bars of tests/simbroker_fixtures.py through the price model's path
(`model_price`, `price_model.limit_fill`), with a zero spread unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from alpaca_trade_api.rest import APIError

from market_calendar import new_york_noon
from simbroker import price_model, synthetic
from tests.simbroker_fixtures import (
    AAA_MARKETABLE,
    AAA_NOON_ASK,
    AAA_NOON_BID,
    MAR1,
    MAR2,
    MAR3,
    MAR4,
    MAR7,
    NOON_FRACTION,
    NOON_MAR1,
    limit_buy,
    make_sim,
    model_price,
    model_quote,
    ny,
    tiny_market,
)


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def test_marketable_limit_fills_at_once_at_the_ask(sim):
    order = limit_buy(sim.api, "AAA", 10, AAA_MARKETABLE, client_order_id="c-1")
    assert order.status == "filled"
    assert order.filled_qty == "10" and order.filled_avg_price == str(AAA_NOON_ASK)
    assert order.filled_at == order.submitted_at
    position = sim.api.get_position("AAA")
    assert (position.qty, position.avg_entry_price, position.side) == (
        "10", str(AAA_NOON_ASK), "long")


def test_market_order_fills_at_the_quote(sim):
    buy = sim.api.submit_order("AAA", qty=3, side="buy", type="market", time_in_force="day")
    sell = sim.api.submit_order("AAA", qty=3, side="sell", type="market", time_in_force="day")
    assert (buy.filled_avg_price, sell.filled_avg_price) == (str(AAA_NOON_ASK),
                                                             str(AAA_NOON_BID))
    assert sim.api.list_positions() == []
    assert float(sim.account()["cash"]) == pytest.approx(
        100_000 - 3 * (AAA_NOON_ASK - AAA_NOON_BID))


def test_resting_day_limit_expires_at_the_close(sim):
    order = limit_buy(sim.api, "AAA", 10, 97.00)
    assert order.status == "new"
    sim.advance_to(ny(MAR1, 15, 59))
    assert sim.api.get_order(order.id).status == "new"
    sim.advance_to(ny(MAR1, 16, 0))
    expired = sim.api.get_order(order.id)
    assert expired.status == "expired" and expired.filled_qty == "0"
    assert expired._raw["expired_at"] == "2022-03-01T21:00:00.000000Z"


def test_gtc_limit_rests_overnight_and_fills_at_the_first_touch(sim):
    order = limit_buy(sim.api, "AAA", 10, 97.00, time_in_force="gtc")
    sim.advance_to(ny(MAR2, 16, 30))
    filled = sim.api.get_order(order.id)
    assert filled.status == "filled" and filled.filled_avg_price == "97"
    # 03-01's path stays above its low of 98 after noon; on 03-02 (103 -> 96, low 95) the
    # order fills where the model path first comes down to 97.
    bar = tiny_market().bar("AAA", MAR2)
    hit, _, fraction = price_model.limit_fill(
        bar.open, bar.high, bar.low, bar.close, is_buy=True, limit=97.0, start=0.0, end=1.0,
        spread_bps=0.0, key=price_model.path_key("AAA", MAR2))
    assert hit and model_price("AAA", MAR2, float(fraction)) == pytest.approx(97.0)
    when = filled.filled_at.to_pydatetime()
    expected = ny(MAR2, 9, 30) + timedelta(seconds=float(fraction) * 23_400)
    assert abs((when - expected).total_seconds()) < 1e-3


def test_order_before_the_open_is_accepted_then_new_at_the_open(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 8, 0)):
        resting = limit_buy(sim.api, "AAA", 10, 90.00)
        market = sim.api.submit_order("AAA", qty=10, side="buy", type="market",
                                      time_in_force="day")
        assert (resting.status, market.status) == ("accepted", "accepted")
        sim.advance_to(ny(MAR1, 9, 29))
        assert sim.api.get_order(resting.id).status == "accepted"
        sim.advance_to(ny(MAR1, 9, 30))
        assert sim.api.get_order(resting.id).status == "new"
        opened = sim.api.get_order(market.id)
        assert (opened.status, opened.filled_avg_price) == ("filled", "100")
        assert opened._raw["filled_at"] == "2022-03-01T14:30:00.000000Z"


def test_weekend_order_waits_for_monday(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR4, 17, 0)):  # Friday after the close
        order = sim.api.submit_order("FLAT", qty=1, side="buy", type="market",
                                     time_in_force="day")
        sim.advance_to(ny(date(2022, 3, 6), 12, 0))  # Sunday
        assert sim.api.get_order(order.id).status == "accepted"
        clock = sim.api.get_clock()
        assert not clock.is_open
        assert clock._raw["next_open"] == "2022-03-07T09:30:00-05:00"
        sim.advance_to(ny(MAR7, 9, 30))
        assert sim.api.get_order(order.id).status == "filled"


def test_holiday_and_early_close(monkeypatch):
    # Thanksgiving 2021: closed on Thursday 11-25, closing at 13:00 on Friday 11-26.
    data = synthetic.generate(["XYZ"], start=date(2021, 11, 22), sessions=6, seed=3)
    for sim in make_sim(monkeypatch, new_york_noon(date(2021, 11, 25)), data):
        clock = sim.api.get_clock()._raw
        assert clock["is_open"] is False
        assert clock["next_open"] == "2021-11-26T09:30:00-05:00"
        assert clock["next_close"] == "2021-11-26T13:00:00-05:00"
        order = limit_buy(sim.api, "XYZ", 1, 1.00)
        assert order.status == "accepted"
        sim.advance_to(ny(date(2021, 11, 26), 12, 59))
        assert sim.api.get_order(order.id).status == "new"
        sim.advance_to(ny(date(2021, 11, 26), 13, 0))
        assert sim.api.get_order(order.id).status == "expired"
        calendar = sim.api.get_calendar("2021-11-24", "2021-11-29")
        assert [(c._raw["date"], c._raw["close"]) for c in calendar] == [
            ("2021-11-24", "16:00"), ("2021-11-26", "13:00"), ("2021-11-29", "16:00")]


def test_cancel_and_the_states_that_cannot_be_canceled(sim):
    resting = limit_buy(sim.api, "AAA", 10, 90.00)
    sim.api.cancel_order(resting.id)
    canceled = sim.api.get_order(resting.id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    with pytest.raises(APIError) as again:
        sim.api.cancel_order(resting.id)
    assert (again.value.status_code, again.value.code) == (422, 42210000)
    assert 'already in "canceled" state' in str(again.value)
    filled = limit_buy(sim.api, "AAA", 1, AAA_MARKETABLE)
    with pytest.raises(APIError) as done:
        sim.api.cancel_order(filled.id)
    assert done.value.status_code == 422
    with pytest.raises(APIError) as missing:
        sim.api.cancel_order("00000000-0000-4000-8000-000000000000")
    assert (missing.value.status_code, missing.value.code) == (404, 40410000)


def test_cancel_all_orders(sim):
    for limit in (90.0, 91.0):
        limit_buy(sim.api, "AAA", 1, limit)
    sim.api.cancel_all_orders()
    assert sim.api.list_orders(status="open") == []
    assert {o.status for o in sim.api.list_orders(status="closed")} == {"canceled"}


def test_client_order_id_lookup_and_uniqueness(sim):
    order = limit_buy(sim.api, "AAA", 1, 90.00, client_order_id="run-1-AAA")
    assert sim.api.get_order_by_client_order_id("run-1-AAA").id == order.id
    sim.api.cancel_order(order.id)
    with pytest.raises(APIError) as duplicate:  # unique forever, not just while open
        limit_buy(sim.api, "AAA", 1, 90.00, client_order_id="run-1-AAA")
    assert (duplicate.value.status_code, duplicate.value.code) == (422, 42210000)
    with pytest.raises(APIError) as missing:
        sim.api.get_order_by_client_order_id("never-sent")
    assert missing.value.status_code == 404


def test_list_orders_filters(sim):
    first = limit_buy(sim.api, "AAA", 1, 90.00)
    second = limit_buy(sim.api, "FLAT", 1, 19.00)
    filled = limit_buy(sim.api, "FLAT", 1, 20.00)
    assert [o.id for o in sim.api.list_orders()] == [second.id, first.id]  # open, newest first
    assert [o.id for o in sim.api.list_orders(status="all", direction="asc")] == [
        first.id, second.id, filled.id]
    assert [o.id for o in sim.api.list_orders(status="closed")] == [filled.id]
    assert [o.id for o in sim.api.list_orders(status="all", symbols=["AAA"])] == [first.id]
    assert len(sim.api.list_orders(status="all", limit=2)) == 2
    after = sim.api.list_orders(status="all", after=first._raw["submitted_at"],
                                direction="asc")
    assert [o.id for o in after] == [second.id, filled.id]  # `after` is exclusive
    until = sim.api.list_orders(status="all", until=second._raw["submitted_at"])
    assert [o.id for o in until] == [first.id]


def test_partial_fills_are_seeded_and_the_rest_rests(monkeypatch):
    outcomes = []
    for _ in range(2):
        for sim in make_sim(monkeypatch, NOON_MAR1, partial_fill_probability=1.0, seed=42):
            order = limit_buy(sim.api, "FLAT", 100, 20.00, client_order_id="partial-1")
            assert order.status == "partially_filled"
            first = float(order.filled_qty)
            assert 30 <= first <= 70 and first == int(first)  # whole shares
            assert order.filled_at is None
            sim.advance_to(NOON_MAR1 + timedelta(minutes=29))
            assert float(sim.api.get_order(order.id).filled_qty) == first  # rests meanwhile
            sim.advance_to(ny(MAR1, 16, 0))
            final = sim.api.get_order(order.id)._raw
            outcomes.append((first, final["filled_qty"], final["status"]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1:] == ("100", "filled")


def test_fractional_partial_fill_rounds_to_nine_decimals(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, partial_fill_probability=1.0):
        order = limit_buy(sim.api, "FLAT", 10.5, 20.00)
        filled = order._raw["filled_qty"]
        assert 3.15 <= float(filled) <= 7.35 and len(filled.partition(".")[2]) <= 9


def test_partially_filled_day_order_expires_with_the_rest(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 15, 45), partial_fill_probability=1.0):
        order = limit_buy(sim.api, "FLAT", 100, 20.00)
        sim.advance_to(ny(MAR1, 16, 0))
        expired = sim.api.get_order(order.id)
        assert expired.status == "expired" and 0 < float(expired.filled_qty) < 100


def test_split_scales_the_position_and_adjusts_gtc_limit_orders(sim):
    sim.api.submit_order("SPL", qty=10, side="buy", type="market", time_in_force="day")
    resting = sim.api.submit_order("SPL", qty=5, side="sell", type="limit",
                                   time_in_force="gtc", limit_price=250)
    sim.advance_to(ny(MAR3, 9, 29))
    assert sim.api.get_position("SPL").qty == "10"
    sim.advance_to(ny(MAR3, 9, 30))
    position = sim.api.get_position("SPL")
    # Bought at noon of 03-01 at the ask on the model path; after the 2-for-1 split: twice
    # the shares at half the price.
    ask = model_quote(model_price("SPL", MAR1, NOON_FRACTION))[1]
    assert position.qty == "20" and float(position.avg_entry_price) == ask / 2
    assert position.lastday_price == "100"  # 03-02's close of 200, split-adjusted
    # Alpaca adjusts non-marketable GTC limit orders for corporate actions (spec, TimeInForce):
    # 5 @ 250 is now 10 @ 125, still working, and holds 10 of the 20 shares.
    adjusted = sim.api.get_order(resting.id)._raw
    assert (adjusted["status"], adjusted["qty"], adjusted["limit_price"]) == ("new", "10", "125")
    assert adjusted["updated_at"] == "2022-03-03T14:30:00.000000Z"
    assert position.qty_available == "10"


def test_close_position_sells_at_the_current_quote(sim):
    limit_buy(sim.api, "AAA", 10, AAA_MARKETABLE)
    order = sim.api.close_position("AAA")
    assert (order.side, order.type, order.qty) == ("sell", "market", "10")
    assert sim.api.get_order(order.id).filled_avg_price == str(AAA_NOON_BID)
    with pytest.raises(APIError) as gone:
        sim.api.get_position("AAA")
    assert (gone.value.status_code, gone.value.code) == (404, 40410000)
    with pytest.raises(APIError) as none:
        sim.api.close_position("AAA")
    assert none.value.status_code == 404


def test_close_position_outside_hours_is_accepted_until_the_open(sim):
    limit_buy(sim.api, "AAA", 4, AAA_MARKETABLE)
    sim.advance_to(ny(MAR1, 17, 0))
    order = sim.api.close_position("AAA", qty=1)
    assert (order.status, order.qty) == ("accepted", "1")
    assert sim.api.get_position("AAA").qty_available == "3"
    sim.advance_to(ny(MAR2, 9, 30))
    assert sim.api.get_order(order.id).filled_avg_price == "103"
    assert sim.api.get_position("AAA").qty == "3"


def test_notional_buy_is_sized_at_the_fill(sim):
    order = sim.api.submit_order("FLAT", notional=1000, side="buy", type="market",
                                 time_in_force="day")
    assert order._raw["notional"] == "1000" and order._raw["qty"] is None
    assert order.filled_qty == "50" and order.status == "filled"


def test_halted_symbol_does_not_trade(sim):
    sim.advance_to(ny(MAR2, 9, 0))
    order = sim.api.submit_order("HALT", qty=1, side="buy", type="market",
                                 time_in_force="day")
    sim.advance_to(ny(MAR2, 15, 0))
    assert sim.api.get_order(order.id).status == "new"
    assert sim.api.get_latest_trade("HALT").price == 50.5  # 03-01's close, all day
    sim.advance_to(ny(MAR2, 16, 0))
    assert sim.api.get_order(order.id).status == "expired"


def test_close_all_positions(sim):
    limit_buy(sim.api, "AAA", 2, AAA_MARKETABLE)
    sim.api.submit_order("FLAT", qty=3, side="sell", type="market", time_in_force="day")
    resting = limit_buy(sim.api, "AAA", 1, 90.00)
    closed = [c._raw for c in sim.api.close_all_positions()]
    assert sorted((c["symbol"], c["status"]) for c in closed) == [("AAA", 200), ("FLAT", 200)]
    assert {c["body"]["side"] for c in closed} == {"buy", "sell"}
    assert sim.api.list_positions() == []
    assert sim.api.get_order(resting.id).status == "new"  # cancel_orders was not asked for
