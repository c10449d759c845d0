"""simbroker.synthetic: seeded, consistent, mean-reverting bars with flat symbols, halts,
splits and gaps."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from market_calendar import nyse
from simbroker.market_data import FIELDS, Split
from simbroker.synthetic import generate

START = date(2021, 1, 4)


def small(**kwargs):
    return generate(kwargs.pop("symbols", 3), start=START, sessions=kwargs.pop("sessions", 40),
                    seed=kwargs.pop("seed", 7), **kwargs)


def panels(md) -> dict[str, pd.DataFrame]:
    return {field: md.panel(field, adjustment="raw") for field in FIELDS}


def test_same_seed_same_bars_other_seed_other_bars():
    first, second, other = small(), small(), small(seed=8)
    for field, values in panels(first).items():
        pd.testing.assert_frame_equal(values, panels(second)[field])
    assert not panels(first)["close"].equals(panels(other)["close"])
    assert first.name == "synthetic" and "seed 7" in first.description


def test_names_and_sessions():
    md = small(symbols=3)
    assert md.symbols == ("S0000", "S0001", "S0002")
    assert small(symbols=["ZZ", "AA"]).symbols == ("AA", "ZZ")
    sessions = [s.day for s in nyse().sessions_between(START, date(2021, 3, 31))][:40]
    assert [d.date() for d in md.frame("S0001").index] == sessions
    weekend_start = generate(1, start=date(2021, 1, 2), sessions=1, seed=0)  # a Saturday
    assert weekend_start.first_day == date(2021, 1, 4)


def test_bars_are_consistent_on_the_tick_grid_with_integer_volumes():
    md = small(symbols=20, sessions=300)
    for symbol in md.symbols:
        bars = md.frame(symbol)
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
        assert (bars["low"] > 0).all()
        cents = bars[["open", "high", "low", "close"]].to_numpy() * 100
        assert np.allclose(cents, np.round(cents), atol=1e-6)
        assert (bars["volume"] > 0).all() and (bars["volume"] == np.round(bars["volume"])).all()


def test_closes_revert_to_the_start_price():
    # Regress the daily log change on the distance from log(100): the slope is -0.05 (the
    # reversion per day) and the spread is 0.02 / sqrt(1 - 0.95**2) = 0.064 in log terms.
    md = generate(50, start=date(2000, 1, 3), sessions=2000, seed=3)
    x = np.log(md.panel("close", adjustment="raw").to_numpy()) - np.log(100.0)
    slope = np.polyfit(x[:-1].ravel(), np.diff(x, axis=0).ravel(), 1)[0]
    assert -0.065 < slope < -0.035
    assert 0.055 < x.std() < 0.075


def test_flat_symbols_never_move():
    md = small(flat=["S0001"], start_price=50.0)
    bars = md.frame("S0001")
    assert (bars[["open", "high", "low", "close"]] == 50.0).all().all()
    assert bars["close"].std() == 0.0
    assert md.frame("S0000")["close"].std() > 0


def test_halts_remove_only_those_bars():
    halted = [date(2021, 1, 6), date(2021, 1, 7)]
    md, plain = small(halts={"S0002": halted}), small()
    assert md.bar("S0002", halted[0]) is None and md.bar("S0002", halted[1]) is None
    assert md.last_bar_before("S0002", date(2021, 1, 8)).day == date(2021, 1, 5)
    assert len(md.frame("S0002")) == 38
    kept = plain.frame("S0002").drop(index=pd.to_datetime(halted))
    pd.testing.assert_frame_equal(md.frame("S0002"), kept)
    pd.testing.assert_frame_equal(md.frame("S0001"), plain.frame("S0001"))


def test_splits_divide_raw_prices_from_the_ex_date():
    ex = date(2021, 2, 1)
    split = Split("S0000", ex, 2.0)
    md, plain = small(splits=[split]), small()
    assert md.splits() == [split]
    raw, base = md.frame("S0000"), plain.frame("S0000")
    before, after = raw.index < pd.Timestamp(ex), raw.index >= pd.Timestamp(ex)
    pd.testing.assert_frame_equal(raw[before], base[before])
    prices = ["open", "high", "low", "close"]
    assert np.allclose(raw.loc[after, prices], base.loc[after, prices] / 2, atol=0.005 + 1e-9)
    assert (raw.loc[after, "volume"] == base.loc[after, "volume"] * 2).all()
    adjusted = md.bars(["S0000"], START, md.last_day, adjustment="all", as_of=md.last_day)
    assert np.allclose(adjusted["S0000"]["close"], base["close"] / 2, atol=0.005 + 1e-9)


def test_a_gap_opens_at_the_requested_move():
    day = date(2021, 1, 12)
    md = small(gaps={"S0001": {day: -0.2}})
    prev = md.last_bar_before("S0001", day).close
    assert 0.76 < md.bar("S0001", day).open / prev < 0.84  # -20% plus the usual small gap
    assert md.frame("S0001")["close"].pct_change().min() < -0.15
    pd.testing.assert_frame_equal(md.frame("S0000"), small().frame("S0000"))


@pytest.mark.parametrize("kwargs, message", [
    ({"flat": ["NOPE"]}, "flat names NOPE, which are not among the generated symbols"),
    ({"halts": {"S0000": [date(2021, 1, 9)]}}, r"halts\['S0000'\] has 2021-01-09"),
    ({"gaps": {"S0000": {date(2021, 1, 5): -1.5}}}, "a move must be > -1"),
    ({"flat": ["S0000"], "gaps": {"S0000": {date(2021, 1, 5): 0.1}}}, "flat prices never move"),
    ({"splits": [Split("S9", date(2021, 1, 5), 2.0)]}, "splits names S9"),
    ({"sessions": 0}, "at least one session"),
    ({"symbols": ["A", "A"]}, "unique"),
])
def test_bad_arguments_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_500_symbols_by_5000_sessions():
    # Its speed is measured by bench/bench_backtest.py (the large run generates this market),
    # not asserted here: a test's wall time depends on how loaded the machine is.
    md = generate(500, start=date(2000, 1, 3), sessions=5000, seed=1)
    assert len(md.symbols) == 500 and md.symbols[-1] == "S0499"
    assert len(md.frame("S0499")) == 5000
    assert md.panel("close").shape == (5000, 500)
