"""Cash dividends: the data (shipped and CSV files, and the refusal to pay dividends on
dividend-adjusted prices), the exchange's DIV activities and cash through the SDK over HTTP, and
the backtester's equity and trade fees."""

from __future__ import annotations

import json
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pytest

from backtester import run_backtest
from backtester.outputs import period_stats
from config import load_config
from market_calendar import NEW_YORK
from simbroker import market_data
from simbroker.dividends import Dividend, path_beside
from tests.simbroker_fixtures import (
    DAYS,
    MAR2,
    MAR3,
    MAR7,
    NOON_MAR1,
    _rows,
    limit_buy,
    make_sim,
    ny,
)


@pytest.fixture(scope="module")
def us():
    return market_data.load("us-stocks")


def flat_frame(prices: dict[str, float]) -> pd.DataFrame:
    rows = []
    for symbol, price in prices.items():
        rows += _rows(symbol, {d: (price, price, price, price, 100_000) for d in DAYS})
    return pd.DataFrame(rows)


# -- data ---------------------------------------------------------------------------------


def test_shipped_dividends_are_the_split_adjusted_symbols_only(us):
    payers = {d.symbol for d in us.dividends()}
    assert payers == {"AAPL", "NVDA"}
    assert not payers & us.dividend_adjusted
    # The closes-only (skfolio) symbols are the dividend-adjusted ones (data/README.md).
    assert us.dividend_adjusted == us.model_ohlc
    # AAPL's $3.05 of 2013-05-09 in today's shares (7-for-1 in 2014, 4-for-1 in 2020).
    (may,) = [d for d in us.dividends("AAPL") if d.ex_date == date(2013, 5, 9)]
    assert may.amount == pytest.approx(3.05 / 28, abs=2e-5) and may.pay_date is None
    assert len(us.dividends("AAPL")) == len(us.dividends("NVDA")) == 40
    assert us.dividends_going_ex(date(2013, 5, 8), date(2013, 5, 9)) == [may]


def test_a_dividend_on_dividend_adjusted_prices_is_refused():
    with pytest.raises(ValueError, match="dividend-adjusted.*count it twice"):
        market_data.from_frame(flat_frame({"KO": 50.0}), name="adj",
                               dividends=[Dividend("KO", MAR2, 0.44)],
                               dividend_adjusted=["KO"])


def write_bars(tmp_path, adjustment: str | None, dividends: str) -> object:
    bars = tmp_path / "mine.csv"
    flat_frame({"KO": 50.0}).to_csv(bars, index=False)
    path_beside(bars).write_text("symbol,ex_date,pay_date,amount\n" + dividends)
    if adjustment is not None:
        bars.with_name("mine.csv.json").write_text(json.dumps({"adjustment": adjustment}))
    return bars


def test_a_bars_file_pays_the_dividends_beside_it_only_when_its_prices_leave_them_out(tmp_path):
    bars = write_bars(tmp_path, "split", "KO,2022-03-02,2022-04-01,0.44\n")
    (dividend,) = market_data.load(bars).dividends()
    assert dividend == Dividend("KO", MAR2, 0.44, date(2022, 4, 1))
    bars = write_bars(tmp_path, "all", "KO,2022-03-02,,0.44\n")
    with pytest.raises(ValueError, match="'all'-adjusted.*count them twice.*--adjustment split"):
        market_data.load(bars)
    bars = write_bars(tmp_path, None, "KO,2022-03-02,,0.44\n")
    bars.with_name("mine.csv.json").unlink()
    with pytest.raises(ValueError, match='adjustment is not stated.*"adjustment": "split"'):
        market_data.load(bars)


@pytest.mark.parametrize(("row", "message"), [
    ("KO,2022-13-02,,0.44", "line 2, column 'ex_date': '2022-13-02' is not a date"),
    ("KO,2022-03-02,,abc", "line 2, column 'amount': 'abc' is not a number"),
    ("KO,2022-03-02,,-1", "line 2: .*amount is -1.0; give the cash per share"),
    ("KO,2022-03-02,2022-03-01,0.44", "line 2: .*pay_date 2022-03-01 is before the ex-date"),
    ("XX,2022-03-02,,0.44", "symbol without bars"),
    ("KO,2022-03-02,0.44", "line 2: 3 fields where the header has 4; give symbol,ex_date,"),
    ("\nKO,2022-03-02,,0.44,x", "line 3: 5 fields where the header has 4"),
])
def test_bad_dividend_rows_name_the_line_and_the_fix(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        market_data.load(write_bars(tmp_path, "split", row + "\n"))


# -- the exchange -------------------------------------------------------------------------


def dividend_market():
    """PAY (50.00) and OWE (40.00) flat every day; both go ex on 03-03: $0.50 payable on
    03-09 and $0.25 without a pay date."""
    return market_data.from_frame(
        flat_frame({"PAY": 50.0, "OWE": 40.0, "LATE": 30.0}), name="dividends",
        dividends=[Dividend("PAY", MAR3, 0.50, PAY_DAY), Dividend("OWE", MAR3, 0.25),
                   Dividend("LATE", MAR3, 1.00)])


PAY_DAY = date(2022, 3, 9)


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON_MAR1, dividend_market())


def test_the_exchange_pays_at_the_pay_date_open_what_was_owed_at_the_ex_date(sim, tmp_path):
    """Alpaca credits a cash dividend on (or after) its payable date (see the README,
    "Dividends"): a dividend with a pay date is owed on the position held at the close before
    the ex-date, and paid at the open of its pay date's session, even after the position is
    sold; one without a pay date is paid at the ex-date's open."""
    from simbroker import Exchange
    from simbroker.journal import Journal

    limit_buy(sim.api, "PAY", 10, 50.00)
    sim.api.submit_order("OWE", qty=6, side="sell", type="limit", limit_price=40.00,
                         time_in_force="day")
    sim.advance_to(ny(MAR2, 17))  # after the close of 03-02: its fees are charged
    journal = Journal(tmp_path / "journaled.json").attach(sim.exchange)
    journal.compact(sim.exchange)  # a snapshot before the ex-date; the journal follows it
    cash = float(sim.account()["cash"])
    sim.advance_to(ny(MAR3, 10))
    # Held at the close before the ex-date: 6 x 0.25 charged now, PAY's 10 x 0.50 owed.
    assert float(sim.account()["cash"]) == pytest.approx(cash - 1.50)
    (owe,) = sim.api.get_activities(activity_types="DIV")
    assert (owe.symbol, owe.net_amount, owe.qty, owe.per_share_amount, owe.date) == (
        "OWE", "-1.5", "-6", "0.25", "2022-03-03")
    sim.api.submit_order("PAY", qty=10, side="sell", type="limit", limit_price=50.00,
                         time_in_force="day")  # sold before the pay date: paid all the same
    sim.advance_to(ny(MAR7, 17))
    assert sim.api.list_positions()[0].symbol == "OWE"
    # What is owed survives a save and a load: the state file, and its journal replayed.
    owed = [{"symbol": "PAY", "qty": 10.0, "amount": 0.5, "ex_date": "2022-03-03",
             "pay_date": "2022-03-09"}]
    sim.exchange.save(tmp_path / "exchange.json")
    assert Exchange.load(tmp_path / "exchange.json", dividend_market()).dividends_due == owed
    journal.commit(sim.exchange)
    assert journal.journal_bytes > 0  # a journal line, not a new snapshot
    assert Exchange.load(tmp_path / "journaled.json", dividend_market()).dividends_due == owed
    sim.advance_to(ny(PAY_DAY, 9))  # before the open: the borrow fees so far charged
    cash = float(sim.account()["cash"])
    sim.advance_to(ny(PAY_DAY, 10))
    assert float(sim.account()["cash"]) == pytest.approx(cash + 5.00)
    by_symbol = {a.symbol: a for a in sim.api.get_activities(activity_types="DIV")}
    assert set(by_symbol) == {"PAY", "OWE"}  # no LATE position: nothing
    pay = by_symbol["PAY"]
    assert (pay.net_amount, pay.qty, pay.per_share_amount, pay.activity_sub_type, pay.date) == (
        "5", "10", "0.5", "CDIV", "2022-03-09")
    assert "ex 2022-03-03" in pay._raw["description"]
    assert "payable 2022-03-09" in pay._raw["description"]
    assert sim.exchange.dividends_due == []


def test_a_position_bought_on_the_ex_date_gets_nothing_and_one_sold_then_is_paid(sim):
    limit_buy(sim.api, "PAY", 4, 50.00)
    sim.advance_to(ny(MAR3, 12))
    limit_buy(sim.api, "LATE", 3, 30.00)  # bought at noon of the ex-date: not entitled
    sim.api.submit_order("PAY", qty=4, side="sell", type="limit", limit_price=50.00,
                         time_in_force="day")  # sold on the ex-date: held at the close before
    sim.advance_to(ny(PAY_DAY, 10))
    (paid,) = sim.api.get_activities(activity_types="DIV")
    assert (paid.symbol, paid.net_amount) == ("PAY", "2")
    assert sim.api.list_positions()[0].symbol == "LATE"


def _closes(sim, symbol: str, adjustment: str) -> dict[str, tuple[float, int]]:
    bars = sim.api.get_bars(symbol, "1Day", "2022-02-28", "2022-03-10", adjustment=adjustment)
    return {b._raw["t"][:10]: (b._raw["c"], b._raw["v"]) for b in bars}


def test_the_exchange_serves_bars_adjusted_for_dividends_before_their_ex_dates(sim):
    """adjustment=dividend|all over HTTP with the SDK: PAY's prices before its 03-03 ex-date
    times 1 - 0.50 / 50.00 (the close before it), from the ex-date on and the volume as they
    are; raw and split leave the dividend in; before the ex-date nothing is adjusted yet."""
    assert _closes(sim, "PAY", "all")["2022-02-28"] == (50.0, 100_000)  # as of 03-01
    sim.advance_to(ny(MAR3, 17))
    for adjustment in ("dividend", "all", "split,dividend"):
        bars = _closes(sim, "PAY", adjustment)
        assert [bars[d] for d in sorted(bars)] == [(49.5, 100_000)] * 3 + [(50.0, 100_000)], \
            adjustment
    for adjustment in ("raw", "split"):
        assert set(_closes(sim, "PAY", adjustment).values()) == {(50.0, 100_000)}
    # OWE's $0.25 on $40.00: 39.75 before; a symbol without dividends is served as it is.
    assert _closes(sim, "OWE", "all")["2022-03-02"] == (39.75, 100_000)


def test_served_bars_of_the_shipped_data_adjust_the_payers_and_leave_the_adjusted_as_they_are(
        us):
    from simbroker.bars import served_bars

    as_of, first, last = date(2021, 3, 1), date(2021, 2, 1), date(2021, 2, 10)
    served = served_bars(us, ["AAPL", "KO"], first, last, adjustment="all", as_of=as_of)
    split = us.bar_arrays(["AAPL", "KO"], first, last, adjustment="all", as_of=as_of)
    # AAPL's $0.205 going ex 2021-02-05, the close before it $137.39: the factor 0.998508...
    factor = 1 - 0.205 / 137.39
    days, values = served["AAPL"]
    assert np.array_equal(days, split["AAPL"][0])
    before = days < (date(2021, 2, 5) - date(1970, 1, 1)).days
    assert before.sum() == 4  # Feb 1-4
    assert np.allclose(values[before, 3], split["AAPL"][1][before, 3] * factor, rtol=1e-15,
                       atol=0)
    assert values[before, 3][-1] == pytest.approx(137.39 - 0.205)
    assert np.array_equal(values[~before], split["AAPL"][1][~before])
    assert np.array_equal(values[:, 4], split["AAPL"][1][:, 4])  # the volume as it is
    # KO is dividend-adjusted already: as it is (its volume unknown, NaN).
    assert np.array_equal(served["KO"][1], split["KO"][1], equal_nan=True)
    # The data's own arrays are never written.
    assert np.array_equal(us.bar_arrays(["AAPL"], first, last, adjustment="all",
                                        as_of=as_of)["AAPL"][1], split["AAPL"][1])


# -- the backtester -----------------------------------------------------------------------


def test_backtest_equity_and_trade_fees_carry_the_dividends_of_positions_held_over_ex_dates(us):
    result = run_backtest(us, load_config({}), start=date(2019, 1, 1), end=date(2020, 12, 31))
    # Worked out again from the trades' dates and the dividends' ex-dates.
    days = result.days
    expected = {}
    for i in range(len(result.trades)):
        t = result.trades
        symbol = result.symbols[t.symbol[i]]
        entry, exit_ = days[t.entry_session[i]], days[t.exit_session[i]]
        for d in us.dividends(symbol):
            if entry < d.ex_date <= exit_:
                sign = 1 if t.is_long[i] else -1
                expected[i] = expected.get(i, 0.0) + round(sign * float(t.qty[i]) * d.amount, 2)
    assert expected, "no round trip held AAPL or NVDA over an ex-date in 2019-2020"
    costs = result.costs
    assert costs.dividends.sum() == pytest.approx(sum(expected.values()), abs=1e-9)
    # Equity is net of the other costs and of the dividends, from each ex-date on.
    others = np.cumsum(costs.borrow + costs.sec + costs.taf - costs.interest)
    assert np.allclose(result.equity, costs.gross_equity - others + np.cumsum(costs.dividends))
    stats = period_stats(result)
    assert stats["dividends_usd"] == round(sum(expected.values()), 2)
    # Each round trip's fees count its dividends against them (a long's lowers them): its
    # fees before dividends less what it was paid.
    from backtester.costs import trade_fees
    delta = trade_fees(result.charges, result.trades, result.symbols) - costs.trade_fees
    assert {i: round(v, 2) for i, v in enumerate(delta) if v} == {
        i: round(v, 2) for i, v in expected.items() if v}


# -- parity -------------------------------------------------------------------------------


def test_the_bot_on_the_exchange_and_the_backtest_pay_the_same_dividends(tmp_path, monkeypatch):
    """`trading_bot.py --sim` against the exchange and `backtest.py` over the same days: the
    same trades (test_parity.py's comparison) and the same dividends, day by day: a short of
    AAPL over its 2019-02-08 ex-date and one of NVDA over 2019-02-28."""
    import csv

    import trading_bot
    from market_calendar import nyse
    from simbroker import Exchange
    from tests.test_parity import COMPARED, TICKERS, _key, backtest_rows

    monkeypatch.chdir(tmp_path)
    first_day, days = date(2019, 2, 1), 25
    env = {"TICKERS": TICKERS}
    assert trading_bot.main(["--sim", "--days", str(days), "--sim-start", first_day.isoformat(),
                             "--sim-dir", str(tmp_path / "sim")], environ=env) == 0
    settled = nyse().sessions_between(first_day, date(2023, 1, 1))[:days][-2].day
    us = market_data.load("us-stocks")
    result = run_backtest(us, load_config(env), start=first_day, end=settled)
    with open(tmp_path / "sim" / "logs" / "trades.csv") as handle:
        bot = [r for r in csv.DictReader(handle) if r["exit_time"][:10] <= settled.isoformat()]
    # Costs included: each trade's fees carry its dividends, on both sides.
    assert [{k: r[k] for k in COMPARED} for r in sorted(bot, key=_key)] == [
        {k: r[k] for k in COMPARED} for r in sorted(backtest_rows(result), key=_key)]

    exchange = Exchange.load(tmp_path / "sim" / "exchange.json", us)
    paid = {}
    for a in exchange.activities:
        if a.activity_type == "DIV" and a.day <= settled:
            paid[a.day] = round(paid.get(a.day, 0.0) + a.net_amount, 2)
    backtest = {day: round(float(v), 2) for day, v in zip(result.days, result.costs.dividends,
                                                          strict=True) if v}
    assert set(backtest) == {date(2019, 2, 8), date(2019, 2, 28)}
    assert paid == backtest


# -- dividends reach later runs' cash checks ---------------------------------------------


def ny_day(when) -> date:
    from zoneinfo import ZoneInfo

    return when.astimezone(ZoneInfo("America/New_York")).date()


def _binding_dividend_market(tmp_path, dividend: bool, ex: int = 2, pay: int | None = None):
    """AAA: a long entered on day E (z = -2) and held, going ex on E + `ex` (a dividend of
    $0.50 a share, payable on E + `pay` or without a pay date); BBB: an entry signal on
    E + 2. Flat bars, so fills are at the noon price exactly."""
    from tests.sim_harness import flat_bars, price_for_z, sessions, zigzag

    days = sessions(date(2022, 1, 3), 60)
    e = 39  # Tuesday 2022-03-01: E + 2 is Thursday, within the 5-day holding period
    aaa = zigzag(days[:e], 100.0, 101.0)
    aaa[days[e]] = price_for_z(list(aaa.values())[-29:], -2.0)
    for d in days[e + 1:e + 6]:
        aaa[d] = aaa[days[e]]
    bbb = zigzag(days[:e + 2], 50.0, 50.5)
    bbb[days[e + 2]] = price_for_z(list(bbb.values())[-29:], -2.0)
    for d in days[e + 3:e + 6]:
        bbb[d] = bbb[days[e + 2]]
    path = tmp_path / ("with.csv" if dividend else "without.csv")
    pd.concat([flat_bars("AAA", aaa), flat_bars("BBB", bbb)]).to_csv(path, index=False)
    path.with_name(path.name + ".json").write_text(json.dumps({"adjustment": "split"}))
    if dividend:
        path_beside(path).write_text("symbol,ex_date,pay_date,amount\n"
                                     f"AAA,{days[e + ex]},"
                                     f"{days[e + pay] if pay is not None else ''},0.50\n")
    return path, days, e


@pytest.mark.parametrize(("ex", "pay"), [(2, None), (1, 2), (1, 3)])
def test_a_dividend_changes_a_decision_where_the_budget_binds_in_the_sim_and_the_backtest(
        tmp_path, monkeypatch, ex, pay):
    """The account holds $3 less than BBB's $1,000 entry needs on E + 2 without AAA's
    dividend, and $2.03 more with it (10.06 shares x $0.50) if it is paid by E + 2's open:
    going ex on E + 2 without a pay date, or on E + 1 payable on E + 2, and not when it is
    payable on E + 3. The bot on the exchange and the backtest make the same decision, pay
    the same dividend on the same day, and agree row for row."""
    import trading_bot
    from backtester import Settings
    from backtester.outputs import cost_columns, trade_columns
    from position_manager import TRADE_FILE_COLUMNS, StateStore
    from simbroker import Exchange

    monkeypatch.chdir(tmp_path)
    paths = {}
    for dividend in (True, False):
        paths[dividend], days, e = _binding_dividend_market(tmp_path, dividend, ex, pay)
    paid_on = ex if pay is None else pay  # decision day E + paid_on: index paid_on + 1
    enters = paid_on <= 2
    env = {"TICKERS": "AAA,BBB", "POSITION_SIZE_USD": "1000", "SIM_SPREAD_BPS": "0"}
    config = load_config(env)
    first, last = days[e - 1], days[e + 5]

    def backtest(dividend: bool, cash: float):
        return run_backtest(market_data.load(paths[dividend]), config, start=first, end=last,
                            settings=Settings(starting_cash=cash, spread_bps=0.0))

    probe = backtest(False, 2_000.0)
    # Cash at E + 1's close (decision day index 2): what BBB's entry on E + 2 sees, less $3.
    cash = 2_000.0 + round(997.00 - float(probe.cash[2]), 2)
    with_, without = backtest(True, cash), backtest(False, cash)
    assert float(without.cash[2]) == pytest.approx(997.00)
    expected = [0.0] * 7
    expected[paid_on + 1] = 5.03  # 10.06 shares of AAA
    assert with_.costs.dividends.tolist() == expected
    assert without.positions[3] == 1 and with_.positions[3] == (2 if enters else 1), \
        "BBB is entered with the dividend, and not without it"
    if enters:
        assert float(with_.cash[3]) < float(without.cash[3])  # BBB bought with the dividend

    for dividend in (True, False):
        sim_dir = tmp_path / f"sim-{dividend}"
        assert trading_bot.main(
            ["--sim", "--days", "7", "--sim-start", first.isoformat(),
             "--sim-dir", str(sim_dir)],
            environ={**env, "SIM_DATA": str(paths[dividend]),
                     "SIM_STARTING_CASH": f"{cash:.2f}"}) == 0
        result = with_ if dividend else without
        store = StateStore(sim_dir / "logs")
        exchange = Exchange.load(sim_dir / "exchange.json", market_data.load(paths[dividend]))
        paid = [(a.day, a.net_amount) for a in exchange.activities if a.activity_type == "DIV"]
        assert paid == ([(days[e + paid_on], 5.03)] if dividend else [])
        held = store.load_holdings()
        assert len(held) == result.positions[-1]
        bought = {o.symbol for o in exchange.orders.values() if o.side.value == "buy"
                  and o.filled_qty and ny_day(o.filled_at) == days[e + 2]}
        assert bought == ({"BBB"} if dividend and enters else set())  # its decision on E + 2
        # Trades whose sale's fees the bot has booked (the run after the sale's close).
        rows = sorted((r for r in store.load_trades() if r["exit_time"][:10] < str(last)),
                      key=lambda r: r["symbol"])
        columns = trade_columns(result) | cost_columns(result)
        backtest_rows = sorted(({k: v[i] for k, v in columns.items()}
                                for i in range(len(result.trades))
                                if result.days[result.trades.exit_session[i]] < last),
                               key=lambda r: r["symbol"])
        assert len(rows) == 1  # AAA's, its fees less the dividend
        compared = [c for c in TRADE_FILE_COLUMNS if not c.endswith("order_id")]
        assert [{c: r[c] for c in compared} for r in rows] == [
            {c: r[c] for c in compared} for r in backtest_rows]


def test_the_timelines_book_dividends_into_cash_at_the_open_as_the_day_loop_does(
        us, monkeypatch):
    """The shipped data over 2015-2018 (AAPL and NVDA held over ex-dates): the timelines and
    the day loop take the same dividends into cash at the same opens, balance for balance."""
    config = load_config({})
    start, end = date(2015, 1, 2), date(2018, 12, 31)
    timelines, loop = _both_engines(us, config, start, end, monkeypatch)
    paid = np.flatnonzero(loop.costs.dividends)
    assert len(paid) >= 5 and (loop.costs.dividends < 0).any()  # shorts charged too
    assert timelines.costs.dividends.tolist() == loop.costs.dividends.tolist()
    assert np.allclose(timelines.cash, loop.cash, rtol=0, atol=1e-9)
    assert np.allclose(timelines.equity, loop.equity, rtol=0, atol=1e-6)


def _both_engines(market, config, start, end, monkeypatch):
    """The backtest by the timelines, and the same by the day loop (the timelines refused)."""
    timelines = run_backtest(market, config, start=start, end=end)
    assert timelines.engine == "timelines"
    with monkeypatch.context() as patch:
        patch.setattr("backtester.engine.run_timelines", _refuse)
        loop = run_backtest(market, config, start=start, end=end)
    assert loop.engine.startswith("day loop")
    return timelines, loop


def _refuse(*args, **kwargs):
    from backtester.engine import Binds

    raise Binds("the test asks for the day loop")


def test_dividends_with_pay_dates_are_paid_at_their_pay_dates_open_in_both_engines(
        us, monkeypatch):
    """AAPL and NVDA (real OHLCV) and three others over 2015-2018, each dividend given a pay
    date two weeks after its ex-date: the cash comes at the open of the pay date's session
    (owed on the position held over the ex-date, even if it was closed since), the timelines
    as the day loop, balance for balance."""
    from dataclasses import replace as with_

    from market_calendar import nyse

    symbols = ["AAPL", "NVDA", "AMZN", "GOOG", "NFLX"]
    frames = []
    for symbol in symbols:
        frame = us.frame(symbol).rename_axis("date").reset_index()
        frame.insert(0, "symbol", symbol)
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
        frames.append(frame)
    dividends = [with_(d, pay_date=date.fromordinal(d.ex_date.toordinal() + 14))
                 for d in us.dividends() if d.symbol in symbols]
    market = market_data.from_frame(pd.concat(frames, ignore_index=True), name="pay-dates",
                                    dividends=dividends)
    config = load_config({"TICKERS": ",".join(symbols)})
    start, end = date(2015, 1, 2), date(2018, 12, 31)
    timelines, loop = _both_engines(market, config, start, end, monkeypatch)
    assert timelines.costs.dividends.tolist() == loop.costs.dividends.tolist()
    assert np.allclose(timelines.cash, loop.cash, rtol=0, atol=1e-9)
    # Worked out again: every position held over an ex-date, paid at the pay date's session.
    calendar, days = nyse(), timelines.days
    expected: dict[date, float] = {}
    t = timelines.trades
    for i in range(len(t)):
        symbol = timelines.symbols[t.symbol[i]]
        entry, exit_ = days[t.entry_session[i]], days[t.exit_session[i]]
        for d in dividends:
            if d.symbol == symbol and entry < d.ex_date <= exit_:
                pay = calendar.current_or_next_open(
                    datetime.combine(d.pay_date, time(9), tzinfo=NEW_YORK)).day
                if pay <= days[-1]:
                    sign = 1 if t.is_long[i] else -1
                    expected[pay] = round(expected.get(pay, 0.0)
                                          + round(sign * float(t.qty[i]) * d.amount, 2), 2)
    booked = {day: v for day, v in zip(days, timelines.costs.dividends.tolist(), strict=True)
              if v}
    assert expected and booked == expected
    assert not set(booked) & {d.ex_date for d in dividends}  # never on an ex-date
