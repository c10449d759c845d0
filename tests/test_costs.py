"""The account's costs (simbroker/costs.py) by hand, and charged on a backtest."""

import numpy as np
import pytest

from backtester import Settings
from backtester.outputs import cost_columns, period_stats, trade_columns
from simbroker.costs import CostRates, borrow_fee, cash_interest, day_sale_fees, round_lots
from tests.simbroker_fixtures import MAR4, MAR7, make_sim, ny
from tests.test_backtest_engine import DAYS, backtest, bars, flat_start

RATES = CostRates()


def test_borrow_is_charged_on_whole_round_lots():
    assert list(round_lots([1, 99, 100, 101, -250])) == [100, 100, 100, 200, 300]
    # 10 shares of a $50 stock short over a weekend: 100 x 50 x 2.5% / 360 x 3 = 1.0417.
    assert float(borrow_fee(10, 50.0, 3, RATES)) == 1.04
    assert float(borrow_fee(10, 50.0, 1, RATES)) == 0.35  # 0.3472 to the cent
    assert float(borrow_fee(10, 50.0, 3, CostRates(enabled=False))) == 0.0


def test_sale_fees_are_each_days_total_rounded_up():
    # $10,000 sold in 100 shares: SEC 10,000 x 27.80 / 1e6 = 0.278 -> 0.28; TAF 100 x
    # 0.000166 = 0.0166 -> 0.02. Two such sales: 0.556 -> 0.56 and 0.0332 -> 0.04.
    assert day_sale_fees([10_000.0], [100], RATES) == (0.28, 0.02)
    assert day_sale_fees([10_000.0, 10_000.0], [100, 100], RATES) == (0.56, 0.04)
    # TAF is capped per trade: 60,000 shares would be 9.96, it is 8.30.
    assert day_sale_fees([1.0], [60_000], RATES)[1] == 8.30


def test_cash_interest_is_off_unless_a_rate_is_set():
    assert float(cash_interest(100_000.0, 3, RATES)) == 0.0
    # 4% a year on $100,000 over a weekend: 100,000 x 0.04 / 360 x 3 = 33.33.
    assert float(cash_interest(100_000.0, 3, CostRates(cash_interest_rate=0.04))) == 33.33
    assert float(cash_interest(-5.0, 1, CostRates(cash_interest_rate=0.04))) == 0.0


def test_bad_rate_says_which_and_how():
    with pytest.raises(ValueError, match="borrow_rate=-1"):
        CostRates(borrow_rate=-1)


def test_a_short_held_over_a_weekend_pays_three_days_and_its_sale():
    # Friday 2021-03-05 at 11 after four closes at 10: z = +1.789, short floor(100 / 11) = 9
    # shares at 11 (flat bar, no spread: filled at noon). Monday at 10: reversion, covered.
    # Borrow at Friday's close: 100 shares (the round lot) x 11 x 2.5% / 360 x 3 = 0.2292 ->
    # 0.23. The short sale of $99: SEC 0.0028 -> 0.01, TAF 9 x 0.000166 -> 0.01 (each day's
    # total rounded up). Monday's cover is a purchase: no sale fee, no borrow at its close.
    market = bars(*flat_start("AAA"), ("AAA", DAYS[4], 11.0), ("AAA", DAYS[5], 10.0))
    result = backtest(market, end=DAYS[5])
    costs = result.costs
    assert list(costs.borrow) == [0.23, 0.0]
    assert list(costs.sec) == [0.01, 0.0] and list(costs.taf) == [0.01, 0.0]
    assert list(costs.gross_equity - result.equity) == pytest.approx([0.25, 0.25])
    columns = trade_columns(result) | cost_columns(result)
    assert (columns["pnl_usd"], columns["gross_pnl_usd"]) == (["9.00"], ["9.00"])
    # The trade's fees are what the account paid for it: the borrow and its day's rounded
    # sale fees (the only sale that day), as the bot books them (trade_costs.py).
    assert (columns["fees_usd"], columns["net_pnl_usd"]) == (["0.25"], ["8.75"])
    stats = period_stats(result)
    assert stats["costs_usd"] == 0.25 and stats["equity_net_of_costs"] is True
    assert stats["final_equity_usd"] == pytest.approx(100_009.00 - 0.25)
    free = backtest(market, end=DAYS[5], settings=Settings(spread_bps=0.0,
                                                           costs=CostRates(enabled=False)))
    assert np.array_equal(free.equity, costs.gross_equity)


def test_the_exchange_charges_a_weekend_short_and_its_sale_at_the_close(monkeypatch):
    # FLAT is 20.00 all day (zero spread): short 100 on Friday 2022-03-04 for $2,000.
    # At Friday's close: borrow 100 x 20 x 2.5% / 360 x 3 days = 0.4167 -> 0.42; SEC on
    # $2,000: 0.0556 -> 0.06; TAF 100 x 0.000166 = 0.0166 -> 0.02.
    for sim in make_sim(monkeypatch, ny(MAR4, 12, 0)):
        sim.api.submit_order("FLAT", qty=100, side="sell", type="market", time_in_force="day")
        assert sim.account()["cash"] == "102000"
        sim.advance_to(ny(MAR7, 9, 0))
        assert float(sim.account()["cash"]) == pytest.approx(102_000 - 0.42 - 0.06 - 0.02)
        assert [(a.description, a.net_amount) for a in sim.exchange.activities] == [
            ("stock borrow fee", -0.42), ("SEC Section 31 fee", -0.06),
            ("FINRA trading activity fee", -0.02)]
        # And as the account's activities, over HTTP.
        fees = sim.api.get_activities(activity_types="FEE")
        assert [(float(a.net_amount), getattr(a, "symbol", None)) for a in fees] == [
            (-0.02, None), (-0.06, None), (-0.42, "FLAT")]
    for sim in make_sim(monkeypatch, ny(MAR4, 12, 0), charge_costs=False):
        sim.api.submit_order("FLAT", qty=100, side="sell", type="market", time_in_force="day")
        sim.advance_to(ny(MAR7, 9, 0))
        assert sim.account()["cash"] == "102000" and sim.exchange.activities == []


def test_a_day_s_fee_totals_are_shared_in_bulk_as_allocate_cents_shares_them():
    """Every sale day's SEC or TAF total shared among its sales at once, bit for bit as
    trade_costs.allocate_cents shares one day's: groups of one to many sales, totals of 0,
    weights of 0, ties and remainders that round either way."""
    from backtester.costs import allocate_grouped
    from trade_costs import allocate_cents

    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 40, 400)
    sizes[:5] = [1, 2, 3, 60, 1]
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    group = np.repeat(np.arange(len(sizes)), sizes)
    weights = rng.uniform(0, 3, len(group)) * rng.choice([1e-6, 1e-3, 1.0], len(group))
    weights[rng.random(len(group)) < 0.05] = 0.0
    weights[starts[7]:starts[7] + sizes[7]] = 0.25  # ties throughout a day
    weights[starts[8]:starts[8] + sizes[8]] = 0.0  # nothing to share by
    totals = rng.integers(0, 500, len(sizes)).astype(float)
    totals[9] = 0.0
    got = allocate_grouped(totals.astype(np.int64)[group], weights, group)
    for g, (a, n) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
        assert got[a:a + n].tolist() == allocate_cents(int(totals[g]),
                                                       weights[a:a + n].tolist()), g
