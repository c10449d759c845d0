"""The backtest with a forked helper process computing half of the per-symbol work (the grid
of signals, the fills' prices and times) gives the one-process backtest's results bit for
bit, and an error in the helper reaches the caller.

The thresholds from which the helper is used are lowered to one cell and one fill, so that
the small markets here take it; BACKTEST_PROCESSES=1 gives the one-process run.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

import forked
from backtester import Settings, run_backtest, signals, timeline
from backtester.engine import _TRADE_FIELDS, Result
from backtester.panels import build_panels, session_clock
from backtester.signals import signal_grid
from config import load_config
from market_calendar import nyse
from signal_generator import Thresholds
from simbroker import market_data, synthetic
from simbroker.market_data import Split

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a platform that forks")


@pytest.fixture
def helper_everywhere(monkeypatch, as_if_single_threaded):
    monkeypatch.delenv("BACKTEST_PROCESSES", raising=False)
    monkeypatch.setattr(signals, "HELPER_MIN_CELLS", 1)
    monkeypatch.setattr(timeline, "HELPER_MIN_FILLS", 1)
    # Chunks of 20 days or so on these few symbols, so that each process has several.
    monkeypatch.setattr(signals, "_CHUNK_ELEMENTS", 5_000)
    # A process that may fork (two CPUs, one thread): what a user's machine gives.
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert forked.can_fork()
    return monkeypatch


def both_ways(monkeypatch, **run) -> tuple[Result, Result]:
    """The same backtest in one process and with the helper."""
    with monkeypatch.context() as patch:
        patch.setenv("BACKTEST_PROCESSES", "1")
        alone = run_backtest(**run)
    helped = run_backtest(**run)
    assert (alone.helper, helped.helper) == (False, True)
    return alone, helped


def assert_same_bits(a: Result, b: Result) -> None:
    assert a.engine == b.engine
    for name in _TRADE_FIELDS:
        assert np.array_equal(getattr(a.trades, name), getattr(b.trades, name),
                              equal_nan=True), name
    for name in ("equity", "cash", "long_value", "short_value", "positions", "prices", "z",
                 "benchmark"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.tobytes() == y.tobytes(), name
    for name in ("day", "purpose", "filled", "shortfall_bps"):
        assert getattr(a.orders, name).tobytes() == getattr(b.orders, name).tobytes(), name
    for name in a.costs.__dataclass_fields__:
        x, y = getattr(a.costs, name), getattr(b.costs, name)
        assert (x is None and y is None) or x.tobytes() == y.tobytes(), name


@pytest.fixture(scope="module")
def us():
    return market_data.load("us-stocks")


def test_shipped_data_with_bridges_dividends_and_an_odd_number_of_symbols(us,
                                                                          helper_everywhere):
    # 25 symbols (12 and 13 per process), 19 closes-only (Brownian bridges) and 6 with a
    # range, AAPL and NVDA paying dividends; the configuration's default orders.
    assert len(us.symbols) % 2 == 1 and us.dividends()
    alone, helped = both_ways(helper_everywhere, market=us, config=load_config({}),
                              start=date(2015, 1, 2), end=date(2019, 12, 31))
    assert len(alone.trades) > 100
    assert_same_bits(alone, helped)


def test_shipped_splits_with_the_bench_rules(helper_everywhere):
    market = market_data.load("splits")
    assert market.splits()
    config = load_config({"ENTRY_ORDER_TYPE": "limit", "EXIT_ORDER_TYPE": "limit",
                          "STOP_ORDER_TYPE": "limit", "EXIT_ESCALATE_AFTER_DAYS": "0",
                          "POSITION_SIZE_USD": "100"})
    alone, helped = both_ways(helper_everywhere, market=market, config=config,
                              symbols=market.symbols)
    assert len(alone.trades) > 10
    assert_same_bits(alone, helped)


SESSIONS = [s.day for s in nyse().sessions_between(date(2015, 1, 2), date(2017, 6, 30))]


@pytest.mark.parametrize("n, cash", [(7, 100_000.0), (2, 100_000.0), (11, 1_500.0)])
def test_synthetic_bars_with_halts_splits_and_gaps(helper_everywhere, n, cash):
    # Missing bars (halts), forward and reverse splits, a gap; with little cash the account
    # binds and the day loop takes over from the grid the two processes computed.
    names = [f"S{k:04d}" for k in range(n)]
    days = SESSIONS[:300]
    market = synthetic.generate(
        names, start=days[0], sessions=len(days), seed=n,
        splits=[Split(names[-1], days[120], 2.0), Split(names[0], days[200], 0.25)],
        halts={names[n // 2]: days[50:53] + days[140:141]},
        gaps={names[0]: {days[90]: -0.2}}, daily_vol=0.03)
    config = load_config({"TICKERS": ",".join(names), "Z_SCORE_WINDOW": "10",
                          "POSITION_SIZE_USD": "500", "ENTRY_ORDER_TYPE": "limit",
                          "EXIT_ORDER_TYPE": "limit", "STOP_ORDER_TYPE": "limit",
                          "EXIT_ESCALATE_AFTER_DAYS": "0"})
    alone, helped = both_ways(helper_everywhere, market=market, config=config,
                              symbols=market.symbols, settings=Settings(starting_cash=cash))
    assert len(alone.trades) > 20
    if cash < 10_000:
        assert "day loop" in alone.engine
    assert_same_bits(alone, helped)


def _signal_inputs(us, last_day: date):
    """The panels, session clock and signal settings of us-stocks from 2014-01-02 to
    `last_day` (a 30-session window, the default thresholds, a 2 bps spread)."""
    panels = build_panels(us, us.symbols, first_day=date(2014, 1, 2), last_day=last_day,
                          window=30, calendar=nyse(us.first_day, us.last_day))
    kw = dict(window=30, thresholds=Thresholds.from_config(load_config({})), spread_bps=2.0)
    return panels, session_clock(panels.sessions), kw


def test_the_signals_of_every_cell_are_the_same_bits(us, helper_everywhere):
    panels, clock, kw = _signal_inputs(us, date(2016, 6, 30))
    helped, used = signal_grid(panels, clock, **kw)
    alone, alone_used = signal_grid(panels, clock, helper_min_cells=10**12, **kw)
    assert (used, alone_used) == (True, False)
    for name in helped.__dataclass_fields__:
        x, y = getattr(helped, name), getattr(alone, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
        else:
            assert x == y, name


def test_the_signals_do_not_depend_on_how_the_days_are_chunked(us, monkeypatch):
    panels, clock, kw = _signal_inputs(us, date(2016, 6, 30))
    kw["helper_min_cells"] = 10**12
    whole, _ = signal_grid(panels, clock, **kw)  # one chunk: 25 symbols, 880 days
    assert signals.chunk_days(len(panels.symbols), 30) >= panels.n_days
    for elements in (5_000, 17_000):
        monkeypatch.setattr(signals, "_CHUNK_ELEMENTS", elements)
        chunked, _ = signal_grid(panels, clock, **kw)
        for name in whole.__dataclass_fields__:
            x, y = getattr(whole, name), getattr(chunked, name)
            assert (x == y) if not isinstance(x, np.ndarray) else x.tobytes() == y.tobytes()


def raised_by_join(caught: pytest.ExceptionInfo) -> bool:
    """Whether the exception was raised again by `forked.Child.join` (from the helper)."""
    return any(e.path.name == "forked.py" and e.name == "join" for e in caught.traceback)


def test_an_error_in_the_helper_reaches_the_caller(us, helper_everywhere):
    panels, clock, kw = _signal_inputs(us, date(2014, 6, 30))
    n, days = len(panels.symbols), panels.n_days
    size = signals.chunk_days(n, 30)
    half = range(0, days, size)[len(range(0, days, size)) // 2]  # the helper's first day
    # Closes up to the parent's last day only: the helper's days have none.
    broken = replace(panels, close=panels.close[:panels.warmup + half])
    out = {name: np.empty((days, n), kind) for name, kind in signals._GRID_DTYPES.items()}
    out["filled"] = np.empty((2, days, n), bool)
    with pytest.raises(Exception) as in_process:  # the helper's share, computed here
        signals._chunks_into(out, broken, clock, half, days, size=size, **kw)
    with pytest.raises(type(in_process.value)) as from_helper:
        signal_grid(broken, clock, **kw)
    assert str(from_helper.value) == str(in_process.value)
    assert raised_by_join(from_helper)
    # The fills' helper: orders on columns the truncated highs do not have.
    day = np.arange(10)
    symbol = np.r_[np.zeros(5, int), np.full(5, len(panels.symbols) - 1)]
    args = (day, symbol, np.ones(10, bool), np.full(10, 100.0), np.full(10, 0.4), 2.0)
    short = replace(panels, high=panels.high[:, :n // 2])
    with pytest.raises(IndexError, match="out of bounds") as from_helper:
        timeline.limit_fills(short, *args)
    assert raised_by_join(from_helper)
    assert timeline.limit_fills(panels, *args)[0].shape == (10,)  # and it works when sound
