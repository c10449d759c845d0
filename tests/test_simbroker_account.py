"""Account arithmetic and every order rejection of the local exchange, over HTTP.

Expected numbers are computed by hand from Alpaca's rules (see simbroker/margin.py) and the
fixture market of tests/simbroker_fixtures.py, with a zero spread.
"""

from __future__ import annotations

import pytest
import requests
from alpaca_trade_api.rest import APIError

from tests.simbroker_fixtures import (
    AAA_MARKETABLE,
    AAA_NOON,
    AAA_NOON_ASK,
    DAYS,
    KEY,
    MAR1,
    MAR2,
    NOON_MAR1,
    SECRET,
    limit_buy,
    make_sim,
    ny,
)

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1)


def rejection(call) -> tuple[int, int, str]:
    with pytest.raises(APIError) as caught:
        call()
    return caught.value.status_code, caught.value.code, str(caught.value)


def post_order(sim, body: object, *, raw: bytes | None = None) -> requests.Response:
    url = f"{sim.server.trading_url}/v2/orders"
    if raw is not None:
        return requests.post(url, data=raw, headers=HEADERS, timeout=5)
    return requests.post(url, json=body, headers=HEADERS, timeout=5)


# -- balances -------------------------------------------------------------------------------------


def test_fresh_account(sim):
    account = sim.account()
    assert account["cash"] == account["equity"] == account["last_equity"] == "100000"
    assert account["buying_power"] == account["regt_buying_power"] == "200000"
    assert account["non_marginable_buying_power"] == "100000"
    assert (account["multiplier"], account["shorting_enabled"]) == ("2", True)
    assert account["status"] == "ACTIVE" and account["currency"] == "USD"


def test_buying_power_follows_positions_and_open_orders(sim):
    sim.api.submit_order("AAA", qty=100, side="buy", type="market", time_in_force="day")
    cash = 100_000 - 100 * AAA_NOON_ASK
    long_value = 100 * AAA_NOON
    equity = cash + long_value
    account = sim.account()
    assert float(account["cash"]) == pytest.approx(cash)
    assert float(account["long_market_value"]) == pytest.approx(long_value, abs=1e-4)
    assert float(account["equity"]) == pytest.approx(equity, abs=1e-4)
    assert float(account["initial_margin"]) == pytest.approx(0.5 * long_value, abs=1e-4)
    assert float(account["maintenance_margin"]) == pytest.approx(0.25 * long_value, abs=1e-4)
    assert float(account["buying_power"]) == pytest.approx((equity - 0.5 * long_value) * 2,
                                                           abs=1e-3)
    # A resting buy holds qty * limit; a resting short sale the greater of its limit and 3%
    # above the ask (FLAT's ask is 20.00, so 1.03 * 20 = 20.60 < the 21.00 limit).
    limit_buy(sim.api, "AAA", 100, 90.00)
    sim.api.submit_order("FLAT", qty=100, side="sell", type="limit", time_in_force="day",
                         limit_price=21.00)
    account = sim.account()
    held = 100 * 90.00 + 100 * 21.00
    assert float(account["buying_power"]) == pytest.approx(
        (equity - 0.5 * long_value) * 2 - held, abs=1e-3)
    assert float(account["non_marginable_buying_power"]) == pytest.approx(cash - 9_000)


def test_short_sale_books_proceeds_in_cash_and_negative_market_value(sim):
    sim.api.submit_order("FLAT", qty=100, side="sell", type="market", time_in_force="day")
    account = sim.account()
    assert account["cash"] == "102000" and account["short_market_value"] == "-2000"
    assert account["equity"] == "100000" and account["initial_margin"] == "1000"
    assert account["maintenance_margin"] == "600"  # 30% of short market value
    position = sim.api.get_position("FLAT")
    assert (position.qty, position.side, position.market_value) == ("-100", "short", "-2000")


def test_last_equity_is_the_equity_at_the_previous_close(sim):
    sim.api.submit_order("AAA", qty=100, side="buy", type="market", time_in_force="day")
    sim.advance_to(ny(MAR2, 10, 0))
    account = sim.account()
    assert float(account["last_equity"]) == pytest.approx(
        100_000 - 100 * AAA_NOON_ASK + 100 * 103.0)
    assert account["balance_asof"] == "2022-03-01"


def test_small_account_has_no_margin_and_cannot_short(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, starting_cash=1_500.0):
        account = sim.account()
        assert (account["multiplier"], account["shorting_enabled"]) == ("1", False)
        assert account["buying_power"] == "1500"
        status, code, message = rejection(lambda sim=sim: sim.api.submit_order(
            "FLAT", qty=1, side="sell", type="market", time_in_force="day"))
        assert (status, code) == (403, 40310000) and "not allowed to short" in message


# -- 403 ------------------------------------------------------------------------------------------


def test_insufficient_buying_power(sim):
    status, code, message = rejection(lambda: limit_buy(sim.api, "AAA", 3_000, AAA_MARKETABLE))
    assert (status, code) == (403, 40310000) and "insufficient buying power" in message
    assert sim.api.list_orders(status="all") == []


def test_no_single_order_flips_a_position(sim):
    limit_buy(sim.api, "FLAT", 10, 20.00)
    status, code, message = rejection(lambda: sim.api.submit_order(
        "FLAT", qty=15, side="sell", type="market", time_in_force="day"))
    assert (status, code) == (403, 40310000) and "insufficient qty available" in message
    # Shares held for another open sell are not available either.
    sim.api.submit_order("FLAT", qty=6, side="sell", type="limit", time_in_force="day",
                         limit_price=25.00)
    status, _, message = rejection(lambda: sim.api.submit_order(
        "FLAT", qty=5, side="sell", type="limit", time_in_force="day", limit_price=26.00))
    assert status == 403 and "available: 4" in message
    assert sim.api.get_position("FLAT").qty_available == "4"


def test_a_resting_short_sale_holds_shares_of_a_later_long(sim):
    sim.api.submit_order("FLAT", qty=15, side="sell", type="limit", time_in_force="day",
                         limit_price=25.00)  # a short sale, resting
    limit_buy(sim.api, "FLAT", 10, 20.00)
    assert sim.api.get_position("FLAT").qty_available == "0"
    status, _, message = rejection(lambda: sim.api.submit_order(
        "FLAT", qty=10, side="sell", type="market", time_in_force="day"))
    assert status == 403 and "available: 0" in message


def test_no_single_buy_flips_a_short_to_long(sim):
    sim.api.submit_order("FLAT", qty=10, side="sell", type="market", time_in_force="day")
    status, code, _ = rejection(lambda: limit_buy(sim.api, "FLAT", 11, 20.00))
    assert (status, code) == (403, 40310000)
    cover = limit_buy(sim.api, "FLAT", 10, 20.00)
    assert cover.status == "filled" and cover._raw["position_intent"] == "buy_to_close"


@pytest.mark.parametrize("flag, expected", [("shortable", "cannot be sold short"),
                                            ("easy_to_borrow", "not easy to borrow")])
def test_shorting_needs_a_shortable_easy_to_borrow_asset(monkeypatch, flag, expected):
    for sim in make_sim(monkeypatch, NOON_MAR1, **{flag: frozenset({"AAA"})}):
        status, code, message = rejection(lambda sim=sim: sim.api.submit_order(
            "FLAT", qty=1, side="sell", type="market", time_in_force="day"))
        assert (status, code) == (403, 40310000) and expected in message
        asset = sim.api.get_asset("FLAT")._raw
        if flag == "shortable":
            assert asset["shortable"] is False
        else:
            assert asset["borrow_status"] == "hard_to_borrow" and "easy_to_borrow" not in asset


def test_fractional_short_is_refused(sim):
    status, code, message = rejection(lambda: sim.api.submit_order(
        "FLAT", qty=1.5, side="sell", type="market", time_in_force="day"))
    assert (status, code) == (403, 40310000) and "fractional" in message


# -- 422 and 400 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol, limit, ok", [("AAA", 99.001, False), ("AAA", 99.01, True),
                                               ("PENNY", 0.50001, False),
                                               ("PENNY", 0.5001, True)])
def test_sub_penny_limits(sim, symbol, limit, ok):
    def submit():
        return limit_buy(sim.api, symbol, 1, limit)
    if ok:
        assert submit().limit_price == str(limit)
    else:
        status, code, message = rejection(submit)
        assert (status, code) == (422, 42210000) and "sub-penny" in message


@pytest.mark.parametrize("qty", [0, -1])
def test_quantity_must_be_positive(sim, qty):
    status, code, message = rejection(lambda: limit_buy(sim.api, "AAA", qty, 99.00))
    assert (status, code) == (422, 42210000) and "qty must be > 0" in message


def test_fractional_rules(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, fractionable=frozenset({"AAA"})):
        status, _, message = rejection(lambda sim=sim: limit_buy(
            sim.api, "AAA", 1.5, 99.00, time_in_force="gtc"))
        assert status == 422 and "DAY" in message
        status, _, message = rejection(lambda sim=sim: limit_buy(sim.api, "FLAT", 1.5, 20.0))
        assert status == 422 and "not fractionable" in message
        assert limit_buy(sim.api, "AAA", 1.5, AAA_MARKETABLE).filled_qty == "1.5"


def test_malformed_requests_are_400(sim):
    bad_json = post_order(sim, None, raw=b'{"symbol": "AAA", ')
    missing = post_order(sim, {"symbol": "AAA", "qty": "1", "type": "market",
                               "time_in_force": "day"})
    wrong_type = post_order(sim, {"symbol": "AAA", "qty": [1], "side": "buy",
                                  "type": "market", "time_in_force": "day"})
    for response, words in ((bad_json, "not valid JSON"), (missing, "side is required"),
                            (wrong_type, "qty must be a number")):
        assert response.status_code == 400
        assert response.json()["code"] == 40010000 and words in response.json()["message"]


def test_unsupported_order_kinds_are_422(sim):
    base = {"symbol": "AAA", "qty": "1", "side": "buy", "time_in_force": "day"}
    for extra in ({"type": "stop", "stop_price": "90"}, {"type": "market",
                                                          "time_in_force": "gtd"},
                  {"type": "limit"}, {"type": "market", "side": "short"}):
        response = post_order(sim, {**base, **extra})
        assert response.status_code == 422, extra
        assert response.json()["code"] == 42210000


def test_unknown_symbol_is_422_for_orders_and_404_for_assets(sim):
    status, _, message = rejection(lambda: limit_buy(sim.api, "NOPE", 1, 10.00))
    assert status == 422 and "NOPE" in message
    status, code, _ = rejection(lambda: sim.api.get_asset("NOPE"))
    assert (status, code) == (404, 40410000)


# -- pattern day trading, both eras ---------------------------------------------------------------


def day_trade(sim) -> None:
    limit_buy(sim.api, "FLAT", 10, 20.00)
    sim.api.submit_order("FLAT", qty=10, side="sell", type="market", time_in_force="day")


def test_no_pdt_fields_and_no_pdt_rule_by_default(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, starting_cash=10_000.0):
        for _ in range(5):
            day_trade(sim)
        account = sim.account()
        for gone in ("daytrade_count", "daytrading_buying_power", "pattern_day_trader"):
            assert gone not in account


def test_legacy_pdt_refuses_a_fourth_day_trade_under_25000(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, starting_cash=10_000.0, legacy_pdt=True):
        for _ in range(3):
            day_trade(sim)
        account = sim.account()
        assert (account["daytrade_count"], account["pattern_day_trader"]) == (3, False)
        assert account["daytrading_buying_power"] == "0"
        limit_buy(sim.api, "FLAT", 10, 20.00)  # opening is fine
        status, code, message = rejection(lambda sim=sim: sim.api.submit_order(
            "FLAT", qty=10, side="sell", type="market", time_in_force="day"))
        assert (status, code) == (403, 40310100) and "pattern day trading" in message
        # Tomorrow the same sale is no day trade; five sessions on, the count is back to 0.
        sim.advance_to(ny(MAR2, 10, 0))
        assert sim.api.submit_order("FLAT", qty=10, side="sell", type="market",
                                    time_in_force="day").status == "filled"
        sim.advance_to(ny(DAYS[6], 10, 0))
        assert sim.account()["daytrade_count"] == 0


def test_legacy_pdt_does_not_apply_at_25000(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, starting_cash=30_000.0, legacy_pdt=True):
        for _ in range(4):
            day_trade(sim)
        account = sim.account()
        assert (account["daytrade_count"], account["pattern_day_trader"]) == (4, True)


def test_401_without_or_with_wrong_credentials(sim):
    url = sim.server.trading_url
    for path in ("/v2/account", "/v2/orders", "/v2/stocks/bars?symbols=AAA&timeframe=1Day",
                 "/_sim/clock"):
        bare = requests.get(url + path, timeout=5)
        wrong = requests.get(url + path, headers={**HEADERS, "APCA-API-SECRET-KEY": "x"},
                             timeout=5)
        # The Market Data API answers bad keys with 403 (Alpaca's market-data FAQ).
        status = 403 if path.startswith("/v2/stocks") else 401
        for response in (bare, wrong):
            assert response.status_code == status
            assert response.json()["code"] == 40110000


def test_day_trade_is_recorded_only_on_the_day_of_the_opening(monkeypatch):
    for sim in make_sim(monkeypatch, NOON_MAR1, legacy_pdt=True):
        limit_buy(sim.api, "FLAT", 10, 20.00)
        sim.advance_to(ny(MAR1, 17, 0))
        sim.api.submit_order("FLAT", qty=10, side="sell", type="market", time_in_force="day")
        sim.advance_to(ny(MAR2, 10, 0))
        assert sim.api.list_positions() == []
        assert sim.account()["daytrade_count"] == 0
