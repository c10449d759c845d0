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
    assert table.years == (2021,)
    row = table.row(2021)  # January..December at 0..11, the year at 12
    assert row[0] == pytest.approx(95 / 100 - 1)  # the first month from the starting cash
    assert row[1] == pytest.approx(104.5 / 95 - 1)
    assert row[2] == pytest.approx(102.85 / 104.5 - 1)
    assert np.isnan(row[3]) and np.isnan(row[11])
    assert row[12] == pytest.approx(102.85 / 100 - 1)


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


def _pandas_monthly(days, equity, start_value):
    """The table as pandas computed it before (groupby month, shift, pivot, prod)."""
    import pandas as pd

    closes = pd.Series(np.asarray(equity, dtype=float), index=pd.to_datetime(list(days)))
    month_end = closes.groupby(closes.index.to_period("M")).last()
    previous = month_end.shift(1)
    previous.iloc[0] = start_value
    returns = month_end / previous - 1.0
    table = pd.DataFrame({"year": returns.index.year, "month": returns.index.month,
                          "r": returns.to_numpy()})
    out = table.pivot(index="year", columns="month", values="r").reindex(columns=range(1, 13))
    out["year"] = (1.0 + out[list(range(1, 13))]).prod(axis=1, min_count=1) - 1.0
    return out


def _pandas_rolling_sharpe(equity, start_value, sessions):
    import pandas as pd

    values = np.concatenate([[start_value], np.asarray(equity, dtype=float)])
    window = pd.Series(values[1:] / values[:-1] - 1.0).rolling(sessions)
    std = window.std(ddof=1)
    return (window.mean() / std.where(std > 0) * np.sqrt(252)).to_numpy()


def test_monthly_returns_to_the_bit_and_rolling_sharpe_as_pandas_computed_them():
    rng = np.random.default_rng(7)
    start = date(2019, 12, 30)
    from datetime import timedelta

    days = [start + timedelta(days=int(d)) for d in np.cumsum(rng.integers(1, 4, 900))]
    days = [d for d in days if d.month != 8 or d.year != 2021]  # a month without a session
    equity = 1000.0 * np.cumprod(1 + rng.normal(0.0003, 0.01, len(days)))
    equity[200:400] = equity[199]  # flat: no position
    table = monthly_returns(days, equity, 1000.0)
    expected = _pandas_monthly(days, equity, 1000.0)
    assert list(table.years) == expected.index.tolist()
    assert table.table.tobytes() == expected.to_numpy(dtype=float).tobytes()
    ours, theirs = rolling_sharpe(equity, 1000.0), _pandas_rolling_sharpe(equity, 1000.0, 126)
    # Two passes over each window against pandas' running update: the same figures to
    # rounding, none before a full window. A window of equal returns has none either, where
    # pandas' running variance kept a residue and gave 0.0 (a flat stretch after returns that
    # varied; from the start it gave none too, as the test above shows).
    flat = np.zeros(len(ours), dtype=bool)
    flat[200 + 125:400] = True
    assert np.isnan(ours[flat]).all() and (theirs[flat] == 0.0).all()
    assert np.array_equal(np.isnan(ours[~flat]), np.isnan(theirs[~flat]))
    np.testing.assert_allclose(ours[~flat], theirs[~flat], rtol=1e-9, atol=0)
