"""The bot's booking of a dividend paid weeks after its ex-date (trade_costs.py, cost_booking.py):
to the trade that held the shares over the ex-date, found from the corporate actions, by rule
on made-up activities and end to end against the local exchange over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import requests

import trading_bot
from backtester import Settings, run_backtest
from backtester.outputs import cost_columns, trade_columns
from broker import Activity, CorporateAction
from config import load_config
from position_manager import TRADE_FILE_COLUMNS
from simbroker import market_data
from simbroker.dividends import path_beside
from tests.sim_harness import Sim, flat_bars, price_for_z, sessions, zigzag
from trade_costs import Owner, book, match_dividends

DAYS = sessions(date(2022, 1, 3), 70)
E = 39  # Tuesday 2022-03-01: the first long's entry
EX, PAY, SECOND = E + 2, E + 17, E + 14  # ex 2022-03-03, payable 2022-03-24 (3 weeks later)
AMOUNT = 0.50
ENV = {"TICKERS": "AAA", "POSITION_SIZE_USD": "1000", "SIM_SPREAD_BPS": "0"}


def _div(day: date, net: float, qty: float | None, per_share: float | None,
         n: int = 0) -> Activity:
    return Activity(id=f"div-{day}-{n}", activity_type="DIV",
                    time=datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC),
                    symbol="AAA", side=None, qty=qty, price=None, net_amount=net,
                    order_id=None, sub_type="CDIV", day=day, per_share_amount=per_share)


def test_a_late_dividend_goes_to_the_trade_that_held_over_its_ex_date():
    first = Owner("first", "AAA", True, DAYS[E], DAYS[E + 4], "x1")
    second = Owner("second", "AAA", True, DAYS[SECOND], None, "")
    action = CorporateAction("cash_dividend", "AAA", DAYS[EX], AMOUNT, DAYS[PAY])
    paid = _div(DAYS[PAY], 5.03, 10.06, AMOUNT)
    ex_dates = match_dividends([paid], [action])
    assert ex_dates == {paid.id: DAYS[EX]}
    booking = book([first, second], [paid], ex_dates)
    assert booking.owners["first"].cents == {"dividend": -503}
    assert booking.owners["second"].cents == {}
    assert booking.unmatched_dividends == 0
    # Without its ex-date, the rule without one: the latest trade entered by the pay date.
    fallback = book([first, second], [paid])
    assert fallback.owners["second"].cents == {"dividend": -503}
    assert fallback.unmatched_dividends == 1
    # A per-share amount that is not the action's rate, or a pay date too long before the
    # activity, is no match; a trade entered on the ex-date is not owed it.
    assert match_dividends([_div(DAYS[PAY], 5.03, 10.06, 0.51)], [action]) == {}
    assert match_dividends([_div(DAYS[PAY + 10], 5.03, 10.06, AMOUNT)], [action]) == {}
    on_ex = Owner("on-ex", "AAA", True, DAYS[EX], DAYS[EX + 3], "x3")
    assert book([on_ex], [paid], ex_dates).unbooked == {"dividend": -503}


def _market(tmp_path) -> tuple:
    """AAA (flat bars, so fills are at the noon price): a long entered on E (z = -2) and held
    to its 5-day limit over its ex-date E + 2, then prices at z = 0, then a second long from
    E + 14, held over the dividend's pay date E + 17 (three weeks after the ex-date)."""
    aaa = zigzag(DAYS[:E], 100.0, 101.0)
    aaa[DAYS[E]] = price_for_z(list(aaa.values())[-29:], -2.0)
    for d in DAYS[E + 1:E + 5]:
        aaa[d] = aaa[DAYS[E]]
    for d in DAYS[E + 5:SECOND]:
        aaa[d] = price_for_z(list(aaa.values())[-29:], 0.0)
    aaa[DAYS[SECOND]] = price_for_z(list(aaa.values())[-29:], -2.0)
    for d in DAYS[SECOND + 1:]:
        aaa[d] = aaa[DAYS[SECOND]]
    path = tmp_path / "bars.csv"
    flat_bars("AAA", aaa).to_csv(path, index=False)
    path.with_name(path.name + ".json").write_text(json.dumps({"adjustment": "split"}))
    path_beside(path).write_text("symbol,ex_date,pay_date,amount\n"
                                 f"AAA,{DAYS[EX]},{DAYS[PAY]},{AMOUNT}\n")
    return path


def _backtest_rows(path, first: date, last: date) -> list[dict[str, str]]:
    result = run_backtest(market_data.load(path), load_config(ENV), start=first, end=last,
                          settings=Settings(spread_bps=0.0))
    columns = trade_columns(result) | cost_columns(result)
    return [{k: v[i] for k, v in columns.items()} for i in range(len(result.trades))
            if result.days[result.trades.exit_session[i]] < last]


COMPARED = [c for c in TRADE_FILE_COLUMNS if not c.endswith("order_id")]


def test_the_bot_books_a_late_dividend_to_the_first_trade_as_the_backtest(tmp_path, monkeypatch):
    """`trading_bot.py --sim` and `backtest.py` on the same data: the dividend paid on E + 17
    (while the second trade is held) is in the first trade's fees, exited 13 sessions before,
    and not in the second's; every row as the backtest's."""
    from simbroker import Exchange
    from trade_costs import new_york_day

    monkeypatch.chdir(tmp_path)
    path = _market(tmp_path)
    first, last = DAYS[E - 1], DAYS[E + 24]
    sim_dir = tmp_path / "sim"
    assert trading_bot.main(["--sim", "--days", "26", "--sim-start", first.isoformat(),
                             "--sim-dir", str(sim_dir)],
                            environ={**ENV, "SIM_DATA": str(path)}) == 0
    exchange = Exchange.load(sim_dir / "exchange.json", market_data.load(path))
    divs = [a for a in exchange.activities if a.activity_type == "DIV"]
    assert [(a.day, a.net_amount) for a in divs] == [(DAYS[PAY], round(10.0634 * AMOUNT, 2))]
    from position_manager import StateStore
    rows = sorted((r for r in StateStore(sim_dir / "logs").load_trades()
                   if r["exit_time"][:10] < str(last)), key=lambda r: r["entry_time"])
    assert [new_york_day(r["entry_time"]) for r in rows] == [DAYS[E], DAYS[SECOND]]
    assert new_york_day(rows[0]["exit_time"]) < DAYS[PAY] < new_york_day(rows[1]["exit_time"])
    fees = [a for a in exchange.activities if a.activity_type == "FEE"]
    sold = [sum(-a.net_amount for a in fees if a.day == new_york_day(r["exit_time"]))
            for r in rows]
    assert float(rows[0]["fees_usd"]) == pytest.approx(sold[0] - 5.03, abs=1e-9)
    assert float(rows[1]["fees_usd"]) == pytest.approx(sold[1], abs=1e-9)
    assert [{c: r[c] for c in COMPARED} for r in rows] == [
        {c: r[c] for c in COMPARED} for r in sorted(_backtest_rows(path, first, last),
                                                    key=lambda r: r["entry_time"])]


@pytest.fixture
def sim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim = Sim(tmp_path, market_data.load(_market(tmp_path)), DAYS[E - 1], spread_bps=0.0)
    sim.env.update(ENV)
    try:
        yield sim
    finally:
        sim.close()


def _headers(sim: Sim) -> dict[str, str]:
    return {"APCA-API-KEY-ID": sim.exchange.config.key_id,
            "APCA-API-SECRET-KEY": sim.exchange.config.secret_key}


def _summary(sim: Sim, day: date) -> dict:
    """The summary of the run of `day`. (Run directories are named by the wall clock: the
    tests keep to a few runs, fewer than ten a second, so that they sort as they ran.)"""
    for path in (sim.log_dir / "runs").glob("*/summary.json"):
        summary = json.loads(path.read_text())
        if summary.get("now", "")[:10] == day.isoformat():
            return summary
    raise AssertionError(f"no run of {day}")


def _first_row(sim: Sim) -> dict[str, str]:
    return min(sim.trades(), key=lambda r: r["entry_time"])


def test_a_failed_corporate_actions_read_loses_nothing_and_the_next_run_books_it(sim):
    """GET /v1/corporate-actions answers 500 on the pay date's run: the dividend is posted,
    said, and booked to no one; the first trade's row keeps its fees; the next run books it
    to that row."""
    for i in (E, E + 4, E + 5, SECOND):  # entry, exit at the 5-day limit, its fees, 2nd entry
        assert sim.run(DAYS[i]) == 0
    before = _first_row(sim)["fees_usd"]
    assert float(before) > 0  # its sale's fees, no dividend yet
    armed = requests.post(f"{sim.server.trading_url}/_sim/faults", headers=_headers(sim),
                          json={"method": "GET", "path": "/v1/corporate-actions",
                                "status": 500, "count": 10}, timeout=10)
    assert armed.status_code == 200, armed.text
    assert sim.run(DAYS[PAY]) == 0
    assert [a.day for a in sim.exchange.activities if a.activity_type == "DIV"] == [DAYS[PAY]]
    assert _first_row(sim)["fees_usd"] == before  # kept what it had
    summary = _summary(sim, DAYS[PAY])
    assert any(n.startswith("corporate actions not read") for n in summary["notes"])
    assert not any("matched to no corporate action" in n for n in summary["notes"])
    # Posted and said, booked to nothing yet: not to the trade held now either.
    assert summary["costs_usd"] == summary["costs_not_booked_usd"] == {"dividend": -5.03}
    assert "AAA" not in summary["open_costs_usd"]
    requests.delete(f"{sim.server.trading_url}/_sim/faults", headers=_headers(sim), timeout=10)
    assert sim.run(DAYS[PAY + 1]) == 0
    assert float(_first_row(sim)["fees_usd"]) == pytest.approx(float(before) - 5.03,
                                                               abs=1e-9)
    summary = _summary(sim, DAYS[PAY + 1])
    assert "AAA" not in summary["open_costs_usd"]  # the second trade, held, owes nothing
    assert summary["costs_usd"] == {} and summary["notes"] == []  # posted before the last run


def test_a_dividend_matched_to_no_corporate_action_keeps_the_rule_without_ex_date(sim):
    """A DIV the corporate actions do not know (posted by hand, $2.00 on AAA while the second
    trade is held): booked to the latest trade of AAA entered by its date, and said."""
    for i in (SECOND, SECOND + 1):
        assert sim.run(DAYS[i]) == 0
    moved = requests.post(f"{sim.server.trading_url}/_sim/clock", headers=_headers(sim),
                          json={"next": "close"}, timeout=10)  # after the run's moment
    assert moved.status_code == 200, moved.text
    posted = requests.post(f"{sim.server.trading_url}/_sim/activities", headers=_headers(sim),
                           json={"activity_type": "DIV", "net_amount": 2.0, "symbol": "AAA",
                                 "qty": 10, "per_share_amount": 0.2, "sub_type": "CDIV"},
                           timeout=10)
    assert posted.status_code == 200, posted.text
    assert sim.run(DAYS[SECOND + 2]) == 0
    summary = _summary(sim, DAYS[SECOND + 2])
    assert summary["open_costs_usd"] == {"AAA": -2.0}  # the second trade, still held
    assert any("matched to no corporate action" in n for n in summary["notes"])
    assert summary["costs_not_booked_usd"] == {}


def test_never_paid_names_an_owed_dividend_once_its_wait_is_over():
    from trade_costs import PAY_GRACE_DAYS, never_paid

    first = Owner("first", "AAA", True, DAYS[E], DAYS[E + 4], "x1")
    action = CorporateAction("cash_dividend", "AAA", DAYS[EX], AMOUNT, DAYS[PAY])
    end = date.fromordinal(DAYS[PAY].toordinal() + PAY_GRACE_DAYS)
    day_after = date.fromordinal(end.toordinal() + 1)
    before = date.fromordinal(end.toordinal() - 1)
    assert never_paid([first], [action], {}, [], before, end) == []  # still waiting
    said = [f"AAA $0.5 a share, ex {DAYS[EX]}, payable {DAYS[PAY]}: not paid to the account "
            f"by {end}"]
    assert never_paid([first], [action], {}, [], end, day_after) == said
    assert never_paid([first], [action], {}, [], before, day_after) == said
    later = date.fromordinal(day_after.toordinal() + 1)
    assert never_paid([first], [action], {}, [], day_after, later) == []  # said already
    paid = _div(DAYS[PAY], 5.03, 10.06, AMOUNT)
    assert never_paid([first], [action], {paid.id: DAYS[EX]}, [paid], end, day_after) == []

