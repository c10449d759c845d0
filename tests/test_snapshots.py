"""Snapshots as they come: all values null, a latest trade days old, a quote of ap = bp = 0.
The exchange produces each (ExchangeConfig.snapshot_*), and the bot skips, prices or postpones
the symbol with a log line; it never crashes and never trades on a zero."""

from __future__ import annotations

from dataclasses import replace

import pytest

from market_calendar import new_york_noon
from tests.simbroker_fixtures import MAR7, make_sim
from tests.test_bot_e2e import DAYS, E, scenario

NOON = new_york_noon(MAR7)


@pytest.fixture
def sim(monkeypatch):
    yield from make_sim(monkeypatch, NOON, snapshot_null={"AAA"},
                        snapshot_stale={"FLAT"}, snapshot_no_quote={"PENNY"})


def test_exchange_produces_each_kind_of_snapshot(sim):
    raw = sim.api.get_snapshots(["AAA", "FLAT", "PENNY", "HALT"])
    assert raw["AAA"].latest_trade is None and raw["AAA"].latest_quote is None
    assert raw["AAA"].daily_bar is None
    stale = raw["FLAT"].latest_trade.timestamp
    assert (NOON - stale.to_pydatetime()).days >= 2
    quote = raw["PENNY"].latest_quote
    assert (quote.ap, quote.bp) == (0.0, 0.0) and raw["PENNY"].latest_trade.p > 0
    normal = raw["HALT"]
    assert normal.latest_quote.ap > 0 and (NOON - normal.latest_trade.timestamp
                                           .to_pydatetime()).total_seconds() < 60


def test_bot_skips_prices_or_postpones_and_never_trades_on_zero(sim_factory):  # noqa: F811
    series = {}
    for symbol in ("NUL", "OLD", "NOQ", "OK"):
        series.update(scenario([], entry_z=-2.0, symbol=symbol)[0])
    sim = sim_factory(series, snapshot_null={"NUL"}, snapshot_stale={"OLD"},
                      snapshot_no_quote={"NOQ"})
    assert sim.run(DAYS[E]) == 0
    summary = sim.last_summary()
    assert summary["skipped"]["NUL"] == "no current price"
    assert summary["skipped"]["OLD"].startswith("stale price: last trade")
    entries = {e["symbol"]: e for e in summary["entries"]}
    assert set(entries) == {"NOQ", "OK"}
    assert entries["NOQ"]["limit_price"] > 90 and entries["NOQ"]["qty"] > 0
    (run_dir,) = (sim.log_dir / "runs").iterdir()
    text = (run_dir / "bot.log").read_text()
    assert "NOQ: no ask in the quote" in text and "skip NUL: no current price" in text
    # The next day every held symbol's snapshot is null: its exit waits, the run goes on.
    sim.exchange.config = replace(sim.exchange.config, snapshot_null=frozenset({"NOQ", "OK"}))
    assert sim.run(DAYS[E + 1]) == 0
    runs = sorted((sim.log_dir / "runs").iterdir())
    text = (runs[-1] / "bot.log").read_text()
    assert "NOQ: held, but no usable price today; exit decision postponed" in text
    assert sim.last_summary()["exits"] == []
