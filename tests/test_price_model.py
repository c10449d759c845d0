"""The intraday price model: every path fits its bar, is reproducible from (symbol, session),
fills limits where the path says, and bulk evaluation equals one-by-one."""

from datetime import date

import numpy as np
import pytest

from simbroker import price_model
from simbroker.price_model import (
    GRID,
    limit_fill,
    limit_filled,
    path_key,
    path_keys,
    price_at,
    quote,
    range_between,
)

UP = (100.0, 110.0, 90.0, 105.0)
DOWN = (100.0, 110.0, 90.0, 95.0)
KEY = path_key("AAA", date(2022, 3, 1))
GRID_FRACTIONS = np.arange(GRID + 1) / GRID


def random_bars(n, seed=3):
    rng = np.random.default_rng(seed)
    o = rng.uniform(50, 150, n)
    c = o * rng.uniform(0.9, 1.1, n)
    h = np.maximum(o, c) * rng.uniform(1.0, 1.05, n)
    lo = np.minimum(o, c) * rng.uniform(0.95, 1.0, n)
    # Some bars open at the low or close at the high, exactly as data can.
    h[:n // 10] = np.maximum(o, c)[:n // 10]
    lo[n // 10:n // 5] = np.minimum(o, c)[n // 10:n // 5]
    keys = path_keys(["X"], np.arange(n) + 730_000)[:, 0]
    return o, h, lo, c, keys


@pytest.mark.parametrize("bar", [UP, DOWN, (100.0, 100.0, 100.0, 100.0), (100.0, 105.0, 100.0,
                                                                        105.0)])
def test_the_path_opens_closes_and_ranges_exactly_as_its_bar(bar):
    path = price_at(*bar, GRID_FRACTIONS, key=KEY)
    assert path[0] == bar[0] and path[-1] == bar[3]
    assert path.min() == bar[2] and path.max() == bar[1]
    low, high = range_between(*bar, 0.0, 1.0, key=KEY)
    assert (float(low), float(high)) == (bar[2], bar[1])


def test_every_path_of_many_bars_fits_its_bar_and_touches_high_and_low():
    o, h, lo, c, keys = random_bars(300)
    path = price_at(o[:, None], h[:, None], lo[:, None], c[:, None], GRID_FRACTIONS,
                    key=keys[:, None])
    assert np.array_equal(path[:, 0], o) and np.array_equal(path[:, -1], c)
    assert np.allclose(path.min(axis=1), lo, rtol=1e-12)
    assert np.allclose(path.max(axis=1), h, rtol=1e-12)
    assert (path >= lo[:, None]).all() and (path <= h[:, None]).all()
    # A bar that opened at its low does not sit on it: the path leaves the low at once.
    opened_low = (o == lo) & (h > lo)
    assert opened_low.any() and (path[opened_low, 1] > lo[opened_low]).all()


def test_the_path_is_the_same_for_the_same_symbol_and_session_and_only_then():
    a = price_at(*UP, GRID_FRACTIONS, key=path_key("AAA", date(2022, 3, 1)))
    b = price_at(*UP, GRID_FRACTIONS, key=path_key("AAA", date(2022, 3, 1)))
    other_day = price_at(*UP, GRID_FRACTIONS, key=path_key("AAA", date(2022, 3, 2)))
    other_symbol = price_at(*UP, GRID_FRACTIONS, key=path_key("BBB", date(2022, 3, 1)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, other_day) and not np.array_equal(a, other_symbol)
    # The key is a stable hash (not Python's salted hash()): pinned so that a change of the
    # keying, which would change every backtest, is seen.
    assert int(path_key("AAA", date(2022, 3, 1))) == int(path_keys(["AAA"],
                                                                   np.array([738215]))[0, 0])
    assert date(2022, 3, 1).toordinal() == 738215


def test_closes_only_bars_are_a_bridge_that_ignores_the_invented_high_and_low():
    # The same closes with two different "high/low" fills: the path does not depend on them.
    a = price_at(100.0, 103.0, 100.0, 103.0, GRID_FRACTIONS, key=KEY, scale=2.0)
    b = price_at(100.0, 150.0, 50.0, 103.0, GRID_FRACTIONS, key=KEY, scale=2.0)
    assert np.array_equal(a, b) and a[0] == 100.0 and a[-1] == 103.0
    assert a.max() > 103.0 or a.min() < 100.0  # it leaves [open, close]: no range invented
    # Scale 0 is the straight line from open to close.
    line = price_at(100.0, 103.0, 100.0, 103.0, GRID_FRACTIONS, key=KEY, scale=0.0)
    assert np.allclose(line, 100.0 + 3.0 * GRID_FRACTIONS)


def test_bridge_scales_use_only_closes_before_the_session():
    close = 100.0 * np.cumprod(np.r_[1.0, 1.0 + 0.01 * np.tile([1.0, -1.0], 20)])
    scales = price_model.bridge_scales(close)
    changed = close.copy()
    changed[30] *= 1.2
    again = price_model.bridge_scales(changed)
    assert np.array_equal(scales[:31], again[:31])  # session 30's own close is not used
    assert not np.array_equal(scales[31:], again[31:])
    # Before five returns are known: the default daily volatility on the previous close.
    assert scales[3] == close[2] * price_model.DEFAULT_DAILY_VOLATILITY
    # Returns of +-1% (to rounding): the scale is about 1% of the previous close.
    assert scales[25] == pytest.approx(0.01 * close[24], rel=0.02)


def test_quote_is_on_the_tick_grid_around_the_price():
    assert tuple(map(float, quote(100.0, 2.0))) == (99.99, 100.01)
    assert tuple(map(float, quote(0.5, 2.0))) == (0.4999, 0.5001)


def test_resting_buy_fills_at_its_limit_when_the_path_first_comes_down_to_it():
    start = 0.4
    after = GRID_FRACTIONS[GRID_FRACTIONS > start]
    path = price_at(*UP, after, key=KEY)
    level = float(np.round(path.min() + 0.3 * (price_at(*UP, start, key=KEY) - path.min()), 2))
    filled, price, when = limit_fill(*UP, is_buy=True, limit=level, start=start, end=1.0,
                                     spread_bps=2.0, key=KEY)
    assert filled and price == level
    # At the fill the ask reaches the limit: the path is at limit / (1 + 1 bp), and never
    # below it before.
    assert float(price_at(*UP, when, key=KEY)) == pytest.approx(level / 1.0001, abs=1e-9)
    before = after[after < when]
    assert (price_at(*UP, before, key=KEY) * 1.0001 > level).all()
    # Below the path's low after the start: no fill.
    filled, price, _ = limit_fill(*UP, is_buy=True, limit=float(np.floor(path.min()) - 0.01),
                                  start=start, end=1.0, spread_bps=2.0, key=KEY)
    assert not filled and np.isnan(price)


def test_marketable_order_fills_at_once_at_the_quote():
    at = float(price_at(*UP, 0.385, key=KEY))
    filled, price, when = limit_fill(*UP, is_buy=True, limit=round(at + 1.0, 2), start=0.385,
                                     end=1.0, spread_bps=2.0, key=KEY)
    assert filled and when == 0.385
    assert price == float(quote(at, 2.0)[1])  # the ask, below the limit


def test_fills_agree_with_the_path_sampled_on_its_grid():
    """The closed form used to the close (the library path's suffix extreme through g) says
    "fills" exactly when some point of the path after the start reaches the limit."""
    o, h, lo, c, keys = random_bars(400, seed=5)
    rng = np.random.default_rng(6)
    start = rng.uniform(0, 1, len(o))
    is_buy = rng.random(len(o)) < 0.5
    at_start = price_at(o, h, lo, c, start, key=keys)
    limit = np.round(at_start * rng.uniform(0.97, 1.03, len(o)), 2)
    got = limit_filled(o, h, lo, c, is_buy=is_buy, limit=limit, start=start, end=1.0,
                       spread_bps=0.0, key=keys)
    path = price_at(o[:, None], h[:, None], lo[:, None], c[:, None], GRID_FRACTIONS,
                    key=keys[:, None])
    later = GRID_FRACTIONS[None, :] > start[:, None]
    reach = np.where(is_buy[:, None], path <= limit[:, None] + 1e-9,
                     path >= limit[:, None] - 1e-9)
    at_once = np.where(is_buy, at_start <= limit + 1e-9, at_start >= limit - 1e-9)
    expected = (reach & later).any(axis=1) | at_once
    assert np.array_equal(got, expected)
    # The bulk path for bars with a range, to the close, is limit_fill's answer bit for bit.
    assert np.array_equal(got, limit_fill(o, h, lo, c, is_buy=is_buy, limit=limit, start=start,
                                          end=1.0, spread_bps=0.0, key=keys)[0])
    both = limit_filled(o, h, lo, c, is_buy=np.array([[False], [True]]), limit=limit,
                        start=start, end=1.0, spread_bps=2.0, key=keys)
    for side in (0, 1):
        assert np.array_equal(both[side], limit_fill(
            o, h, lo, c, is_buy=bool(side), limit=limit, start=start, end=1.0,
            spread_bps=2.0, key=keys)[0])
    assert 0.2 < got.mean() < 0.9


def test_bulk_equals_one_by_one():
    o, h, lo, c, keys = random_bars(300)
    rng = np.random.default_rng(4)
    scale = np.where(rng.random(len(o)) < 0.3, o * 0.015, np.nan)  # some closes-only bars
    is_buy = rng.random(len(o)) < 0.5
    limit = np.round(o * rng.uniform(0.93, 1.07, len(o)), 2)
    start = rng.uniform(0, 1, len(o))
    end = np.where(rng.random(len(o)) < 0.5, 1.0, rng.uniform(start, 1.0))
    bulk = limit_fill(o, h, lo, c, is_buy=is_buy, limit=limit, start=start, end=end,
                      spread_bps=2.0, key=keys, scale=scale)
    for i in range(len(o)):
        one = limit_fill(o[i], h[i], lo[i], c[i], is_buy=is_buy[i], limit=limit[i],
                         start=start[i], end=end[i], spread_bps=2.0, key=keys[i],
                         scale=scale[i])
        assert [float(x) for x in one] == pytest.approx([float(x[i]) for x in bulk],
                                                         nan_ok=True, abs=0, rel=0)
        assert float(price_at(o[i], h[i], lo[i], c[i], start[i], key=keys[i],
                              scale=scale[i])) == float(price_at(o, h, lo, c, start,
                                                                 key=keys, scale=scale)[i])
    assert 0 < bulk[0].sum() < len(o)  # both outcomes occur
    assert np.array_equal(bulk[0], limit_filled(o, h, lo, c, is_buy=is_buy, limit=limit,
                                                start=start, end=end, spread_bps=2.0,
                                                key=keys, scale=scale))


def test_many_orders_are_decided_as_the_full_scan_decides_them():
    """With many orders that the closed form does not cover (closes-only bridges, orders live
    to before the close), the grid is read block by block with a bound on the rest of each
    path; the answers are those of a scan of every point (what a call with a few orders
    does), including limits exactly where the quote meets them and missing bars."""
    n = 3000
    o, h, lo, c, keys = random_bars(n, seed=8)
    rng = np.random.default_rng(9)
    scale = np.where(rng.random(n) < 0.6, o * rng.choice([0.0, 1e-4, 0.015, 0.3], n), np.nan)
    o[rng.random(n) < 0.03] = np.nan  # no bar that session
    start = np.where(rng.random(n) < 0.5, 150 / GRID, rng.uniform(0, 1, n))
    end = np.where(rng.random(n) < 0.6, 1.0, rng.uniform(start, 1.0))
    is_buy = rng.random(n) < 0.5
    half = 2.0 / 20_000
    later = price_at(o, h, lo, c, rng.uniform(start, 1.0), key=keys, scale=scale)
    limit = np.where(rng.random(n) < 0.3, later * np.where(is_buy, 1 + half, 1 - half),
                     np.round(later * rng.uniform(0.98, 1.02, n), 2))
    args = dict(spread_bps=2.0)
    bulk = limit_filled(o, h, lo, c, is_buy=is_buy, limit=limit, start=start, end=end,
                        key=keys, scale=scale, **args)
    few = np.concatenate([limit_filled(o[r], h[r], lo[r], c[r], is_buy=is_buy[r],
                                       limit=limit[r], start=start[r], end=end[r],
                                       key=keys[r], scale=scale[r], **args)
                          for r in (slice(a, a + 16) for a in range(0, n, 16))])
    assert np.array_equal(bulk, few)
    assert 0.2 < bulk.mean() < 0.95


def _first_touch_by_the_rule(path, is_buy, limit, start, end, half):
    """The fill time of a resting order read straight off its path at every grid point: the
    first point after the start and before the end whose quote reaches the limit, and the
    crossing on the straight piece from the point before it (the start for the first); with
    no such point, the crossing on the piece from the last point inside to the end."""
    level = limit / (1.0 + half) if is_buy else limit / (1.0 - half)

    def crosses(v):
        return v * (1.0 + half) <= limit + 1e-9 if is_buy else v * (1.0 - half) >= limit - 1e-9

    s_t, e_t = price_model._grid_time(start), price_model._grid_time(end)
    t0, v0 = s_t, float(price_model.price_at(*path["bar"], start, **path["keys"]))
    if crosses(v0):
        return start
    t1, v1 = e_t, float(price_model.price_at(*path["bar"], end, **path["keys"]))
    for j in range(int(np.floor(s_t)) + 1, GRID + 1):
        if not j < e_t:
            break
        if crosses(path["grid"][j]):
            t1, v1 = float(j), path["grid"][j]
            break
        t0, v0 = float(j), path["grid"][j]
    w = min(max((v0 - level) / (v0 - v1) if v1 != v0 else 1.0, 0.0), 1.0)
    return min(max((t0 + (t1 - t0) * w) / GRID, start), end)


def test_fill_times_are_the_first_touch_on_the_grid():
    """limit_fill's fill time in bulk, bit for bit, is the first touch read point by point
    off the path, for limits inside the bar, at its low or high and at the quote's level,
    with and without a spread, on bars with a range, flat bars and closes-only bridges."""
    n = 600
    o, h, lo, c, keys = random_bars(n, seed=11)
    rng = np.random.default_rng(12)
    flat = rng.random(n) < 0.05
    h[flat] = lo[flat] = o[flat] = c[flat]
    scale = np.where(rng.random(n) < 0.2, o * 0.015, np.nan)
    start = np.where(rng.random(n) < 0.5, 150 / GRID, rng.uniform(0, 1, n))
    end = np.where(rng.random(n) < 0.6, 1.0, rng.uniform(start, 1.0))
    is_buy = rng.random(n) < 0.5
    grid = price_at(o[:, None], h[:, None], lo[:, None], c[:, None], GRID_FRACTIONS,
                    key=keys[:, None], scale=scale[:, None])
    checked = 0
    for spread_bps in (0.0, 2.0):
        half = spread_bps / 20_000
        later = price_at(o, h, lo, c, rng.uniform(start, 1.0), key=keys, scale=scale)
        pick = rng.random(n)
        limit = np.where(pick < 0.3, later * np.where(is_buy, 1 + half, 1 - half),
                         np.where(pick < 0.5, np.where(is_buy, lo, h),
                                  np.round(later * rng.uniform(0.98, 1.02, n), 2)))
        filled, _, when = limit_fill(o, h, lo, c, is_buy=is_buy, limit=limit, start=start,
                                     end=end, spread_bps=spread_bps, key=keys, scale=scale)
        for i in np.flatnonzero(filled):
            path = {"bar": (o[i], h[i], lo[i], c[i]), "grid": grid[i],
                    "keys": {"key": keys[i], "scale": scale[i]}}
            expected = _first_touch_by_the_rule(path, bool(is_buy[i]), float(limit[i]),
                                                float(start[i]), float(end[i]), half)
            assert float(when[i]) == expected, i
            checked += 1
    assert checked > 300
