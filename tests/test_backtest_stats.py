"""Backtest statistics against values computed by hand on tiny series."""

import math
from datetime import date, timedelta

import numpy as np
import pytest

from backtester.stats import (
    annual_volatility,
    benchmark_stats,
    cagr,
    capital_in_use,
    daily_returns,
    drawdown,
    drawdown_recovered,
    exposure,
    max_drawdown_duration,
    sharpe,
    summarise,
    total_return,
    trade_stats,
)
from signal_generator import EXIT_MAX_HOLDING, EXIT_REVERSION, EXIT_STOP_LOSS
from tests.test_backtest_engine import DAYS as SESSIONS
from tests.test_backtest_engine import backtest, bars, flat_start

DAYS = [date(2021, 3, 1) + timedelta(days=i) for i in range(6)]


def test_returns_start_from_the_starting_cash():
    # 100 -> 110: +10%; 110 -> 99: -10%; 99 -> 121: +22.22...%
    r = daily_returns(np.array([110.0, 99.0, 121.0]), 100.0)
    assert r == pytest.approx([0.1, -0.1, 22 / 99])
    assert total_return(np.array([110.0, 99.0, 121.0]), 100.0) == pytest.approx(0.21)


def test_cagr_compounds_per_252_sessions():
    # Doubling in one year of sessions is 100% a year; +21% over two years is +10% a year.
    assert cagr(np.r_[np.full(251, 150.0), 200.0], 100.0) == pytest.approx(1.0)
    assert cagr(np.r_[np.full(503, 50.0), 121.0], 100.0) == pytest.approx(0.1)


def test_volatility_and_sharpe_by_hand():
    # Returns +10%, -10%: mean 0, sample std sqrt((0.01 + 0.01) / 1) = 0.141421...
    assert annual_volatility(np.array([0.1, -0.1])) == pytest.approx(
        math.sqrt(0.02) * math.sqrt(252))
    assert sharpe(np.array([0.1, -0.1])) == pytest.approx(0.0)
    # Returns 1%, 3%: mean 2%, std sqrt(2) * 1%, Sharpe = sqrt(2) * sqrt(252) = sqrt(504).
    assert sharpe(np.array([0.01, 0.03])) == pytest.approx(math.sqrt(504))
    assert math.isnan(sharpe(np.array([0.01, 0.01])))  # no volatility: undefined


def test_drawdown_depth_and_duration():
    equity = np.array([110.0, 99.0, 121.0, 115.0])
    # Peaks 110, 110, 121, 121: drawdowns 0, -10%, 0, -4.96%.
    assert drawdown(equity, 100.0) == pytest.approx([0.0, -0.1, 0.0, 115 / 121 - 1])
    # The deepest (-10%) runs from the peak on day 0 to the recovery on day 2: 2 days.
    assert max_drawdown_duration(equity, 100.0, DAYS[:4]) == (pytest.approx(-0.1), 2)


def test_drawdown_not_recovered_lasts_to_the_end_and_can_start_at_the_cash():
    assert max_drawdown_duration(np.array([100.0, 90.0, 95.0]), 100.0, DAYS[:3]) == (
        pytest.approx(-0.1), 2)
    # Below the starting cash from the first close: counted from the first day.
    assert max_drawdown_duration(np.array([80.0, 90.0, 100.0, 101.0]), 100.0, DAYS[:4]) == (
        pytest.approx(-0.2), 2)
    assert max_drawdown_duration(np.array([100.0, 101.0]), 100.0, DAYS[:2]) == (0.0, 0)


def test_trade_statistics():
    pnl = np.array([5.0, -2.0, 0.0, 3.0])
    held = np.array([1, 5, 6, 2])
    codes = np.array([EXIT_REVERSION, EXIT_MAX_HOLDING, EXIT_MAX_HOLDING, EXIT_STOP_LOSS])
    stats = trade_stats(pnl, held, codes)
    assert stats["trades"] == 4
    assert stats["win_rate"] == 0.5  # a zero P&L is not a win
    assert stats["avg_holding_days"] == 3.5
    assert stats["median_holding_days"] == 3.5
    assert stats["total_pnl_usd"] == 6.0
    assert stats["exit_reasons"] == {"max_holding_period": 2, "stop_loss": 1,
                                     "mean_reversion": 1}
    assert math.isnan(trade_stats(np.array([]), np.array([]), np.array([]))["win_rate"])


def test_exposure_is_the_share_of_days_ending_with_a_position():
    assert exposure(np.array([0, 2, 1, 0])) == 0.5


def test_summary_of_a_period():
    stats = summarise(equity=np.array([110.0, 99.0, 121.0]), start_value=100.0,
                      days=DAYS[:3], positions=np.array([1, 1, 0]), pnl_usd=np.array([21.0]),
                      holding_days=np.array([3]), exit_codes=np.array([EXIT_REVERSION]))
    assert stats["start"] == "2021-03-01" and stats["end"] == "2021-03-03"
    assert stats["final_equity_usd"] == 121.0
    assert stats["total_return"] == pytest.approx(0.21)
    assert stats["max_drawdown"] == pytest.approx(-0.1)
    assert stats["exposure"] == pytest.approx(2 / 3)
    assert stats["trades"] == 1 and stats["win_rate"] == 1.0


def test_sharpe_is_over_the_stated_risk_free_rate():
    daily = 0.01  # a yearly rate of 1.01 ** 252 - 1 compounds to 1% a session
    excess = np.array([0.0, 0.02])
    assert sharpe(excess + daily, 1.01 ** 252 - 1) == pytest.approx(
        np.mean(excess) / np.std(excess, ddof=1) * math.sqrt(252))


def test_a_drawdown_that_never_recovered_is_said_as_such():
    assert drawdown_recovered(np.array([110.0, 99.0, 121.0]), 100.0)
    assert not drawdown_recovered(np.array([110.0, 99.0, 105.0]), 100.0)


def test_capital_in_use_is_gross_exposure_over_equity():
    got = capital_in_use(np.array([100.0, 200.0]), np.array([50.0, 0.0]),
                         np.array([-50.0, -100.0]))
    assert got == {"avg_gross_exposure": 0.75, "peak_gross_exposure": 1.0}


def test_benchmark_beta_and_correlation():
    bench = np.array([101.0, 99.0, 103.0])
    returns = np.array([0.01, 99 / 101 - 1, 103 / 99 - 1])  # the benchmark itself
    got = benchmark_stats(returns, bench, 100.0, "b")
    assert got["beta"] == pytest.approx(1.0) and got["correlation"] == pytest.approx(1.0)
    assert got["excess_total_return"] == pytest.approx(0.0, abs=1e-12)
    assert got["benchmark_total_return"] == pytest.approx(0.03)


def test_every_backtest_has_its_equal_weight_benchmark():
    # AAA 10 -> 11 -> 12, BBB 10 -> 9 -> 9: equal dollars at the last warm-up close of 10.
    market = bars(*flat_start("AAA"), *flat_start("BBB"), ("AAA", SESSIONS[4], 11.0),
                  ("BBB", SESSIONS[4], 9.0), ("AAA", SESSIONS[5], 12.0),
                  ("BBB", SESSIONS[5], 9.0))
    result = backtest(market, end=SESSIONS[5], symbols=("AAA", "BBB"))
    assert list(result.benchmark) == pytest.approx([100_000.0, 105_000.0])
