"""The account's life beyond orders on the local exchange, through the real SDK over HTTP:
account activities, account restrictions, position_intent, symbol changes and reverse splits
with cash in lieu."""

from __future__ import annotations

import pandas as pd
import pytest
import requests
from alpaca_trade_api.rest import APIError

from simbroker.activities import record_activity
from simbroker.market_data import Split, from_frame
from tests.simbroker_fixtures import (
    DAYS,
    KEY,
    MAR1,
    MAR2,
    MAR3,
    NOON_MAR1,
    _rows,
    limit_buy,
    make_sim,
    ny,
)

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": "SIMSECRET"}


def lifecycle_market():
    """FLAT at 20.00; RSP, a 1-for-3 reverse split on 03-03 (raw 10.00 -> 30.00); OLD / NEW,
    one asset at 50.00 whose symbol changes (NEW carries the whole history, as Alpaca's data
    API serves a renamed symbol)."""
    rows = _rows("FLAT", {d: (20.0, 20.0, 20.0, 20.0, 500_000) for d in DAYS})
    rows += _rows("RSP", {d: ((10.0,) * 4 + (100_000,)) if d < MAR3 else ((30.0,) * 4 + (50_000,))
                          for d in DAYS})
    rows += _rows("OLD", {d: (50.0, 50.0, 50.0, 50.0, 100_000) for d in DAYS})
    rows += _rows("NEW", {d: (50.0, 50.0, 50.0, 50.0, 100_000) for d in DAYS})
    return from_frame(pd.DataFrame(rows), [Split("RSP", MAR3, 1 / 3)], name="lifecycle")


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, lifecycle_market(), fractionable=frozenset())


def control(sim, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, f"{sim.server.trading_url}{path}", json=body,
                            headers=HEADERS, timeout=10)


# -- account activities -------------------------------------------------------------------


def test_fills_are_fill_activities_with_cumulative_quantities(sim):
    order = limit_buy(sim.api, "FLAT", 10, 20.00)
    sell = sim.api.submit_order("FLAT", qty=4, side="sell", type="limit", limit_price=20.00,
                                time_in_force="day")
    (latest, first) = sim.api.get_activities(activity_types="FILL")  # newest first
    assert first.order_id == order.id and latest.order_id == sell.id
    assert (first.side, first.qty, first.price, first.cum_qty, first.leaves_qty, first.type) \
        == ("buy", "10", "20", "10", "0", "fill")
    assert first.order_status == "filled" and first.symbol == "FLAT"
    stamp = first._raw["transaction_time"]  # 2022-03-01T17:00:00.000001Z
    assert first.id.split("::")[0] == stamp[:23].translate(str.maketrans("", "", "-T:."))


def test_non_trade_activity_books_its_cash_and_is_listed_by_type(sim):
    cash = float(sim.account()["cash"])
    with sim.server.lock:
        record_activity(sim.exchange, "DIV", net_amount=2.4, symbol="FLAT", qty=10,
                        per_share_amount=0.24, sub_type="CDIV")
        record_activity(sim.exchange, "FEE", net_amount=-0.02, sub_type="TAF")
    assert float(sim.account()["cash"]) == pytest.approx(cash + 2.38)
    (div,) = sim.api.get_activities(activity_types="DIV")
    assert (div.net_amount, div.per_share_amount, div.qty, div.activity_sub_type) \
        == ("2.4", "0.24", "10", "CDIV")
    assert div.date == "2022-03-01" and div.status == "executed"
    both = control(sim, "GET", "/v2/account/activities?activity_types=DIV,FEE").json()
    assert {a["activity_type"] for a in both} == {"DIV", "FEE"}
    assert control(sim, "GET", "/v2/account/activities?category=trade_activity").json() == []


def test_activities_page_by_token_without_loss_or_repeat(sim):
    with sim.server.lock:
        for cents in range(1, 8):
            record_activity(sim.exchange, "FEE", net_amount=-cents / 100)
    seen, token = [], None
    while True:
        query = "page_size=3&direction=asc" + (f"&page_token={token}" if token else "")
        page = control(sim, "GET", f"/v2/account/activities/FEE?{query}").json()
        seen += [a["net_amount"] for a in page]
        if len(page) < 3:
            break
        token = page[-1]["id"]
    assert seen == [f"-0.0{c}" for c in range(1, 8)]


def test_a_query_by_time_answers_what_the_whole_history_filtered_by_time_holds(sim):
    # Times and types are matched before the items are made: the same answer as filtering
    # the whole history, fills and other activities mixed over several days.
    for when in (ny(MAR1, 12), ny(MAR1, 15), ny(MAR2, 12), ny(MAR3, 11)):
        sim.advance_to(when)
        limit_buy(sim.api, "FLAT", 1, 20.00)
        with sim.server.lock:
            record_activity(sim.exchange, "FEE", net_amount=-0.01, sub_type="TAF")

    def listed(query: str) -> list[dict]:
        return control(sim, "GET", f"/v2/account/activities?{query}").json()

    every = listed("direction=asc")
    assert [a["activity_type"] for a in every] == ["FILL", "FEE"] * 4

    def stamp(item: dict) -> str:
        return item.get("transaction_time") or item["created_at"]

    cut = stamp(every[3])  # the second fill's fee
    assert listed(f"direction=asc&after={cut}") == [a for a in every if stamp(a) > cut]
    assert listed(f"until={cut}") == [a for a in every if stamp(a) < cut][::-1]
    assert listed("date=2022-03-02&direction=asc") == every[4:6]
    assert listed(f"activity_types=FILL&after={cut}&direction=asc") == \
        [a for a in every if stamp(a) > cut and a["activity_type"] == "FILL"]


def test_bad_activity_queries_name_the_parameter(sim):
    answer = control(sim, "GET", "/v2/account/activities?activity_types=FILL&category=x")
    assert answer.status_code == 422 and "category" in answer.json()["message"]
    answer = control(sim, "GET", "/v2/account/activities/BOGUS")
    assert answer.status_code == 422 and "BOGUS" in answer.json()["message"]
    with pytest.raises(ValueError, match="FILL"):
        record_activity(sim.exchange, "FILL", net_amount=1.0)


# -- account restrictions ----------------------------------------------------------------------


@pytest.mark.parametrize("flags", [{"trading_blocked": True}, {"account_blocked": True},
                                   {"trade_suspended_by_user": True},
                                   {"status": "ACCOUNT_UPDATED"}])
def test_a_restricted_account_refuses_every_order(sim, flags):
    assert control(sim, "POST", "/_sim/account", flags).status_code == 200
    account = sim.account()
    for name, value in flags.items():
        assert account[name] == value
    with pytest.raises(APIError) as refused:
        limit_buy(sim.api, "FLAT", 1, 20.00)
    assert refused.value.status_code == 403 and refused.value.code == 40310000
    assert sim.api.list_orders(status="all") == []
    control(sim, "POST", "/_sim/account", {"status": "ACTIVE", "trading_blocked": False,
                                          "account_blocked": False,
                                          "trade_suspended_by_user": False})
    assert limit_buy(sim.api, "FLAT", 1, 20.00).status == "filled"


def test_shorting_can_be_turned_off(sim):
    control(sim, "POST", "/_sim/account", {"shorting_enabled": False})
    assert sim.account()["shorting_enabled"] is False
    with pytest.raises(APIError, match="shorting_enabled"):
        sim.api.submit_order("FLAT", qty=1, side="sell", type="limit", limit_price=20.00,
                             time_in_force="day")


def test_bad_account_controls_are_refused_with_the_field(sim):
    answer = control(sim, "POST", "/_sim/account", {"status": "SLEEPY"})
    assert answer.status_code == 422 and "status" in answer.json()["message"]
    answer = control(sim, "POST", "/_sim/account", {"trading_blocked": "yes"})
    assert answer.status_code == 400 and "trading_blocked" in answer.json()["message"]


# -- position_intent ---------------------------------------------------------------------------


def order_with_intent(sim, side: str, intent: str, qty: float = 1) -> requests.Response:
    return control(sim, "POST", "/v2/orders", {
        "symbol": "FLAT", "qty": str(qty), "side": side, "type": "limit",
        "limit_price": "20", "time_in_force": "day", "position_intent": intent})


def test_closing_intent_without_a_position_is_refused_not_turned_into_a_short(sim):
    answer = order_with_intent(sim, "sell", "sell_to_close")
    assert answer.status_code == 422
    assert "position intent mismatch. inferred sell to open" in answer.json()["message"]
    assert order_with_intent(sim, "buy", "buy_to_close").status_code == 422
    assert sim.api.list_positions() == [] and sim.api.list_orders(status="all") == []


def test_each_intent_is_accepted_where_it_fits(sim):
    assert order_with_intent(sim, "buy", "buy_to_open", 5).json()["position_intent"] \
        == "buy_to_open"
    assert order_with_intent(sim, "sell", "sell_to_open").status_code == 422  # long: closes
    assert order_with_intent(sim, "sell", "sell_to_close", 5).status_code == 200
    assert order_with_intent(sim, "sell", "sell_to_open", 3).status_code == 200
    assert order_with_intent(sim, "buy", "buy_to_open").status_code == 422  # short: closes
    assert order_with_intent(sim, "buy", "buy_to_close", 3).status_code == 200
    assert sim.api.list_positions() == []


def test_intent_must_match_the_side(sim):
    answer = order_with_intent(sim, "buy", "sell_to_open")
    assert answer.status_code == 422 and "side" in answer.json()["message"]
    answer = order_with_intent(sim, "buy", "buy_to_hold")
    assert answer.status_code == 422 and "position_intent" in answer.json()["message"]


# -- corporate actions -------------------------------------------------------------------------


def test_symbol_change_moves_the_position_and_keeps_the_asset_id(sim):
    limit_buy(sim.api, "OLD", 10, 50.00)
    resting = limit_buy(sim.api, "OLD", 5, 40.00, time_in_force="gtc")
    before = sim.api.get_position("OLD")
    assert control(sim, "POST", "/_sim/corporate_actions",
                   {"type": "name_change", "symbol": "OLD", "new_symbol": "NEW"}
                   ).status_code == 422  # not while the market is open
    sim.advance_to(ny(MAR1, 20))
    answer = control(sim, "POST", "/_sim/corporate_actions",
                     {"type": "name_change", "symbol": "OLD", "new_symbol": "NEW"})
    assert answer.status_code == 200
    (position,) = sim.api.list_positions()
    assert (position.symbol, position.qty, position.asset_id, position.avg_entry_price) \
        == ("NEW", "10", before.asset_id, before.avg_entry_price)
    assert sim.api.get_asset("NEW").id == before.asset_id
    assert sim.api.get_order(resting.id).status == "canceled"
    removed, added = sorted(sim.api.get_activities(activity_types="NC"), key=lambda a: a.qty)
    assert (removed.symbol, removed.qty, added.symbol, added.qty) == ("OLD", "-10", "NEW", "10")
    sim.advance_to(ny(MAR2, 12))
    with pytest.raises(APIError, match="renamed NEW"):
        limit_buy(sim.api, "OLD", 1, 50.00)
    order = sim.api.submit_order("NEW", qty=10, side="sell", type="limit", limit_price=50.00,
                                 time_in_force="day")
    assert order.position_intent == "sell_to_close" and order.asset_id == before.asset_id
    assert sim.api.list_positions() == []


def test_reverse_split_pays_the_fraction_in_cash_and_posts_activities(sim):
    limit_buy(sim.api, "RSP", 10, 10.00)  # 10 shares at 10.00
    resting = limit_buy(sim.api, "RSP", 4, 9.01, time_in_force="gtc")
    too_small = limit_buy(sim.api, "RSP", 2, 9.00, time_in_force="gtc")
    sim.advance_to(ny(MAR2, 17))
    day_order = limit_buy(sim.api, "RSP", 3, 9.00)  # after the close: for 03-03's open
    cash = float(sim.account()["cash"])
    sim.advance_to(ny(MAR3, 10))  # 1-for-3 at the open: 3 shares, 1/3 share in cash
    position = sim.api.get_position("RSP")
    assert (position.qty, float(position.avg_entry_price)) == ("3", pytest.approx(30.0))
    # Cash in lieu at the split-adjusted previous close: 1/3 share x 30.00 = 10.00.
    assert float(sim.account()["cash"]) == pytest.approx(cash + 10.00)
    # The GTC buy of 4 @ 9.01 works on as 1 share @ 27.03 (4/3 rounded down, 9.01 x 3); the
    # one that rounds to no share and the DAY order are canceled.
    adjusted = sim.api.get_order(resting.id)
    assert (adjusted.status, adjusted.qty, adjusted.limit_price) == ("new", "1", "27.03")
    assert sim.api.get_order(too_small.id).status == "canceled"
    assert sim.api.get_order(day_order.id).status == "canceled"
    splits = sim.api.get_activities(activity_types="SPLIT")
    by_amount = {a.net_amount: a for a in splits}
    assert by_amount["0"].qty == "-7" and by_amount["0"].activity_sub_type == "RSPLIT"
    cash_in_lieu = by_amount["10"]
    assert float(cash_in_lieu.qty) == pytest.approx(-1 / 3, abs=1e-9)
    assert float(cash_in_lieu.per_share_amount) == pytest.approx(30.0)


def test_state_round_trip_keeps_activities_restrictions_and_renames(sim, tmp_path):
    from simbroker import Exchange

    limit_buy(sim.api, "OLD", 2, 50.00)
    sim.advance_to(ny(MAR1, 20))
    control(sim, "POST", "/_sim/corporate_actions",
            {"type": "name_change", "symbol": "OLD", "new_symbol": "NEW"})
    control(sim, "POST", "/_sim/account", {"trading_blocked": True})
    path = tmp_path / "state.json"
    sim.exchange.save(path)
    loaded = Exchange.load(path, sim.exchange.market_data)
    assert loaded.to_state() == sim.exchange.to_state()
    assert loaded.restrictions.trading_blocked and loaded.retired == {"OLD": "NEW"}
    assert [a.id for a in loaded.activities] == [a.id for a in sim.exchange.activities]
