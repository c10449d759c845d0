"""The bulk forms of the entry decisions equal the one-at-a-time forms, exactly."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signal_generator import (
    Thresholds,
    _fund_one_by_one,
    limit_price,
    limit_prices,
    order_qty,
    order_qtys,
    plan_entry_arrays,
)

# Prices as the API sends them (at most 4 decimals) and arbitrary floats.
api_prices = st.integers(min_value=1, max_value=50_000_000).map(lambda n: n / 10_000)
any_prices = st.floats(min_value=1e-4, max_value=1e5, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(api_prices, any_prices), min_size=1, max_size=50))
def test_limit_prices_equal_limit_price(prices):
    assert limit_prices(np.array(prices)).tolist() == [limit_price(p) for p in prices]


def test_order_qtys_near_a_nano_boundary():
    # 1234.56 / 0.3125 is exactly 3950.592, but in binary 3950.5919999999996.
    assert order_qtys(1234.56, np.array([0.3125]), np.array([True]), np.array([True]))[0] \
        == order_qty(1234.56, 0.3125, is_long=True, fractionable=True) == 3950.592


def test_limit_prices_of_every_half_cent_api_price_from_1_to_1000_dollars():
    # The bulk rounding of API prices (4 decimals) at an exact half cent, all 100,000 of them.
    prices = (np.arange(100, 100_100) * 100 + 50) / 10_000
    assert limit_prices(prices).tolist() == [limit_price(p) for p in prices.tolist()]


def test_limit_prices_decimal_halves():
    prices = [1.005, 1.015, 2.675, 0.99995, 0.12345, 123.455, 57.0]
    assert limit_prices(np.array(prices)).tolist() == [limit_price(p) for p in prices]
    assert limit_prices(np.array([1.005]))[0] == 1.01


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(api_prices, any_prices), st.booleans(), st.booleans()),
                min_size=1, max_size=50),
       st.sampled_from([1.0, 100.0, 250.0, 1234.56]))
def test_order_qtys_equal_order_qty(rows, size):
    prices = np.array([r[0] for r in rows])
    longs = np.array([r[1] for r in rows])
    frac = np.array([r[2] for r in rows])
    expected = [order_qty(size, p, is_long=bool(lg), fractionable=bool(f))
                for p, lg, f in rows]
    assert order_qtys(size, prices, longs, frac).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-4, 4), api_prices, st.booleans(), st.booleans()),
                min_size=1, max_size=30),
       st.floats(0, 3000), st.floats(0, 6000), st.integers(0, 5))
def test_bulk_funding_equals_one_by_one(rows, cash, buying_power, max_entries):
    z = np.array([r[0] for r in rows])
    price = np.array([r[1] for r in rows])
    frac = np.array([r[2] for r in rows])
    short_ok = np.array([r[3] for r in rows])
    t = Thresholds()
    got = plan_entry_arrays(z, price, price * 1.001, frac, short_ok, t, size_usd=100,
                            cash_usd=cash, buying_power_usd=buying_power,
                            max_entries=max_entries)
    # The same candidates funded strictly one at a time.
    everything = plan_entry_arrays(z, price, price * 1.001, frac, short_ok, t, size_usd=100,
                                   cash_usd=1e12, buying_power_usd=1e12)
    order = np.concatenate([everything.accepted, everything.skipped])
    order = order[np.argsort([list(np.argsort(-np.abs(z), kind="stable")).index(i)
                              for i in order], kind="stable")]
    lookup = {int(i): k for k, i in enumerate(everything.accepted)}
    ok = np.array([int(i) in lookup for i in order])
    is_long = np.array([z[i] < 0 for i in order])
    cost = np.array([everything.cost[lookup[int(i)]] if int(i) in lookup else 0.0
                     for i in order])
    reason = np.zeros(len(order), dtype=int)
    funded = _fund_one_by_one(ok, is_long, cost, reason, cash, buying_power,
                              max_entries or int(ok.sum()))
    assert got.accepted.tolist() == order[funded].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-4, 4), api_prices, st.booleans()), min_size=1,
                max_size=30), st.floats(0, 3000))
def test_precomputed_limits_and_sizes_change_nothing(rows, cash):
    z = np.array([r[0] for r in rows])
    price = np.array([r[1] for r in rows])
    frac = np.array([r[2] for r in rows])
    args = (z, price, price * 1.001, frac, np.ones(len(rows), bool), Thresholds())
    limits = limit_prices(price)
    qtys = order_qtys(100.0, limits, z < 0, frac)
    plain = plan_entry_arrays(*args, size_usd=100, cash_usd=cash, buying_power_usd=2 * cash)
    given_ = plan_entry_arrays(*args, size_usd=100, cash_usd=cash, buying_power_usd=2 * cash,
                               limits=limits, qtys=qtys)
    for name in ("accepted", "qty", "limit", "cost", "skipped", "skip_reason"):
        assert getattr(plain, name).tolist() == getattr(given_, name).tolist()
