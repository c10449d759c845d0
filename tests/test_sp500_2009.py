"""The shipped `sp500-2009` dataset: a year of raw OHLCV of the S&P 500's members, checked
against the Quandl WIKI file of the `splits` dataset where both have a symbol, and backtested."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from backtester import run_backtest
from backtester.outputs import period_stats
from config import load_config
from simbroker.market_data import load

LEFT_OUT = ("ARG", "BDK", "BNI", "CAH", "CCE", "DHR", "ESRX", "ETFC", "GIS", "MFE", "NOVL",
            "STR", "WY")


@pytest.fixture(scope="module")
def sp500():
    return load("sp500-2009")


def test_range_symbols_and_what_was_left_out(sp500):
    assert (sp500.first_day, sp500.last_day) == (date(2009, 8, 21), date(2010, 8, 20))
    assert len(sp500.symbols) == 511 and {"BRK.B", "BF.B", "WYE", "JAVA"} <= set(sp500.symbols)
    assert not set(LEFT_OUT) & set(sp500.symbols)
    assert sp500.splits() == [] and sp500.dividends() == [] and not sp500.model_ohlc
    # No overnight jump beyond the build's 25% rule is left in.
    for symbol in sp500.symbols:
        frame = sp500.frame(symbol)
        jump = frame["open"].to_numpy()[1:] / frame["close"].to_numpy()[:-1] - 1
        assert np.all(np.abs(jump) <= 0.25), symbol
    # 2009-09-08 is one of the 7 sessions without any bar in the source.
    assert all(sp500.bar(s, date(2009, 9, 8)) is None for s in sp500.symbols)


@pytest.mark.parametrize("symbol", ["AAPL", "MSFT", "IBM"])
def test_bars_agree_with_the_quandl_wiki_file_and_volume_is_in_shares(sp500, symbol):
    wiki = load("splits")
    days = [d.date() for d in sp500.frame(symbol).index if date(2009, 8, 21) <= d.date()
            <= date(2010, 8, 20) and wiki.bar(symbol, d.date()) is not None]
    assert len(days) > 200
    close = np.array([(sp500.bar(symbol, d).close, wiki.bar(symbol, d).close) for d in days])
    assert np.max(np.abs(close[:, 0] / close[:, 1] - 1)) < 0.005
    volume = np.array([(sp500.bar(symbol, d).volume, wiki.bar(symbol, d).volume) for d in days])
    assert np.median(volume[:, 1] / volume[:, 0]) == pytest.approx(1.0, abs=1e-3)


def test_a_backtest_of_the_whole_cross_section_runs_with_both_benchmarks(sp500):
    universe = ",".join(sp500.symbols)
    result = run_backtest(sp500, load_config({"TICKERS": universe}), start=date(2010, 1, 4),
                          end=date(2010, 3, 31))
    stats = period_stats(result)
    assert len(result.symbols) == 511 and stats["trades"] > 100
    assert stats["market_benchmark"].startswith("S&P 500 index")
    assert np.isfinite(stats["market_beta"]) and np.isfinite(stats["beta"])
