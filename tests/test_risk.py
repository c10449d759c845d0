"""Risk limits on new entries."""

import dataclasses

import pytest

from config import Config
from risk import EntryAllowance, RiskView, entry_allowance

BASE = RiskView(open_positions=3, gross_exposure_usd=300.0, equity_usd=100_000.0,
                last_equity_usd=100_000.0, kill_switch=False)


def cfg(**kw):
    return dataclasses.replace(Config(), **kw)


def test_no_limits_by_default():
    assert entry_allowance(Config(), BASE) == EntryAllowance(0, "")


def test_kill_switch_blocks_entries():
    a = entry_allowance(Config(), dataclasses.replace(BASE, kill_switch=True))
    assert a.blocked.startswith("kill switch")


@pytest.mark.parametrize("equity, blocked", [(99_500.0, True), (99_501.0, False)])
def test_daily_loss_limit(equity, blocked):
    a = entry_allowance(cfg(daily_loss_limit_usd=500), dataclasses.replace(BASE, equity_usd=equity))
    assert bool(a.blocked) is blocked


def test_caps_take_the_tightest():
    assert entry_allowance(cfg(max_entries_per_run=10), BASE).max_entries == 10
    assert entry_allowance(cfg(max_entries_per_run=10, max_open_positions=5), BASE).max_entries == 2
    # $1,000 of gross exposure allowed, $300 used: 7 more $100 entries.
    assert entry_allowance(cfg(max_gross_exposure_usd=1000), BASE).max_entries == 7


def test_caps_reached_block():
    a = entry_allowance(cfg(max_open_positions=3), BASE)
    assert a.max_entries == 0 and "risk limits" in a.blocked
