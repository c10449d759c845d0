"""End-to-end, over HTTP and the real SDK: the account's life outside the bot's orders -
account restrictions, position_intent, positions closed outside the bot priced from account
activities, a symbol change and a reverse split with cash in lieu, each followed to the close.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import pytest
import requests

from market_calendar import NEW_YORK
from simbroker.market_data import Split, from_frame
from tests.sim_harness import Sim, flat_bars
from tests.test_alerts import webhook  # noqa: F401 (a fixture: the local webhook receiver)
from tests.test_bot_e2e import DAYS, E, scenario

ORDERS = ("POST", "/v2/orders")


@pytest.fixture
def make_sim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no developer .env leaks into a test
    made = []

    def make(frames: list[pd.DataFrame], splits=(), tickers: str = "AAA", **exchange) -> Sim:
        data = from_frame(pd.concat(frames, ignore_index=True), list(splits), name="test")
        exchange.setdefault("spread_bps", 0.0)
        sim = Sim(tmp_path, data, DAYS[E - 1], **exchange)
        sim.env["TICKERS"] = tickers
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


def ny_time(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


def call(sim: Sim, method: str, path: str, body: dict | None = None) -> requests.Response:
    headers = {"APCA-API-KEY-ID": sim.exchange.config.key_id,
               "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}
    return requests.request(method, f"{sim.server.trading_url}{path}", json=body,
                            headers=headers, timeout=10)


def order_posts(sim: Sim) -> list[dict]:
    return [r for r in sim.server.requests() if (r["method"], r["path"]) == ORDERS]


# -- account restrictions ----------------------------------------------------------------------


@pytest.mark.parametrize("flags, reason", [
    ({"trading_blocked": True}, "trading_blocked is true"),
    ({"account_blocked": True}, "account_blocked is true"),
    ({"trade_suspended_by_user": True}, "trade_suspended_by_user is true"),
    ({"status": "ACCOUNT_UPDATED"}, "account status is ACCOUNT_UPDATED"),
])
def test_restricted_account_places_nothing_alerts_and_exits_4(make_sim, webhook,  # noqa: F811
                                                               flags, reason):
    series, _ = scenario(["z=0.5"])
    sim = make_sim([flat_bars("AAA", series["AAA"])])
    sim.env.update(ALERT_WEBHOOK_URL=webhook.url, ALERT_EVENTS="failed")
    assert sim.run(DAYS[E]) == 0 and sim.store.load_holdings()  # entered while allowed
    assert call(sim, "POST", "/_sim/account", flags).status_code == 200
    sim.server.clear_requests()
    assert sim.run(DAYS[E + 1]) == 4  # the reversion exit is due, but nothing may be sent
    assert order_posts(sim) == []
    summary = sim.last_summary()
    assert summary["outcome"] == "failed" and reason in summary["failure"]
    assert any(reason in n for n in summary["notes"])
    (alert,) = webhook.posts
    assert reason in alert[2]["text"]
    assert sim.store.load_holdings()  # the holding is kept, to be exited when allowed
    call(sim, "POST", "/_sim/account", {"status": "ACTIVE", "trading_blocked": False,
                                        "account_blocked": False,
                                        "trade_suspended_by_user": False})
    assert sim.run() == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "mean_reversion"


def test_shorting_disabled_stops_short_entries_only(make_sim):
    series, _ = scenario([], entry_z=2.0, level=20.0)
    sim = make_sim([flat_bars("AAA", series["AAA"])])
    call(sim, "POST", "/_sim/account", {"shorting_enabled": False})
    assert sim.run(DAYS[E]) == 0
    assert order_posts(sim) == [] and sim.store.load_holdings() == {}
    assert "shorting not enabled on the account: no short entries" in sim.last_summary()["notes"]


# -- position_intent ---------------------------------------------------------------------------


def test_every_order_carries_its_position_intent(make_sim):
    long_series, _ = scenario(["z=0.5"])
    short_series, _ = scenario(["z=-0.5"], entry_z=2.0, level=20.0, symbol="BBB")
    sim = make_sim([flat_bars("AAA", long_series["AAA"]), flat_bars("BBB", short_series["BBB"])],
                   tickers="AAA,BBB")
    sent = []
    submit = sim.exchange.submit_order

    def note_body(body):  # what arrived over HTTP, before the exchange infers anything
        sent.append((body["symbol"], body.get("position_intent")))
        return submit(body)

    sim.exchange.submit_order = note_body
    sim.run(DAYS[E])
    sim.run(DAYS[E + 1])
    intents = set(sent)
    assert len(sent) == 4 and intents == {("AAA", "buy_to_open"), ("AAA", "sell_to_close"),
                       ("BBB", "sell_to_open"), ("BBB", "buy_to_close")}
    assert len(sim.trades()) == 2 and sim.exchange.book.positions == {}


def test_exit_whose_position_vanished_before_the_order_is_refused_not_a_short(make_sim):
    """Someone closes the position after the run's sync and before its exit order arrives
    (the exchange closes it first when the exit comes in): the exit is refused."""
    series, _ = scenario(["z=0.5"])
    sim = make_sim([flat_bars("AAA", series["AAA"])])
    sim.run(DAYS[E])
    exchange = sim.exchange
    submit = exchange.submit_order

    def someone_closes_it_first(body):
        if body.get("position_intent") == "sell_to_close" and "AAA" in exchange.book.positions:
            exchange.close_position("AAA")  # a market sell
            exchange.advance_seconds(60)  # ... which has filled when the exit arrives
            assert "AAA" not in exchange.book.positions
        return submit(body)

    exchange.submit_order = someone_closes_it_first
    assert sim.run(DAYS[E + 1]) == 0
    (exit_,) = sim.last_summary()["exits"]
    assert exit_["status"].startswith("refused") and "position intent mismatch" in exit_["status"]
    assert exchange.book.positions == {}  # no short was opened
    sim.run(DAYS[E + 2])
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "closed_outside_bot" and trade["exit_price"] != ""


# -- account activities ------------------------------------------------------------------------


def test_close_outside_in_two_orders_is_priced_from_the_fill_activities(make_sim):
    series, entry = scenario(["z=-1.0", "z=-1.0"])
    bars = flat_bars("AAA", series["AAA"])
    day = DAYS[E + 1].isoformat()
    bars.loc[bars.date == day, ["open", "high", "low"]] = [entry, entry + 6, entry - 6]
    sim = make_sim([bars])
    sim.run(DAYS[E])
    qty = sim.store.load_holdings()["AAA"].qty
    sim.exchange.advance_to(ny_time(DAYS[E + 1], 10))  # two sells at different prices
    answer = call(sim, "POST", "/v2/orders", {"symbol": "AAA", "qty": "0.5", "side": "sell",
                                               "type": "market", "time_in_force": "day"})
    assert answer.status_code == 200, answer.text
    sim.exchange.advance_to(ny_time(DAYS[E + 1], 15))
    assert call(sim, "DELETE", "/v2/positions/AAA").status_code == 200
    sim.exchange.advance_to(ny_time(DAYS[E + 1], 15) + timedelta(minutes=1))
    assert sim.exchange.book.positions == {}
    fills = call(sim, "GET", "/v2/account/activities/FILL?direction=asc").json()[1:]
    vwap = sum(float(f["qty"]) * float(f["price"]) for f in fills) / qty
    assert abs(float(fills[0]["price"]) - float(fills[1]["price"])) > 0.01  # prices differ
    sim.run(DAYS[E + 2])
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "closed_outside_bot"
    assert float(trade["exit_price"]) == pytest.approx(vwap, rel=1e-5)
    assert trade["exit_time"].startswith(fills[1]["transaction_time"][:19])


# -- corporate actions -------------------------------------------------------------------------


def test_symbol_change_is_followed_to_the_close(make_sim):
    series, entry = scenario(["z=-1.0", "z=0.5"], symbol="OLD")
    closes = series["OLD"]
    old = {d: p for d, p in closes.items() if d <= DAYS[E]}
    sim = make_sim([flat_bars("OLD", old), flat_bars("NEW", closes)], tickers="OLD")
    sim.run(DAYS[E])
    held = sim.store.load_holdings()["OLD"]
    sim.exchange.advance_to(ny_time(DAYS[E], 18))
    answer = call(sim, "POST", "/_sim/corporate_actions",
                  {"type": "name_change", "symbol": "OLD", "new_symbol": "NEW"})
    assert answer.status_code == 200
    assert sim.run(DAYS[E + 1]) == 0
    moved = sim.store.load_holdings()
    assert list(moved) == ["NEW"] and moved["NEW"].asset_id == held.asset_id
    assert (moved["NEW"].qty, moved["NEW"].entry_price) == (held.qty, held.entry_price)
    assert any("symbol changed to NEW" in n for n in sim.last_summary()["notes"])
    assert sim.trades() == []  # not "closed outside the bot"
    assert sim.run(DAYS[E + 2]) == 0  # reversion: exit under the new name
    (trade,) = sim.trades()
    assert (trade["symbol"], trade["exit_reason"]) == ("NEW", "mean_reversion")
    assert float(trade["entry_price"]) == entry
    assert float(trade["pnl_usd"]) == pytest.approx(
        (float(trade["exit_price"]) - entry) * held.qty, abs=0.01)
    assert sim.exchange.book.positions == {}


def test_reverse_split_with_cash_in_lieu_is_followed_to_the_close(make_sim):
    series, entry = scenario(["z=-1.0", "z=0.5"])
    ex_date = DAYS[E + 1]
    raw = {d: (p * 3 if d >= ex_date else p) for d, p in series["AAA"].items()}  # 1-for-3
    sim = make_sim([flat_bars("AAA", raw)], splits=[Split("AAA", ex_date, 1 / 3)],
                   fractionable=frozenset())
    sim.env["POSITION_SIZE_USD"] = "1000"
    sim.run(DAYS[E])
    held = sim.store.load_holdings()["AAA"]
    assert held.qty == 10  # whole shares: AAA is not fractionable
    cash = sim.exchange.book.cash
    assert sim.run(ex_date) == 0  # at the open: 3 shares, 1/3 share paid in cash
    after = sim.store.load_holdings()["AAA"]
    assert after.qty == 3 and after.entry_price == pytest.approx(entry * 3)
    (lieu,) = [a for a in call(sim, "GET", "/v2/account/activities/SPLIT").json()
               if a["net_amount"] != "0"]
    assert float(lieu["net_amount"]) == pytest.approx(sim.exchange.book.cash - cash)
    assert any("cash in lieu" in n for n in sim.last_summary()["notes"])
    (lieu_trade,) = sim.trades()  # the third of a share paid in cash is a round trip
    assert lieu_trade["exit_reason"] == "cash_in_lieu"
    assert float(lieu_trade["qty"]) == pytest.approx(1 / 3, abs=1e-5)
    lieu_price = float(lieu["net_amount"]) / abs(float(lieu["qty"]))
    assert float(lieu_trade["exit_price"]) == pytest.approx(lieu_price, rel=1e-5)
    assert float(lieu_trade["pnl_usd"]) == pytest.approx((lieu_price - entry * 3) / 3, abs=0.01)
    sim.run(ex_date)  # a rerun records nothing twice
    assert len(sim.trades()) == 1
    assert sim.run(DAYS[E + 2]) == 0
    trade = sim.trades()[-1]
    assert trade["exit_reason"] == "mean_reversion" and trade["qty"] == "3"
    assert float(trade["entry_price"]) == pytest.approx(entry * 3, rel=1e-6)
    assert sim.exchange.book.positions == {}
