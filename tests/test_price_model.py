"""The intraday price model against hand-computed values, and bulk equal to one-by-one."""

import numpy as np
import pytest

from simbroker.price_model import limit_fill, price_at, quote

UP = (100.0, 110.0, 90.0, 105.0)  # closes above its open: open -> low -> high -> close
DOWN = (100.0, 110.0, 90.0, 95.0)  # open -> high -> low -> close


@pytest.mark.parametrize("bar, fraction, expected", [
    (UP, 0.0, 100.0), (UP, 1 / 3, 90.0), (UP, 0.5, 100.0), (UP, 2 / 3, 110.0), (UP, 1.0, 105.0),
    (DOWN, 1 / 6, 105.0), (DOWN, 0.5, 100.0), (DOWN, 5 / 6, 92.5),
])
def test_path_knots_and_interpolation(bar, fraction, expected):
    assert price_at(*bar, fraction) == pytest.approx(expected)


def test_quote_is_on_the_tick_grid_around_the_price():
    assert tuple(map(float, quote(100.0, 2.0))) == (99.99, 100.01)
    assert tuple(map(float, quote(0.5, 2.0))) == (0.4999, 0.5001)


def test_resting_buy_fills_at_its_limit_when_the_path_comes_down():
    # From noon-ish (0.5, price 100) the up bar rises to 110 then ends at 105: a buy at 95
    # never fills; from the open it fills on the way down to 90, at the limit.
    filled, price, when = limit_fill(*UP, is_buy=True, limit=95.0, start=0.5, end=1.0,
                                     spread_bps=2.0)
    assert not filled and np.isnan(price)
    filled, price, when = limit_fill(*UP, is_buy=True, limit=95.0, start=0.0, end=1.0,
                                     spread_bps=2.0)
    assert filled and price == 95.0
    # The ask reaches 95 when the path is at 95 / 1.0001, a little after 1/6 of the session.
    assert when == pytest.approx((100 - 95 / 1.0001) / 10 / 3)


def test_marketable_order_fills_at_once_at_the_quote():
    filled, price, when = limit_fill(*UP, is_buy=True, limit=101.0, start=0.385, end=1.0,
                                     spread_bps=2.0)
    assert filled and when == 0.385
    assert price == float(quote(price_at(*UP, 0.385), 2.0)[1])  # the ask, below the limit


def test_bulk_equals_one_by_one():
    rng = np.random.default_rng(3)
    n = 400
    o = rng.uniform(50, 150, n)
    c = o * rng.uniform(0.9, 1.1, n)
    h = np.maximum(o, c) * rng.uniform(1.0, 1.05, n)
    lo = np.minimum(o, c) * rng.uniform(0.95, 1.0, n)
    is_buy = rng.random(n) < 0.5
    limit = np.round(o * rng.uniform(0.93, 1.07, n), 2)
    start = rng.uniform(0, 1, n)
    bulk = limit_fill(o, h, lo, c, is_buy=is_buy, limit=limit, start=start, end=1.0,
                      spread_bps=2.0)
    for i in range(n):
        one = limit_fill(o[i], h[i], lo[i], c[i], is_buy=is_buy[i], limit=limit[i],
                         start=start[i], end=1.0, spread_bps=2.0)
        assert [float(x) for x in one] == pytest.approx([float(x[i]) for x in bulk],
                                                         nan_ok=True, abs=0, rel=0)
    assert 0 < bulk[0].sum() < n  # both outcomes occur
