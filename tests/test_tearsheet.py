"""Tearsheet tables by hand: monthly returns, worst drawdowns, rolling Sharpe."""

from datetime import date

import numpy as np
import pytest

from backtester.tearsheet import monthly_returns, rolling_sharpe, worst_drawdowns

DAYS = [date(2021, 1, 4), date(2021, 1, 5), date(2021, 1, 29), date(2021, 2, 1),
        date(2021, 2, 26), date(2021, 3, 1), date(2021, 3, 2)]
EQUITY = np.array([100.0, 90.0, 95.0, 110.0, 104.5, 121.0, 102.85])


def test_monthly_returns_compound_from_month_end_to_month_end():
    table = monthly_returns(DAYS, EQUITY, 100.0)
    row = table.loc[2021]
    assert row[1] == pytest.approx(95 / 100 - 1)  # the first month from the starting cash
    assert row[2] == pytest.approx(104.5 / 95 - 1)
    assert row[3] == pytest.approx(102.85 / 104.5 - 1)
    assert np.isnan(row[4]) and np.isnan(row[12])
    assert row["year"] == pytest.approx(102.85 / 100 - 1)


def test_worst_drawdowns_deepest_first_with_peak_trough_and_recovery():
    worst = worst_drawdowns(DAYS, EQUITY, 100.0)
    assert [(d.peak, d.trough, d.recovery) for d in worst] == [
        (date(2021, 3, 1), date(2021, 3, 2), None),  # not recovered by the last day
        (date(2021, 1, 4), date(2021, 1, 5), date(2021, 2, 1)),
        (date(2021, 2, 1), date(2021, 2, 26), date(2021, 3, 1))]
    assert [round(d.depth, 4) for d in worst] == [-0.15, -0.1, -0.05]
    assert [d.days for d in worst] == [1, 28, 28]
    assert worst_drawdowns(DAYS, EQUITY, 100.0, count=1) == worst[:1]
    assert worst_drawdowns(DAYS[:1], EQUITY[:1], 100.0) == []  # never below the peak


def test_rolling_sharpe_over_a_window():
    sharpe = rolling_sharpe(EQUITY, 100.0, sessions=3)
    returns = np.concatenate([[100.0], EQUITY])
    daily = returns[1:] / returns[:-1] - 1
    last = daily[-3:]
    assert np.isnan(sharpe[:2]).all()
    assert sharpe[-1] == pytest.approx(last.mean() / last.std(ddof=1) * np.sqrt(252))
    assert np.isnan(rolling_sharpe(np.full(5, 100.0), 100.0, sessions=3)).all()  # flat
