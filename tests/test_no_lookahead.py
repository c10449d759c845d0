"""A session's close reaches no decision made before it, except through the model's noon price.

The test lowers one session's close in the shipped data (3% for a closes-only symbol, half way
to the low for one with real OHLCV) and backtests both versions.
It asserts, precisely:

1. every noon price, z-score and trade decided on an earlier session is identical (bit for
   bit): the close of session d is unknown before it;
2. on session d, every other symbol's noon price is identical, and the changed symbol's noon
   price is the model's on the changed bar: for a closes-only bar, a Brownian bridge from the
   open to the close on a path fixed by (symbol, session), it moves by exactly t x (the change
   of the close), t the session fraction at noon -- the same as the noon point of a random
   walk moves with its end when the walk's increments are held fixed;
3. the day-d z-score of that symbol is the bot's zscores() of the unchanged window with the
   new noon price: the close enters the decision through nothing else.

A decision on session d may change (that is the model: in a random walk the noon price and the
close are correlated, t of the variance), but never one before it.
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from backtester import run_backtest
from config import load_config
from market_calendar import new_york_noon, nyse
from signal_generator import zscores
from simbroker import market_data
from simbroker.price_model import path_key, price_at

START, END = date(2019, 1, 2), date(2019, 9, 30)
CHANGED = date(2019, 6, 14)


def shipped_frame() -> pd.DataFrame:
    frame = pd.read_csv(market_data.DATA_DIR / "us_stocks_2013_2022.csv.gz")
    return frame[(frame["date"] >= "2018-10-01") & (frame["date"] <= END.isoformat())]


def lowered(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The close of CHANGED 3% lower (closes-only), or half way down to the low (a real bar,
    whose close must stay in its range)."""
    frame = frame.copy()
    row = (frame["symbol"] == symbol) & (frame["date"] == CHANGED.isoformat())
    assert row.sum() == 1
    close, low = frame.loc[row, "close"], frame.loc[row, "low"]
    frame.loc[row, "close"] = (close * 0.97).round(3) if low.isna().all() else (
        (close + low) / 2).round(4)
    return frame


def backtest(frame: pd.DataFrame):
    market = market_data.from_frame(frame.reset_index(drop=True))
    return market, run_backtest(market, load_config({}), start=START, end=END)


@pytest.fixture(scope="module")
def original():
    return backtest(shipped_frame())


def trades_decided_before(result, d: int) -> list[tuple]:
    t = result.trades
    rows = []
    for i in range(len(t)):
        entry = (int(t.symbol[i]), bool(t.is_long[i]), float(t.qty[i]),
                 int(t.entry_session[i]), float(t.entry_price[i]))
        if t.entry_session[i] < d:
            exit_ = ((int(t.exit_session[i]), float(t.exit_price[i]), int(t.exit_reason[i]))
                     if t.exit_session[i] < d else None)
            rows.append((entry, exit_))
    return rows


@pytest.mark.parametrize("symbol", ["PG", "AAPL"])  # closes-only, and real OHLCV
def test_changing_one_close_changes_nothing_decided_before_it(original, symbol):
    market, before = original
    changed_market, after = backtest(lowered(shipped_frame(), symbol))
    d = before.days.index(CHANGED)
    j = before.symbols.index(symbol)
    # 1. Nothing before session d moves.
    assert np.array_equal(before.prices[:d], after.prices[:d], equal_nan=True)
    assert np.array_equal(before.z[:d], after.z[:d], equal_nan=True)
    assert trades_decided_before(before, d) == trades_decided_before(after, d)
    assert len(trades_decided_before(before, d)) > 50  # there is something to compare
    # 2. On session d only the changed symbol's noon price moves, as the model says.
    others = np.arange(len(before.symbols)) != j
    assert np.array_equal(before.prices[d, others], after.prices[d, others])
    bar = changed_market.bar(symbol, CHANGED)
    noon = nyse().session(CHANGED).fraction(new_york_noon(CHANGED))
    model = float(price_at(bar.open, bar.high, bar.low, bar.close, noon,
                           key=path_key(symbol, CHANGED), scale=bar.path_scale))
    assert after.prices[d, j] == round(model, 4)
    old_bar = market.bar(symbol, CHANGED)
    if market.ohlc_is_model(symbol):
        moved = noon * (bar.close - old_bar.close)
        assert after.prices[d, j] - before.prices[d, j] == pytest.approx(moved, abs=2e-4)
    # 3. The day-d z-score is the bot's, from the unchanged window and the new noon price.
    window = [s.day for s in nyse().sessions_before(CHANGED, before.config.z_score_window - 1)]
    closes = market.bars([symbol], window[0], window[-1], adjustment="all",
                         as_of=CHANGED)[symbol]["close"]
    expected = zscores(np.round(closes.to_numpy(), 4)[:, np.newaxis],
                       np.array([after.prices[d, j]]))
    assert after.z[d, j] == expected[0]
