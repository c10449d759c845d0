"""The one intraday price model, shared by the local exchange and the backtester.

Daily bars say where a session opened, closed, and how far it ranged, but not in which order.
This model fixes one deterministic path through each bar so that "the price at 12:00", the
quote, and whether a resting limit order fills can be answered the same way everywhere:

* The session is split into thirds. The path is piecewise linear through four knots at
  fractions 0, 1/3, 2/3 and 1 of the session (open to close, early closes included):
  ``open -> low -> high -> close`` when the bar closed at or above its open, and
  ``open -> high -> low -> close`` when it closed below. This is the usual "bar path"
  convention (an up bar dips first, a down bar rallies first); it is an assumption, not data.
* Before the open the price is the previous close; after the close it is the close.
* The quote is symmetric around the path: ``bid = floor_tick(p * (1 - s/2))`` and
  ``ask = ceil_tick(p * (1 + s/2))`` with ``s = spread_bps / 10_000`` and Alpaca's ticks
  ($0.01 at or above $1, $0.0001 below).
* A buy limit fills at the first moment its ask is at or below the limit; a sell limit at the
  first moment its bid is at or above it. Marketable on arrival, it fills at the quote (price
  improvement); otherwise, because the path is continuous and the limit sits on the tick grid,
  it fills exactly at the limit.

Every function accepts numpy arrays (the backtester evaluates a whole day of the universe at
once) as well as plain floats (the exchange evaluates one order).
"""

from __future__ import annotations

import numpy as np

KNOTS = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
_EPS = 1e-9  # guards tick rounding against binary floating-point noise


def _knot_prices(open_, high, low, close):
    """The four knot prices of each bar, shape (4, ...)."""
    open_, high, low, close = (np.asarray(x, dtype=float) for x in (open_, high, low, close))
    up = close >= open_
    first = np.where(up, low, high)
    second = np.where(up, high, low)
    return np.stack(np.broadcast_arrays(open_, first, second, close))


def price_at(open_, high, low, close, fraction):
    """Price on the model path at `fraction` of the session (0 = open, 1 = close)."""
    return _price_on(_knot_prices(open_, high, low, close), fraction)


def _price_on(knots, fraction):
    f = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
    segment = np.minimum(np.floor(f * 3.0), 2).astype(int)
    t = f * 3.0 - segment
    start = np.choose(segment, knots[:3])
    end = np.choose(segment, knots[1:])
    return start + (end - start) * t


def _range_on(knots, start, end):
    """Lowest and highest path price over [start, end] (fractions), element-wise."""
    start = np.clip(np.asarray(start, dtype=float), 0.0, 1.0)
    end = np.clip(np.asarray(end, dtype=float), 0.0, 1.0)
    p_start = _price_on(knots, start)
    p_end = _price_on(knots, end)
    lo = np.minimum(p_start, p_end)
    hi = np.maximum(p_start, p_end)
    for k in (1, 2):  # interior knots only; the end points are already counted
        inside = (start < KNOTS[k]) & (KNOTS[k] < end)
        lo = np.where(inside, np.minimum(lo, knots[k]), lo)
        hi = np.where(inside, np.maximum(hi, knots[k]), hi)
    return lo, hi


def tick_size(price):
    """Alpaca's minimum price increment: $0.01 at or above $1.00, $0.0001 below."""
    return np.where(np.asarray(price, dtype=float) >= 1.0, 0.01, 0.0001)


def floor_tick(price):
    tick = tick_size(price)
    return np.round(np.floor(np.asarray(price) / tick + _EPS) * tick, 4)


def ceil_tick(price):
    tick = tick_size(price)
    return np.round(np.ceil(np.asarray(price) / tick - _EPS) * tick, 4)


def quote(price, spread_bps: float):
    """(bid, ask) around a path price."""
    half = spread_bps / 20_000.0
    price = np.asarray(price, dtype=float)
    return floor_tick(price * (1.0 - half)), ceil_tick(price * (1.0 + half))


def limit_fill(open_, high, low, close, *, is_buy, limit, start, end, spread_bps: float):
    """Whether a limit order live from `start` to `end` (session fractions) fills, and at what.

    Returns ``(filled, price, fraction)``: a bool array, the fill price (NaN where unfilled)
    and the session fraction of the fill (NaN where unfilled). See the module docstring for
    the rule. `is_buy` and `limit` broadcast against the bars.
    """
    is_buy = np.asarray(is_buy, dtype=bool)
    limit = np.asarray(limit, dtype=float)
    start = np.asarray(start, dtype=float)
    end = np.asarray(end, dtype=float)
    half = spread_bps / 20_000.0
    knots = _knot_prices(open_, high, low, close)
    immediate, later, bid0, ask0 = _touches(knots, is_buy, limit, start, end, spread_bps)
    filled = immediate | later
    price = np.where(immediate, np.where(is_buy, ask0, bid0), np.where(later, limit, np.nan))
    when = np.where(immediate, start, np.nan)
    resting = later & ~immediate
    if resting.any():
        # The touch time only where an order rests and then fills: element-wise, so computing
        # it on that subset gives the same numbers at a fraction of the cost.
        shape = np.shape(resting)
        # Indices gathered once (a 0-d order keeps its mask); each array is read at them.
        where = np.nonzero(resting) if np.ndim(resting) else resting
        sub = [np.broadcast_to(x, shape)[where] for x in (is_buy, limit, start, end)]
        knots_sub = np.stack([np.broadcast_to(k, shape)[where] for k in knots])
        when = np.array(when, dtype=float, copy=True)
        when[resting] = _first_touch(knots_sub, *sub, half)
    return filled, price, when


def limit_filled(open_, high, low, close, *, is_buy, limit, start, end, spread_bps: float):
    """Whether a limit order live from `start` to `end` fills: `limit_fill`'s first answer
    alone, without the price and time of the fill (a fraction of the cost in bulk)."""
    immediate, later, _, _ = _touches(
        _knot_prices(open_, high, low, close), np.asarray(is_buy, dtype=bool),
        np.asarray(limit, dtype=float), np.asarray(start, dtype=float),
        np.asarray(end, dtype=float), spread_bps)
    return immediate | later


def _touches(knots, is_buy, limit, start, end, spread_bps):
    """Whether the order is marketable at `start`, whether the path reaches its limit later,
    and the quote at `start`."""
    half = spread_bps / 20_000.0
    bid0, ask0 = quote(_price_on(knots, start), spread_bps)
    immediate = np.where(is_buy, ask0 <= limit + _EPS, bid0 >= limit - _EPS)
    lo, hi = _range_on(knots, start, end)
    # ask <= L  <=>  p * (1 + half) <= L for L on the tick grid (and likewise for the bid).
    later = np.where(is_buy, lo * (1.0 + half) <= limit + _EPS,
                     hi * (1.0 - half) >= limit - _EPS) & (end > start)
    return immediate, later, bid0, ask0


def _first_touch(knots, is_buy, limit, start, end, half):
    """Earliest fraction in [start, end] where the quote reaches the limit (NaN if never)."""
    # The level the path price must reach for the quote to touch the limit.
    level = np.where(is_buy, limit / (1.0 + half), limit / (1.0 - half))
    shape = np.broadcast_shapes(np.shape(level), np.shape(start), knots.shape[1:])
    best = np.full(shape, np.nan)
    for k in range(3):
        a, b = knots[k], knots[k + 1]
        f_a, f_b = KNOTS[k], KNOTS[k + 1]
        lo_f = np.maximum(f_a, start)
        hi_f = np.minimum(f_b, end)
        p_lo = a + (b - a) * (lo_f - f_a) * 3.0
        p_hi = a + (b - a) * (hi_f - f_a) * 3.0
        reached_at_lo = np.where(is_buy, p_lo <= level + _EPS, p_lo >= level - _EPS)
        crosses = np.where(is_buy, (p_lo > level) & (p_hi <= level + _EPS),
                           (p_lo < level) & (p_hi >= level - _EPS))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(p_hi != p_lo, (level - p_lo) / (p_hi - p_lo), 0.0)
        cross_f = lo_f + (hi_f - lo_f) * np.clip(t, 0.0, 1.0)
        candidate = np.where(reached_at_lo, lo_f, np.where(crosses, cross_f, np.nan))
        valid = (lo_f <= hi_f) & ~np.isnan(candidate)
        best = np.where(np.isnan(best) & valid, candidate, best)
    return best
