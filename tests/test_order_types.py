"""The bot's order building per purpose: hand-computed prices, fall-backs and escalation, and
the settings' validation."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from config import load_config
from errors import ConfigError
from market_calendar import NEW_YORK
from order_types import (
    OrderKind,
    build_order,
    entry_prices,
    escalated,
    marketable_limits,
    reserve_prices,
)

CLOSE = datetime(2024, 3, 1, 16, 0, tzinfo=NEW_YORK)
NOON = datetime(2024, 3, 1, 12, 0, tzinfo=NEW_YORK)


def test_marketable_limits_go_through_the_quote_on_the_tick_grid():
    # 10 bps: 100.01 * 1.001 = 100.11001 -> up to 100.12; 99.99 * 0.999 = 99.89001 -> 99.89.
    assert marketable_limits([True, False], 99.99, 100.01, 10.0).tolist() == [100.12, 99.89]
    # Below $1 the tick is $0.0001: 0.5 * 1.001 = 0.5005 exactly, kept.
    assert marketable_limits(True, 0.4999, 0.5, 10.0) == pytest.approx(0.5005)
    # 0 bps: the quote itself.
    assert marketable_limits([True, False], 49.99, 50.01, 0.0).tolist() == [50.01, 49.99]
    # A sell limit never goes below one tick.
    assert marketable_limits(False, 0.0001, 0.0002, 1000.0) == pytest.approx(0.0001)


def test_build_order_per_kind():
    common = dict(is_buy=False, qty=3.0, limit=100.0, bid=99.99, ask=100.01, offset_bps=10.0,
                  now=NOON, session_close=CLOSE)
    got = {k: build_order(k, **common) for k in OrderKind}
    assert (got[OrderKind.LIMIT].type, got[OrderKind.LIMIT].time_in_force,
            got[OrderKind.LIMIT].limit_price) == ("limit", "day", 100.0)
    assert got[OrderKind.MARKETABLE_LIMIT].limit_price == 99.89
    assert (got[OrderKind.MARKET].type, got[OrderKind.MARKET].limit_price) == ("market", None)
    assert (got[OrderKind.LIMIT_ON_CLOSE].type, got[OrderKind.LIMIT_ON_CLOSE].time_in_force,
            got[OrderKind.LIMIT_ON_CLOSE].limit_price) == ("limit", "cls", 100.0)
    assert (got[OrderKind.MARKET_ON_CLOSE].type,
            got[OrderKind.MARKET_ON_CLOSE].time_in_force) == ("market", "cls")
    assert all(not spec.note for spec in got.values())


def test_on_close_falls_back_to_its_day_kind_after_the_cutoff_or_when_fractional():
    common = dict(is_buy=True, limit=100.0, bid=99.99, ask=100.01, offset_bps=10.0,
                  session_close=CLOSE)
    late = build_order(OrderKind.MARKET_ON_CLOSE, qty=3.0,
                       now=datetime(2024, 3, 1, 15, 50, tzinfo=NEW_YORK), **common)
    assert (late.kind, late.type, late.time_in_force) == (OrderKind.MARKET, "market", "day")
    assert "15:50" in late.note
    just_before = build_order(OrderKind.MARKET_ON_CLOSE, qty=3.0,
                              now=datetime(2024, 3, 1, 15, 49, tzinfo=NEW_YORK), **common)
    assert just_before.time_in_force == "cls"
    fractional = build_order(OrderKind.LIMIT_ON_CLOSE, qty=0.5, now=NOON, **common)
    assert (fractional.kind, fractional.time_in_force, fractional.limit_price) == (
        OrderKind.LIMIT, "day", 100.0)
    assert "fractional" in fractional.note


def test_escalation_steps_per_unfilled_days():
    assert escalated(OrderKind.LIMIT, 0, 1) is OrderKind.LIMIT
    assert escalated(OrderKind.LIMIT, 1, 1) is OrderKind.MARKETABLE_LIMIT
    assert escalated(OrderKind.LIMIT, 2, 1) is OrderKind.MARKET
    assert escalated(OrderKind.LIMIT, 9, 1) is OrderKind.MARKET
    assert escalated(OrderKind.LIMIT, 1, 2) is OrderKind.LIMIT
    assert escalated(OrderKind.LIMIT, 3, 2) is OrderKind.MARKETABLE_LIMIT
    assert escalated(OrderKind.LIMIT_ON_CLOSE, 1, 1) is OrderKind.MARKET_ON_CLOSE
    assert escalated(OrderKind.LIMIT, 5, 0) is OrderKind.LIMIT  # 0: never


def test_entries_are_sized_at_what_the_order_holds():
    z = np.array([-2.0, 2.0])
    limit, bid, ask = np.array([100.0, 100.0]), np.array([99.99, 99.99]), np.array([100.01] * 2)
    assert entry_prices(OrderKind.LIMIT, z, limit, bid, ask, 10.0) is None
    assert entry_prices(OrderKind.MARKET, z, limit, bid, ask, 10.0).tolist() == [100.01, 99.99]
    assert entry_prices(OrderKind.MARKETABLE_LIMIT, z, limit, bid, ask,
                        10.0).tolist() == [100.12, 99.89]
    assert reserve_prices(OrderKind.LIMIT_ON_CLOSE, [True], [100.0], [1.0], [1.0],
                          0.0).tolist() == [100.0]


def test_order_settings_are_validated():
    config = load_config({"ENTRY_ORDER_TYPE": "market_on_close", "STOP_ORDER_TYPE": "market",
                          "LIMIT_OFFSET_BPS": "25", "EXIT_ESCALATE_AFTER_DAYS": "2",
                          "EXIT_PARTIAL_FILL": "finish_next_day"})
    assert (config.entry_order_type, config.limit_offset_bps,
            config.exit_escalate_after_days) == ("market_on_close", 25.0, 2)
    for env, words in (({"EXIT_ORDER_TYPE": "stop"}, "EXIT_ORDER_TYPE='stop' is unknown"),
                       ({"LIMIT_OFFSET_BPS": "-1"}, "LIMIT_OFFSET_BPS"),
                       ({"EXIT_ESCALATE_AFTER_DAYS": "-1"}, "EXIT_ESCALATE_AFTER_DAYS"),
                       ({"ENTRY_PARTIAL_FILL": "finish_next_day"}, "ENTRY_PARTIAL_FILL"),
                       ({"EXIT_PARTIAL_FILL": "top"}, "EXIT_PARTIAL_FILL")):
        with pytest.raises(ConfigError, match=words):
            load_config(env)


def test_the_earlier_cancel_partial_remainder_setting_is_read_as_the_policies():
    config = load_config({"CANCEL_PARTIAL_REMAINDER": "true"})
    assert (config.entry_partial_fill, config.exit_partial_fill) == ("cancel_remainder",) * 2
    assert load_config({"CANCEL_PARTIAL_REMAINDER": "false"}).entry_partial_fill == \
        "keep_working"
    with pytest.raises(ConfigError, match="contradicts EXIT_PARTIAL_FILL"):
        load_config({"CANCEL_PARTIAL_REMAINDER": "true", "EXIT_PARTIAL_FILL": "keep_working"})
