"""The costs the account paid, booked to the bot's trades (trade_costs.py, cost_booking.py):
by hand on made-up activities, and end to end against the local exchange over HTTP."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

import trading_bot
from backtester import Settings, run_backtest
from backtester.outputs import cost_columns, trade_columns
from broker import Activity
from config import load_config
from cost_booking import simulated_span
from position_manager import COST_COLUMNS, TRADE_COLUMNS, TRADE_FILE_COLUMNS, StateStore
from run_digest import earlier_summaries
from sim_runner import sim_calendar
from simbroker import Exchange, market_data
from simbroker.costs import CostRates
from tests.sim_harness import Sim, flat_bars, market, price_for_z, sessions, zigzag
from trade_costs import Owner, allocate_cents, book, kind_of

MON, TUE = date(2022, 3, 7), date(2022, 3, 8)


def _fee(amount: float, day: date, *, symbol: str | None = None, sub: str | None = None,
         kind: str = "FEE", n: int = 0) -> Activity:
    when = datetime(day.year, day.month, day.day, 21, 0, n, tzinfo=UTC)
    return Activity(id=f"{day}-{kind}-{n}", activity_type=kind, time=when, symbol=symbol,
                    side=None, qty=None, price=None, net_amount=amount, order_id=None,
                    sub_type=sub, day=day)


def _sale(symbol: str, order_id: str, qty: float, price: float, day: date) -> Activity:
    when = datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC)
    return Activity(id=f"fill-{order_id}", activity_type="FILL", time=when, symbol=symbol,
                    side="sell", qty=qty, price=price, net_amount=None, order_id=order_id,
                    sub_type=None)


def test_cents_are_shared_by_weight_and_add_up():
    assert allocate_cents(1, [0.0028, 0.0028]) == [1, 0]  # a tie: the first
    assert allocate_cents(10, [1.0, 2.0, 2.0]) == [2, 4, 4]
    assert allocate_cents(7, [1.0, 1.0, 1.0]) == [3, 2, 2]
    assert allocate_cents(5, [0.0, 0.0]) == [0, 0]
    for total in range(0, 40):
        assert sum(allocate_cents(total, [0.3, 1.7, 0.01, 5.0])) == total


def test_kinds_follow_alpacas_sub_types_and_the_exchanges_descriptions():
    assert kind_of(_fee(-0.01, MON, sub="REG")) == "sec"
    assert kind_of(_fee(-0.01, MON, sub="TAF")) == "taf"
    assert kind_of(_fee(-0.23, MON, symbol="AAA")) == "borrow"
    assert kind_of(_fee(1.5, MON, symbol="AAA", kind="DIV")) == "dividend"
    assert kind_of(_fee(3.0, MON, kind="INT", sub="CDT")) == "interest"
    assert kind_of(_fee(-2.0, MON, sub="COM")) == "other"


def test_a_days_regulatory_fees_are_shared_among_its_sales_to_the_cent():
    # Two sales on Monday: $10,000 of AAA (long exit) and $5,000 of BBB (short entry); one
    # of CCC by someone else. SEC weights 0.278, 0.139, 0.0278: the day's $0.45 shared
    # 0.2876.. -> 0.28 + 1 cent (largest remainder), 0.1438.. -> 0.14, 0.0287.. -> 0.03.
    owners = [Owner("a", "AAA", True, date(2022, 3, 1), MON, "o-a"),
              Owner("b", "BBB", False, MON, None, "o-b")]
    activities = [_sale("AAA", "o-a", 100, 100.0, MON), _sale("BBB", "o-b", 50, 100.0, MON),
                  _sale("CCC", "o-c", 10, 100.0, MON),
                  _fee(-0.45, MON, sub="REG", n=1), _fee(-0.03, MON, sub="TAF", n=2),
                  _fee(-0.35, MON, symbol="BBB", n=3), _fee(-0.35, MON, symbol="ZZZ", n=4),
                  _fee(2.0, MON, kind="INT", n=5)]
    booking = book(owners, activities)
    a, b = booking.owners["a"].cents, booking.owners["b"].cents
    assert a["sec"] + b["sec"] + booking.unbooked["sec"] == 45
    assert (a["sec"], b["sec"], booking.unbooked["sec"]) == (29, 14, 2) or \
        (a["sec"], b["sec"], booking.unbooked["sec"]) == (28, 14, 3)
    assert a["taf"] + b["taf"] + booking.unbooked.get("taf", 0) == 3
    assert b["borrow"] == 35 and "borrow" not in a  # the long pays no borrow
    assert booking.unbooked["borrow"] == 35  # no short of ZZZ
    assert booking.unbooked["interest"] == -200  # received


def test_a_dividend_is_booked_with_its_sign_to_the_trade_of_its_symbol():
    owners = [Owner("long", "AAA", True, date(2022, 3, 1), TUE, "x"),
              Owner("short", "BBB", False, date(2022, 3, 1), TUE, "y")]
    booking = book(owners, [_fee(1.20, MON, symbol="AAA", kind="DIV"),
                            _fee(-0.80, MON, symbol="BBB", kind="DIV", n=1)])
    assert booking.owners["long"].cents == {"dividend": -120}  # received: a negative cost
    assert booking.owners["short"].cents == {"dividend": 80}


def test_a_trades_file_from_before_the_cost_columns_loads_with_every_row(tmp_path):
    store = StateStore(tmp_path)
    row = {c: "" for c in TRADE_COLUMNS} | {
        "symbol": "AAA", "side": "long", "qty": "1", "pnl_usd": "1.50",
        "entry_order_id": "e1", "exit_order_id": "x1", "exit_client_order_id": "c1"}
    header = ",".join(TRADE_COLUMNS)
    lines = [header, ",".join(row[c] for c in TRADE_COLUMNS),
             ",".join((row | {"exit_order_id": "x2"})[c] for c in TRADE_COLUMNS)]
    store.trades_path.write_text("\n".join(lines) + "\n")
    rows = store.load_trades()
    assert len(rows) == 2
    assert [(r["gross_pnl_usd"], r["fees_usd"], r["net_pnl_usd"]) for r in rows] == \
        [("1.50", "", "")] * 2  # fees not known
    # The next write migrates the file (every row kept), and booking sets a row's costs.
    from position_manager import trade_key
    store.book_costs({trade_key(rows[0]): 12})
    text = store.trades_path.read_text().splitlines()
    assert text[0] == ",".join(TRADE_FILE_COLUMNS) and len(text) == 3
    again = store.load_trades()
    assert [again[0][c] for c in COST_COLUMNS] == ["0.12", "1.50", "1.38"]
    assert [again[1][c] for c in COST_COLUMNS] == ["", "1.50", ""]


# -- end to end ---------------------------------------------------------------------------

DAYS = sessions(date(2022, 1, 3), 60)
FRI = 42  # DAYS[42] is Friday 2022-03-04


def _series(entry_z: float) -> tuple[dict, float]:
    closes = zigzag(DAYS[:FRI], 100.0, 101.0)
    entry = price_for_z(list(closes.values())[-29:], entry_z)
    closes[DAYS[FRI]] = entry
    exit_price = price_for_z(list(closes.values())[-29:], 0.0)
    closes[DAYS[FRI + 1]] = closes[DAYS[FRI + 2]] = exit_price
    return closes, entry


@pytest.fixture
def weekend(tmp_path, monkeypatch):
    """A short (SSS) and a long (LLL) entered on Friday, both reverting on Monday; runs on
    Friday, Monday and Tuesday."""
    monkeypatch.chdir(tmp_path)
    short, short_entry = _series(2.0)
    long, _ = _series(-2.0)
    data = market(flat_bars("SSS", short), flat_bars("LLL", long))
    sim = Sim(tmp_path, data, DAYS[FRI - 1], spread_bps=0.0)
    sim.env.update(TICKERS="LLL,SSS", POSITION_SIZE_USD="500")
    try:
        cash_before = sim.exchange.book.cash
        for i in (FRI, FRI + 1, FRI + 2):
            assert sim.run(DAYS[i]) == 0
        yield sim, short_entry, cash_before
    finally:
        sim.close()


def _fee_activities(sim: Sim) -> list:
    return [a for a in sim.exchange.activities if a.activity_type == "FEE"]


def test_a_weekend_short_pays_three_days_of_borrow_on_a_round_lot_and_its_sale(weekend):
    sim, entry, _ = weekend
    rows = {r["symbol"]: r for r in sim.trades()}
    short = rows["SSS"]
    assert short["side"] == "short" and float(short["qty"]) == 500 // entry
    # Friday's close: 100 shares (the round lot of the 4 short) x close x 2.5% / 360 x 3.
    borrow = [a for a in _fee_activities(sim) if a.symbol == "SSS"]
    assert [(a.day, a.net_amount) for a in borrow] == [
        (DAYS[FRI], -round(100 * entry * 0.025 / 360 * 3, 2))]
    # Friday's sales: the short alone. SEC $27.80 per $1M and TAF $0.000166 a share, each
    # rounded up to the cent.
    qty = float(short["qty"])
    sec, taf = math.ceil(qty * entry * 27.8e-6 * 100) / 100, math.ceil(qty * 0.000166 * 100) / 100
    friday = [a for a in _fee_activities(sim) if a.day == DAYS[FRI] and a.symbol is None]
    assert sorted((a.sub_type, a.net_amount) for a in friday) == [("REG", -sec), ("TAF", -taf)]
    assert float(short["fees_usd"]) == pytest.approx(-borrow[0].net_amount + sec + taf,
                                                     abs=1e-9)
    assert float(short["net_pnl_usd"]) == pytest.approx(
        float(short["gross_pnl_usd"]) - float(short["fees_usd"]), abs=1e-9)


def test_a_long_sale_is_booked_by_the_next_run_and_fees_add_up_to_the_account(weekend):
    sim, _, cash_before = weekend
    rows = sim.trades()
    long = next(r for r in rows if r["symbol"] == "LLL")
    # Sold Monday at noon: Monday's close posted its SEC and TAF, Tuesday's run booked them.
    monday = [a for a in _fee_activities(sim) if a.day == DAYS[FRI + 1] and a.symbol is None]
    assert sorted(a.sub_type for a in monday) == ["REG", "TAF"]
    assert float(long["fees_usd"]) == pytest.approx(-sum(a.net_amount for a in monday))
    # Every fee the account paid is in exactly one trade row.
    paid = -sum(a.net_amount for a in _fee_activities(sim))
    assert sum(float(r["fees_usd"]) for r in rows) == pytest.approx(paid, abs=1e-9)
    # Flat again: the account's cash change is the trades' net P&L.
    assert sim.exchange.book.positions == {}
    change = sim.exchange.book.cash - cash_before
    assert sum(float(r["net_pnl_usd"]) for r in rows) == pytest.approx(change, abs=0.005)
    summary = sim.last_summary()
    # Tuesday's run reports what was posted since Monday's: Monday's sale fees.
    assert summary["costs_usd"] == {{"REG": "sec", "TAF": "taf"}[a.sub_type]: -a.net_amount
                                    for a in monday}
    assert summary["costs_not_booked_usd"] == {}


def test_a_simulations_net_realised_pnl_reconciles_with_its_equity_change(tmp_path, monkeypatch):
    # As `make demo`, over fewer days: the final line's figures, from the saved exchange.
    monkeypatch.chdir(tmp_path)
    sim_dir = tmp_path / "sim"
    days = 12
    assert trading_bot.main(["--sim", "--days", str(days), "--sim-start", "2022-03-01",
                             "--sim-dir", str(sim_dir)], environ={}) == 0
    market = market_data.load("us-stocks")
    exchange = Exchange.load(sim_dir / "exchange.json", market, calendar=sim_calendar(market))
    runs = list(earlier_summaries(sim_dir / "logs", limit=days))[::-1]
    span = simulated_span(exchange, sim_dir / "logs", runs)
    rows = StateStore(sim_dir / "logs").load_trades()
    assert span is not None and span.trades == len(rows) >= 5
    assert span.fees > 0 and span.posted_by_kind["borrow"] > 0
    assert span.net == pytest.approx(sum(float(r["net_pnl_usd"]) for r in rows), abs=0.005)
    # Every cost the account posted is a trade's, an open position's or named as neither;
    # what is left of the equity change is the cash rounding of the fills.
    assert span.posted == pytest.approx(span.fees + span.open_costs + span.other_costs,
                                        abs=0.005)
    assert abs(span.remainder) <= 0.01 * len(rows)
    assert span.equity_change == pytest.approx(
        exchange.balances().equity - runs[0]["equity_usd"], abs=0.005)


# -- costs feed the backtest's later cash checks as the exchange's do ----------------------

def _binding_market(tmp_path):
    """AAA: entered on day E (z = -2), sold at a loss on E + 1 (z = -3.5, a stop-loss); BBB:
    an entry signal on E + 2. Flat bars, so fills are at the noon price exactly."""
    e = 41
    aaa = zigzag(DAYS[:e], 100.0, 101.0)
    aaa[DAYS[e]] = price_for_z(list(aaa.values())[-29:], -2.0)
    aaa[DAYS[e + 1]] = price_for_z(list(aaa.values())[-29:], -3.5)
    for d in DAYS[e + 2:e + 6]:
        aaa[d] = aaa[DAYS[e + 1]]
    bbb = zigzag(DAYS[:e + 2], 50.0, 50.5)
    bbb[DAYS[e + 2]] = price_for_z(list(bbb.values())[-29:], -2.0)
    for d in DAYS[e + 3:e + 6]:
        bbb[d] = bbb[DAYS[e + 2]]
    path = tmp_path / "bars.csv"
    pd.concat([flat_bars("AAA", aaa), flat_bars("BBB", bbb)]).to_csv(path, index=False)
    return path, e


def test_costs_change_a_decision_where_the_budget_binds_in_the_sim_and_the_backtest(
        tmp_path, monkeypatch):
    # The account holds just enough cash for BBB's $1,000 entry on E + 2 before costs, not
    # after AAA's sale fees (taken at E + 1's close): the bot on the exchange and the
    # backtest both skip it; the backtest without costs enters it.
    monkeypatch.chdir(tmp_path)
    path, e = _binding_market(tmp_path)
    market = market_data.load(path)
    env = {"TICKERS": "AAA,BBB", "POSITION_SIZE_USD": "1000", "SIM_DATA": str(path),
           "SIM_SPREAD_BPS": "0"}
    config = load_config(env)
    first, last = DAYS[e - 1], DAYS[e + 4]

    def backtest(cash: float, costs: bool):
        settings = Settings(starting_cash=cash, spread_bps=0.0,
                            costs=CostRates() if costs else CostRates(enabled=False))
        return run_backtest(market, config, start=first, end=last, settings=settings)

    free = backtest(2_000.0, costs=False)
    # Cash at E + 1's close (decision day index 2), before costs: BBB's entry sees it.
    cash = 2_000.0 + round(1_000.01 - float(free.cash[2]), 2)
    without, with_costs = backtest(cash, costs=False), backtest(cash, costs=True)
    assert float(without.cash[2]) == pytest.approx(1_000.01)
    assert float(with_costs.cash[2]) < 1_000.0  # AAA's SEC and FINRA fees
    assert without.positions[3] == 1 and with_costs.positions[3] == 0, \
        "BBB is entered before costs, and not after them"

    sim_dir = tmp_path / "sim"
    days = e + 5 - (e - 1)
    assert trading_bot.main(["--sim", "--days", str(days), "--sim-start", first.isoformat(),
                             "--sim-dir", str(sim_dir)],
                            environ={**env, "SIM_STARTING_CASH": f"{cash:.2f}"}) == 0
    held = StateStore(sim_dir / "logs").load_holdings()
    rows = StateStore(sim_dir / "logs").load_trades()
    assert held == {} and [r["symbol"] for r in rows] == ["AAA"]  # no BBB
    assert len(with_costs.trades) == 1 and with_costs.positions[-1] == 0
    assert without.positions[-1] == 1
    (row,) = rows
    columns = trade_columns(with_costs) | cost_columns(with_costs)
    backtest_row = {k: v[0] for k, v in columns.items()}
    compared = [c for c in TRADE_FILE_COLUMNS if not c.endswith("order_id")]
    assert {c: row[c] for c in compared} == {c: backtest_row[c] for c in compared}


def test_the_backtests_grouped_sharing_is_the_bots_cent_for_cent():
    # backtester/costs.allocate_grouped shares many days' totals at once; the bot shares
    # each day's with trade_costs.allocate_cents: the same cents, ties included.
    from backtester.costs import allocate_grouped

    rng = np.random.default_rng(7)
    for _ in range(200):
        sizes = rng.integers(1, 6, size=rng.integers(1, 8))
        group = np.repeat(np.arange(len(sizes)), sizes)
        weights = rng.choice([0.0, 0.0028, 0.0139, 0.0278, 0.5, 1.0], size=len(group))
        totals = rng.integers(0, 9, size=len(sizes))
        got = allocate_grouped(totals[group], weights, group)
        for g in range(len(sizes)):
            members = group == g
            assert got[members].tolist() == allocate_cents(int(totals[g]),
                                                           weights[members].tolist())
