"""Symbol changes, splits and outside closes applied to the bot's records, on hand-made
records with hand-computed values."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from account_events import (
    attach_asset_ids,
    cash_in_lieu,
    cash_in_lieu_rows,
    follow_renames,
    price_outside_closes,
)
from broker import Activity, Position
from position_manager import CLOSED_OUTSIDE, reconcile, split_ratio
from tests.test_state import T0, T1, holding, order, pending

ASSET = "asset-1"


def test_a_renamed_holding_and_its_pending_records_follow_the_asset():
    held = replace(holding("OLD"), asset_id=ASSET)
    exit_ = replace(pending("mr-x", intent="exit", order_side="sell", symbol="OLD"))
    positions = {"NEW": Position("NEW", True, 2.0, 10.0, 10.0, asset_id=ASSET)}
    holdings, pend, notes = follow_renames({"OLD": held}, {"mr-x": exit_}, positions, [])
    assert list(holdings) == ["NEW"] and holdings["NEW"].entry_price == 10.0
    assert pend["mr-x"].symbol == "NEW" and "symbol changed to NEW" in notes[0]
    result = reconcile(holdings, {}, [], positions)
    assert result.trades == [] and result.holdings["NEW"].qty == 2.0


def test_an_entry_that_filled_before_the_rename_becomes_a_holding_of_the_new_symbol():
    entry = pending("mr-e", symbol="OLD")
    filled = replace(order("mr-e", symbol="OLD"), asset_id=ASSET)
    positions = {"NEW": Position("NEW", True, 2.0, 10.0, 10.0, asset_id=ASSET)}
    holdings, pend, _ = follow_renames({}, {"mr-e": entry}, positions, [filled])
    result = reconcile(holdings, pend, [filled], positions)
    assert list(result.holdings) == ["NEW"] and result.holdings["NEW"].asset_id == ASSET
    assert result.trades == []


def test_no_rename_without_the_same_asset_and_side():
    held = replace(holding("OLD"), asset_id=ASSET)
    other = {"NEW": Position("NEW", True, 2.0, 10.0, 10.0, asset_id="another")}
    assert follow_renames({"OLD": held}, {}, other, [])[0] == {"OLD": held}
    short = {"NEW": Position("NEW", False, 2.0, 10.0, 10.0, asset_id=ASSET)}
    assert follow_renames({"OLD": held}, {}, short, [])[0] == {"OLD": held}


def test_old_records_take_the_asset_id_of_their_position():
    positions = {"AAPL": Position("AAPL", True, 2.0, 10.0, 10.0, asset_id=ASSET)}
    assert attach_asset_ids({"AAPL": holding()}, positions)["AAPL"].asset_id == ASSET


@pytest.mark.parametrize("held_qty, held_price, qty, price, ratio", [
    (2.0, 10.0, 4.0, 5.0, 2.0),             # 2-for-1, fractional or not
    (10.0, 10.0, 3.0, 30.0, 1 / 3),         # 1-for-3, 1/3 share paid in cash in lieu
    (7.0, 10.0, 0.7, 100.0, 0.1),           # 1-for-10 of a fractional position: no cash
    (10.0, 10.0, 2.0, 30.0, None),          # a third share fewer than the split gives
    (10.0, 10.0, 5.0, 10.0, None),          # shares sold outside: price unchanged
    (10.0, 10.0, 10.0, 10.02, None),        # rounding of the average price
])
def test_split_ratio(held_qty, held_price, qty, price, ratio):
    found = split_ratio(held_qty, held_price, qty, price)
    assert found == (None if ratio is None else pytest.approx(ratio))


def test_reverse_split_with_cash_in_lieu_rescales_the_entry_price():
    held = holding(qty=10.0, price=10.0)
    result = reconcile({"AAPL": held}, {}, [], {"AAPL": Position("AAPL", True, 3.0, 30.0, 31.0)})
    assert result.holdings["AAPL"].qty == 3.0
    assert result.holdings["AAPL"].entry_price == pytest.approx(30.0)
    assert any("cash in lieu" in n for n in result.notes)


def fill(qty, price, when, side="sell", symbol="AAPL", oid="o"):
    return Activity(id=f"{when:%Y%m%d%H%M%S}000::{oid}", activity_type="FILL", time=when,
                    symbol=symbol, side=side, qty=qty, price=price, net_amount=None,
                    order_id=oid, sub_type=None)


def test_outside_close_is_priced_from_every_fill_that_closed_it():
    held = holding(qty=2.0, price=10.0)
    later = datetime(2022, 3, 3, 19, 0, tzinfo=UTC)
    closes = [order("web-a", side="sell", qty=1.0, filled=1.0, price=20.0, when=T1, oid="a"),
              order("web-b", side="sell", qty=1.0, filled=1.0, price=11.0, when=later, oid="b")]
    result = reconcile({"AAPL": held}, {}, closes, {})
    assert result.trades[0]["exit_price"] == "11"  # the last closing order's price alone
    fills = [fill(1.0, 20.0, T1, oid="a"), fill(1.0, 11.0, later, oid="b"),
             fill(5.0, 99.0, T0.replace(hour=16), oid="before-entry"),
             fill(1.0, 50.0, T1, side="buy", oid="opening")]
    (row,), notes = price_outside_closes(result.trades, {"AAPL": held}, fills)
    assert (row["exit_price"], row["pnl_usd"], row["exit_reason"]) == ("15.5", "11.00",
                                                                        CLOSED_OUTSIDE)
    assert row["exit_time"] == later.isoformat() and row["exit_order_id"] == "b"
    assert row["exit_client_order_id"] == result.trades[0]["exit_client_order_id"]
    assert "15.5" in notes[0]


def test_fills_that_do_not_cover_the_holding_leave_the_row_as_it_was():
    held = holding(qty=2.0)
    close = order("web-a", side="sell", qty=2.0, filled=2.0, price=12.0, when=T1, oid="a")
    result = reconcile({"AAPL": held}, {}, [close], {})
    rows, notes = price_outside_closes(result.trades, {"AAPL": held}, [fill(1.0, 20.0, T1)])
    assert rows == result.trades and notes == []


def test_cash_in_lieu_is_a_round_trip_priced_from_the_split_activity():
    before = {"AAPL": holding(qty=10.0, price=10.0)}
    after = reconcile(before, {}, [], {"AAPL": Position("AAPL", True, 3.0, 30.0, 31.0)}).holdings
    (cut,) = cash_in_lieu(before, after)
    assert cut[1] == pytest.approx(1 / 3)
    paid = Activity(id="x::lieu", activity_type="SPLIT", time=T1, symbol="AAPL", side=None,
                    qty=-1 / 3, price=None, net_amount=11.0, order_id=None, sub_type="RSPLIT")
    (row,) = cash_in_lieu_rows([cut], [paid])
    # 1/3 share at 33.00 (11.00 for the third) against the rescaled entry of 30.00.
    assert (row["exit_reason"], row["exit_price"], row["pnl_usd"]) == ("cash_in_lieu", "33",
                                                                        "1.00")
    assert row["exit_client_order_id"] == "lieu-mr-20220301-AAPL-long"
    (blank,) = cash_in_lieu_rows([cut], [])
    assert blank["exit_price"] == "" and blank["pnl_usd"] == ""


def test_no_cash_in_lieu_without_a_split_or_with_a_whole_split():
    before = {"AAPL": holding(qty=10.0, price=10.0)}
    sold = reconcile(before, {}, [], {"AAPL": Position("AAPL", True, 4.0, 10.0, 10.0)})
    assert cash_in_lieu(before, sold.holdings) == []
    whole = reconcile(before, {}, [], {"AAPL": Position("AAPL", True, 5.0, 20.0, 20.0)})
    assert cash_in_lieu(before, whole.holdings) == []
