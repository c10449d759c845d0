"""Every order type and time in force the local exchange accepts, through the SDK over HTTP:
when it may be sent, when and at what price it fills, and what becomes of the rest.

Bars are tests/simbroker_fixtures.py's (AAA 03-01: open 100, close 103; 03-02: open 103,
close 96; HALT has no bar on 03-02); spreads are zero. AAA's noon quote on 03-01 is the model
path's (AAA_NOON_BID / AAA_NOON_ASK), and AAA_MARKETABLE is a buy limit above that ask.
"""

from __future__ import annotations

import pytest
from alpaca_trade_api.rest import APIError

from tests.simbroker_fixtures import (
    AAA_MARKETABLE,
    AAA_NOON_ASK,
    AAA_NOON_BID,
    MAR1,
    MAR2,
    NOON_MAR1,
    limit_buy,
    make_sim,
    ny,
)


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def order(api, tif: str, *, qty: float = 10, side: str = "buy", limit: float | None = None,
          symbol: str = "AAA", **kw):
    kind = "market" if limit is None else "limit"
    return api.submit_order(symbol, qty=qty, side=side, type=kind, time_in_force=tif,
                            limit_price=limit, **kw)


def rejected(call, *args, **kw) -> tuple[int, int, str]:
    with pytest.raises(APIError) as caught:
        call(*args, **kw)
    return caught.value.status_code, caught.value.code, str(caught.value)


# -- ioc / fok ---------------------------------------------------------------------------------


def test_ioc_takes_what_is_marketable_at_once(sim):
    filled = order(sim.api, "ioc", limit=AAA_MARKETABLE)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == ("filled", "10",
                                                                           str(AAA_NOON_ASK))
    market = order(sim.api, "ioc", side="sell")
    assert (market.status, market.filled_avg_price) == ("filled", str(AAA_NOON_BID))


def test_ioc_not_marketable_is_canceled_unfilled(sim):
    missed = order(sim.api, "ioc", limit=98.00)
    assert (missed.status, missed.filled_qty) == ("canceled", "0")
    assert missed.canceled_at is not None
    sim.advance_to(ny(MAR1, 16, 0))  # the path reaches 98 later today; a canceled IOC does not
    assert sim.api.get_order(missed.id).filled_qty == "0"
    assert sim.api.list_positions() == []


def test_ioc_partial_fill_cancels_the_rest(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, partial_fill_probability=1.0, seed=42):
        part = order(sim.api, "ioc", qty=100, limit=AAA_MARKETABLE)
        assert part.status == "canceled"
        assert 30 <= float(part.filled_qty) <= 70
        assert float(sim.api.get_position("AAA").qty) == float(part.filled_qty)
        sim.advance_to(ny(MAR1, 16, 0))
        assert sim.api.get_order(part.id).filled_qty == part.filled_qty


def test_fok_fills_whole_or_not_at_all(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1):
        whole = order(sim.api, "fok", limit=AAA_MARKETABLE)
        assert (whole.status, whole.filled_qty) == ("filled", "10")
        missed = order(sim.api, "fok", limit=98.00)
        assert (missed.status, missed.filled_qty) == ("canceled", "0")
    # Where the partial-fill model would give only part of it, a FOK order gets nothing.
    for sim in make_sim(monkeypatch, NOON_MAR1, partial_fill_probability=1.0, seed=42):
        killed = order(sim.api, "fok", qty=100, limit=AAA_MARKETABLE)
        assert (killed.status, killed.filled_qty) == ("canceled", "0")
        assert sim.api.list_positions() == []


def test_ioc_sent_before_the_open_trades_at_the_open(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 8, 0)):
        early = order(sim.api, "ioc", limit=101.00)
        low = order(sim.api, "ioc", limit=99.00)
        assert (early.status, low.status) == ("accepted", "accepted")
        sim.advance_to(ny(MAR1, 9, 31))
        opened = sim.api.get_order(early.id)
        assert (opened.status, opened.filled_avg_price) == ("filled", "100")
        assert opened._raw["filled_at"] == "2022-03-01T14:30:00.000000Z"
        # The price reaches 99 later (the path dips to 98), but an IOC order does not wait.
        assert (sim.api.get_order(low.id).status, sim.api.get_order(low.id).filled_qty) == (
            "canceled", "0")


# -- opg: market / limit on open -----------------------------------------------------------------


def test_market_on_open_fills_at_the_open(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR2, 9, 0)):
        moo = order(sim.api, "opg")
        assert moo.status == "accepted"
        sim.advance_to(ny(MAR2, 9, 30))
        filled = sim.api.get_order(moo.id)
        assert (filled.status, filled.filled_avg_price) == ("filled", "103")
        assert filled._raw["filled_at"] == "2022-03-02T14:30:00.000000Z"


def test_limit_on_open_fills_only_at_or_better_than_its_limit(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR2, 9, 0)):
        cheap = order(sim.api, "opg", limit=102.00)  # the open is 103: not crossed
        dear = order(sim.api, "opg", limit=103.50)
        sim.advance_to(ny(MAR2, 12, 0))
        missed, filled = sim.api.get_order(cheap.id), sim.api.get_order(dear.id)
        assert (missed.status, missed.filled_qty) == ("canceled", "0")
        assert missed._raw["canceled_at"] == "2022-03-02T14:30:00.000000Z"
        # It crosses at the auction price, not at its limit.
        assert (filled.status, filled.filled_avg_price) == ("filled", "103")


def test_opg_after_the_cutoff_is_rejected_and_after_seven_pm_queued(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 9, 28)):
        status, code, message = rejected(order, sim.api, "opg")
        assert (status, code) == (422, 42210000) and "09:28" in message
        sim.advance_to(ny(MAR1, 18, 59))
        assert rejected(order, sim.api, "opg")[:2] == (422, 42210000)
        sim.advance_to(ny(MAR1, 19, 0))
        queued = order(sim.api, "opg")
        assert queued.status == "accepted"
        sim.advance_to(ny(MAR2, 9, 30))
        assert sim.api.get_order(queued.id).filled_avg_price == "103"  # 03-02's open


def test_on_open_order_without_a_bar_that_day_is_canceled(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR2, 8, 0)):
        halted = order(sim.api, "opg", qty=1, symbol="HALT")
        sim.advance_to(ny(MAR2, 9, 30))
        got = sim.api.get_order(halted.id)
        assert (got.status, got.filled_qty) == ("canceled", "0")


# -- cls: market / limit on close ----------------------------------------------------------------


def test_market_on_close_waits_for_the_closing_auction(sim):
    moc = order(sim.api, "cls")
    assert (moc.status, moc.filled_qty) == ("new", "0")
    sim.advance_to(ny(MAR1, 15, 59))
    assert sim.api.get_order(moc.id).filled_qty == "0"  # no continuous trading
    sim.advance_to(ny(MAR1, 16, 0))
    filled = sim.api.get_order(moc.id)
    assert (filled.status, filled.filled_avg_price) == ("filled", "103")
    assert filled._raw["filled_at"] == "2022-03-01T21:00:00.000000Z"
    assert sim.api.get_position("AAA").avg_entry_price == "103"


def test_limit_on_close_rests_through_the_session_and_crosses_at_the_close(sim):
    # A buy limit at 104 would fill at once in the continuous session; on close it waits.
    buy = order(sim.api, "cls", limit=104.00)
    sell = order(sim.api, "cls", side="sell", qty=5, limit=103.50)  # close 103: not crossed
    assert sim.api.get_order(buy.id).filled_qty == "0"
    sim.advance_to(ny(MAR1, 16, 1))
    assert sim.api.get_order(buy.id).filled_avg_price == "103"
    missed = sim.api.get_order(sell.id)
    assert (missed.status, missed.filled_qty) == ("canceled", "0")
    assert missed._raw["canceled_at"] == "2022-03-01T21:00:00.000000Z"


def test_cls_after_the_cutoff_is_rejected_and_after_seven_pm_queued(monkeypatch):
    for sim in make_sim(monkeypatch, ny(MAR1, 15, 49)):
        early = order(sim.api, "cls")
        assert early.status == "new"
        sim.advance_to(ny(MAR1, 15, 50))
        status, code, message = rejected(order, sim.api, "cls")
        assert (status, code) == (422, 42210000) and "15:50" in message
        sim.advance_to(ny(MAR1, 19, 0))
        queued = order(sim.api, "cls")
        assert queued.status == "accepted"
        sim.advance_to(ny(MAR2, 16, 0))
        assert sim.api.get_order(early.id).filled_avg_price == "103"  # 03-01's close
        assert sim.api.get_order(queued.id).filled_avg_price == "96"  # 03-02's close


def test_auction_partial_fill_cancels_the_rest(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, partial_fill_probability=1.0, seed=42):
        moc = order(sim.api, "cls", qty=100)
        sim.advance_to(ny(MAR1, 16, 0))
        got = sim.api.get_order(moc.id)
        assert got.status == "canceled" and 30 <= float(got.filled_qty) <= 70
        assert got.filled_avg_price == "103"


# -- quantities and types ------------------------------------------------------------------------


@pytest.mark.parametrize("tif", ["gtc", "opg", "cls", "ioc", "fok"])
def test_fractional_quantities_are_day_orders_only(monkeypatch, tif):
    for sim in make_sim(monkeypatch, ny(MAR1, 9, 0)):
        status, code, message = rejected(order, sim.api, tif, qty=1.5, limit=99.00)
        assert (status, code) == (422, 42210000) and "fractional" in message
        day = order(sim.api, "day", qty=1.5, limit=99.00)
        assert day.qty == "1.5"


def test_market_day_fractional_fills(sim):
    got = order(sim.api, "day", qty=0.25)
    assert (got.status, got.filled_qty, got.filled_avg_price) == ("filled", "0.25",
                                                                  str(AAA_NOON_ASK))


def test_gtc_market_order_fills_like_a_day_market_order(sim):
    got = order(sim.api, "gtc", qty=2)
    assert (got.status, got.filled_avg_price) == ("filled", str(AAA_NOON_ASK))


def test_market_buy_needs_buying_power_at_the_ask(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, starting_cash=1_000.0):
        # Buying power is 2x equity in a margin account of $2,000 or more, 1x below.
        fits = int(1_000.0 // AAA_NOON_ASK)  # shares whose cost at the noon ask fits
        status, code, message = rejected(order, sim.api, "cls", qty=fits + 1)
        assert (status, code) == (403, 40310000) and "buying power" in message
        assert order(sim.api, "cls", qty=fits).status == "new"


def test_stop_orders_are_refused_with_the_reason(sim):
    status, code, message = rejected(lambda: sim.api.submit_order(
        "AAA", qty=1, side="sell", type="stop", time_in_force="day", stop_price=90))
    assert (status, code) == (422, 42210000) and "not supported" in message
    assert limit_buy(sim.api, "AAA", 1, AAA_MARKETABLE, time_in_force="gtc").status == "filled"
