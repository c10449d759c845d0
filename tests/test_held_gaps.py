"""A held position can always be managed: gaps in its z-score window, or no price today.

Over HTTP against the local exchange: the holding limit never depends on the window; a held
symbol with a gap gets its stop-loss and reversion from the closes it has (at least
`held_min_closes`); one without a usable price today is named in the run summary and its
alert text every day it stays unmanaged.
"""

from __future__ import annotations

import numpy as np
import pytest

from alert_messages import summary_alert
from signal_generator import held_min_closes, held_zscores, zscore, zscores
from tests.sim_harness import Sim, flat_bars, market, price_for_z
from tests.test_bot_e2e import DAYS, E, scenario


@pytest.fixture
def make(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []

    def build(series: dict) -> Sim:
        sim = Sim(tmp_path, market(*(flat_bars(s, c) for s, c in series.items())),
                  DAYS[E - 1], spread_bps=0.0)
        sim.env["TICKERS"] = ",".join(series)
        made.append(sim)
        return sim

    yield build
    for sim in made:
        sim.close()


def test_the_holding_limit_exits_a_held_symbol_with_a_gap_on_time(make):
    series, _ = scenario(["z=-1.0"] * 8)
    del series["AAA"][DAYS[E + 1]]  # a halt the day after the entry: in every window after
    sim = make(series)
    for i in range(E, E + 8):
        assert sim.run(DAYS[i]) == 0
        if i == E + 1:  # no bar today, so no price: named as unmanaged
            assert "AAA" in sim.last_summary()["unmanaged"]
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "max_holding_period"
    held_days = int(trade["holding_days"])
    assert 5 <= held_days < 8  # the first run at 5 calendar days or more after the entry


def test_a_stop_loss_is_decided_from_the_closes_it_has(make):
    series, _ = scenario(["z=-1.0", "z=-1.0"])
    closes = series["AAA"]
    del closes[DAYS[E + 1]]  # halted the day after the entry: a gap in the windows after
    past = [closes[d] for d in DAYS[E + 2 - 29:E + 2] if d in closes]  # the 28 it has
    closes[DAYS[E + 2]] = price_for_z(past, -4.0)
    sim = make(series)
    assert sim.run(DAYS[E]) == 0 and "AAA" in sim.store.load_holdings()
    for i in (E + 1, E + 2):
        assert sim.run(DAYS[i]) == 0
    (trade,) = sim.trades()
    assert trade["exit_reason"] == "stop_loss" and trade["exit_time"][:10] == \
        DAYS[E + 2].isoformat()
    assert float(trade["exit_z"]) == pytest.approx(-4.0, abs=0.05)


def test_held_z_needs_two_thirds_of_the_window_and_equals_zscores_without_gaps():
    rng = np.random.default_rng(3)
    past, prices = 100 + rng.normal(size=(29, 4)), 100 + rng.normal(size=4)
    assert held_min_closes(30) == 20
    assert np.array_equal(held_zscores(past, prices, 20), zscores(past, prices))
    gappy = past.copy()
    gappy[:9, 1] = np.nan  # 20 closes left: z over them
    gappy[:10, 2] = np.nan  # 19 left: too few
    z = held_zscores(gappy, prices, 20)
    assert z[1] == zscore(past[9:, 1], prices[1]) and np.isnan(z[2])
    assert z[0] == zscores(past, prices)[0] and np.isnan(zscores(gappy, prices)[1])


def test_a_held_symbol_without_a_price_is_named_every_day(make):
    series, _ = scenario(["z=-1.0"] * 3)
    for d in DAYS[E + 1:E + 4]:
        del series["AAA"][d]  # halted for three sessions after the entry
    sim = make(series)
    assert sim.run(DAYS[E]) == 0
    for i in range(E + 1, E + 4):
        assert sim.run(DAYS[i]) == 0
        summary = sim.last_summary()
        assert "no usable price" in summary["unmanaged"]["AAA"]
        text = summary_alert(summary).text
        assert "Held but not managed today (1)" in text and "AAA: no usable price" in text
    assert sim.trades() == [] and "AAA" in sim.store.load_holdings()
