"""The strategy's pure decisions against hand-computed values."""

import math

import numpy as np
import pytest

from signal_generator import (
    EXIT_MAX_HOLDING,
    EXIT_REVERSION,
    EXIT_STOP_LOSS,
    NO_EXIT,
    EntryCandidate,
    ExitReason,
    Side,
    Thresholds,
    entry_codes,
    exit_codes,
    exit_reason,
    is_day_trade_blocked,
    limit_price,
    order_qty,
    plan_entries,
    short_charge,
    zscore,
    zscores,
)

T = Thresholds()


def test_zscore_matches_hand_computation():
    # Window [10, 11, 12, 13, 9]: mean 11, squared deviations 1+0+1+4+4 = 10,
    # sample variance 10/4 = 2.5, z = (9 - 11) / sqrt(2.5) = -1.26491106...
    assert zscore([10, 11, 12, 13], 9) == pytest.approx(-2 / math.sqrt(2.5), abs=1e-12)


def test_zscores_vectorised_equals_scalar_and_uses_today_price():
    past = np.array([[10.0, 20.0], [11.0, 20.0], [12.0, 21.0], [13.0, 19.0]])
    z = zscores(past, np.array([9.0, 26.0]))
    assert z[0] == pytest.approx(zscore([10, 11, 12, 13], 9))
    # [20, 20, 21, 19, 26]: mean 21.2, deviations -1.2 -1.2 -0.2 -2.2 4.8,
    # squares 1.44+1.44+0.04+4.84+23.04 = 30.8, var 7.7, z = 4.8 / sqrt(7.7)
    assert z[1] == pytest.approx(4.8 / math.sqrt(7.7))


def test_flat_or_missing_window_gives_no_signal():
    past = np.array([[5.0, 5.0, np.nan], [5.0, 6.0, 6.0], [5.0, 7.0, 7.0]])
    z = zscores(past, np.array([5.0, 8.0, 8.0]))
    assert math.isnan(z[0])  # zero standard deviation
    assert not math.isnan(z[1])
    assert math.isnan(z[2])  # a missing close
    assert entry_codes(z, T)[0] == 0


@pytest.mark.parametrize("side, z, held, today, expected", [
    (Side.LONG, -3.5, 5, False, ExitReason.MAX_HOLDING),  # holding period beats stop-loss
    (Side.LONG, -3.5, 2, False, ExitReason.STOP_LOSS),
    (Side.LONG, -3.0, 2, False, ExitReason.STOP_LOSS),  # the stop is inclusive
    (Side.LONG, -0.1, 2, False, ExitReason.REVERSION),
    (Side.LONG, 0.8, 2, False, ExitReason.REVERSION),
    (Side.LONG, -1.0, 4, False, None),
    (Side.SHORT, 3.2, 1, False, ExitReason.STOP_LOSS),
    (Side.SHORT, 0.1, 1, False, ExitReason.REVERSION),
    (Side.SHORT, 0.5, 1, False, None),
    (Side.SHORT, 0.0, 7, False, ExitReason.MAX_HOLDING),
    (Side.LONG, float("nan"), 5, False, ExitReason.MAX_HOLDING),
    (Side.LONG, float("nan"), 1, False, None),
    (Side.LONG, 0.0, 0, True, None),  # day-trade guard: no same-day reversion exit
    (Side.LONG, -3.2, 0, True, ExitReason.STOP_LOSS),  # ... but a stop-loss goes
])
def test_exit_precedence(side, z, held, today, expected):
    assert exit_reason(side, z, held, today, T) == expected


def test_same_day_stop_loss_can_be_switched_off():
    t = Thresholds(same_day_stop_loss=False)
    assert exit_reason(Side.SHORT, 3.5, 0, True, t) is None


def test_exit_codes_vectorised():
    codes = exit_codes(np.array([True, True, False, False]), np.array([-3.1, -0.05, 0.5, 1.0]),
                       np.array([1, 1, 1, 6]), np.array([False] * 4), T)
    assert codes.tolist() == [EXIT_STOP_LOSS, EXIT_REVERSION, NO_EXIT, EXIT_MAX_HOLDING]


def test_entry_thresholds_are_strict():
    codes = entry_codes(np.array([-1.5, -1.5001, 1.5, 1.5001, 0.0, np.nan]), T)
    assert codes.tolist() == [0, 1, 0, -1, 0, 0]
    assert entry_codes(np.array([2.0]), Thresholds(allow_shorts=False)).tolist() == [0]


@pytest.mark.parametrize("price, expected", [
    (123.456, 123.46), (123.454, 123.45), (1.005, 1.01), (0.123456, 0.1235), (0.99995, 1.0),
    (57.0, 57.0),
])
def test_limit_price_rounds_to_alpaca_tick(price, expected):
    assert limit_price(price) == expected


def test_order_qty_fractional_long_whole_short():
    assert order_qty(100, 150.0, is_long=True, fractionable=True) == 0.666666666
    assert order_qty(100, 150.0, is_long=True, fractionable=False) == 0.0
    assert order_qty(100, 40.0, is_long=False, fractionable=True) == 2.0
    assert order_qty(100, 150.0, is_long=False, fractionable=True) == 0.0  # skipped
    assert order_qty(100, 0.0, is_long=True, fractionable=True) == 0.0


def test_short_charge_is_greater_of_limit_and_ask_plus_3_percent():
    assert short_charge(2, 40.0, 40.1) == pytest.approx(2 * 41.303)
    assert short_charge(2, 45.0, 40.0) == pytest.approx(90.0)


@pytest.mark.parametrize("reports, count, pdt, equity, blocked", [
    (True, 3, False, 20_000, True),
    (True, 2, False, 20_000, False),
    (True, 5, False, 30_000, False),
    (True, 0, True, 20_000, True),
    (False, 9, True, 1_000, False),  # no PDT fields: the rule is retired
])
def test_pdt_block(reports, count, pdt, equity, blocked):
    assert is_day_trade_blocked(reports_pdt=reports, daytrade_count=count,
                                pattern_day_trader=pdt, equity_usd=equity) is blocked


def _cand(symbol, z, price=50.0, fractionable=True, shortable=True):
    return EntryCandidate(symbol, z, price, price * 1.001, fractionable, shortable)


def test_plan_entries_funds_strongest_first_within_cash():
    cands = [_cand("AAA", -1.6), _cand("BBB", -2.5), _cand("CCC", -1.9), _cand("DDD", 0.0)]
    plans, skipped = plan_entries(cands, T, size_usd=100, cash_usd=250, buying_power_usd=1000)
    assert [p.symbol for p in plans] == ["BBB", "CCC"]
    assert plans[0].qty == 2.0 and plans[0].limit_price == 50.0
    assert "cash" in skipped["AAA"]
    assert "DDD" not in skipped


def test_plan_entries_short_rules():
    cands = [_cand("EXP", 2.0, price=150.0), _cand("NOS", 2.0, shortable=False),
             _cand("OK", 1.8, price=40.0)]
    plans, skipped = plan_entries(cands, T, size_usd=100, cash_usd=0, buying_power_usd=1000)
    assert [(p.symbol, p.is_long, p.qty) for p in plans] == [("OK", False, 2.0)]
    assert plans[0].cost_usd == pytest.approx(2 * 40.0 * 1.001 * 1.03)
    assert "whole shares" in skipped["EXP"]
    assert "cannot be shorted" in skipped["NOS"]


def test_plan_entries_respects_max_entries():
    cands = [_cand(f"S{i}", -2.0 - i / 10) for i in range(4)]
    plans, skipped = plan_entries(cands, T, size_usd=100, cash_usd=1e6, buying_power_usd=1e6,
                                  max_entries=2)
    assert len(plans) == 2 and len(skipped) == 2
