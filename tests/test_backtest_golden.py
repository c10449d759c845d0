"""The backtest on the shipped real data: a golden run, and the z-scores bit for bit against
the bot's own way of calling `zscores` (one day at a time, arrays built like data_fetcher)."""

from datetime import date

import numpy as np
import pytest

from backtester import run_backtest
from backtester.outputs import period_stats
from config import load_config
from market_calendar import new_york_noon, nyse
from signal_generator import zscores
from simbroker import market_data
from simbroker.price_model import path_key, price_at


@pytest.fixture(scope="module")
def us_stocks():
    return market_data.load("us-stocks")


def test_golden_run_on_us_stocks(us_stocks):
    # Pinned from this run of this code (default Config(), not .env; default exchange spread
    # of 2 bps; $100,000). They change legitimately when the strategy's decision functions,
    # the price or fill model, the account arithmetic or the shipped data change; then rerun
    # and pin the new values after checking the reason in the diff.
    result = run_backtest(us_stocks, load_config({}), start=date(2019, 1, 1),
                          end=date(2022, 12, 28))
    # Re-pinned for the seeded intraday path (simbroker/price_model.py), which replaced the
    # fixed open -> low -> high -> close path: that path filled a noon limit almost only when
    # the price went on against it (927 trades, 97,393.93); the new path fills ~94% of
    # noon limits with no drift against them after the fill, so more entries fill and lose
    # less.
    stats = period_stats(result)
    assert stats["trades"] == 1524
    assert stats["exit_reasons"] == {"max_holding_period": 1412, "stop_loss": 31,
                                     "mean_reversion": 81}
    # With the account's costs on (the default, simbroker/costs.py): equity is net of them.
    # Short borrow at 2.5% a year on round lots of 100 is nearly all of it: the bot's $100
    # shorts of $50-300 stocks borrow 100 shares each.
    assert stats["final_equity_before_costs_usd"] == 99_697.35
    assert (stats["borrow_fees_usd"], stats["sec_fees_usd"], stats["taf_fees_usd"]) == (
        1_427.68, 7.68, 6.39)
    assert stats["costs_usd"] == 1_441.75
    assert stats["final_equity_usd"] == 98_255.60


def test_zscores_are_the_bots_bit_for_bit(us_stocks):
    config = load_config({})
    result = run_backtest(us_stocks, config, start=date(2021, 1, 4), end=date(2021, 3, 31))
    calendar = nyse()
    for d, day in enumerate(result.days):
        session = calendar.session(day)
        window = [s.day for s in calendar.sessions_before(day, config.z_score_window - 1)]
        frames = us_stocks.bars(result.symbols, window[0], window[-1], adjustment="all",
                                as_of=day)
        # As data_fetcher builds them: one list of closes per symbol, then transposed; the
        # exchange sends closes rounded to 4 decimals and trade prices rounded with round().
        columns = [[float(np.round(c, 4)) for c in frames[s]["close"]] for s in result.symbols]
        fraction = session.fraction(new_york_noon(day))
        prices = []
        for s in result.symbols:
            bar = us_stocks.bar(s, day)
            prices.append(round(float(price_at(bar.open, bar.high, bar.low, bar.close,
                                               fraction, key=path_key(s, day),
                                               scale=bar.path_scale)), 4))
        expected = zscores(np.array(columns, dtype=float).T, np.array(prices))
        assert np.array_equal(result.prices[d], prices), day
        assert np.array_equal(result.z[d], expected, equal_nan=True), day
